"""Accepting payments: checked, then recorded once; payments/relayer.py sends them.

The checks that need only the authorization run as the request comes in. Then one thread (the
acceptor) takes every payment queued meanwhile and, for the lot, reads the database (payments
already recorded, amounts in flight, invoices), reads the chain in one batch, and records the
accepted ones in one commit: a payment is answered once it is committed. Each payer's amounts
in flight stay exact whatever the number of replicas: the commit holds a lock on each of its
payers (db/locks.py), so an acceptor of another replica reads them only after it.
"""

from __future__ import annotations

import time
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache

from sqlalchemy import func, insert, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from citypay.authorization import SignedAuthorization, TokenDomain
from citypay.chain.deployment import City, Deployment
from citypay.core.config import Settings
from citypay.core.errors import ApiError, Conflict, NotFound
from citypay.core.validity import Validity
from citypay.db.locks import lock_key, locked_session
from citypay.db.models import aware, utcnow
from citypay.db.session import Database
from citypay.payments.checks import (
    ChainViews,
    authorization_refusal,
    chain_refusal,
    mismatch_refusal,
)
from citypay.payments.feed import PaymentFeed
from citypay.payments.groups import GroupWorker, Queued
from citypay.payments.models import Invoice, Payment, PaymentRecord, PaymentStatus

# The most payments one commit records.
LARGEST_GROUP = 256


def _hex(value: bytes) -> str:
    return "0x" + value.hex()


@dataclass(frozen=True)
class _Offer:
    """A payment to accept, with what its own checks found wrong (refused only if it is not
    recorded already: the same authorization posted again returns its payment)."""

    city: City
    authorization: SignedAuthorization
    refusal: ApiError | None

    @property
    def key(self) -> tuple[str, str, str]:
        return self.city.code, self.authorization.from_, _hex(self.authorization.nonce)

    @property
    def payer_lock(self) -> int:
        return lock_key("payer", self.city.code, self.authorization.from_)


class PaymentService:
    def __init__(self, db: Database, deployment: Deployment, settings: Settings) -> None:
        self.db = db
        self.deployment = deployment
        self.settings = settings
        self._views = ChainViews(deployment.gateway)
        self.feed = PaymentFeed(db)
        self._acceptor = GroupWorker(self._accept_group, "payment-acceptor", LARGEST_GROUP)
        # The paying wallet's rate limit (api/surge.py), counted only for an authorization its
        # wallet signed: junk naming someone's address must not spend that wallet's allowance.
        self.wallet_limit: Callable[[str], ApiError | None] | None = None

    @cache  # noqa: B019 - one service per app; a city's domain never changes
    def domain(self, city_code: str) -> TokenDomain:
        token = self.deployment.city(city_code).chain.token
        name, version = self.deployment.gateway.read_many(
            [(token, "name", ()), (token, "version", ())]
        )
        return TokenDomain(
            name=name,
            version=version,
            chain_id=self.deployment.chain_id,
            verifying_contract=token.address,
        )

    def accept_once(
        self, city: City, authorization: SignedAuthorization
    ) -> tuple[Payment | PaymentRecord, bool]:
        """Records a payment to relay. Returns (payment, created): the same authorization posted
        again, also at the same time, returns the payment it already is."""
        return _settled(self._acceptor.submit(self._offer(city, authorization)))

    async def accept(
        self, city: City, authorization: SignedAuthorization
    ) -> tuple[Payment | PaymentRecord, bool]:
        """accept_once() for the event loop: waits for the acceptor without a thread."""
        return _settled(await self._acceptor.submit_async(self._offer(city, authorization)))

    def _offer(self, city: City, authorization: SignedAuthorization) -> _Offer:
        refusal = authorization_refusal(
            city,
            self.domain(city.code),
            authorization,
            now=int(time.time()),
            validity=Validity.of(self.settings),
        )
        if refusal is None and self.wallet_limit is not None:
            refusal = self.wallet_limit(authorization.from_)
        return _Offer(city, authorization, refusal)

    # --- the acceptor ---------------------------------------------------------------------------

    def _accept_group(self, group: list[Queued]) -> None:
        try:
            offers = [q.item for q in group]
            with locked_session(self.db, (o.payer_lock for o in offers)) as session:
                outcomes = self._record(session, offers)
        except IntegrityError:
            # Another process recorded one of these payments, or paid one of these invoices,
            # since they were read: each again on its own, to answer each with the database's
            # word on it.
            if len(group) == 1:
                group[0].future.set_result(self._settle_race(group[0].item))
            else:
                for queued in group:
                    self._accept_group([queued])
            return
        for queued, outcome in zip(group, outcomes, strict=True):
            queued.future.set_result(outcome)

    def _record(self, session: Session, offers: list[_Offer]) -> list:
        """Each offer's outcome: (payment, created) or the ApiError refusing it. The new
        payments are inserted in `session`, whose commit records them."""
        existing = self._existing(session, offers)
        outcomes: list = [None] * len(offers)
        fresh = []
        for index, offer in enumerate(offers):
            if offer.key in existing:
                outcomes[index] = _same_or_refusal(existing[offer.key], offer.authorization)
            elif offer.refusal is not None:
                outcomes[index] = offer.refusal
            else:
                fresh.append(index)
        if not fresh:
            return outcomes
        offered = [offers[i] for i in fresh]
        # The database before the chain: a payment the relayer has seen included since is then
        # out of `pending` only if the chain read shows the balance it took.
        pending = self._in_flight(session, offered)
        invoices, paid = self._invoices(session, offered)
        views = self._views.read([(o.city, o.authorization) for o in offered])
        new: dict[tuple, tuple[int, dict]] = {}  # the payments to record: key -> (index, row)
        again: list[tuple[int, _Offer]] = []  # posted twice in one group
        for index, offer, view in zip(fresh, offered, views, strict=True):
            if offer.key in new:
                again.append((index, offer))
                continue
            payer = (offer.city.code, offer.authorization.from_)
            invoice = invoices.get(_hex(offer.authorization.nonce))
            refusal = chain_refusal(offer.city, offer.authorization, view, pending[payer])
            if refusal is None and invoice is not None:
                refusal = _invoice_refusal(invoice, paid, offer)
            if refusal is not None:
                outcomes[index] = refusal
                continue
            new[offer.key] = (index, _row(offer, invoice))
            pending[payer] += offer.authorization.value
            if invoice is not None:
                paid.add(invoice.id)
        if not new:
            return outcomes
        recorded = _insert(session, [row for _, row in new.values()])
        for key, (index, _) in new.items():
            outcomes[index] = (recorded[key], True)
        for index, offer in again:
            outcomes[index] = _same_or_refusal(recorded[offer.key], offer.authorization)
        return outcomes

    @staticmethod
    def _existing(session: Session, offers: list[_Offer]) -> dict[tuple, Payment]:
        keys = {offer.key for offer in offers}
        candidates = session.scalars(
            select(Payment).where(
                Payment.payer.in_({k[1] for k in keys}), Payment.nonce.in_({k[2] for k in keys})
            )
        )
        return {p_key: p for p in candidates if (p_key := (p.city, p.payer, p.nonce)) in keys}

    @staticmethod
    def _in_flight(session: Session, offers: list[_Offer]) -> dict[tuple[str, str], int]:
        """Per (city, payer): the amounts accepted or submitted but not yet included."""
        rows = session.execute(
            select(Payment.city, Payment.payer, func.sum(Payment.value))
            .where(
                Payment.payer.in_({o.authorization.from_ for o in offers}),
                Payment.status.in_([PaymentStatus.ACCEPTED, PaymentStatus.SUBMITTED]),
            )
            .group_by(Payment.city, Payment.payer)
        )
        pending: dict[tuple[str, str], int] = defaultdict(int)
        for city, payer, amount in rows:
            pending[(city, payer)] = amount
        return pending

    @staticmethod
    def _invoices(session: Session, offers: list[_Offer]) -> tuple[dict[str, Invoice], set[str]]:
        """The invoices the offers' nonces name, and which of them are paid."""
        nonces = {_hex(o.authorization.nonce) for o in offers}
        invoices = {i.id: i for i in session.scalars(select(Invoice).where(Invoice.id.in_(nonces)))}
        paid = set()
        if invoices:
            paid = set(
                session.scalars(select(Payment.invoice_id).where(Payment.invoice_id.in_(invoices)))
            )
        return invoices, paid

    def _settle_race(self, offer: _Offer):
        """The database refused the insert: the same authorization was recorded meanwhile, or
        its invoice was paid by another payer."""
        with self.db.session() as session:
            existing = self._find(session, *offer.key)
        if existing is None:
            return Conflict(
                "invoice_paid",
                "the invoice this nonce names was paid by another payer meanwhile",
                field="nonce",
                value=_hex(offer.authorization.nonce),
                accepted="an invoice that is not paid yet",
            )
        return _same_or_refusal(existing, offer.authorization)

    # --- reading ---------------------------------------------------------------------------------

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


def _settled(outcome) -> tuple[Payment | PaymentRecord, bool]:
    if isinstance(outcome, ApiError):
        raise outcome
    return outcome


def _row(offer: _Offer, invoice: Invoice | None) -> dict:
    """The payment's columns but its id, as recorded on acceptance."""
    authorization = offer.authorization
    now = utcnow()
    return {
        "city": offer.city.code,
        "payer": authorization.from_,
        "merchant": authorization.to,
        "value": authorization.value,
        "valid_after": authorization.valid_after,
        "valid_before": authorization.valid_before,
        "nonce": _hex(authorization.nonce),
        "v": authorization.v,
        "r": _hex(authorization.r),
        "s": _hex(authorization.s),
        "invoice_id": invoice.id if invoice else None,
        "status": PaymentStatus.ACCEPTED,
        "failure_reason": None,
        "relay_transaction_id": None,
        "tx_hash": None,
        "block_number": None,
        "created_at": now,
        "updated_at": now,
    }


def _insert(session: Session, rows: list[dict]) -> dict[tuple[str, str, str], PaymentRecord]:
    """Records the rows in one statement; each as a PaymentRecord with its id, by its identity
    (city, payer, nonce). Plain rows, not ORM objects: building and flushing those took half the
    acceptor's time in make bench-relay's profile (about 0.1 ms a payment). The ids come back by
    identity, not in the rows' order: asking for that order made SQLAlchemy insert the rows one
    statement each on SQLite, each a release and a wait for the interpreter's lock while the
    event loop is busy."""
    table = Payment.__table__
    by_key = {(row["city"], row["payer"], row["nonce"]): row for row in rows}
    returned = session.execute(
        insert(table).returning(table.c.id, table.c.city, table.c.payer, table.c.nonce), rows
    )
    return {
        (city, payer, nonce): PaymentRecord(id=id_, **by_key[(city, payer, nonce)])
        for id_, city, payer, nonce in returned
    }


def _same_or_refusal(existing: Payment | PaymentRecord, authorization: SignedAuthorization):
    """(existing, False) if it is this very authorization; the refusal if the nonce is taken by
    other terms."""
    same = (
        existing.merchant == authorization.to
        and existing.value == authorization.value
        and existing.valid_after == authorization.valid_after
        and existing.valid_before == authorization.valid_before
        and existing.r == _hex(authorization.r)
        and existing.s == _hex(authorization.s)
    )
    return (existing, False) if same else mismatch_refusal(existing, authorization)


def _invoice_refusal(invoice: Invoice, paid: set[str], offer: _Offer) -> ApiError | None:
    """An authorization whose nonce is an invoice id pays that invoice: same merchant, amount,
    before it expires, and only once."""
    city, authorization = offer.city, offer.authorization
    if invoice.city != city.code or invoice.merchant != authorization.to:
        return Conflict(
            "invoice_mismatch",
            f"invoice {invoice.id} is payable to {invoice.merchant} in {invoice.city}",
            field="to",
            value=authorization.to,
            accepted=invoice.merchant,
        )
    if invoice.amount != authorization.value:
        return Conflict(
            "invoice_amount_mismatch",
            f"invoice {invoice.id} asks for {invoice.amount:,} KRW",
            field="value",
            value=authorization.value,
            accepted=str(invoice.amount),
        )
    if aware(invoice.expires_at) <= utcnow():
        return ApiError(
            "invoice_expired",
            f"invoice {invoice.id} expired at {invoice.expires_at.isoformat()}",
            field="nonce",
            value=invoice.id,
            accepted="an open invoice: ask the merchant for a new QR",
            status_code=410,
        )
    if invoice.id in paid:
        return Conflict(
            "invoice_paid",
            f"invoice {invoice.id} is already paid by another payer",
            field="nonce",
            value=invoice.id,
            accepted="an invoice that is not paid yet",
        )
    return None
