"""The dashboard's figures: the ledger's books, and the breakdowns only the dashboard needs (by
fiscal year, business category, region, hour and day in KST; active wallets; top merchants;
time to settlement; incentive and cashback by month; the latest payments), folded from the same
events in one pass.

The books decide what each event means (which Transfer is a payment, which wallet a refund goes
to); this module only files what the books found under the dashboard's headings, so that a
refreshed summary costs the size of those headings, not of the history.
"""

from __future__ import annotations

import bisect
from collections import defaultdict, deque
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime

from citypay.chain.events import ChainEvent
from citypay.ledger import Books, CityBooks, Movement, Redemption
from citypay.ledger.books import KST, fiscal_year, policy_parameter

FEED_LENGTH = 100  # payments kept for the live feed
RECENT_REFUNDS = 50

# Events after which the registry counts (merchants, residents) are counted again.
_REGISTRY_EVENTS = frozenset({"AccountStatusSet", "AccountRecovered"})


def kst(block_time: int) -> datetime:
    """A block time as the wall clock in Korea shows it (KST has no daylight saving)."""
    return datetime.fromtimestamp(block_time, UTC) + KST


def day_key(block_time: int) -> str:
    return kst(block_time).date().isoformat()


def month_key(moment: datetime) -> str:
    """A KST moment's month as the dashboard files it, "YYYY-MM"."""
    return f"{moment.year:04d}-{moment.month:02d}"


@dataclass(slots=True)
class Tally:
    count: int = 0
    amount: int = 0

    def add(self, amount: int) -> None:
        self.count += 1
        self.amount += amount


def _hours() -> list[Tally]:
    return [Tally() for _ in range(24)]


@dataclass(slots=True)
class RedemptionFigures:
    """One kind of redemption (cash-out or resident refund) in one fiscal year."""

    requested: Tally = field(default_factory=Tally)  # tokens burned
    settled: Tally = field(default_factory=Tally)  # payout the bank paid
    returned: Tally = field(default_factory=Tally)  # tokens restored
    settle_seconds: list[int] = field(default_factory=list)  # sorted, request to settlement


@dataclass(slots=True)
class YearFigures:
    """One fiscal year (KST) of a city."""

    charges: Tally = field(default_factory=Tally)  # amount: charged + incentive
    charged: int = 0
    incentive: int = 0  # at charge
    cashback: Tally = field(default_factory=Tally)  # cashback minted on payments
    cashback_reversed: int = 0  # cashback burned when its payment was refunded
    payments: Tally = field(default_factory=Tally)
    by_category: dict[int | None, Tally] = field(default_factory=lambda: defaultdict(Tally))
    by_region: dict[int | None, Tally] = field(default_factory=lambda: defaultdict(Tally))
    by_hour: list[Tally] = field(default_factory=_hours)
    by_merchant: dict[str, Tally] = field(default_factory=lambda: defaultdict(Tally))
    refunds: Tally = field(default_factory=Tally)  # merchants' refunds of payments
    redemptions: dict[str, RedemptionFigures] = field(
        default_factory=lambda: defaultdict(RedemptionFigures)
    )
    # Policy money (정책발행) spent at merchants, by (program, category, region).
    program_spending: dict[tuple[int, int | None, int | None], Tally] = field(
        default_factory=lambda: defaultdict(Tally)
    )

    @property
    def issued(self) -> int:
        """What charges and cashback minted: what the annual issuance cap counts."""
        return self.charges.amount + self.cashback.amount


class Distinct:
    """How many distinct wallets: a set while its day or month takes payments, then only its
    size (payments come in chain order, so a period that is over takes no more; a city's year of
    daily sets of payers would otherwise stay in memory)."""

    __slots__ = ("_count", "_seen")

    def __init__(self) -> None:
        self._seen: set[str] | None = set()
        self._count = 0

    def add(self, address: str) -> None:
        self._seen.add(address)

    def close(self) -> None:
        if self._seen is not None:
            self._count, self._seen = len(self._seen), None

    def __len__(self) -> int:
        return self._count if self._seen is None else len(self._seen)


@dataclass(slots=True)
class DayFigures:
    payments: Tally = field(default_factory=Tally)
    by_hour: list[Tally] = field(default_factory=_hours)
    payers: Distinct = field(default_factory=Distinct)

    def close(self) -> None:
        self.payers.close()


@dataclass(slots=True)
class MonthFigures:
    payments: Tally = field(default_factory=Tally)
    payers: Distinct = field(default_factory=Distinct)
    merchants: Distinct = field(default_factory=Distinct)
    incentive: int = 0  # at charge
    cashback: Tally = field(default_factory=Tally)
    cashback_reversed: int = 0

    def close(self) -> None:
        self.payers.close()
        self.merchants.close()


@dataclass(frozen=True, slots=True)
class PaymentSeen:
    """A payment for the live feed; `seq` orders the feed for a stream that resumes."""

    seq: int
    block_number: int
    block_time: int
    tx_hash: str
    payer: str
    merchant: str
    value: int
    category: int | None
    region: int | None


@dataclass(frozen=True, slots=True)
class RefundSeen:
    block_number: int
    block_time: int
    tx_hash: str
    merchant: str
    payer: str
    value: int


@dataclass(slots=True)
class RegistryCounts:
    residents: int = 0
    merchants: int = 0
    merchants_active: int = 0


class CityFigures:
    """The dashboard's breakdowns of one city; its books are `books`."""

    def __init__(self, books: CityBooks, fiscal_year_start_month: int) -> None:
        self.books = books
        self.fiscal_year_start_month = fiscal_year_start_month
        self.years: dict[int, YearFigures] = defaultdict(YearFigures)
        self.days: dict[str, DayFigures] = defaultdict(DayFigures)
        self.months: dict[str, MonthFigures] = defaultdict(MonthFigures)
        self.feed: deque[PaymentSeen] = deque(maxlen=FEED_LENGTH)
        self.refunds: deque[RefundSeen] = deque(maxlen=RECENT_REFUNDS)
        self.payments_seen = 0
        self.redemptions_pending = 0
        # The treasury's cap, read when the events are folded; PolicyChanged events move it.
        self.annual_cap = 0
        # (month, mode) of each change of the incentive mode, in chain order: the mode of a
        # month is the last one changed to by its end (discount before any).
        self.mode_changes: list[tuple[str, str]] = []
        self._period_time: int | None = None
        self._period_of: tuple[int, YearFigures, DayFigures, MonthFigures] | None = None
        self._registry: RegistryCounts | None = None

    def year_of(self, block_time: int) -> YearFigures:
        return self.years[fiscal_year(block_time, self.fiscal_year_start_month)]

    @property
    def registry(self) -> RegistryCounts:
        """Counted from the books' accounts, again only after a registration event."""
        if self._registry is None:
            counts = RegistryCounts()
            for account in self.books.accounts.values():
                if account.kind == "resident" and account.status != "recovered":
                    counts.residents += 1
                elif account.kind == "merchant" and account.status != "recovered":
                    counts.merchants += 1
                    counts.merchants_active += account.status == "active"
            self._registry = counts
        return self._registry

    # --- what the books found -----------------------------------------------------------------

    def _period(self, block_time: int) -> tuple[int, YearFigures, DayFigures, MonthFigures]:
        """(hour, year, day, month) of a block time; many payments share a block, so the last
        one's is kept (the calendar arithmetic was most of a payment's cost)."""
        if block_time != self._period_time:
            moment = kst(block_time)
            period = (
                moment.hour,
                self.year_of(block_time),
                self.days[moment.date().isoformat()],
                self.months[month_key(moment)],
            )
            if self._period_of is not None:
                for before, now in zip(self._period_of[2:], period[2:], strict=True):
                    if before is not now:  # a new day or month: the last one is over
                        before.close()
            self._period_of, self._period_time = period, block_time
        return self._period_of

    def payment(self, movement: Movement) -> None:
        merchant = self.books.accounts[movement.counterparty]
        value, payer = movement.value, movement.account
        hour, year, day, month = self._period(movement.block_time)
        year.payments.add(value)
        year.by_category[merchant.category].add(value)
        year.by_region[merchant.region].add(value)
        year.by_hour[hour].add(value)
        year.by_merchant[merchant.address].add(value)
        day.payments.add(value)
        day.by_hour[hour].add(value)
        day.payers.add(payer)
        month.payments.add(value)
        month.payers.add(payer)
        month.merchants.add(merchant.address)
        self.payments_seen += 1
        self.feed.append(
            PaymentSeen(
                seq=self.payments_seen,
                block_number=movement.block_number,
                block_time=movement.block_time,
                tx_hash=movement.tx_hash,
                payer=movement.account,
                merchant=merchant.address,
                value=movement.value,
                category=merchant.category,
                region=merchant.region,
            )
        )

    def refund(self, movement: Movement) -> None:
        self.year_of(movement.block_time).refunds.add(movement.value)
        self.refunds.append(
            RefundSeen(
                block_number=movement.block_number,
                block_time=movement.block_time,
                tx_hash=movement.tx_hash,
                merchant=movement.counterparty,
                payer=movement.account,
                value=movement.value,
            )
        )

    def issued(self, event: ChainEvent) -> None:
        amount, incentive = event.args["amount"], event.args["incentive"]
        _, year, _, month = self._period(event.block_time)
        year.charges.add(amount + incentive)
        year.charged += amount
        year.incentive += incentive
        month.incentive += incentive

    def cashback_paid(self, event: ChainEvent) -> None:
        minted = event.args["minted"]
        if minted:  # not cut to nothing, nor all set against a debt
            _, year, _, month = self._period(event.block_time)
            year.cashback.add(minted)
            month.cashback.add(minted)

    def cashback_reversed(self, event: ChainEvent) -> None:
        _, year, _, month = self._period(event.block_time)
        year.cashback_reversed += event.args["burned"]
        month.cashback_reversed += event.args["burned"]

    def incentive_mode_changed(self, event: ChainEvent) -> None:
        month = month_key(kst(event.block_time))
        self.mode_changes.append((month, self.books.incentive_mode))

    def mode_in(self, month: str) -> str:
        """The incentive mode at the end of `month` ("YYYY-MM")."""
        mode = "discount"
        for changed_in, changed_to in self.mode_changes:
            if changed_in > month:
                break
            mode = changed_to
        return mode

    def program_spent(self, event: ChainEvent) -> None:
        merchant = self.books.accounts.get(event.args["merchant"])
        category, region = (merchant.category, merchant.region) if merchant else (None, None)
        year = self.year_of(event.block_time)
        year.program_spending[(event.args["program"], category, region)].add(event.args["amount"])

    def redemption_requested(self, event: ChainEvent) -> None:
        redemption = self._redemption(event)
        if redemption is not None:
            figures = self.year_of(event.block_time).redemptions[redemption.kind]
            figures.requested.add(redemption.burned)
            self.redemptions_pending += 1

    def redemption_closed(self, event: ChainEvent) -> None:
        redemption = self._redemption(event)
        # The books keep the first closing; a second one is their anomaly, not a second payout.
        if redemption is None or redemption.close_tx != event.tx_hash:
            return
        self.redemptions_pending -= 1
        figures = self.year_of(event.block_time).redemptions[redemption.kind]
        if redemption.status == "settled":
            figures.settled.add(event.args["payout"])
            bisect.insort(figures.settle_seconds, redemption.closed_at - redemption.requested_at)
        else:
            figures.returned.add(redemption.restored)

    def policy_changed(self, event: ChainEvent) -> None:
        if policy_parameter(event.args["parameter"]) == "annualIssuanceCap":
            self.annual_cap = event.args["newValue"]

    def registry_changed(self) -> None:
        self._registry = None

    def _redemption(self, event: ChainEvent) -> Redemption | None:
        return self.books.redemptions.get(event.args["id"])


class DashboardFigures:
    """Books and breakdowns of every city, folded from ChainEvents in chain order. Not
    thread-safe: the dashboard service holds a lock around it."""

    def __init__(self, fiscal_year_start_months: dict[str, int]) -> None:
        self.books = Books()
        self.books.subscribe(self._movement)
        self._start_months = fiscal_year_start_months
        self.cities: dict[str, CityFigures] = {}
        self._after_event = {
            ("treasury", "Issued"): CityFigures.issued,
            ("treasury", "RedemptionRequested"): CityFigures.redemption_requested,
            ("treasury", "RedemptionSettled"): CityFigures.redemption_closed,
            ("treasury", "RedemptionReturned"): CityFigures.redemption_closed,
            ("treasury", "PolicyChanged"): CityFigures.policy_changed,
            ("treasury", "IncentiveModeChanged"): CityFigures.incentive_mode_changed,
            ("cashback", "CashbackPaid"): CityFigures.cashback_paid,
            ("cashback", "CashbackReversed"): CityFigures.cashback_reversed,
            ("programs", "ProgramSpent"): CityFigures.program_spent,
        }

    def city(self, code: str) -> CityFigures:
        figures = self.cities.get(code)
        if figures is None:
            figures = self.cities[code] = CityFigures(
                self.books.city(code), self._start_months.get(code, 1)
            )
        return figures

    def apply(self, event: ChainEvent) -> None:
        self.books.apply(event)
        if not event.city:
            return  # the directory's events: the books file them
        after = self._after_event.get((event.contract, event.event))
        if after is not None:
            after(self.city(event.city), event)
        elif event.contract == "registry" or event.event in _REGISTRY_EVENTS:
            self.city(event.city).registry_changed()

    def apply_all(self, events: Iterable[ChainEvent]) -> None:
        for event in events:
            self.apply(event)

    def _movement(self, movement: Movement) -> None:
        if movement.kind == "payment":
            self.city(movement.city).payment(movement)
        elif movement.kind == "refund":
            self.city(movement.city).refund(movement)
