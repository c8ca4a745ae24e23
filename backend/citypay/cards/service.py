"""Cards: issuing one (a new wallet, sealed, registered as a resident on chain), paying with one
(PIN checked, then the backend signs the EIP-3009 authorization for the card's wallet and hands
it to the relay like any wallet's), locking after wrong PINs, unlocking."""

from __future__ import annotations

import time
from dataclasses import dataclass

from eth_account import Account
from eth_utils import keccak
from sqlalchemy import delete, select, update
from sqlalchemy.exc import IntegrityError

from citypay.authorization import sign_authorization
from citypay.cards.models import Card
from citypay.cards.numbers import masked, new_card_number
from citypay.cards.vault import (
    fingerprint,
    hash_pin,
    key_encryption_key,
    pin_matches,
    seal,
    unseal,
)
from citypay.chain.deployment import City, Deployment
from citypay.chain.duties import DutySenders
from citypay.chain.duty_sender import DutySender
from citypay.chain.gateway import ChainRefused
from citypay.core.config import Settings
from citypay.core.errors import ApiError, Conflict, NotFound
from citypay.db.models import utcnow
from citypay.db.session import Database
from citypay.payments.checks import refuse_mismatch
from citypay.payments.models import Invoice, Payment
from citypay.payments.service import PaymentService

# How long a card payment's authorization stays valid: ample for the relayer's next batch.
AUTHORIZATION_LIFETIME = 15 * 60
# What a card holder's registration transaction is for, in the outbox.
REGISTRATION = "registration"


class WrongPin(ApiError):
    status_code = 401

    def __init__(self, number: str, attempts_left: int) -> None:
        super().__init__(
            "wrong_pin",
            f"wrong PIN for card {masked(number)}: {attempts_left} attempt(s) left "
            "before the card locks",
            field="pin",
            value=None,  # a PIN is never echoed back
            accepted="the card holder's PIN",
        )
        self.attempts_left = attempts_left

    def body(self) -> dict:
        body = super().body()
        body["error"]["attemptsLeft"] = self.attempts_left
        return body


class CardLocked(ApiError):
    status_code = 423

    def __init__(self, number: str, attempts: int, *, just_now: bool = False) -> None:
        cause = "this wrong PIN locked it" if just_now else "it is locked"
        super().__init__(
            "card_locked",
            f"card {masked(number)}: {cause} after {attempts} consecutive wrong PINs",
            field="card",
            value=masked(number),
            accepted="an operator unlocks the card at the city office",
        )

    def body(self) -> dict:
        body = super().body()
        body["error"]["attemptsLeft"] = 0
        return body


@dataclass(frozen=True)
class CardView:
    """A card as the API shows it, with its wallet's balance on chain."""

    card: Card
    locked: bool
    attempts_left: int
    balance: int


class CardService:
    def __init__(
        self,
        db: Database,
        deployment: Deployment,
        settings: Settings,
        payments: PaymentService,
        duties: DutySenders,
    ) -> None:
        self.db = db
        self.deployment = deployment
        self.settings = settings
        self.payments = payments
        self.kek = key_encryption_key(settings)
        self.max_attempts = settings.CARD_PIN_ATTEMPTS
        self._duties = duties

    # --- issuing -----------------------------------------------------------------------------

    def issue(self, city: City, *, pin: str, identity_hash: bytes, region: int) -> Card:
        """A new card and wallet, registered as the holder's resident wallet, so the holder can
        be charged at the same counter. The card is stored before the registration is sent: a
        crash in between leaves a card pending registration, never a resident wallet whose key
        nobody has."""
        wallet = Account.create()
        card = self._store_new_card(city, wallet, pin)
        try:
            sent = self.registrar(city).send(
                city.chain.registry,
                "registerResident",
                wallet.address,
                identity_hash,
                region,
                purpose=REGISTRATION,
            )
        except ChainRefused as refused:
            with self.db.session() as session:  # nothing happened on chain: no card either
                session.execute(delete(Card).where(Card.number == card.number))
            raise Conflict(
                "registration_refused",
                f"{city.name}'s registry refused the card holder: {refused.reason}",
                field="identityHash",
                value=identity_hash,
                accepted="a resident identity hash not yet registered in " + city.name,
            ) from None
        tx_hash = sent.tx_hash
        with self.db.session() as session:
            session.execute(
                update(Card).where(Card.number == card.number).values(registration_tx=tx_hash)
            )
        card.registration_tx = tx_hash
        return card

    def _store_new_card(self, city: City, wallet, pin: str) -> Card:
        for _ in range(5):  # a number collision among 10^11 is rare; draw again if it happens
            number = new_card_number()
            card = Card(
                number=number,
                city=city.code,
                wallet=wallet.address,
                sealed_key=seal(self.kek, number, wallet.address, bytes(wallet.key)),
                kek_fingerprint=fingerprint(self.kek),
                pin_hash=hash_pin(pin),
                failed_pins=0,
            )
            try:
                with self.db.session() as session:
                    session.add(card)
                return card
            except IntegrityError:
                continue
        raise RuntimeError("could not draw an unused card number")

    def registrar(self, city: City) -> DutySender:
        return self._duties.sender("registrar", city.roles["registrar"])

    # --- PINs --------------------------------------------------------------------------------

    def check_pin(self, city: City, number: str, pin: str) -> Card:
        """The card if `pin` is its PIN; WrongPin, CardLocked or NotFound otherwise.

        An attempt is counted before the slow hash is checked, in one conditional UPDATE, so
        concurrent tries each take a slot and no more than the limit are ever checked; a right
        PIN gives its slot back and clears the count."""
        with self.db.session() as session:
            reserved = session.execute(
                update(Card)
                .where(
                    Card.number == number,
                    Card.city == city.code,
                    Card.failed_pins < self.max_attempts,
                )
                .values(failed_pins=Card.failed_pins + 1)
            ).rowcount
            card = session.scalar(select(Card).where(Card.number == number))
        if card is None or card.city != city.code:
            raise _unknown_card(city, number)
        if not reserved:
            raise CardLocked(number, self.max_attempts)
        if pin_matches(card.pin_hash, pin):
            with self.db.session() as session:
                session.execute(update(Card).where(Card.number == number).values(failed_pins=0))
            return card
        if card.failed_pins >= self.max_attempts:
            with self.db.session() as session:
                session.execute(
                    update(Card)
                    .where(Card.number == number, Card.locked_at.is_(None))
                    .values(locked_at=utcnow())
                )
            raise CardLocked(number, self.max_attempts, just_now=True)
        raise WrongPin(number, self.max_attempts - card.failed_pins)

    def unlock(self, city: City, number: str, new_pin: str | None = None) -> Card:
        values = {"failed_pins": 0, "locked_at": None, "unlocked_at": utcnow()}
        if new_pin is not None:  # the holder forgot the PIN: the office sets a new one
            values["pin_hash"] = hash_pin(new_pin)
        with self.db.session() as session:
            done = session.execute(
                update(Card).where(Card.number == number, Card.city == city.code).values(**values)
            ).rowcount
        if not done:
            raise _unknown_card(city, number)
        return self.get(city, number)

    # --- paying ------------------------------------------------------------------------------

    def pay(
        self,
        city: City,
        number: str,
        pin: str,
        *,
        merchant: str,
        amount: int,
        invoice_id: str | None = None,
        request_id: str | None = None,
    ) -> tuple[Payment, bool]:
        """Checks the PIN, signs TransferWithAuthorization(card wallet -> merchant) and passes it
        to the relay. An invoice id is the nonce, as for any wallet; a POS's request id makes a
        nonce too, so a till that retries after a timeout gets the same payment, not a second."""
        card = self.check_pin(city, number, pin)
        if invoice_id is not None:
            nonce = bytes.fromhex(invoice_id[2:])
            self._require_open_invoice(city, invoice_id.lower(), card.wallet)
        elif request_id is not None:
            nonce = keccak(text=f"citypay-card-payment:{city.code}:{number}:{request_id}")
        else:
            nonce = None
        if nonce is not None:
            existing = self._payment(city, card.wallet, "0x" + nonce.hex())
            if existing is not None:
                if existing.merchant != merchant or existing.value != amount:
                    refuse_mismatch(existing, _Terms(card.wallet, nonce))
                return existing, False
        key = unseal(self.kek, card.kek_fingerprint, number, card.wallet, card.sealed_key)
        authorization = sign_authorization(
            key,
            self.payments.domain(city.code),
            to=merchant,
            value=amount,
            valid_before=int(time.time()) + AUTHORIZATION_LIFETIME,
            nonce=nonce,
        )
        return self.payments.accept_once(city, authorization)

    def _payment(self, city: City, wallet: str, nonce: str) -> Payment | None:
        with self.db.session() as session:
            return session.scalar(
                select(Payment).where(
                    Payment.city == city.code, Payment.payer == wallet, Payment.nonce == nonce
                )
            )

    def _require_open_invoice(self, city: City, invoice_id: str, wallet: str) -> None:
        with self.db.session() as session:
            invoice = session.get(Invoice, invoice_id)
            paid_by = session.scalar(select(Payment.payer).where(Payment.invoice_id == invoice_id))
        if invoice is None or invoice.city != city.code:
            raise NotFound(
                "unknown_invoice",
                f"no invoice {invoice_id} in {city.name}",
                field="invoiceId",
                value=invoice_id,
                accepted="the id of an invoice created for this sale",
            )
        if paid_by not in (None, wallet):  # the relay's unique invoice_id would refuse it later
            raise Conflict(
                "invoice_already_paid",
                f"invoice {invoice_id} is already paid by {paid_by}",
                field="invoiceId",
                value=invoice_id,
                accepted="an invoice not yet paid: ask the merchant for a new one",
            )

    # --- reading -----------------------------------------------------------------------------

    def get(self, city: City, number: str) -> Card:
        with self.db.session() as session:
            card = session.get(Card, number)
        if card is None or card.city != city.code:
            raise _unknown_card(city, number)
        return card

    def view(self, city: City, number: str) -> CardView:
        card = self.get(city, number)
        return CardView(
            card=card,
            locked=card.failed_pins >= self.max_attempts,
            attempts_left=max(self.max_attempts - card.failed_pins, 0),
            balance=city.chain.token.call("balanceOf", card.wallet),
        )


@dataclass(frozen=True)
class _Terms:
    """What refuse_mismatch reads of an authorization."""

    from_: str
    nonce: bytes


def _unknown_card(city: City, number: str) -> NotFound:
    return NotFound(
        "unknown_card",
        f"no card {masked(number)} in {city.name}",
        field="card",
        value=masked(number),
        accepted=f"a card issued by {city.name}",
    )
