"""Cash-out (환전): a signed-in merchant's request is checked and recorded; a worker thread then
takes it through flow.py. The worker also finishes, at start-up and every
CASHOUT_RETRY_INTERVAL seconds, every cash-out that a crash or an unreachable bank left halfway.
"""

from __future__ import annotations

import logging
import threading

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from citypay.bank.adapter import BankAdapter
from citypay.cashout.checks import CashOutRequest, check_request, simulate, treasury_domain
from citypay.cashout.flow import CashOutFlow
from citypay.cashout.models import FINAL, CashOut, CashOutStatus
from citypay.chain.deployment import City, Deployment
from citypay.chain.duties import DutySenders
from citypay.chain.outbox import Outbox
from citypay.core.config import Settings
from citypay.core.errors import Conflict, NotFound
from citypay.core.validity import Validity
from citypay.core.worker import Worker
from citypay.db.session import Database

log = logging.getLogger(__name__)


class CashOutService:
    def __init__(
        self,
        db: Database,
        deployment: Deployment,
        settings: Settings,
        bank: BankAdapter,
        outbox: Outbox,
        duties: DutySenders,
    ) -> None:
        self.db = db
        self.deployment = deployment
        self.settings = settings
        self._duties = duties
        self.flow = CashOutFlow(db, deployment, bank, outbox, duties)
        # One cash-out advances at a time in a process; across replicas flow.py's idempotent
        # steps keep it exactly once.
        self._lock = threading.Lock()
        self.worker = Worker("cash-out", self.finish_unfinished, settings.CASHOUT_RETRY_INTERVAL)

    # --- the request -------------------------------------------------------------------------

    def request(self, city: City, request: CashOutRequest) -> tuple[CashOut, bool]:
        """(the recorded cash-out, whether it is new): new after the checks, or the one this
        nonce made before."""
        existing = self._find(city.code, request.merchant, request.nonce)
        if existing is not None:
            return _same_request(existing, request), False
        now = self.deployment.gateway.timestamp()
        check_request(
            city,
            treasury_domain(city),
            request,
            now=now,
            validity=Validity.of(self.settings),
        )
        simulate(city, self._duties.sender("settler", city.roles["settler"]), request)
        try:
            with self.db.session() as session:
                terms = request.terms
                cash_out = CashOut(
                    city=city.code,
                    merchant=terms.merchant,
                    amount=terms.amount,
                    payout_account="0x" + terms.payout_account_hash.hex(),
                    valid_after=terms.valid_after,
                    valid_before=terms.valid_before,
                    nonce="0x" + terms.nonce.hex(),
                    signature="0x" + request.signature.hex(),
                    status=CashOutStatus.REQUESTED,
                )
                session.add(cash_out)
        except IntegrityError:  # the same request posted concurrently: the first one stands
            existing = self._find(city.code, request.merchant, request.nonce)
            return _same_request(existing, request), False
        self.worker.wake()
        return cash_out, True

    def _find(self, city: str, merchant: str, nonce: bytes) -> CashOut | None:
        with self.db.session() as session:
            return session.scalar(
                select(CashOut).where(
                    CashOut.city == city,
                    CashOut.merchant == merchant,
                    CashOut.nonce == "0x" + nonce.hex(),
                )
            )

    # --- reads -------------------------------------------------------------------------------

    def get(self, city: str, merchant: str, cash_out_id: int) -> CashOut:
        with self.db.session() as session:
            found = session.get(CashOut, cash_out_id)
        if found is None or (found.city, found.merchant) != (city, merchant):
            raise NotFound(
                "unknown_cash_out",
                f"merchant {merchant} of {city} has no cash-out {cash_out_id}",
                field="id",
                value=cash_out_id,
                accepted="an id from this merchant's cash-out list",
            )
        return found

    def list(self, city: str, merchant: str, limit: int) -> list[CashOut]:
        query = select(CashOut).where(CashOut.city == city, CashOut.merchant == merchant)
        with self.db.session() as session:
            return list(session.scalars(query.order_by(CashOut.id.desc()).limit(limit)))

    # --- the worker --------------------------------------------------------------------------

    def advance(self, cash_out_id: int) -> CashOut:
        """Takes the cash-out as far as it can go now."""
        with self._lock:
            with self.db.session() as session:
                cash_out = session.get(CashOut, cash_out_id)
            while cash_out.status not in FINAL:
                advanced = self.flow.step(cash_out)
                if advanced is None:
                    break  # the bank gave no answer: the next round asks it again
                cash_out = advanced
            return cash_out

    def finish_unfinished(self) -> None:
        with self.db.session() as session:
            unfinished = session.scalars(
                select(CashOut.id).where(CashOut.status.not_in(FINAL)).order_by(CashOut.id)
            ).all()
        for cash_out_id in unfinished:
            if self.worker.stopping:
                return
            try:
                self.advance(cash_out_id)
            except Exception:  # one cash-out's trouble must not stop the others
                log.exception(
                    "cash-out %s: retrying later", cash_out_id, extra={"cash_out_id": cash_out_id}
                )


def _same_request(existing: CashOut, request: CashOutRequest) -> CashOut:
    terms = request.terms
    for field, recorded, posted in (
        ("amount", existing.amount, terms.amount),
        ("payoutAccountHash", existing.payout_account, "0x" + terms.payout_account_hash.hex()),
        ("validAfter", existing.valid_after, terms.valid_after),
        ("validBefore", existing.valid_before, terms.valid_before),
        ("signature", existing.signature, "0x" + request.signature.hex()),
    ):
        if recorded != posted:
            raise Conflict(
                "nonce_reused",
                f"nonce {existing.nonce} was posted with {field} {recorded}, not {posted}",
                field=field,
                value=posted,
                accepted=f"{recorded}: a new cash-out needs a new nonce",
            )
    return existing
