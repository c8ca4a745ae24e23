"""Cards for residents without a smartphone: issued and unlocked by the city's operators, paid
with at a merchant's till (POS key) with the card number and the PIN."""

from __future__ import annotations

import threading
from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Depends, Request, Response
from pydantic import BaseModel, ConfigDict, Field, field_validator

from citypay.api.auth import PrincipalDep, allow
from citypay.api.deps import CityDep, PlatformDep, checked_address
from citypay.api.routes.payments import PaymentPublic
from citypay.auth.models import Role
from citypay.cards.numbers import checked_card_number
from citypay.cards.service import CardService, CardView

router = APIRouter(tags=["cards"])

_service_lock = threading.Lock()


def get_cards(request: Request, platform: PlatformDep) -> CardService:
    """One CardService per app, made on first use (it holds the registrar's sender)."""
    with _service_lock:
        service = getattr(request.app.state, "cards", None)
        if service is None:
            service = CardService(
                platform.db,
                platform.deployment,
                platform.settings,
                platform.payments,
                platform.duties,
            )
            request.app.state.cards = service
        return service


CardsDep = Annotated[CardService, Depends(get_cards)]

Pin = Annotated[str, Field(pattern=r"^[0-9]{4,6}$", description="4 to 6 digits")]
Hex32 = Annotated[str, Field(pattern=r"^0x[0-9a-fA-F]{64}$")]


def _not_guessable(pin: str) -> str:
    # The first PINs anyone tries: with only a few attempts before the lock, they must not work.
    if len(set(pin)) == 1 or pin in "0123456789" or pin in "9876543210":
        raise ValueError("a PIN of one repeated digit or a run of digits is too easy to guess")
    return pin


class CardIssue(BaseModel):
    model_config = ConfigDict(extra="forbid")

    pin: Pin
    identityHash: Hex32 = Field(
        description="the city office's hash of the holder's identity: no personal data on chain"
    )
    region: int = Field(ge=1, lt=2**32, description="administrative region code, e.g. 41570")

    @field_validator("pin")
    @classmethod
    def _pin(cls, value: str) -> str:
        return _not_guessable(value)


class CardUnlock(BaseModel):
    model_config = ConfigDict(extra="forbid")

    pin: Pin | None = Field(default=None, description="a new PIN, if the holder forgot it")

    @field_validator("pin")
    @classmethod
    def _pin(cls, value: str | None) -> str | None:
        return None if value is None else _not_guessable(value)


class CardPayment(BaseModel):
    model_config = ConfigDict(extra="forbid")

    card: str = Field(examples=["9410 1234 5678 9012"])
    pin: str = Field(min_length=1, max_length=12)
    merchant: str
    amount: int = Field(gt=0, le=10_000_000_000)
    invoiceId: Hex32 | None = None
    requestId: str | None = Field(
        default=None,
        min_length=8,
        max_length=64,
        description="the till's id for this sale: a retry with it returns the same payment",
    )

    @field_validator("merchant")
    @classmethod
    def _address(cls, value: str) -> str:
        return checked_address(value)


class CardPublic(BaseModel):
    number: str
    city: str
    wallet: str
    status: str  # active, locked, or pending_registration (issued, not yet a resident on chain)
    attemptsLeft: int
    balance: int
    registrationTx: str | None
    lockedAt: datetime | None
    createdAt: datetime

    @classmethod
    def of(cls, view: CardView) -> CardPublic:
        card = view.card
        status = "locked" if view.locked else "active"
        if card.registration_tx is None:
            status = "pending_registration"
        return cls(
            number=card.number,
            city=card.city,
            wallet=card.wallet,
            status=status,
            attemptsLeft=view.attempts_left,
            balance=view.balance,
            registrationTx=card.registration_tx,
            lockedAt=card.locked_at,
            createdAt=card.created_at,
        )


_OFFICE = frozenset({Role.OPERATOR})


@router.post("/v1/cities/{city}/cards", status_code=201, response_model=CardPublic)
def issue_card(city: CityDep, body: CardIssue, cards: CardsDep, principal: PrincipalDep):
    """Issues a card at the city office: a new wallet kept sealed by the backend, registered as
    the holder's resident wallet, ready to be charged. For the city's operators."""
    allow(principal, city=city.code, roles=_OFFICE)
    card = cards.issue(
        city, pin=body.pin, identity_hash=bytes.fromhex(body.identityHash[2:]), region=body.region
    )
    return CardPublic.of(cards.view(city, card.number))


@router.get("/v1/cities/{city}/cards/{number}", response_model=CardPublic)
def card_status(city: CityDep, number: str, cards: CardsDep, principal: PrincipalDep):
    """For the city's operators and auditors."""
    allow(principal, city=city.code, roles={Role.OPERATOR, Role.AUDITOR})
    return CardPublic.of(cards.view(city, checked_card_number(number)))


@router.post("/v1/cities/{city}/cards/{number}/unlock", response_model=CardPublic)
def unlock_card(
    city: CityDep,
    number: str,
    cards: CardsDep,
    principal: PrincipalDep,
    body: CardUnlock | None = None,
):
    """Clears the wrong-PIN count, optionally setting a new PIN. For the city's operators."""
    allow(principal, city=city.code, roles=_OFFICE)
    number = checked_card_number(number)
    cards.unlock(city, number, body.pin if body else None)
    return CardPublic.of(cards.view(city, number))


@router.post("/v1/cities/{city}/card-payments", status_code=202, response_model=PaymentPublic)
def pay_by_card(
    city: CityDep,
    body: CardPayment,
    cards: CardsDep,
    platform: PlatformDep,
    principal: PrincipalDep,
    response: Response,
):
    """A till's card payment: the backend checks the PIN, signs the authorization for the card's
    wallet and relays it like any other. The card number travels in the body, not the URL, so
    access logs do not collect it. For the city's tills (POS keys)."""
    allow(principal, city=city.code, roles={Role.POS})
    payment, created = cards.pay(
        city,
        checked_card_number(body.card),
        body.pin,
        merchant=body.merchant,
        amount=body.amount,
        invoice_id=body.invoiceId,
        request_id=body.requestId,
    )
    if created and platform.relayer is not None:
        platform.relayer.wake()
    if not created:
        response.status_code = 200
    return PaymentPublic.of(payment)
