"""Cards for residents without a smartphone: issued and unlocked by the city's operators, paid
with at a merchant's till (POS key) with the card number and the PIN."""

from __future__ import annotations

import threading
from typing import Annotated

from fastapi import APIRouter, Depends, Path, Request, Response
from pydantic import BaseModel, Field, field_validator

from citypay.api.auth import PrincipalDep, allow
from citypay.api.deps import CityDep, PlatformDep
from citypay.api.openapi import API_KEY, errors, security
from citypay.api.routes.payments import PaymentPublic
from citypay.auth.models import Role
from citypay.cards.numbers import checked_card_number
from citypay.cards.service import CardService, CardView
from citypay.core.fields import (
    CARD_NUMBER_PATTERN,
    PIN_ACCEPTED,
    Address,
    CardNumber,
    Hex32,
    Pin,
    RequestModel,
    SaleAmount,
    UtcDateTime,
    refusal,
    whole_number,
)

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

# A card number in a URL: checked (and masked in errors) by cards/numbers.py, documented here.
CardNumberPath = Annotated[
    str, Path(json_schema_extra={"pattern": CARD_NUMBER_PATTERN}, description="the card's number")
]
Region = whole_number(
    1, 2**32 - 1, "a region code from 1 to 4294967295 (uint32)", "administrative region, e.g. 41570"
)


def _not_guessable(pin: str) -> str:
    # The first PINs anyone tries: with only a few attempts before the lock, they must not work.
    if len(set(pin)) == 1 or pin in "0123456789" or pin in "9876543210":
        raise refusal(
            "guessable_pin",
            "a PIN of one repeated digit or a run of digits is too easy to guess",
            f"{PIN_ACCEPTED}, not one digit repeated nor a run such as 1234",
            echo="****",
        )
    return pin


class CardIssue(RequestModel):
    pin: Pin
    identityHash: Hex32 = Field(
        description="the city office's hash of the holder's identity: no personal data on chain"
    )
    region: Region

    @field_validator("pin")
    @classmethod
    def _pin(cls, value: str) -> str:
        return _not_guessable(value)


class CardUnlock(RequestModel):
    pin: Pin | None = Field(default=None, description="a new PIN, if the holder forgot it")

    @field_validator("pin")
    @classmethod
    def _pin(cls, value: str | None) -> str | None:
        return None if value is None else _not_guessable(value)


class CardPayment(RequestModel):
    card: CardNumber
    pin: Pin
    merchant: Address
    amount: SaleAmount
    invoiceId: Hex32 | None = None
    requestId: str | None = Field(
        default=None,
        min_length=8,
        max_length=64,
        description="the till's id for this sale: a retry with it returns the same payment",
    )


class CardPublic(BaseModel):
    number: str
    city: str
    wallet: str
    status: str  # active, locked, or pending_registration (issued, not yet a resident on chain)
    attemptsLeft: int
    balance: int
    registrationTx: str | None
    lockedAt: UtcDateTime | None
    createdAt: UtcDateTime

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


@router.post(
    "/v1/cities/{city}/cards",
    status_code=201,
    response_model=CardPublic,
    responses=errors(409),
    openapi_extra=security([API_KEY]),
)
def issue_card(city: CityDep, body: CardIssue, cards: CardsDep, principal: PrincipalDep):
    """Issues a card at the city office: a new wallet kept sealed by the backend, registered as
    the holder's resident wallet, ready to be charged. For the city's operators."""
    allow(principal, city=city.code, roles=_OFFICE)
    card = cards.issue(
        city, pin=body.pin, identity_hash=bytes.fromhex(body.identityHash[2:]), region=body.region
    )
    return CardPublic.of(cards.view(city, card.number))


@router.get(
    "/v1/cities/{city}/cards/{number}",
    response_model=CardPublic,
    openapi_extra=security([API_KEY]),
)
def card_status(city: CityDep, number: CardNumberPath, cards: CardsDep, principal: PrincipalDep):
    """For the city's operators and auditors."""
    allow(principal, city=city.code, roles={Role.OPERATOR, Role.AUDITOR})
    return CardPublic.of(cards.view(city, checked_card_number(number)))


@router.post(
    "/v1/cities/{city}/cards/{number}/unlock",
    response_model=CardPublic,
    openapi_extra=security([API_KEY]),
)
def unlock_card(
    city: CityDep,
    number: CardNumberPath,
    cards: CardsDep,
    principal: PrincipalDep,
    body: CardUnlock | None = None,
):
    """Clears the wrong-PIN count, optionally setting a new PIN. For the city's operators."""
    allow(principal, city=city.code, roles=_OFFICE)
    number = checked_card_number(number)
    cards.unlock(city, number, body.pin if body else None)
    return CardPublic.of(cards.view(city, number))


@router.post(
    "/v1/cities/{city}/card-payments",
    status_code=202,
    response_model=PaymentPublic,
    responses={200: {"model": PaymentPublic, "description": "the same requestId: its payment"}}
    | errors(409, 410, 423),
    openapi_extra=security([API_KEY]),
)
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
    return PaymentPublic.of(payment, platform.finality.final_up_to())
