"""Payouts the operators ask over HTTP: recorded first (the list and each recipient), run by the
active replica's worker with programs/payout.py, each batch's results stored as it settles. A
restart or a take-over goes on with a running payout where the chain says it stands."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select, update

from citypay.chain.deployment import City, Deployment
from citypay.chain.duties import DutySenders
from citypay.chain.gateway import PlatformContract
from citypay.chain.outbox import Outbox
from citypay.core.errors import Conflict, NotFound, Unprocessable
from citypay.db.session import Database
from citypay.programs.models import PayoutRecipient, PayoutStatus, ProgramPayout
from citypay.programs.payout import (
    Outcome,
    Payout,
    PayoutStopped,
    Recipient,
    RecipientListError,
    read_recipients,
)

# The most recipients one list may hold (10,000 takes 50 batches of 200).
MAX_RECIPIENTS = 100_000


@dataclass(frozen=True)
class ProgramRef:
    contract: PlatformContract
    number: int
    code: str


class PayoutJobs:
    def __init__(
        self, db: Database, deployment: Deployment, outbox: Outbox, duties: DutySenders
    ) -> None:
        self.db, self.deployment, self.outbox, self.duties = db, deployment, outbox, duties

    def program(self, city: City, code: str) -> ProgramRef:
        if city.programs is None:
            raise NotFound("no_money_classes", f"{city.name} runs no money classes")
        raw = code.encode()
        contract = self.deployment.gateway.contract(city.programs.address, "programs")
        number = contract.call("programOfCode", raw.ljust(32, b"\0")) if len(raw) <= 32 else 0
        if number == 0:
            raise NotFound(
                "no_such_program",
                f"{city.name} has no program {code!r}",
                field="code",
                value=code,
                accepted="the code of a program the city created (GET .../programs lists them)",
            )
        return ProgramRef(contract, number, code)

    def submit(self, city: City, code: str, text: str, requested_by: str) -> ProgramPayout:
        """Checks the whole list, then records it: nothing is sent from the request."""
        program = self.program(city, code)
        terms = program.contract.call("program", program.number)
        if terms.closed:
            raise Conflict("program_closed", f"program {code} is closed: it pays no more")
        try:
            recipients = read_recipients(text, max_amount=terms.maxPerRecipient)
        except RecipientListError as refused:
            raise Unprocessable(
                "bad_recipient_list",
                str(refused),
                field="body",
                accepted="text/csv: a header wallet,amount, then one recipient a line",
            ) from None
        if len(recipients) > MAX_RECIPIENTS:
            raise Unprocessable(
                "too_many_recipients",
                f"{len(recipients):,} recipients",
                field="body",
                value=len(recipients),
                accepted=f"at most {MAX_RECIPIENTS:,} a list",
            )
        with self.db.session() as session:
            job = ProgramPayout(
                city=city.code,
                program=program.number,
                code=code,
                status=PayoutStatus.PENDING,
                total=len(recipients),
                settled=0,
                requested_by=requested_by,
            )
            session.add(job)
            session.flush()
            session.add_all(
                PayoutRecipient(
                    payout_id=job.id,
                    line=r.line,
                    wallet=r.wallet,
                    amount=r.amount,
                    status="pending",
                )
                for r in recipients
            )
            session.expunge(job)
        return job

    def get(self, city: City, code: str, payout_id: int) -> ProgramPayout:
        with self.db.session() as session:
            job = session.get(ProgramPayout, payout_id)
            if job is None or job.city != city.code or job.code != code:
                raise NotFound(
                    "no_such_payout",
                    f"no payout {payout_id} of program {code} in {city.name}",
                    field="payout",
                    value=payout_id,
                )
            session.expunge(job)
            return job

    def results(self, payout_id: int) -> list[PayoutRecipient]:
        with self.db.session() as session:
            rows = session.scalars(
                select(PayoutRecipient)
                .where(PayoutRecipient.payout_id == payout_id)
                .order_by(PayoutRecipient.line)
            ).all()
            for row in rows:
                session.expunge(row)
            return list(rows)

    def counts(self, payout_id: int) -> dict[str, int]:
        counted = {"paid": 0, "already_paid": 0, "refused": 0, "pending": 0}
        for row in self.results(payout_id):
            counted[row.status] = counted.get(row.status, 0) + 1
        return counted

    # --- the worker ------------------------------------------------------------------------------

    def run_pending(self) -> None:
        """One round: the oldest payout not done, run to its end (or to a stop)."""
        with self.db.session() as session:
            job = session.scalars(
                select(ProgramPayout)
                .where(
                    ProgramPayout.status.in_([PayoutStatus.PENDING, PayoutStatus.RUNNING]),
                    ProgramPayout.city.in_(list(self.deployment.cities)),
                )
                .order_by(ProgramPayout.id)
                .limit(1)
            ).first()
            if job is None:
                return
            job.status = PayoutStatus.RUNNING
            session.flush()
            session.expunge(job)
        city = self.deployment.city(job.city)
        rows = self.results(job.id)
        recipients = [Recipient(r.line, r.wallet, r.amount) for r in rows]
        sender = self.duties.sender("program_payer", city.roles["program_payer"])
        program = self.program(city, job.code)
        payout = Payout(self.outbox, sender, program.contract, program.number, city=city.code)
        try:
            payout.run(recipients, lambda done: self._record(job.id, done))
        except PayoutStopped as stopped:
            self._finish(job.id, PayoutStatus.STOPPED, str(stopped))
            return
        self._finish(job.id, PayoutStatus.DONE, None)

    def _record(self, payout_id: int, outcomes: list[Outcome]) -> None:
        with self.db.session() as session:
            for o in outcomes:
                session.execute(
                    update(PayoutRecipient)
                    .where(
                        PayoutRecipient.payout_id == payout_id, PayoutRecipient.wallet == o.wallet
                    )
                    .values(
                        status=o.status,
                        reason=o.reason or None,
                        tx_hash=o.tx_hash or None,
                        block_number=o.block,
                    )
                )
            settled = sum(
                1
                for status in session.scalars(
                    select(PayoutRecipient.status).where(PayoutRecipient.payout_id == payout_id)
                )
                if status != "pending"
            )
            session.execute(
                update(ProgramPayout).where(ProgramPayout.id == payout_id).values(settled=settled)
            )

    def _finish(self, payout_id: int, status: PayoutStatus, error: str | None) -> None:
        with self.db.session() as session:
            session.execute(
                update(ProgramPayout)
                .where(ProgramPayout.id == payout_id)
                .values(status=status, error=error)
            )
