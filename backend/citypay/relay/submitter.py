"""The relayer: sends accepted payments in batches and follows them to inclusion.

Exactly once, across crashes: a batch transaction is signed, then recorded with its nonce and raw
bytes and its payments marked submitted in one database transaction, and only then sent. After a
restart, a recorded transaction is looked up by hash; if the node has never seen it, the same
signed bytes are sent again. Nonces come from the higher of the relayer's own record and the
chain's pending count, so no nonce is used twice and none is skipped.
"""

from __future__ import annotations

import logging
import threading
from collections import defaultdict

from eth_abi import decode
from eth_account.signers.local import LocalAccount
from eth_utils import function_signature_to_4byte_selector
from sqlalchemy import func, select, update
from web3 import Web3
from web3.exceptions import TransactionNotFound
from web3.logs import DISCARD

from citypay.chain.deployment import Deployment
from citypay.db.models import Payment, PaymentStatus, RelayTransaction, RelayTransactionStatus
from citypay.db.session import Database

log = logging.getLogger(__name__)

# Gas a batch may use: the batch's own overhead plus a generous bound per authorization (about
# 50,000 is typical). Gas price is zero on the city's chain.
BATCH_BASE_GAS = 150_000
GAS_PER_AUTHORIZATION = 120_000


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
            try:
                self.resend_unknown()
                self.follow_sent()
                self.submit_accepted()
            except Exception:
                log.exception("relayer step failed; retrying")
            self._wake.wait(self.interval)
            self._wake.clear()

    # --- steps --------------------------------------------------------------------------------

    def submit_accepted(self) -> int:
        """Sends every accepted payment, one batch transaction per city and batch size."""
        sent = 0
        with self.db.session() as session:
            accepted = session.scalars(
                select(Payment)
                .where(Payment.status == PaymentStatus.ACCEPTED)
                .order_by(Payment.id)
                .limit(self.batch_size * 4)
            ).all()
            by_city: dict[str, list[Payment]] = defaultdict(list)
            for payment in accepted:
                by_city[payment.city].append(payment)
        for city_code, payments in by_city.items():
            for start in range(0, len(payments), self.batch_size):
                self._send_batch(city_code, payments[start : start + self.batch_size])
                sent += 1
        return sent

    def _send_batch(self, city_code: str, payments: list[Payment]) -> None:
        try:
            self._record_and_send(city_code, payments)
        except _BatchTaken:
            log.info("another relayer took part of a batch of %s; it is not sent", city_code)

    def _record_and_send(self, city_code: str, payments: list[Payment]) -> None:
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
        with self.db.session() as session:
            nonce = self._next_nonce(session)
            transaction = token.functions.transferWithAuthorizationBatch(
                authorizations
            ).build_transaction(
                {
                    "from": self.account.address,
                    "nonce": nonce,
                    "gas": BATCH_BASE_GAS + GAS_PER_AUTHORIZATION * len(payments),
                    "gasPrice": 0,
                    "chainId": self.deployment.chain_id,
                }
            )
            signed = self.account.sign_transaction(transaction)
            record = RelayTransaction(
                sender=self.account.address,
                nonce=nonce,
                tx_hash="0x" + signed.hash.hex(),
                raw_transaction="0x" + signed.raw_transaction.hex(),
                status=RelayTransactionStatus.SENT,
            )
            session.add(record)
            session.flush()
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
        self._broadcast(record.raw_transaction)

    def follow_sent(self) -> None:
        """Closes the payments of every mined batch: included, or failed with the chain's reason."""
        with self.db.session() as session:
            sent = session.scalars(
                select(RelayTransaction).where(
                    RelayTransaction.status == RelayTransactionStatus.SENT
                )
            ).all()
        for record in sent:
            try:
                receipt = self.w3.eth.get_transaction_receipt(record.tx_hash)
            except TransactionNotFound:
                continue
            self._close(record, receipt)

    def resend_unknown(self) -> None:
        """After a restart or a node restart: a recorded transaction the node does not know is
        sent again, byte for byte (same nonce, same hash)."""
        with self.db.session() as session:
            sent = session.scalars(
                select(RelayTransaction).where(
                    RelayTransaction.status == RelayTransactionStatus.SENT
                )
            ).all()
        for record in sent:
            try:
                self.w3.eth.get_transaction(record.tx_hash)
            except TransactionNotFound:
                log.warning(
                    "relay transaction %s unknown to the node: sending it again", record.tx_hash
                )
                self._broadcast(record.raw_transaction)

    # --- internals ------------------------------------------------------------------------------

    def _next_nonce(self, session) -> int:
        recorded = session.scalar(
            select(func.max(RelayTransaction.nonce)).where(
                RelayTransaction.sender == self.account.address
            )
        )
        pending = self.w3.eth.get_transaction_count(self.account.address, "pending")
        return max(pending, -1 if recorded is None else recorded + 1)

    def _broadcast(self, raw: str) -> None:
        try:
            self.w3.eth.send_raw_transaction(raw)
        except ValueError as refused:
            # Already in the pool or mined: the record is followed by hash either way.
            message = str(refused).lower()
            if (
                "already" not in message
                and "nonce too low" not in message
                and "known" not in message
            ):
                raise

    def _close(self, record: RelayTransaction, receipt) -> None:
        token_addresses = {
            city.token.address.lower(): city for city in self.deployment.cities.values()
        }
        failures: dict[tuple[str, str], str] = {}
        if receipt["status"] == 1:
            city = token_addresses.get(receipt["to"].lower())
            for event in city.token.events.AuthorizationFailed().process_receipt(
                receipt, errors=DISCARD
            ):
                args = event["args"]
                failures[(args["authorizer"], "0x" + args["nonce"].hex())] = describe_revert(
                    self._errors, args["reason"]
                )
        with self.db.session() as session:
            payments = session.scalars(
                select(Payment).where(Payment.relay_transaction_id == record.id)
            ).all()
            for payment in payments:
                if receipt["status"] != 1:
                    # The whole batch reverted (out of gas, say): nothing moved and no nonce was
                    # used, so the payments go back in the queue.
                    payment.status = PaymentStatus.ACCEPTED
                    payment.relay_transaction_id = None
                    payment.tx_hash = None
                    continue
                reason = failures.get((payment.payer, payment.nonce))
                payment.block_number = receipt["blockNumber"]
                if reason is None:
                    payment.status = PaymentStatus.INCLUDED
                else:
                    payment.status = PaymentStatus.FAILED
                    payment.failure_reason = reason
            stored = session.get(RelayTransaction, record.id)
            stored.status = RelayTransactionStatus.MINED
            stored.block_number = receipt["blockNumber"]
