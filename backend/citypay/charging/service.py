"""Charging: a deposit is recorded first, then issued on chain, exactly once.

Exactly once rests on the chain: the treasury mints a deposit reference once. So the record is
committed before anything is sent (a crash leaves a pending deposit that the worker finishes), and
every attempt first asks the treasury whether the reference was already issued; if it was, the
Issued event says how, and the record is completed from it instead of sending again. The issue
transaction goes through the outbox (chain/outbox.py) tied to its deposit: if the node loses its
block, the deposit is pending again until the same bytes are mined again.
"""

from __future__ import annotations

import logging
import threading

from eth_abi import encode
from eth_utils import keccak
from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from citypay.auth.credentials import Principal
from citypay.chain.codec import codec_of
from citypay.chain.deployment import City, Deployment
from citypay.chain.duties import DutySenders
from citypay.chain.enums import AccountKind
from citypay.chain.events import decode_log
from citypay.chain.gateway import ChainRefused
from citypay.chain.outbox import ChainTransaction, Outbox, OutboxStatus
from citypay.charging.models import Deposit, DepositStatus
from citypay.charging.notifications import DepositNotice
from citypay.core.config import Settings
from citypay.core.errors import Conflict, Unprocessable
from citypay.core.worker import Worker
from citypay.db.session import Database

log = logging.getLogger(__name__)

PURPOSE = "issue"
_ISSUED = codec_of("treasury").topic("Issued")


def deposit_reference(bank: str, deposit_id: str) -> bytes:
    """keccak256(abi.encode(bank, depositId)): one deposit of one bank is one reference, and an
    auditor can recompute it in Solidity; abi.encode keeps ("ab","c") apart from ("a","bc")."""
    return keccak(encode(["string", "string"], [bank, deposit_id]))


class ChargingService:
    def __init__(
        self,
        db: Database,
        deployment: Deployment,
        settings: Settings,
        outbox: Outbox,
        duties: DutySenders,
    ) -> None:
        self.db = db
        self.deployment = deployment
        self.settings = settings
        self.outbox = outbox
        self._duties = duties
        outbox.on(PURPOSE, mined=self._mined, unmined=self._unmined)
        # Check-then-send must not interleave within a process; across replicas the chain refuses
        # the second issue of a reference and the record is completed from the first.
        self._lock = threading.Lock()
        self.worker = Worker("charging", self.issue_pending, settings.CHARGING_RETRY_INTERVAL)

    # --- the notification --------------------------------------------------------------------

    def charge(self, city: City, bank: Principal, notice: DepositNotice) -> Deposit:
        """Records the deposit and tries to issue it now; a deposit the chain could not be reached
        for stays pending for the worker."""
        deposit = self.record(city, bank, notice)
        if deposit.status is not DepositStatus.PENDING:
            return deposit
        try:
            return self.issue(deposit.id)
        except Exception:  # the node is down or slow: the record is safe, the worker retries
            log.exception(
                "deposit %s stays pending",
                deposit.reference,
                extra={"city": deposit.city, "deposit_reference": deposit.reference},
            )
            return deposit

    def record(self, city: City, bank: Principal, notice: DepositNotice) -> Deposit:
        """The deposit under the bank's id: the existing one if the bank sent it before (a retry
        or a replay), 409 if that one says something else."""
        existing = self._find(bank.name, notice.depositId)
        if existing is not None:
            return _same_deposit(existing, city, notice)
        if city.chain.token.call("accountKind", notice.resident) is not AccountKind.RESIDENT:
            raise Unprocessable(
                "unknown_resident",
                f"{notice.resident} is not a registered resident of {city.code}",
                field="resident",
                value=notice.resident,
                accepted=f"the wallet of a resident registered in {city.code}",
            )
        reference = "0x" + deposit_reference(bank.name, notice.depositId).hex()
        try:
            with self.db.session() as session:
                deposit = Deposit(
                    city=city.code,
                    bank=bank.name,
                    deposit_id=notice.depositId,
                    resident=notice.resident,
                    amount=notice.amount,
                    reference=reference,
                    status=DepositStatus.PENDING,
                )
                session.add(deposit)
            return deposit
        except IntegrityError:  # the same deposit posted concurrently: the first one stands
            return _same_deposit(self._find(bank.name, notice.depositId), city, notice)

    def _find(self, bank: str, deposit_id: str) -> Deposit | None:
        with self.db.session() as session:
            return session.scalar(
                select(Deposit).where(Deposit.bank == bank, Deposit.deposit_id == deposit_id)
            )

    # --- issuance ----------------------------------------------------------------------------

    def issue(self, deposit_pk: int) -> Deposit:
        """Issues a pending deposit, or completes its record from the chain if it was issued;
        one whose transaction is out waits for the outbox."""
        with self._lock:
            with self.db.session() as session:
                deposit = session.get(Deposit, deposit_pk)
                in_flight = deposit.transaction_id is not None and (
                    session.get(ChainTransaction, deposit.transaction_id).status
                    is OutboxStatus.SENT
                )
            if deposit.status is not DepositStatus.PENDING or in_flight:
                return deposit
            city = self.deployment.city(deposit.city)
            treasury = city.chain.treasury
            reference = bytes.fromhex(deposit.reference[2:])
            if not treasury.call("depositIssued", reference):
                issuer = self._duties.sender("issuer", city.roles["issuers"][0])
                args = (deposit.resident, deposit.amount, reference)
                try:
                    issuer.send(treasury, "issue", *args, purpose=PURPOSE, attach=_tie(deposit_pk))
                except ChainRefused as refusal:
                    return self._refused(deposit_pk, refusal.reason)
                with self.db.session() as session:
                    return session.get(Deposit, deposit_pk)
            # Issued before this attempt: by a process that crashed before recording it, or by
            # another replica.
            return self._complete(deposit_pk, self._issuance_of(city, reference))

    # --- what the outbox tells of an issue transaction -------------------------------------------

    def _mined(self, session: Session, record: ChainTransaction, receipt: dict) -> None:
        deposit = session.scalar(select(Deposit).where(Deposit.transaction_id == record.id))
        if deposit is None:
            return
        issued = [log for log in receipt["logs"] if log["topics"][:1] == [_ISSUED]]
        if record.succeeded and issued:
            _record_issuance(deposit, issued[0])
            return
        # Reverted in its block (another replica issued the reference first, the limit was
        # reached meanwhile): the next round completes it from the chain or says why.
        deposit.transaction_id = None

    def _unmined(self, session: Session, record: ChainTransaction) -> None:
        """The block is gone: the deposit is pending until the same bytes are mined again."""
        session.execute(
            update(Deposit)
            .where(Deposit.transaction_id == record.id)
            .values(status=DepositStatus.PENDING, block_number=None, incentive=None)
        )

    def _complete(self, deposit_pk: int, issued: dict) -> Deposit:
        with self.db.session() as session:
            deposit = session.get(Deposit, deposit_pk)
            _record_issuance(deposit, issued)
        return deposit

    def _issuance_of(self, city: City, reference: bytes) -> dict:
        """The Issued log of a reference the treasury says it issued. The reference is an indexed
        topic, so the node answers from its log index rather than by scanning every block."""
        logs = city.chain.treasury.logs(
            "Issued", None, reference, from_block=city.deployed_at["treasury"]
        )
        if not logs:
            raise RuntimeError(
                f"deposit 0x{reference.hex()} is issued but its Issued log is missing"
            )
        return logs[0]

    def _refused(self, deposit_pk: int, reason: str) -> Deposit:
        with self.db.session() as session:
            deposit = session.get(Deposit, deposit_pk)
            deposit.status = DepositStatus.REFUSED
            deposit.refusal = reason
        log.warning(
            "deposit %s refused: %s",
            deposit.reference,
            reason,
            extra={"city": deposit.city, "deposit_reference": deposit.reference},
        )
        return deposit

    # --- reads -------------------------------------------------------------------------------

    def deposits(
        self, city: str, status: DepositStatus | None, limit: int, *, bank: str | None = None
    ) -> list[Deposit]:
        query = select(Deposit).where(Deposit.city == city)
        if bank is not None:
            query = query.where(Deposit.bank == bank)
        if status is not None:
            query = query.where(Deposit.status == status)
        with self.db.session() as session:
            return list(session.scalars(query.order_by(Deposit.id).limit(limit)))

    # --- the worker: pending deposits, at start-up and then every CHARGING_RETRY_INTERVAL -----

    def issue_pending(self) -> None:
        with self.db.session() as session:
            pending = session.scalars(
                select(Deposit.id).where(Deposit.status == DepositStatus.PENDING)
            ).all()
        for deposit_pk in pending:
            if self.worker.stopping:
                return
            try:
                self.issue(deposit_pk)
            except Exception:  # one deposit's trouble must not stop the others
                log.exception(
                    "deposit %s: issuance failed, retrying later",
                    deposit_pk,
                    extra={"deposit_id": deposit_pk},
                )


def _same_deposit(existing: Deposit, city: City, notice: DepositNotice) -> Deposit:
    for field, recorded, posted in (
        ("city", existing.city, city.code),
        ("resident", existing.resident, notice.resident),
        ("amount", existing.amount, notice.amount),
    ):
        if recorded != posted:
            raise Conflict(
                "deposit_id_reused",
                f"deposit {existing.deposit_id} was notified with {field} {recorded}, not {posted}",
                field=field,
                value=posted,
                accepted=f"{recorded}: a new deposit needs a new depositId",
            )
    return existing


def _tie(deposit_pk: int):
    """Ties the deposit to its issue transaction, in the transaction that records it."""

    def attach(session: Session, record: ChainTransaction) -> None:
        session.get(Deposit, deposit_pk).transaction_id = record.id

    return attach


def _record_issuance(deposit: Deposit, issued: dict) -> None:
    """The deposit as its Issued log (raw, from a receipt or eth_getLogs) tells it."""
    event = decode_log(issued, deposit.city, "treasury", 0)
    deposit.status = DepositStatus.ISSUED
    deposit.incentive = event.args["incentive"]
    deposit.tx_hash = event.tx_hash
    deposit.block_number = event.block_number
    log.info(
        "deposit %s issued in block %s",
        deposit.reference,
        deposit.block_number,
        extra={
            "city": deposit.city,
            "deposit_reference": deposit.reference,
            "amount": deposit.amount,
            "tx_hash": deposit.tx_hash,
            "block": deposit.block_number,
        },
    )
