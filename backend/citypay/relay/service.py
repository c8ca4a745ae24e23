"""Accepting payments: checked, then recorded once; relay/submitter.py sends them."""

from __future__ import annotations

import time
from functools import cache

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from citypay.authorization import SignedAuthorization, TokenDomain
from citypay.chain.deployment import City, Deployment
from citypay.core.config import Settings
from citypay.core.errors import ApiError, Conflict, NotFound
from citypay.db.models import Invoice, Payment, PaymentStatus, aware, utcnow
from citypay.db.session import Database
from citypay.relay.checks import check_authorization, refuse_mismatch


def _hex(value: bytes) -> str:
    return "0x" + value.hex()


class PaymentService:
    def __init__(self, db: Database, deployment: Deployment, settings: Settings) -> None:
        self.db = db
        self.deployment = deployment
        self.settings = settings

    @cache  # noqa: B019 - one service per app; a city's domain never changes
    def domain(self, city_code: str) -> TokenDomain:
        city = self.deployment.city(city_code)
        return TokenDomain(
            name=city.token.functions.name().call(),
            version=city.token.functions.version().call(),
            chain_id=self.deployment.chain_id,
            verifying_contract=city.token.address,
        )

    def accept(self, city: City, authorization: SignedAuthorization) -> tuple[Payment, bool]:
        """Records a payment to relay. Returns (payment, created): the same authorization posted
        again returns the payment it already is."""
        nonce = _hex(authorization.nonce)
        with self.db.session() as session:
            existing = self._find(session, city.code, authorization.from_, nonce)
            if existing is not None:
                return self._same_or_refuse(existing, authorization), False
            check_authorization(
                session,
                city,
                self.domain(city.code),
                authorization,
                now=int(time.time()),
                min_validity=self.settings.RELAY_MIN_VALIDITY,
            )
            invoice = session.get(Invoice, nonce)
            if invoice is not None:
                _check_invoice(invoice, city, authorization)
                if session.scalar(select(Payment.id).where(Payment.invoice_id == invoice.id)):
                    raise Conflict(
                        "invoice_paid",
                        f"invoice {invoice.id} is already paid by another payer",
                        field="nonce",
                        value=nonce,
                        accepted="an invoice that is not paid yet",
                    )
            payment = Payment(
                city=city.code,
                payer=authorization.from_,
                merchant=authorization.to,
                value=authorization.value,
                valid_after=authorization.valid_after,
                valid_before=authorization.valid_before,
                nonce=nonce,
                v=authorization.v,
                r=_hex(authorization.r),
                s=_hex(authorization.s),
                invoice_id=invoice.id if invoice else None,
                status=PaymentStatus.ACCEPTED,
            )
            session.add(payment)
        return payment, True

    def accept_once(self, city: City, authorization: SignedAuthorization) -> tuple[Payment, bool]:
        """accept(), settling a race between two posts of the same authorization: the database's
        unique (city, payer, nonce) lets one insert through; the other returns that payment."""
        try:
            return self.accept(city, authorization)
        except IntegrityError:
            with self.db.session() as session:
                existing = self._find(
                    session, city.code, authorization.from_, _hex(authorization.nonce)
                )
                if existing is None:
                    # Another payer's payment took the invoice between the check and the insert.
                    raise Conflict(
                        "invoice_paid",
                        "the invoice this nonce names was paid by another payer meanwhile",
                        field="nonce",
                        value=_hex(authorization.nonce),
                        accepted="an invoice that is not paid yet",
                    ) from None
                return self._same_or_refuse(existing, authorization), False

    def get(self, payment_id: int) -> Payment:
        with self.db.session() as session:
            payment = session.get(Payment, payment_id)
            if payment is None:
                raise NotFound(
                    "unknown_payment", f"no payment {payment_id}", field="id", value=payment_id
                )
            return payment

    def find(self, city: City, payer: str, nonce: str) -> Payment:
        with self.db.session() as session:
            payment = self._find(session, city.code, payer, nonce.lower())
        if payment is None:
            raise NotFound(
                "unknown_payment",
                f"no payment by {payer} with nonce {nonce} in {city.name}",
                field="nonce",
                value=nonce,
            )
        return payment

    @staticmethod
    def _find(session, city: str, payer: str, nonce: str) -> Payment | None:
        return session.scalar(
            select(Payment).where(
                Payment.city == city, Payment.payer == payer, Payment.nonce == nonce
            )
        )

    @staticmethod
    def _same_or_refuse(existing: Payment, authorization: SignedAuthorization) -> Payment:
        same = (
            existing.merchant == authorization.to
            and existing.value == authorization.value
            and existing.valid_after == authorization.valid_after
            and existing.valid_before == authorization.valid_before
            and existing.r == _hex(authorization.r)
            and existing.s == _hex(authorization.s)
        )
        if not same:
            refuse_mismatch(existing, authorization)
        return existing


def _check_invoice(invoice: Invoice, city: City, authorization: SignedAuthorization) -> None:
    """An authorization whose nonce is an invoice id pays that invoice: same merchant, amount,
    before it expires."""
    if invoice.city != city.code or invoice.merchant != authorization.to:
        raise Conflict(
            "invoice_mismatch",
            f"invoice {invoice.id} is payable to {invoice.merchant} in {invoice.city}",
            field="to",
            value=authorization.to,
            accepted=invoice.merchant,
        )
    if invoice.amount != authorization.value:
        raise Conflict(
            "invoice_amount_mismatch",
            f"invoice {invoice.id} asks for {invoice.amount:,} KRW",
            field="value",
            value=authorization.value,
            accepted=str(invoice.amount),
        )
    if aware(invoice.expires_at) <= utcnow():
        raise ApiError(
            "invoice_expired",
            f"invoice {invoice.id} expired at {invoice.expires_at.isoformat()}",
            field="nonce",
            value=invoice.id,
            accepted="an open invoice: ask the merchant for a new QR",
            status_code=410,
        )
