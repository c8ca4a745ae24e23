"""The fraud (깡) rules. Each looks at one kind of fact as it is folded, with the city's activity
up to and including it, and returns a Finding when its thresholds are crossed: the evidence
(events and their roles), the thresholds and what was observed.

Rules see nothing after the fact they judge, so a rule's answer does not depend on how the
listener cut the chain into chunks: a catch-up over stored events finds exactly what the live
listener found.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Any, ClassVar

from citypay.chain.events import ChainEvent
from citypay.fraud.activity import (
    CashOut,
    CityActivity,
    Fact,
    Payment,
    kst_minute_of_day,
    position,
)
from citypay.fraud.config import (
    FreshWalletFeedConfig,
    IncentiveSpendAllConfig,
    OutsideBusinessHoursConfig,
    QuickCashOutConfig,
    RoundUnderLimitConfig,
    RulesConfig,
)

MINUTE, DAY = 60, 86_400


@dataclass(frozen=True)
class Evidence:
    event: ChainEvent
    role: str  # payment, refund, charge, cash-out


@dataclass(frozen=True)
class Finding:
    rule: str
    city: str
    subject: str  # the merchant's or the wallet's address
    subject_kind: str  # merchant or wallet
    trigger: ChainEvent  # the event at which the thresholds were crossed
    evidence: tuple[Evidence, ...]
    thresholds: dict[str, Any]
    observed: dict[str, Any]
    message: str

    @property
    def key(self) -> str:
        """The same rule crossing at the same event for the same subject is the same alert,
        however often the events are read again (restarts, rescans, catch-ups)."""
        t = self.trigger
        raw = f"{self.city}|{self.rule}|{self.subject}|{t.block_number}|{t.tx_hash}|{t.log_index}"
        return hashlib.sha256(raw.encode()).hexdigest()

    @property
    def event_keys(self) -> frozenset[tuple[int, str, int]]:
        return frozenset(e.event.key for e in self.evidence)


def _unique(evidence: list[Evidence]) -> tuple[Evidence, ...]:
    seen: dict[tuple, Evidence] = {}
    for item in evidence:
        seen.setdefault(item.event.key, item)
    return tuple(sorted(seen.values(), key=lambda e: position(e.event)))


def _duration(seconds: int) -> str:
    return f"{seconds} s" if seconds < 2 * MINUTE else f"{seconds // MINUTE} min"


def _clock(unix_seconds: int) -> str:
    minute = kst_minute_of_day(unix_seconds)
    return f"{minute // 60:02d}:{minute % 60:02d}"


@dataclass
class Rule:
    """One pattern. `fact` is the kind of fact it judges."""

    name: ClassVar[str]
    fact: ClassVar[type]
    config: Any
    thresholds: dict[str, Any] = field(init=False)

    def __post_init__(self) -> None:
        self.thresholds = self.config.model_dump(mode="json", exclude={"enabled"})

    def judge(self, fact: Fact, activity: CityActivity) -> Finding | None:
        raise NotImplementedError

    def _finding(self, activity: CityActivity, subject: str, kind: str, trigger, **rest) -> Finding:
        return Finding(self.name, activity.city, subject, kind, trigger, **rest)


class QuickCashOut(Rule):
    """A merchant with few customers cashes out the same amount it received minutes earlier."""

    name = "quick_cash_out"
    fact = CashOut
    config: QuickCashOutConfig

    def judge(self, cash_out: CashOut, activity: CityActivity) -> Finding | None:
        c, merchant, now = self.config, cash_out.merchant, cash_out.event.block_time
        if cash_out.amount < c.min_amount:
            return None
        payments = activity.payments_to_since(merchant, now - c.window_minutes * MINUTE)
        if not payments:
            return None
        refunds = [r for r in activity.refunds_by.get(merchant, ()) if r.time >= payments[0].time]
        received = sum(p.value for p in payments) - sum(r.value for r in refunds)
        if received <= 0 or abs(cash_out.amount - received) * 100 > (
            cash_out.amount * c.amount_tolerance_percent
        ):
            return None
        lookback = activity.payments_to_since(merchant, now - c.customer_lookback_days * DAY)
        customers = {p.payer for p in lookback}
        if len(customers) > c.max_customers:
            return None
        seconds = now - payments[0].time
        return self._finding(
            activity,
            merchant,
            "merchant",
            cash_out.event,
            evidence=_unique(
                [Evidence(p.event, "payment") for p in payments]
                + [Evidence(r.event, "refund") for r in refunds]
                + [Evidence(cash_out.event, "cash-out")]
            ),
            thresholds=self.thresholds,
            observed={
                "cashed_out": cash_out.amount,
                "received_in_window": received,
                "payments": len(payments),
                "customers": len(customers),
                "seconds_since_first_payment": seconds,
            },
            message=(
                f"merchant {merchant} with {len(customers)} customer(s) in "
                f"{c.customer_lookback_days} days cashed out {cash_out.amount:,} KRW "
                f"{_duration(seconds)} after the first of {len(payments)} payment(s) "
                f"bringing {received:,} KRW"
            ),
        )


class FreshWalletFeed(Rule):
    """A merchant fed mostly by wallets charged minutes before they paid it."""

    name = "fresh_wallet_feed"
    fact = Payment
    config: FreshWalletFeedConfig

    def _charge_before(self, payment: Payment, activity: CityActivity):
        """The charge that makes the payer fresh at this payment, if any."""
        since = payment.time - self.config.fresh_minutes * MINUTE
        return activity.latest_charge(payment.payer, payment.event, since)

    def judge(self, payment: Payment, activity: CityActivity) -> Finding | None:
        c, merchant = self.config, payment.merchant
        if self._charge_before(payment, activity) is None:
            return None  # judged as fresh money arrives: that is when the pattern grows
        window = activity.payments_to_since(merchant, payment.time - c.window_minutes * MINUTE)
        evidence, fresh_value, fresh_wallets = [], 0, set()
        for p in window:
            charge = self._charge_before(p, activity)
            if charge is None:
                continue
            fresh_value += p.value
            fresh_wallets.add(p.payer)
            evidence += [Evidence(charge.event, "charge"), Evidence(p.event, "payment")]
        received = sum(p.value for p in window)
        share = 100 * fresh_value / received if received else 0.0
        if (
            len(fresh_wallets) < c.min_wallets
            or fresh_value < c.min_amount
            or share < c.min_share_percent
        ):
            return None
        return self._finding(
            activity,
            merchant,
            "merchant",
            payment.event,
            evidence=_unique(evidence),
            thresholds=self.thresholds,
            observed={
                "fresh_wallets": len(fresh_wallets),
                "fresh_value": fresh_value,
                "received_in_window": received,
                "fresh_share_percent": round(share, 1),
            },
            message=(
                f"merchant {merchant} received {fresh_value:,} of {received:,} KRW "
                f"({share:.0f}%) in {c.window_minutes} min from {len(fresh_wallets)} wallets "
                f"charged at most {c.fresh_minutes} min before they paid"
            ),
        )


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

    def judge(self, payment: Payment, activity: CityActivity) -> Finding | None:
        c = self.config
        limits = activity.limits | {f"configured {v:,}": v for v in c.limits}
        under = self._limit_under(payment.value, limits)
        if under is None:
            return None
        name, limit = under
        window = activity.payments_to_since(
            payment.merchant, payment.time - c.window_minutes * MINUTE
        )
        close = [p for p in window if self._limit_under(p.value, {name: limit})]
        if len(close) < c.min_count:
            return None
        amounts = [p.value for p in close]
        return self._finding(
            activity,
            payment.merchant,
            "merchant",
            payment.event,
            evidence=_unique([Evidence(p.event, "payment") for p in close]),
            thresholds=self.thresholds | {"limit": limit, "limit_name": name},
            observed={
                "count": len(close),
                "amounts": amounts,
                "payers": len({p.payer for p in close}),
            },
            message=(
                f"merchant {payment.merchant} received {len(close)} round payments of "
                f"{', '.join(f'{a:,}' for a in amounts)} KRW in {c.window_minutes} min, each "
                f"within {c.margin_percent:g}% under the {name} of {limit:,} KRW"
            ),
        )


class OutsideBusinessHours(Rule):
    """Payments while the merchant is closed (Korean time)."""

    name = "outside_business_hours"
    fact = Payment
    config: OutsideBusinessHoursConfig

    def judge(self, payment: Payment, activity: CityActivity) -> Finding | None:
        c, merchant = self.config, payment.merchant
        hours, source = c.hours_of(merchant, activity.category(merchant))
        if payment.value < c.min_amount or kst_minute_of_day(payment.time) in hours:
            return None
        window = activity.payments_to_since(merchant, payment.time - c.window_minutes * MINUTE)
        closed = [
            p for p in window if p.value >= c.min_amount and kst_minute_of_day(p.time) not in hours
        ]
        if len(closed) < c.min_count:
            return None
        times = [_clock(p.time) for p in closed]
        return self._finding(
            activity,
            merchant,
            "merchant",
            payment.event,
            evidence=_unique([Evidence(p.event, "payment") for p in closed]),
            thresholds={
                "hours": str(hours),
                "hours_from": source,
                "window_minutes": c.window_minutes,
                "min_count": c.min_count,
                "min_amount": c.min_amount,
            },
            observed={"count": len(closed), "times_kst": times},
            message=(
                f"merchant {merchant} was paid {len(closed)} time(s) at {', '.join(times)} KST, "
                f"outside its hours {hours} ({source})"
            ),
        )


class IncentiveSpendAll(Rule):
    """A wallet charges with the incentive and spends it all at one merchant."""

    name = "incentive_spend_all"
    fact = Payment
    config: IncentiveSpendAllConfig

    def judge(self, payment: Payment, activity: CityActivity) -> Finding | None:
        c, wallet, merchant = self.config, payment.payer, payment.merchant
        charge = activity.latest_charge(
            wallet, payment.event, payment.time - c.window_minutes * MINUTE, with_incentive=True
        )
        if charge is None or charge.amount + charge.incentive < c.min_amount:
            return None
        charged = charge.amount + charge.incentive
        spent = [
            p
            for p in activity.payments_by.get(wallet, ())
            if p.merchant == merchant and position(p.event) > position(charge.event)
        ]
        total = sum(p.value for p in spent)
        if total * 100 < charged * c.min_share_percent:
            return None
        share = round(100 * total / charged, 1)
        return self._finding(
            activity,
            wallet,
            "wallet",
            payment.event,
            evidence=_unique(
                [Evidence(charge.event, "charge")] + [Evidence(p.event, "payment") for p in spent]
            ),
            thresholds=self.thresholds,
            observed={
                "charged": charge.amount,
                "incentive": charge.incentive,
                "spent_at_merchant": total,
                "merchant": merchant,
                "share_percent": share,
                "balance_after": activity.balance(wallet),
            },
            message=(
                f"wallet {wallet} charged {charge.amount:,} KRW with a {charge.incentive:,} KRW "
                f"incentive and spent {total:,} KRW ({share:g}%) of it at merchant {merchant}"
            ),
        )


RULES: tuple[type[Rule], ...] = (
    QuickCashOut,
    FreshWalletFeed,
    RoundUnderLimit,
    OutsideBusinessHours,
    IncentiveSpendAll,
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
    )
