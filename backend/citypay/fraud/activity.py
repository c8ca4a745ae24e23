"""A city's recent activity, folded from its chain events in order: what the rules look at.

The city's books (citypay.ledger) say who is a resident or a merchant, a merchant's category and
every balance. On top of them, each event becomes a fact the rules understand (a payment, a
refund, a charge, a cash-out, a gift, a policy change), and the facts of the last `horizon`
seconds are kept by merchant and by wallet.
"""

from __future__ import annotations

from collections import defaultdict, deque
from dataclasses import dataclass, field
from typing import Any

from citypay.chain.enums import RedemptionKind
from citypay.chain.events import ChainEvent
from citypay.ledger import CityBooks

KST_OFFSET = 9 * 3600  # Korea keeps no daylight saving time (as contracts/libraries/KoreanCalendar)


def position(event: ChainEvent) -> tuple[int, int]:
    """Where an event is in the chain's order (logs of one block are ordered by log index)."""
    return (event.block_number, event.log_index)


def kst_minute_of_day(unix_seconds: int) -> int:
    return (unix_seconds + KST_OFFSET) % 86_400 // 60


@dataclass(frozen=True)
class Payment:
    """A resident's Transfer to a merchant (plain, invoice `pay` or relayed authorization)."""

    event: ChainEvent
    payer: str
    merchant: str
    value: int

    @property
    def time(self) -> int:
        return self.event.block_time


@dataclass(frozen=True)
class Refund:
    """A merchant's Transfer back to a resident: only a refund is allowed that way."""

    event: ChainEvent
    merchant: str
    payer: str
    value: int

    @property
    def time(self) -> int:
        return self.event.block_time


@dataclass(frozen=True)
class Charge:
    event: ChainEvent
    wallet: str
    amount: int
    incentive: int

    @property
    def time(self) -> int:
        return self.event.block_time


@dataclass(frozen=True)
class CashOut:
    event: ChainEvent
    merchant: str
    amount: int


@dataclass(frozen=True)
class Gift:
    """A resident's gift to another (선물하기), as the city's gifts contract events it."""

    event: ChainEvent
    giver: str
    receiver: str
    value: int

    @property
    def time(self) -> int:
        return self.event.block_time


@dataclass(frozen=True)
class PolicyChange:
    event: ChainEvent


Fact = Payment | Refund | Charge | CashOut | Gift | PolicyChange


@dataclass
class CityActivity:
    books: CityBooks  # folded by the caller, each event before `apply` sees it
    horizon: int  # seconds of facts kept: the longest look-back of the city's rules
    limits: dict[str, int] = field(default_factory=dict)  # the city's policy limits, by name
    payments_to: dict[str, deque[Payment]] = field(default_factory=lambda: defaultdict(deque))
    payments_by: dict[str, deque[Payment]] = field(default_factory=lambda: defaultdict(deque))
    refunds_by: dict[str, deque[Refund]] = field(default_factory=lambda: defaultdict(deque))
    charges_of: dict[str, deque[Charge]] = field(default_factory=lambda: defaultdict(deque))
    gifts_to: dict[str, deque[Gift]] = field(default_factory=lambda: defaultdict(deque))
    # The rules' running windows over these facts (citypay.fraud.window), by rule and key.
    windows: dict[tuple, Any] = field(default_factory=dict)

    def apply(self, event: ChainEvent) -> Fact | None:
        """Folds one event in; returns the fact it is, if the rules care."""
        args = event.args
        match event.event:
            case "Transfer":
                return self._transfer(event)
            case "Issued":
                charge = Charge(event, args["resident"], args["amount"], args["incentive"])
                self._keep(self.charges_of[charge.wallet], charge)
                return charge
            case "RedemptionRequested" if args["kind"] == RedemptionKind.CASH_OUT:
                return CashOut(event, args["account"], args["burned"])
            case "Gifted":
                gift = Gift(event, args["from"], args["to"], args["value"])
                self._keep(self.gifts_to[gift.receiver], gift)
                return gift
            case "PolicyChanged":
                return PolicyChange(event)
        return None

    def _transfer(self, event: ChainEvent) -> Fact | None:
        sender, receiver, value = event.args["from"], event.args["to"], event.args["value"]
        kinds = (self.kind(sender), self.kind(receiver))
        if kinds == ("resident", "merchant"):
            payment = Payment(event, sender, receiver, value)
            self._keep(self.payments_to[receiver], payment)
            self._keep(self.payments_by[sender], payment)
            return payment
        if kinds == ("merchant", "resident"):
            refund = Refund(event, sender, receiver, value)
            self._keep(self.refunds_by[sender], refund)
            return refund
        return None

    def _keep(self, facts: deque, fact) -> None:
        facts.append(fact)
        while facts[0].time < fact.time - self.horizon:
            facts.popleft()

    # --- what the rules ask -----------------------------------------------------------------

    @property
    def city(self) -> str:
        return self.books.code

    def kind(self, address: str) -> str:
        account = self.books.accounts.get(address)
        return account.kind if account else ""

    def category(self, merchant: str) -> int | None:
        account = self.books.accounts.get(merchant)
        return account.category if account else None

    def balance(self, address: str) -> int:
        account = self.books.accounts.get(address)
        return account.balance if account else 0

    def latest_charge(
        self, wallet: str, before: ChainEvent, since: int, *, with_incentive: bool = False
    ) -> Charge | None:
        """The wallet's last charge before `before` in chain order, if at or after `since`."""
        for charge in reversed(self.charges_of.get(wallet, ())):
            if position(charge.event) < position(before):
                if with_incentive and not charge.incentive:
                    continue
                return charge if charge.time >= since else None
        return None
