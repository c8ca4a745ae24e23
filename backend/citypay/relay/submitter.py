"""The relayer: sends accepted payments in batches and follows them to inclusion.

Exactly once, across crashes: a batch transaction is signed, then recorded with its nonce and raw
bytes and its payments marked submitted in one database transaction, and only then sent. After a
restart, a recorded transaction is looked up by hash; if the node has never seen it, the same
signed bytes are sent again (so too for one still not mined a block after it was last checked).
Nonces come from the higher of the relayer's own record and the chain's pending count, so no
nonce is used twice and none is skipped.

Sent batches are followed block by block: once a new block is out, the receipts of every batch
not yet mined are asked for in one JSON-RPC batch.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import defaultdict

from eth_abi import decode, encode
from eth_account.signers.local import LocalAccount
from eth_utils import event_signature_to_log_topic, function_signature_to_4byte_selector
from sqlalchemy import select, update
from sqlalchemy.orm import Session
from web3 import Web3

from citypay.cashout.faults import crash_point
from citypay.chain.deployment import Deployment
from citypay.chain.relay_account import broadcast, sign_and_record
from citypay.db.models import Payment, PaymentStatus, RelayTransaction, RelayTransactionStatus
from citypay.db.session import Database

log = logging.getLogger(__name__)

# Gas a batch may use: the batch's own overhead plus a generous bound per authorization (about
# 50,000 is typical). Gas price is zero on the city's chain.
BATCH_BASE_GAS = 150_000
GAS_PER_AUTHORIZATION = 120_000

# transferWithAuthorizationBatch(TransferAuthorization[]), encoded by hand: web3.py's contract
# functions walk the ABI for every argument, about 1 ms an authorization.
_AUTHORIZATIONS = "(address,address,uint256,uint256,uint256,bytes32,uint8,bytes32,bytes32)[]"
# Idle, how often the relayer looks for payments to send and batches to follow anyway.
IDLE_LOOK_SECONDS = 1.0

_BATCH_SELECTOR = function_signature_to_4byte_selector(
    f"transferWithAuthorizationBatch({_AUTHORIZATIONS})"
)
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
_AUTHORIZATION_FAILED = (
    "0x" + event_signature_to_log_topic("AuthorizationFailed(address,bytes32,bytes)").hex()
)
_AUTHORIZATION_USED = (
    "0x" + event_signature_to_log_topic("AuthorizationUsed(address,bytes32)").hex()
)
# A batch entry refused because its authorization was used: the payment went through in another
# transaction (someone sent the published signature first). It is looked for this many blocks back.
FRONT_RUN_LOOKBACK_BLOCKS = 1_000


def error_decoder(abi: list) -> dict[bytes, tuple[str, list[str], list[str]]]:
    """Custom error selector -> (name, argument names, argument types), from a contract ABI."""
    errors = {}
    for item in abi:
        if item.get("type") == "error":
            types = [arg["type"] for arg in item["inputs"]]
            names = [arg["name"] for arg in item["inputs"]]
            signature = f"{item['name']}({','.join(types)})"
            errors[function_signature_to_4byte_selector(signature)] = (item["name"], names, types)
    return errors


def revert_name(errors: dict, data: bytes) -> str | None:
    """The custom error's name, or None for revert data no ABI names."""
    known = errors.get(bytes(data[:4]))
    return known[0] if known else None


def describe_revert(errors: dict, data: bytes) -> str:
    """'EIP3009AuthorizationExpired(validBefore=..., blockTimestamp=...)' from revert data."""
    known = errors.get(bytes(data[:4]))
    if known is None:
        return f"reverted with data 0x{bytes(data).hex()}"
    name, names, types = known
    values = decode(types, bytes(data[4:]))
    shown = ", ".join(
        f"{n}={'0x' + v.hex() if isinstance(v, bytes) else v}"
        for n, v in zip(names, values, strict=True)
    )
    return f"{name}({shown})"


class _BatchTaken(Exception):
    """Some payments of a batch were no longer accepted: the recording is rolled back."""


class Relayer:
    def __init__(
        self,
        db: Database,
        w3: Web3,
        deployment: Deployment,
        account: LocalAccount,
        *,
        batch_size: int,
        interval: float,
    ) -> None:
        self.db = db
        self.w3 = w3
        self.deployment = deployment
        self.account = account
        self.batch_size = batch_size
        self.interval = interval
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._wake = threading.Event()
        self._errors = error_decoder(next(iter(deployment.cities.values())).token.abi)
        self._block: int | None = None  # the newest block the sent batches were followed to
        self._block_checked = 0.0  # monotonic time the node was last asked for its newest block
        self._looked = 0.0  # monotonic time of the last idle look
        self._following = False  # batches are out, not yet mined
        # The node's pending count of the relayer's transactions, asked again at each block (it
        # matters only if the key sent a transaction the relayer did not record).
        self._pending_count: int | None = None
        self._unmined: set[str] | None = None  # batches without a receipt then; None: unknown

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
            except Exception:
                self._pending_count = None
                log.exception("relayer step failed; retrying")
            self._wake.wait(self.interval)
            # Woken early (a payment was accepted): an interval at least between two steps, so
            # that the payments accepted meanwhile share a batch.
            self._stop.wait(self.interval - (time.monotonic() - started))

    def step(self, woken: bool = True) -> None:
        """Follows the sent batches if a block came out since (asking the node at most once an
        interval while batches are out), then sends what is accepted (when woken). Idle, it
        looks for both once a second: payments another process accepted, batches after a
        restart."""
        now = time.monotonic()
        idle = now - self._looked >= IDLE_LOOK_SECONDS
        if idle:
            self._looked = now
        if (self._following or idle) and now - self._block_checked >= self.interval:
            self._block_checked = now
            block = int(self._rpc("eth_blockNumber"), 16)
            if block != self._block:
                self.follow_sent()
                self._block, self._pending_count = block, None
        if (woken or idle) and self.submit_accepted():
            self._following = True

    # --- steps --------------------------------------------------------------------------------

    def submit_accepted(self) -> int:
        """Sends every accepted payment, one batch transaction per city and batch size."""
        sent = 0
        with self.db.session() as session:
            accepted = session.execute(
                select(*_BATCH_COLUMNS)
                .where(Payment.status == PaymentStatus.ACCEPTED)
                .order_by(Payment.id)
                .limit(self.batch_size * 4)
            ).all()
            by_city: dict[str, list] = defaultdict(list)
            for payment in accepted:
                by_city[payment.city].append(payment)
        for city_code, payments in by_city.items():
            for start in range(0, len(payments), self.batch_size):
                self._send_batch(city_code, payments[start : start + self.batch_size])
                sent += 1
        return sent

    def _send_batch(self, city_code: str, payments: list) -> None:
        try:
            self._record_and_send(city_code, payments)
        except _BatchTaken:
            log.info("another relayer took part of a batch of %s; it is not sent", city_code)

    def _record_and_send(self, city_code: str, payments: list) -> None:
        token = self.deployment.city(city_code).token
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
        data = _BATCH_SELECTOR + encode([_AUTHORIZATIONS], [authorizations])
        with self.db.session() as session:
            record = sign_and_record(
                session,
                self.account,
                pending=self._pending(),
                chain_id=self.deployment.chain_id,
                to=token.address,
                data=data,
                gas=BATCH_BASE_GAS + GAS_PER_AUTHORIZATION * len(payments),
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
        broadcast(self.w3, record.raw_transaction)
        crash_point("after_batch_sent")

    def follow_sent(self) -> None:
        """Closes the payments of every mined batch: included, or failed with the chain's reason.
        A batch that had no receipt at the last look either and that the node does not know is
        sent again, byte for byte (same nonce, same hash): after a restart of the relayer, every
        batch recorded as sent is looked up so."""
        with self.db.session() as session:
            sent = session.scalars(
                select(RelayTransaction).where(
                    RelayTransaction.status == RelayTransactionStatus.SENT
                )
            ).all()
        receipts = self._batch([("eth_getTransactionReceipt", [r.tx_hash]) for r in sent])
        mined = [(r, receipt) for r, receipt in zip(sent, receipts, strict=True) if receipt]
        if mined:
            with self.db.session() as session:
                for record, receipt in mined:
                    self._close(session, record, receipt)
        unmined = set()
        for record, receipt in zip(sent, receipts, strict=True):
            if receipt is None:
                if self._unmined is None or record.tx_hash in self._unmined:
                    self.resend_unknown(record)
                unmined.add(record.tx_hash)
        self._unmined = unmined
        self._following = bool(unmined)

    def resend_unknown(self, record: RelayTransaction) -> None:
        """Sends a recorded batch again if the node does not know it (a restart of the node, a
        transaction dropped from its pool); one it knows is waiting for a block."""
        if self._rpc("eth_getTransactionByHash", record.tx_hash) is None:
            log.warning(
                "relay transaction %s unknown to the node: sending it again", record.tx_hash
            )
            broadcast(self.w3, record.raw_transaction)

    # --- internals ------------------------------------------------------------------------------

    def _pending(self) -> int:
        if self._pending_count is None:
            self._pending_count = int(
                self._rpc("eth_getTransactionCount", self.account.address, "pending"), 16
            )
        return self._pending_count

    def _rpc(self, method: str, *params):
        answer = self.w3.provider.make_request(method, list(params))
        if "error" in answer:
            raise RuntimeError(f"the node refused {method}: {answer['error']}")
        return answer["result"]

    def _batch(self, requests: list[tuple[str, list]]) -> list:
        """The results of one JSON-RPC batch (plain JSON, as the node sends it), in order."""
        if not requests:
            return []
        answers = self.w3.provider.make_batch_request(requests)
        if not isinstance(answers, list):
            raise RuntimeError(f"the node refused a batch of {requests[0][0]}: {answers}")
        for answer in answers:
            if "error" in answer:
                raise RuntimeError(f"the node refused {requests[0][0]}: {answer['error']}")
        return [answer["result"] for answer in answers]

    def _failures(self, receipt: dict) -> dict[tuple[str, str], bytes]:
        """(payer, nonce) -> the revert data, for each AuthorizationFailed event the batch
        emitted."""
        failures = {}
        for entry in receipt["logs"]:
            topics = entry["topics"]
            if entry["address"].lower() == receipt["to"].lower() and topics[:1] == [
                _AUTHORIZATION_FAILED
            ]:
                payer = Web3.to_checksum_address("0x" + topics[1][-40:])
                (reason,) = decode(["bytes"], bytes.fromhex(entry["data"][2:]))
                failures[(payer, topics[2])] = reason
        return failures

    def _paid_elsewhere(self, receipt: dict, payer: str, nonce: str) -> dict | None:
        """The log of the AuthorizationUsed that used (payer, nonce) before this batch, if any."""
        block = int(receipt["blockNumber"], 16)
        logs = self._rpc(
            "eth_getLogs",
            {
                "address": receipt["to"],
                "fromBlock": hex(max(0, block - FRONT_RUN_LOOKBACK_BLOCKS)),
                "toBlock": hex(block),
                "topics": [_AUTHORIZATION_USED, "0x" + payer[2:].lower().rjust(64, "0"), nonce],
            },
        )
        return logs[0] if logs else None

    def _close(self, session: Session, record: RelayTransaction, receipt: dict) -> None:
        of_batch = Payment.relay_transaction_id == record.id
        block_number = int(receipt["blockNumber"], 16)
        if int(receipt["status"], 16) != 1:
            # The whole batch reverted (out of gas, say): nothing moved and no nonce was
            # used, so the payments go back in the queue.
            session.execute(
                update(Payment)
                .where(of_batch)
                .values(status=PaymentStatus.ACCEPTED, relay_transaction_id=None, tx_hash=None)
            )
        else:
            session.execute(
                update(Payment)
                .where(of_batch)
                .values(status=PaymentStatus.INCLUDED, block_number=block_number)
            )
            for (payer, nonce), reason in self._failures(receipt).items():
                of_payment = (of_batch, Payment.payer == payer, Payment.nonce == nonce)
                used = revert_name(self._errors, reason) == "EIP3009AuthorizationUsed"
                paid = self._paid_elsewhere(receipt, payer, nonce) if used else None
                if paid is not None:
                    # The same signed authorization went through in another transaction: the
                    # payment is made, once, there (the nonce names one authorization).
                    session.execute(
                        update(Payment)
                        .where(*of_payment)
                        .values(
                            tx_hash=paid["transactionHash"],
                            block_number=int(paid["blockNumber"], 16),
                        )
                    )
                    continue
                # Any other refusal is final: the token voided an entry its payer signed, so
                # it can never be settled after the till was told it failed.
                session.execute(
                    update(Payment)
                    .where(*of_payment)
                    .values(
                        status=PaymentStatus.FAILED,
                        failure_reason=describe_revert(self._errors, reason),
                    )
                )
        session.execute(
            update(RelayTransaction)
            .where(RelayTransaction.id == record.id)
            .values(status=RelayTransactionStatus.MINED, block_number=block_number)
        )
