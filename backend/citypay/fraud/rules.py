"""The fraud (깡) rules. Each looks at one kind of fact as it is folded, with the city's activity
up to and including it, and returns a Crossing when its thresholds are crossed; the Crossing
describes the Finding: the evidence (events and their roles), the thresholds and what was
observed.

Rules see nothing after the fact they judge, so a rule's answer does not depend on how the
listener cut the chain into chunks: a catch-up over stored events finds exactly what the live
listener found.

A rule's cost per fact does not grow with how busy a merchant is: what it counts over a window
is kept in running windows (citypay.fraud.window) that take each fact in once, and an alert
carries the newest EVIDENCE_CAP events of its evidence, its counts being over all of them.
"""

from __future__ import annotations

import hashlib
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from heapq import merge
from itertools import chain
from typing import Any, ClassVar

from citypay.chain.events import ChainEvent
from citypay.fraud.activity import (
    CashOut,
    Charge,
    CityActivity,
    Fact,
    Gift,
    Payment,
    kst_minute_of_day,
    position,
)
from citypay.fraud.config import (
    FreshWalletFeedConfig,
    GiftChainConfig,
    IncentiveSpendAllConfig,
    OutsideBusinessHoursConfig,
    QuickCashOutConfig,
    RoundUnderLimitConfig,
    RulesConfig,
)
from citypay.fraud.window import Window, everything

MINUTE, DAY = 60, 86_400
EVIDENCE_CAP = 50  # events an alert carries at most: the newest of its evidence


@dataclass(frozen=True)
class Evidence:
    event: ChainEvent
    role: str  # payment, refund, charge, cash-out, gift


@dataclass(frozen=True)
class Finding:
    rule: str
    city: str
    subject: str  # the merchant's or the wallet's address
    subject_kind: str  # merchant or wallet
    trigger: ChainEvent  # the event at which the thresholds were crossed, the newest evidence
    evidence: tuple[Evidence, ...]  # in chain order, the newest EVIDENCE_CAP at most
    thresholds: dict[str, Any]
    observed: dict[str, Any]  # counts over all the evidence, attached or not
    message: str

    @property
    def key(self) -> str:
        """The same rule crossing at the same event for the same subject is the same alert,
        however often the events are read again (restarts, rescans, catch-ups)."""
        t = self.trigger
        raw = f"{self.city}|{self.rule}|{self.subject}|{t.block_number}|{t.tx_hash}|{t.log_index}"
        return hashlib.sha256(raw.encode()).hexdigest()


@dataclass(frozen=True)
class Crossing:
    """A rule's thresholds crossed at a fact: enough to tell whether it continues an episode,
    and `describe` for the finding, which gathers the evidence. The finding is described from
    the activity as it is: before the next fact is folded."""

    rule: str
    city: str
    subject: str
    trigger: ChainEvent
    oldest: tuple[int, int]  # where the oldest event the finding rests on is, attached or not
    describe: Callable[[], Finding]


def _attach(groups: Iterable[Sequence[Evidence]]) -> tuple[tuple[Evidence, ...], int]:
    """The events of the groups given newest first (a payment and its charge are one group),
    each group whole, while they come to at most EVIDENCE_CAP events, in chain order; and how
    many groups that is."""
    attached: dict[tuple, Evidence] = {}
    count = 0
    for group in groups:
        new = [e for e in group if e.event.key not in attached]
        if len(attached) + len(new) > EVIDENCE_CAP:
            break
        attached.update((e.event.key, e) for e in new)
        count += 1
    return tuple(sorted(attached.values(), key=lambda e: position(e.event))), count


def _payments(facts: Iterable) -> Iterator[tuple[Evidence]]:
    return ((Evidence(p.event, "payment"),) for p in facts)


def _observed(observed: dict[str, Any], evidence: tuple, attached: int, total: int) -> dict:
    """`observed`, and how many events the alert carries when they are not all its evidence
    (`attached` of its `total` groups)."""
    return observed if attached >= total else observed | {"events_attached": len(evidence)}


def _listed(items: list[str], total: int) -> str:
    shown = ", ".join(items)
    return shown if len(items) >= total else f"{shown} (the last {len(items)} of {total})"


def _duration(seconds: int) -> str:
    return f"{seconds} s" if seconds < 2 * MINUTE else f"{seconds // MINUTE} min"


def _clock(unix_seconds: int) -> str:
    minute = kst_minute_of_day(unix_seconds)
    return f"{minute // 60:02d}:{minute % 60:02d}"


# A rule is hashed by identity: its running windows are kept in the activity under it.
@dataclass(eq=False)
class Rule:
    """One pattern. `fact` is the kind of fact it judges."""

    name: ClassVar[str]
    fact: ClassVar[type]
    config: Any
    thresholds: dict[str, Any] = field(init=False)

    def __post_init__(self) -> None:
        self.thresholds = self.config.model_dump(mode="json", exclude={"enabled"})

    def cross(self, fact: Fact, activity: CityActivity) -> Crossing | None:
        """Whether the fact crosses the rule's thresholds, at a cost that does not grow with
        the windows' population; the evidence is gathered only when the finding is described."""
        raise NotImplementedError

    def judge(self, fact: Fact, activity: CityActivity) -> Finding | None:
        crossing = self.cross(fact, activity)
        return crossing.describe() if crossing else None

    def _crossing(
        self,
        activity: CityActivity,
        subject: str,
        trigger: ChainEvent,
        oldest: ChainEvent,
        describe: Callable[[], Finding],
    ) -> Crossing:
        return Crossing(self.name, activity.city, subject, trigger, position(oldest), describe)

    def _finding(self, activity: CityActivity, subject: str, kind: str, trigger, **rest) -> Finding:
        return Finding(self.name, activity.city, subject, kind, trigger, **rest)

    def _window(
        self,
        activity: CityActivity,
        key: tuple,
        feed: Sequence,
        since: int,
        test: Callable[[Any], bool] = everything,
    ) -> Window:
        """The rule's window `key` over `feed`, caught up with it from `since` on; `key` names
        everything `test` reads, so one window's test never changes."""
        window = activity.windows.get((self, *key))
        if window is None:
            window = activity.windows[(self, *key)] = Window(test)
        return window.follow(feed, since)


class QuickCashOut(Rule):
    """A merchant with few customers cashes out the same amount it received minutes earlier."""

    name = "quick_cash_out"
    fact = CashOut
    config: QuickCashOutConfig

    def cross(self, cash_out: CashOut, activity: CityActivity) -> Crossing | None:
        c, merchant, now = self.config, cash_out.merchant, cash_out.event.block_time
        if cash_out.amount < c.min_amount:
            return None
        received_by = activity.payments_to.get(merchant, ())
        payments = self._window(
            activity, ("window", merchant), received_by, now - c.window_minutes * MINUTE
        )
        if not payments:
            return None
        first = payments.facts[0]
        refunds = self._window(
            activity, ("refunds", merchant), activity.refunds_by.get(merchant, ()), first.time
        )
        received = payments.value - refunds.value
        if received <= 0 or abs(cash_out.amount - received) * 100 > (
            cash_out.amount * c.amount_tolerance_percent
        ):
            return None
        lookback = self._window(
            activity, ("lookback", merchant), received_by, now - c.customer_lookback_days * DAY
        )
        customers = len(lookback.payers)
        if customers > c.max_customers:
            return None
        seconds = now - first.time

        def describe() -> Finding:
            newest = merge(
                _payments(payments.newest_first()),
                ((Evidence(r.event, "refund"),) for r in refunds.newest_first()),
                key=lambda group: position(group[0].event),
                reverse=True,
            )
            evidence, attached = _attach(chain([(Evidence(cash_out.event, "cash-out"),)], newest))
            observed = {
                "cashed_out": cash_out.amount,
                "received_in_window": received,
                "payments": len(payments),
                "customers": customers,
                "seconds_since_first_payment": seconds,
            }
            return self._finding(
                activity,
                merchant,
                "merchant",
                cash_out.event,
                evidence=evidence,
                thresholds=self.thresholds,
                observed=_observed(observed, evidence, attached, len(payments) + len(refunds) + 1),
                message=(
                    f"merchant {merchant} with {customers} customer(s) in "
                    f"{c.customer_lookback_days} days cashed out {cash_out.amount:,} KRW "
                    f"{_duration(seconds)} after the first of {len(payments)} payment(s) "
                    f"bringing {received:,} KRW"
                ),
            )

        return self._crossing(activity, merchant, cash_out.event, first.event, describe)


class FreshWalletFeed(Rule):
    """A merchant fed mostly by wallets charged minutes before they paid it."""

    name = "fresh_wallet_feed"
    fact = Payment
    config: FreshWalletFeedConfig

    def _charge_before(self, payment: Payment, activity: CityActivity) -> Charge | None:
        """The charge that makes the payer fresh at this payment, if any."""
        since = payment.time - self.config.fresh_minutes * MINUTE
        return activity.latest_charge(payment.payer, payment.event, since)

    def cross(self, payment: Payment, activity: CityActivity) -> Crossing | None:
        c, merchant = self.config, payment.merchant
        if self._charge_before(payment, activity) is None:
            return None  # judged as fresh money arrives: that is when the pattern grows
        since = payment.time - c.window_minutes * MINUTE
        received_by = activity.payments_to.get(merchant, ())
        received = self._window(activity, ("received", merchant), received_by, since).value
        fresh = self._window(
            activity,
            ("fresh", merchant),
            received_by,
            since,
            lambda p: self._charge_before(p, activity) is not None,
        )
        share = 100 * fresh.value / received if received else 0.0
        if (
            len(fresh.payers) < c.min_wallets
            or fresh.value < c.min_amount
            or share < c.min_share_percent
        ):
            return None

        def describe() -> Finding:
            evidence, attached = _attach(
                (
                    Evidence(self._charge_before(p, activity).event, "charge"),
                    Evidence(p.event, "payment"),
                )
                for p in fresh.newest_first()
            )
            observed = {
                "fresh_wallets": len(fresh.payers),
                "fresh_value": fresh.value,
                "received_in_window": received,
                "fresh_share_percent": round(share, 1),
            }
            return self._finding(
                activity,
                merchant,
                "merchant",
                payment.event,
                evidence=evidence,
                thresholds=self.thresholds,
                observed=_observed(observed, evidence, attached, len(fresh)),
                message=(
                    f"merchant {merchant} received {fresh.value:,} of {received:,} KRW "
                    f"({share:.0f}%) in {c.window_minutes} min from {len(fresh.payers)} wallets "
                    f"charged at most {c.fresh_minutes} min before they paid"
                ),
            )

        first_charge = self._charge_before(fresh.facts[0], activity)
        return self._crossing(activity, merchant, payment.event, first_charge.event, describe)


class RoundUnderLimit(Rule):
    """Repeated round payments to one merchant just under a limit (the city's monthly purchase
    limit and holding cap, read on chain, and any limit the configuration adds)."""

    name = "round_under_limit"
    fact = Payment
    config: RoundUnderLimitConfig

    def _limit_under(self, value: int, limits: dict[str, int]) -> tuple[str, int] | None:
        c = self.config
        if value % c.round_unit:
            return None
        above = [
            (limit, name)
            for name, limit in limits.items()
            if limit * (100 - c.margin_percent) <= value * 100 < limit * 100
        ]
        return min(above)[::-1] if above else None

    def cross(self, payment: Payment, activity: CityActivity) -> Crossing | None:
        c, merchant = self.config, payment.merchant
        limits = activity.limits | {f"configured {v:,}": v for v in c.limits}
        under = self._limit_under(payment.value, limits)
        if under is None:
            return None
        name, limit = under
        close = self._window(
            activity,
            (merchant, limit),
            activity.payments_to.get(merchant, ()),
            payment.time - c.window_minutes * MINUTE,
            lambda p: self._limit_under(p.value, {name: limit}) is not None,
        )
        if len(close) < c.min_count:
            return None

        def describe() -> Finding:
            evidence, attached = _attach(_payments(close.newest_first()))
            amounts = [e.event.args["value"] for e in evidence]
            observed = {"count": len(close), "amounts": amounts, "payers": len(close.payers)}
            return self._finding(
                activity,
                merchant,
                "merchant",
                payment.event,
                evidence=evidence,
                thresholds=self.thresholds | {"limit": limit, "limit_name": name},
                observed=_observed(observed, evidence, attached, len(close)),
                message=(
                    f"merchant {merchant} received {len(close)} round payments of "
                    f"{_listed([f'{a:,}' for a in amounts], len(close))} KRW in "
                    f"{c.window_minutes} min, each within {c.margin_percent:g}% under the {name} "
                    f"of {limit:,} KRW"
                ),
            )

        return self._crossing(activity, merchant, payment.event, close.facts[0].event, describe)


class OutsideBusinessHours(Rule):
    """Payments while the merchant is closed (Korean time)."""

    name = "outside_business_hours"
    fact = Payment
    config: OutsideBusinessHoursConfig

    def cross(self, payment: Payment, activity: CityActivity) -> Crossing | None:
        c, merchant = self.config, payment.merchant
        hours, source = c.hours_of(merchant, activity.category(merchant))
        if payment.value < c.min_amount or kst_minute_of_day(payment.time) in hours:
            return None
        closed = self._window(
            activity,
            (merchant, hours),
            activity.payments_to.get(merchant, ()),
            payment.time - c.window_minutes * MINUTE,
            lambda p: p.value >= c.min_amount and kst_minute_of_day(p.time) not in hours,
        )
        if len(closed) < c.min_count:
            return None

        def describe() -> Finding:
            evidence, attached = _attach(_payments(closed.newest_first()))
            times = [_clock(e.event.block_time) for e in evidence]
            return self._finding(
                activity,
                merchant,
                "merchant",
                payment.event,
                evidence=evidence,
                thresholds={
                    "hours": str(hours),
                    "hours_from": source,
                    "window_minutes": c.window_minutes,
                    "min_count": c.min_count,
                    "min_amount": c.min_amount,
                },
                observed=_observed(
                    {"count": len(closed), "times_kst": times}, evidence, attached, len(closed)
                ),
                message=(
                    f"merchant {merchant} was paid {len(closed)} time(s) at "
                    f"{_listed(times, len(closed))} KST, outside its hours {hours} ({source})"
                ),
            )

        return self._crossing(activity, merchant, payment.event, closed.facts[0].event, describe)


class _Spent(Window):
    """A wallet's payments since a charge, by merchant: their value, count and the newest few
    (all the evidence an alert carries)."""

    def __init__(self, charge: Charge) -> None:
        super().__init__(lambda p: position(p.event) > position(charge.event))
        self.charge = charge
        self.value_to: dict[str, int] = {}
        self.count_to: dict[str, int] = {}
        self.newest_to: dict[str, deque[Payment]] = {}

    def take(self, payment: Payment) -> None:
        merchant = payment.merchant
        self.value_to[merchant] = self.value_to.get(merchant, 0) + payment.value
        self.count_to[merchant] = self.count_to.get(merchant, 0) + 1
        self.newest_to.setdefault(merchant, deque(maxlen=EVIDENCE_CAP)).append(payment)


class IncentiveSpendAll(Rule):
    """A wallet charges with the incentive (or, in a cashback city, to earn it) and spends it
    all at one merchant."""

    name = "incentive_spend_all"
    fact = Payment
    config: IncentiveSpendAllConfig

    def _spent(self, activity: CityActivity, wallet: str, charge: Charge) -> _Spent:
        """The wallet's spending since `charge`: one per wallet, started again at a new charge."""
        key = (self, wallet)
        spent = activity.windows.get(key)
        if spent is None or spent.charge.event.key != charge.event.key:
            spent = activity.windows[key] = _Spent(charge)
        return spent.follow(activity.payments_by.get(wallet, ()), charge.time)

    def cross(self, payment: Payment, activity: CityActivity) -> Crossing | None:
        c, wallet, merchant = self.config, payment.payer, payment.merchant
        # A city that pays its incentive as cashback pays it on this very spending: any charge
        # spent at once at one shop brings its incentive with it.
        cashback = activity.books.incentive_mode == "cashback"
        charge = activity.latest_charge(
            wallet,
            payment.event,
            payment.time - c.window_minutes * MINUTE,
            with_incentive=not cashback,
        )
        if charge is None or charge.amount + charge.incentive < c.min_amount:
            return None
        charged = charge.amount + charge.incentive
        spent = self._spent(activity, wallet, charge)
        total = spent.value_to.get(merchant, 0)
        if total * 100 < charged * c.min_share_percent:
            return None
        share = round(100 * total / charged, 1)

        def describe() -> Finding:
            newest = _payments(reversed(spent.newest_to.get(merchant, ())))
            evidence, attached = _attach(chain([(Evidence(charge.event, "charge"),)], newest))
            observed = {
                "charged": charge.amount,
                "incentive": charge.incentive,
                "spent_at_merchant": total,
                "merchant": merchant,
                "share_percent": share,
                "balance_after": activity.balance(wallet),
            }
            return self._finding(
                activity,
                wallet,
                "wallet",
                payment.event,
                evidence=evidence,
                thresholds=self.thresholds,
                observed=_observed(
                    observed, evidence, attached, spent.count_to.get(merchant, 0) + 1
                ),
                message=(
                    f"wallet {wallet} charged {charge.amount:,} KRW with "
                    + (
                        "its incentive paid as cashback on payments"
                        if cashback
                        else f"a {charge.incentive:,} KRW incentive"
                    )
                    + f" and spent {total:,} KRW ({share:g}%) of it at merchant {merchant}"
                ),
            )

        return self._crossing(activity, wallet, payment.event, charge.event, describe)


class GiftChain(Rule):
    """Gift chains that converge on one wallet, which then pays one merchant: money from several
    residents, given to the wallet directly or passed on hand to hand, spent at a single shop
    (vouchers bought at a discount, collected for a merchant who turns them into cash,
    부정유통). Judged at each payment of a wallet given money in the window."""

    name = "gift_chain"
    fact = Payment
    config: GiftChainConfig
    # How far back along the givers the money is followed: A gives B gives C gives the wallet.
    depth: ClassVar[int] = 3

    def _given(self, activity: CityActivity, wallet: str, before: ChainEvent, since: int):
        """The gifts `wallet` received in the window before `before`, oldest first."""
        return [
            gift
            for gift in activity.gifts_to.get(wallet, ())
            if gift.time >= since and position(gift.event) < position(before)
        ]

    def _upstream(self, activity: CityActivity, payment: Payment, since: int) -> list[Gift]:
        """The gifts through which money reached the payer: its own, and back along each giver's
        gifts received before it gave, `depth` gifts deep."""
        found, frontier, seen = [], [(payment.payer, payment.event)], {payment.payer}
        for _ in range(self.depth):
            reached = []
            for receiver, before in frontier:
                for gift in self._given(activity, receiver, before, since):
                    found.append(gift)
                    if gift.giver not in seen:
                        seen.add(gift.giver)
                        reached.append((gift.giver, gift.event))
            frontier = reached
        return sorted(found, key=lambda gift: position(gift.event))

    def cross(self, payment: Payment, activity: CityActivity) -> Crossing | None:
        c, wallet, merchant = self.config, payment.payer, payment.merchant
        since = payment.time - c.window_minutes * MINUTE
        given = self._given(activity, wallet, payment.event, since)
        received = sum(gift.value for gift in given)
        if not given or received < c.min_amount:
            return None
        first = position(given[0].event)
        paid = [
            p
            for p in activity.payments_by.get(wallet, ())
            if p.merchant == merchant and first < position(p.event) <= position(payment.event)
        ]
        spent = sum(p.value for p in paid)
        if spent * 100 < received * c.min_share_percent:
            return None
        gifts = self._upstream(activity, payment, since)
        sources = sorted({gift.giver for gift in gifts} - {wallet})
        if len(sources) < c.min_wallets:
            return None
        share = round(100 * spent / received, 1)

        def describe() -> Finding:
            groups = sorted(
                [(Evidence(g.event, "gift"),) for g in gifts]
                + [(Evidence(p.event, "payment"),) for p in paid],
                key=lambda group: position(group[0].event),
                reverse=True,
            )
            evidence, attached = _attach(groups)
            observed = {
                "wallets": sources,
                "gifts": len(gifts),
                "given": received,
                "spent_at_merchant": spent,
                "merchant": merchant,
                "share_percent": share,
            }
            return self._finding(
                activity,
                wallet,
                "wallet",
                payment.event,
                evidence=evidence,
                thresholds=self.thresholds,
                observed=_observed(observed, evidence, attached, len(groups)),
                message=(
                    f"wallet {wallet} was given {received:,} KRW by gifts from "
                    f"{len(sources)} residents (directly or hand to hand) and spent {spent:,} "
                    f"KRW ({share:g}%) of it at merchant {merchant}"
                ),
            )

        return self._crossing(activity, wallet, payment.event, gifts[0].event, describe)


RULES: tuple[type[Rule], ...] = (
    QuickCashOut,
    FreshWalletFeed,
    RoundUnderLimit,
    OutsideBusinessHours,
    IncentiveSpendAll,
    GiftChain,
)
RULE_NAMES = tuple(rule.name for rule in RULES)


def rules_for(config: RulesConfig) -> list[Rule]:
    """The city's enabled rules with its thresholds."""
    rules = [rule(getattr(config, rule.name)) for rule in RULES]
    return [rule for rule in rules if rule.config.enabled]


def horizon(config: RulesConfig) -> int:
    """Seconds of activity the city's rules look back over (at most)."""
    c = config
    return max(
        c.quick_cash_out.window_minutes * MINUTE,
        c.quick_cash_out.customer_lookback_days * DAY,
        (c.fresh_wallet_feed.window_minutes + c.fresh_wallet_feed.fresh_minutes) * MINUTE,
        c.round_under_limit.window_minutes * MINUTE,
        c.outside_business_hours.window_minutes * MINUTE,
        c.incentive_spend_all.window_minutes * MINUTE,
        c.gift_chain.window_minutes * MINUTE,
    )
