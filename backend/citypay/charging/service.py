"""Charging: a deposit is recorded first, then issued on chain, exactly once.

Exactly once rests on the chain: the treasury mints a deposit reference once. So the record is
committed before anything is sent (a crash leaves a pending deposit that the worker finishes), and
every attempt first asks the treasury whether the reference was already issued; if it was, the
Issued event says how, and the record is completed from it instead of sending again.
"""

from __future__ import annotations

import logging
import threading

from eth_abi import encode
from eth_utils import keccak
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from web3.logs import DISCARD

from citypay.auth.credentials import Principal
from citypay.chain.deployment import City, Deployment
from citypay.chain.duty_sender import ChainRefusal, DutySender
from citypay.chain.keys import signer_for
from citypay.charging.models import Deposit, DepositStatus
from citypay.charging.notifications import DepositNotice
from citypay.core.config import Settings
from citypay.core.errors import Conflict, Unprocessable
from citypay.core.worker import Worker
from citypay.db.session import Database

log = logging.getLogger(__name__)

RESIDENT = 1  # ICityToken.AccountKind.Resident


def deposit_reference(bank: str, deposit_id: str) -> bytes:
    """keccak256(abi.encode(bank, depositId)): one deposit of one bank is one reference, and an
    auditor can recompute it in Solidity; abi.encode keeps ("ab","c") apart from ("a","bc")."""
    return keccak(encode(["string", "string"], [bank, deposit_id]))


class ChargingService:
    def __init__(self, db: Database, deployment: Deployment, settings: Settings) -> None:
        self.db = db
        self.deployment = deployment
        self.settings = settings
        # One sender per issuer address (cities may share an issuer): its nonces stay in order.
        self._senders: dict[str, DutySender] = {}
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
        if city.token.functions.accountKind(notice.resident).call() != RESIDENT:
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
        """Issues a pending deposit, or completes its record from the chain if it was issued."""
        with self._lock:
            with self.db.session() as session:
                deposit = session.get(Deposit, deposit_pk)
            if deposit.status is not DepositStatus.PENDING:
                return deposit
            city = self.deployment.city(deposit.city)
            reference = bytes.fromhex(deposit.reference[2:])
            sender = self._sender(city)
            call = city.treasury.functions.issue(deposit.resident, deposit.amount, reference)
            try:
                if not city.treasury.functions.depositIssued(reference).call():
                    receipt = sender.send(call)
                    return self._issued(deposit_pk, _issued_events(city, receipt)[0])
            except ChainRefusal:
                if not city.treasury.functions.depositIssued(reference).call():
                    # Simulated again for the contract's own error: a transaction that reverted
                    # in its block says only that. If it now passes, the refusal was a race
                    # (raised: the deposit stays pending and is retried).
                    try:
                        sender.simulate(call)
                    except ChainRefusal as refusal:
                        return self._refused(deposit_pk, refusal.reason)
                    raise
            # Issued before this attempt: by a process that crashed before recording it, or by
            # another replica.
            return self._issued(deposit_pk, _issuance_of(city, reference))

    def _issued(self, deposit_pk: int, event) -> Deposit:
        with self.db.session() as session:
            deposit = session.get(Deposit, deposit_pk)
            deposit.status = DepositStatus.ISSUED
            deposit.incentive = event["args"]["incentive"]
            deposit.tx_hash = "0x" + bytes(event["transactionHash"]).hex()
            deposit.block_number = event["blockNumber"]
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
        return deposit

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

    def _sender(self, city: City) -> DutySender:
        address = city.roles["issuers"][0]  # the manifest's issuer, holding an allowance
        if address not in self._senders:
            account = signer_for(
                "issuer", self.settings.ISSUER_PRIVATE_KEY, address, self.deployment.chain_id
            )
            abis = [city.treasury.abi, city.token.abi, city.registry.abi]
            self._senders[address] = DutySender(
                self.deployment.w3, account, self.deployment.chain_id, abis
            )
        return self._senders[address]

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


def _issued_events(city: City, receipt) -> list:
    return city.treasury.events.Issued().process_receipt(receipt, errors=DISCARD)


def _issuance_of(city: City, reference: bytes):
    """The Issued event of a reference the treasury says it issued. The reference is an indexed
    topic, so the node answers from its log index rather than by scanning every block."""
    events = city.treasury.events.Issued().get_logs(
        argument_filters={"depositReference": reference}, from_block=0
    )
    if not events:
        raise RuntimeError(f"deposit {reference.hex()} is issued but its Issued event is missing")
    return events[0]
