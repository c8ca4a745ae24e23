"""The relayer: sends accepted payments in batches, each city's from that city's relayer accounts
(the holders of its token's RELAYER_ROLE), through the outbox. A round's batches go out from the
city's accounts in turn, the first account first: a node limits how many pending transactions
one sender may have (Besu), so a busy round spreads over the pool, while a quiet city sends from
its first relayer alone.

Exactly once, across crashes and rollbacks: a batch transaction is signed and recorded in the
outbox (chain/outbox.py) and its payments marked submitted in one database transaction, and only
then sent; the outbox sends the same bytes again if the node loses them, never under a second
nonce. The outbox tells this module what became of a batch: mined (its payments included, failed
with the chain's reason, or paid by another transaction that used the same authorization), or
taken back with its block (its payments submitted again, to be included when the same bytes are
mined again).

Sent batches are followed block by block: once a new block is out, the outbox asks for the
receipts of every transaction not yet mined in one JSON-RPC batch.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import defaultdict
from collections.abc import Mapping, Sequence

from eth_account.signers.local import LocalAccount
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from citypay.chain.codec import codec_of, decode_revert
from citypay.chain.deployment import Deployment
from citypay.chain.events import decode_log
from citypay.chain.outbox import ChainTransaction, Outbox
from citypay.core.faults import crash_point
from citypay.db.session import Database
from citypay.payments.models import Payment, PaymentStatus

log = logging.getLogger(__name__)

PURPOSE = "payment_batch"
# Gas a batch may use: the batch's own overhead plus a generous bound per authorization (about
# 50,000 is typical). Gas price is zero on the city's chain.
BATCH_BASE_GAS = 150_000
GAS_PER_AUTHORIZATION = 120_000

# Idle, how often the relayer looks for payments to send and batches to follow anyway.
IDLE_LOOK_SECONDS = 1.0
# A batch entry refused because its authorization was used: the payment went through in another
# transaction (someone sent the published signature first). It is looked for this many blocks back.
FRONT_RUN_LOOKBACK_BLOCKS = 1_000

# What a batch needs of a payment, read as plain rows: no ORM objects for a hundred payments.
_BATCH_COLUMNS = (
    Payment.id,
    Payment.city,
    Payment.payer,
    Payment.merchant,
    Payment.value,
    Payment.valid_after,
    Payment.valid_before,
    Payment.nonce,
    Payment.v,
    Payment.r,
    Payment.s,
)
_AUTHORIZATION_FAILED = codec_of("token").topic("AuthorizationFailed")


class _BatchTaken(Exception):
    """Some payments of a batch were no longer accepted: the recording is rolled back."""


class Relayer:
    def __init__(
        self,
        db: Database,
        deployment: Deployment,
        outbox: Outbox,
        accounts: Mapping[str, Sequence[LocalAccount]],
        *,
        batch_size: int,
        interval: float,
    ) -> None:
        self.db = db
        self.deployment = deployment
        self.outbox = outbox
        self.rpc = outbox.gateway.rpc
        self.accounts = accounts  # by city code: each city's batches from its own relayers
        self.batch_size = batch_size
        self.interval = interval
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._wake = threading.Event()
        self._block: int | None = None  # the newest block the sent batches were followed to
        self._block_checked = 0.0  # monotonic time the node was last asked for its newest block
        self._looked = 0.0  # monotonic time of the last idle look
        self._following = False  # batches are out, not yet mined
        # The node's pending count of each relayer account's transactions, asked again at each
        # block (it matters only if the key sent a transaction the relayer did not record).
        self._pending_counts: dict[str, int] = {}
        outbox.on(PURPOSE, mined=self._mined, unmined=self._unmined)

    # --- lifecycle --------------------------------------------------------------------------

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="relayer", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout=10)

    def wake(self) -> None:
        """A payment was accepted: send without waiting out the interval."""
        self._wake.set()

    def _run(self) -> None:
        while not self._stop.is_set():
            started = time.monotonic()
            woken = self._wake.is_set()
            self._wake.clear()
            try:
                self.step(woken)
            except Exception:  # the node or the database away: the next step tries again
                self._pending_counts = {}
                log.exception("relayer step failed; retrying")
            self._wake.wait(self.interval)
            # Woken early (a payment was accepted): an interval at least between two steps, so
            # that the payments accepted meanwhile share a batch.
            self._stop.wait(self.interval - (time.monotonic() - started))

    def step(self, woken: bool = True) -> None:
        """Follows the outbox if a block came out since (asking the node at most once an
        interval while batches are out), then sends what is accepted (when woken). Idle, it
        looks for both once a second: payments another process accepted, batches after a
        restart, blocks a rollback took."""
        now = time.monotonic()
        idle = now - self._looked >= IDLE_LOOK_SECONDS
        if idle:
            self._looked = now
        if (self._following or idle) and now - self._block_checked >= self.interval:
            self._block_checked = now
            block = int(self.rpc.request("eth_blockNumber"), 16)
            if block != self._block:
                self._following = self.outbox.follow().waiting > 0
                self._block, self._pending_counts = block, {}
        if (woken or idle) and self.submit_accepted():
            self._following = True

    # --- sending ----------------------------------------------------------------------------

    def submit_accepted(self) -> int:
        """Sends every accepted payment, one batch transaction per city and batch size."""
        sent = 0
        with self.db.session() as session:
            accepted = session.execute(
                select(*_BATCH_COLUMNS)
                .where(
                    Payment.status == PaymentStatus.ACCEPTED,
                    # Only the cities this backend serves (CITIES) and holds a relayer key of.
                    Payment.city.in_(list(self.accounts)),
                )
                .order_by(Payment.id)
                .limit(self.batch_size * 4)
            ).all()
            by_city: dict[str, list] = defaultdict(list)
            for payment in accepted:
                by_city[payment.city].append(payment)
        for city_code, payments in by_city.items():
            pool = self.accounts[city_code]
            for turn, start in enumerate(range(0, len(payments), self.batch_size)):
                batch = payments[start : start + self.batch_size]
                self._send_batch(city_code, pool[turn % len(pool)], batch)
                sent += 1
        return sent

    def _send_batch(self, city_code: str, account: LocalAccount, payments: list) -> None:
        try:
            self._record_and_send(city_code, account, payments)
        except _BatchTaken:
            log.info("another relayer took part of a batch of %s; it is not sent", city_code)

    def _record_and_send(self, city_code: str, account: LocalAccount, payments: list) -> None:
        token = self.deployment.city(city_code).chain.token
        authorizations = [
            (
                p.payer,
                p.merchant,
                p.value,
                p.valid_after,
                p.valid_before,
                bytes.fromhex(p.nonce[2:]),
                p.v,
                bytes.fromhex(p.r[2:]),
                bytes.fromhex(p.s[2:]),
            )
            for p in payments
        ]
        data = token.calldata("transferWithAuthorizationBatch", authorizations)
        with self.db.session() as session:
            record = self.outbox.record(
                session,
                account,
                to=token.address,
                data=data,
                gas=BATCH_BASE_GAS + GAS_PER_AUTHORIZATION * len(payments),
                purpose=PURPOSE,
                pending=self._pending(account.address),
            )
            # Only payments still accepted: another relayer replica may have taken some.
            result = session.execute(
                update(Payment)
                .where(
                    Payment.id.in_([p.id for p in payments]),
                    Payment.status == PaymentStatus.ACCEPTED,
                )
                .values(
                    status=PaymentStatus.SUBMITTED,
                    relay_transaction_id=record.id,
                    tx_hash=record.tx_hash,
                )
            )
            if result.rowcount != len(payments):
                raise _BatchTaken
        crash_point("after_batch_recorded")
        self.outbox.broadcast(record.raw_transaction)
        crash_point("after_batch_sent")

    def _pending(self, address: str) -> int:
        if address not in self._pending_counts:
            self._pending_counts[address] = int(
                self.rpc.request("eth_getTransactionCount", address, "pending"), 16
            )
        return self._pending_counts[address]

    # --- what the outbox tells of a batch -----------------------------------------------------

    def _mined(self, session: Session, record: ChainTransaction, receipt: dict) -> None:
        of_batch = Payment.relay_transaction_id == record.id
        if not record.succeeded:
            # The whole batch reverted (out of gas, say): nothing moved and no authorization
            # was used, so the payments go back in the queue for another batch.
            session.execute(
                update(Payment)
                .where(of_batch)
                .values(status=PaymentStatus.ACCEPTED, relay_transaction_id=None, tx_hash=None)
            )
            return
        session.execute(
            update(Payment)
            .where(of_batch)
            .values(status=PaymentStatus.INCLUDED, block_number=record.block_number)
        )
        for (payer, nonce), reason in _failures(receipt).items():
            of_payment = (of_batch, Payment.payer == payer, Payment.nonce == nonce)
            refusal = decode_revert(reason)
            paid = (
                self._paid_elsewhere(receipt, payer, nonce)
                if refusal.name == "EIP3009AuthorizationUsed"
                else None
            )
            if paid is not None:
                # The same signed authorization went through in another transaction: the
                # payment is made, once, there (the nonce names one authorization).
                session.execute(
                    update(Payment)
                    .where(*of_payment)
                    .values(
                        tx_hash=paid["transactionHash"], block_number=int(paid["blockNumber"], 16)
                    )
                )
                continue
            # Any other refusal is final: the token voided an entry its payer signed, so it can
            # never be settled after the till was told it failed.
            session.execute(
                update(Payment)
                .where(*of_payment)
                .values(status=PaymentStatus.FAILED, failure_reason=str(refusal))
            )

    def _unmined(self, session: Session, record: ChainTransaction) -> None:
        """The batch's block is gone: its payments are on their way again, in the same bytes."""
        session.execute(
            update(Payment)
            .where(Payment.relay_transaction_id == record.id)
            .values(
                status=PaymentStatus.SUBMITTED,
                tx_hash=record.tx_hash,
                block_number=None,
                failure_reason=None,
            )
        )
        self._following = True

    def _paid_elsewhere(self, receipt: dict, payer: str, nonce: str) -> dict | None:
        """The log of the AuthorizationUsed that used (payer, nonce) before this batch, if any."""
        block = int(receipt["blockNumber"], 16)
        token = self.deployment.city_of_token(receipt["to"]).chain.token
        logs = token.logs(
            "AuthorizationUsed",
            payer,
            bytes.fromhex(nonce[2:]),
            from_block=max(0, block - FRONT_RUN_LOOKBACK_BLOCKS),
            to_block=block,
        )
        return logs[0] if logs else None


def _failures(receipt: dict) -> dict[tuple[str, str], bytes]:
    """(payer, nonce) -> the revert data, for each AuthorizationFailed event the batch emitted."""
    failures = {}
    for entry in receipt["logs"]:
        if entry["address"].lower() == receipt["to"].lower() and entry["topics"][:1] == [
            _AUTHORIZATION_FAILED
        ]:
            failed = decode_log(entry, "", "token", 0).args
            failures[(failed["authorizer"], failed["nonce"])] = bytes.fromhex(failed["reason"][2:])
    return failures
