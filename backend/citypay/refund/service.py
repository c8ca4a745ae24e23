"""Refunds (환불) a merchant signed: checked and recorded once in the request, then sent and
followed by a worker thread (sender.py), which also picks up, at start-up, what a restart left
submitted or accepted."""

from __future__ import annotations

from collections.abc import Callable

from eth_account.signers.local import LocalAccount
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from citypay.authorization import SignedRefund, TokenDomain
from citypay.chain.deployment import City, Deployment
from citypay.chain.outbox import Outbox
from citypay.chain.relayed import IDLE_ROUND_SECONDS, RelayStatus
from citypay.core.config import Settings
from citypay.core.errors import NotFound
from citypay.core.validity import Validity
from citypay.core.worker import Worker
from citypay.db.locks import lock_key, locked_session
from citypay.db.session import Database
from citypay.refund.checks import (
    chain_refusal,
    in_flight_refusal,
    message_refusal,
    the_same,
)
from citypay.refund.models import Refund
from citypay.refund.sender import refund_sender


class RefundService:
    def __init__(
        self,
        db: Database,
        deployment: Deployment,
        settings: Settings,
        outbox: Outbox,
        *,
        domain: Callable[[str], TokenDomain],
        relayers: dict[str, LocalAccount],
    ) -> None:
        self.db = db
        self.deployment = deployment
        self.settings = settings
        self._domain = domain  # city code -> the token's EIP-712 domain
        self.relayers = relayers  # by city code: each city's refunds from its own relayer
        self.sender = refund_sender(db, deployment, outbox, relayers)
        self.worker = Worker("refunds", self.sender.round, IDLE_ROUND_SECONDS)

    # --- the request -------------------------------------------------------------------------

    def request(self, city: City, refund: SignedRefund) -> tuple[Refund, bool]:
        """(the recorded refund, whether it is new): new once every check passed, or the one
        this merchant's nonce made before."""
        existing = self._find(city.code, refund)
        if existing is not None:
            return the_same(existing, refund), False
        now = self.deployment.gateway.timestamp()
        for refusal in (
            message_refusal(
                self._domain(city.code),
                refund,
                now=now,
                validity=Validity.of(self.settings),
            ),
            chain_refusal(city, self.relayers[city.code], refund),
        ):
            if refusal is not None:
                raise refusal
        refundable = city.chain.token.call(
            "refundableAmount", refund.payer, refund.merchant, refund.payment_id
        )
        try:
            # What is left to refund of the payment, read and spent under its lock: two refunds
            # of one payment at once, on any replicas, cannot both take the same amount.
            payment = lock_key("refund", city.code, refund.payer, refund.payment_id.hex())
            with locked_session(self.db, [payment]) as session:
                refusal = in_flight_refusal(session, city, refund, refundable)
                if refusal is not None:
                    raise refusal
                recorded = Refund(
                    city=city.code,
                    merchant=refund.merchant,
                    payer=refund.payer,
                    payment_id="0x" + refund.payment_id.hex(),
                    nonce="0x" + refund.nonce.hex(),
                    value=refund.value,
                    valid_after=refund.valid_after,
                    valid_before=refund.valid_before,
                    v=refund.v,
                    r="0x" + refund.r.hex(),
                    s="0x" + refund.s.hex(),
                    status=RelayStatus.ACCEPTED,
                )
                session.add(recorded)
        except IntegrityError:  # the same refund posted at the same time: the first one stands
            return the_same(self._find(city.code, refund), refund), False
        self.worker.wake()
        return recorded, True

    def _find(self, city: str, refund: SignedRefund) -> Refund | None:
        with self.db.session() as session:
            return session.scalar(
                select(Refund).where(
                    Refund.city == city,
                    Refund.merchant == refund.merchant,
                    Refund.nonce == "0x" + refund.nonce.hex(),
                )
            )

    def get(self, city: str, refund_id: int) -> Refund:
        with self.db.session() as session:
            found = session.get(Refund, refund_id)
        if found is None or found.city != city:
            raise NotFound(
                "unknown_refund",
                f"{city} has no refund {refund_id}",
                field="id",
                value=refund_id,
                accepted="the id the refund's POST answered with",
            )
        return found
