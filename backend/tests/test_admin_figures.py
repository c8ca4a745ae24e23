"""The dashboard's figures on hand-made events: each filed under the right KST hour, day, month
and fiscal year; the same summary whether folded block by block or all at once; and a block that
costs the dashboard its own events, not the history."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from itertools import count

from citypay.admin.figures import DashboardFigures
from citypay.admin.summary import build_summary
from citypay.chain.events import ChainEvent
from citypay.ledger.books import ZERO_ADDRESS

KST = timedelta(hours=9)
CITY = {"code": "gimpo", "name": "Gimpo Pay", "localName": "김포페이", "symbol": "GIMPO"}
RESTAURANT, BAKERY = 5611, 4721
GIMPO, OTHER_REGION = 41570, 41571


def at(kst_time: str) -> int:
    """Unix seconds of a wall-clock time in Korea, 'YYYY-MM-DD HH:MM'."""
    moment = datetime.strptime(kst_time, "%Y-%m-%d %H:%M").replace(tzinfo=UTC) - KST
    return int(moment.timestamp())


def wallet(kind: str, n: int) -> str:
    return "0x" + f"{kind}{n:039x}"[-40:]


class Chain:
    """Events as a node numbers them: one block per call of `block`, log indexes in order."""

    def __init__(self, start: int) -> None:
        self.time = start
        self.number = 1_000
        self.log_index = count()
        self.blocks: list[list[ChainEvent]] = []

    def block(self, seconds_later: int = 1) -> list[ChainEvent]:
        self.number += 1
        self.time += seconds_later
        self.blocks.append([])
        return self.blocks[-1]

    def __call__(self, contract: str, event: str, **args) -> None:
        if not self.blocks:
            self.block(0)
        self.blocks[-1].append(
            ChainEvent("gimpo", contract, event, self.number, f"0x{self.number:064x}",
                       self.time, f"0x{self.number:064x}", next(self.log_index), args)
        )  # fmt: skip

    @property
    def events(self) -> list[ChainEvent]:
        return [event for block in self.blocks for event in block]

    def resident(self, address: str) -> None:
        self("token", "AccountStatusSet", account=address, kind=1, active=True)
        self("registry", "ResidentRegistered", wallet=address, identityHash="0x01", region=GIMPO)

    def merchant(self, address: str, category: int, region: int = GIMPO) -> None:
        self("token", "AccountStatusSet", account=address, kind=2, active=True)
        self("registry", "MerchantRegistered", wallet=address, businessIdHash="0x02",
             category=category, region=region, annualRevenue=1,
             payoutAccountHash="0x03")  # fmt: skip

    def charge(self, resident: str, amount: int, incentive: int) -> None:
        self("token", "Transfer", **{"from": ZERO_ADDRESS, "to": resident,
                                     "value": amount + incentive})  # fmt: skip
        self("treasury", "Issued", resident=resident, depositReference="0x04",
             issuer=ZERO_ADDRESS, amount=amount, incentive=incentive)  # fmt: skip

    def pay(self, payer: str, merchant: str, value: int) -> None:
        self("token", "Transfer", **{"from": payer, "to": merchant, "value": value})

    def cash_out(self, number: int, merchant: str, amount: int) -> None:
        self("token", "Transfer", **{"from": merchant, "to": ZERO_ADDRESS, "value": amount})
        self("treasury", "RedemptionRequested", id=number, account=merchant, kind=0,
             burned=amount, payout=amount, payoutAccountHash="0x05")  # fmt: skip


def summary(events, now: int, cap: int = 1_000_000_000) -> dict:
    figures = DashboardFigures({"gimpo": 1})
    figures.apply_all(events)
    return build_summary(figures.city("gimpo"), city=CITY, annual_cap=cap, now=now)


RESIDENT, OTHER = wallet("a", 1), wallet("a", 2)
NOODLES, BAKERY_SHOP = wallet("b", 1), wallet("b", 2)


def _new_year() -> Chain:
    """Two merchants, two residents, payments on each side of midnight of 1 January (KST)."""
    chain = Chain(at("2025-12-31 20:00"))
    for resident in (RESIDENT, OTHER):
        chain.resident(resident)
    chain.merchant(NOODLES, RESTAURANT)
    chain.merchant(BAKERY_SHOP, BAKERY, OTHER_REGION)
    chain.charge(RESIDENT, 100_000, 10_000)
    chain.block(at("2025-12-31 23:30") - chain.time)
    chain.pay(RESIDENT, NOODLES, 9_000)  # fiscal year 2025, 23 h KST (14:30 UTC)
    chain.block(at("2026-01-01 00:10") - chain.time)
    chain.pay(RESIDENT, NOODLES, 12_000)  # 2026, midnight hour, though 31 December in UTC
    chain.charge(OTHER, 50_000, 5_000)
    chain.block(at("2026-01-01 09:05") - chain.time)
    chain.pay(OTHER, BAKERY_SHOP, 4_500)
    chain.pay(RESIDENT, BAKERY_SHOP, 3_000)
    return chain


def test_payments_are_filed_by_kst_hour_day_month_and_fiscal_year():
    s = summary(_new_year().events, now=at("2026-01-01 12:00"))
    kpis = s["kpis"]
    assert (s["fiscalYear"], s["today"]) == (2026, "2026-01-01")
    assert (kpis["paymentsThisYear"], kpis["paymentsAmountThisYear"]) == (3, 19_500)
    assert (kpis["paymentsToday"], kpis["activeWalletsToday"]) == (3, 2)
    assert kpis["issuedThisYear"] == 55_000  # the charge of 31 December counts in 2025
    assert (kpis["merchantsPaidThisYear"], kpis["merchantsActive"]) == (2, 2)
    hours = {r["hour"]: (r["todayPayments"], r["yearAmount"]) for r in s["tables"]["hours"]["rows"]}
    assert hours[0] == (1, 12_000) and hours[9] == (2, 7_500) and hours[23] == (0, 0)
    daily = {r["date"]: r["payments"] for r in s["tables"]["daily"]["rows"]}
    assert (daily["2025-12-31"], daily["2026-01-01"]) == (1, 3)
    monthly = {r["month"]: r for r in s["tables"]["monthly"]["rows"]}
    assert (monthly["2025-12"]["activeWallets"], monthly["2025-12"]["amount"]) == (1, 9_000)
    assert monthly["2026-01"]["merchantsPaid"] == 2
    categories = [(r["code"], r["amount"], r["share"]) for r in s["tables"]["categories"]["rows"]]
    assert categories == [(RESTAURANT, 12_000, 61.5), (BAKERY, 7_500, 38.5)]
    regions = {r["code"]: r["region"]["en"] for r in s["tables"]["regions"]["rows"]}
    assert regions == {GIMPO: "Gimpo-si", OTHER_REGION: f"Region {OTHER_REGION}"}

    last_year = summary(_new_year().events, now=at("2025-12-31 23:59"))["kpis"]
    assert (last_year["paymentsThisYear"], last_year["issuedThisYear"]) == (1, 110_000)


def test_cap_cash_out_times_refunds_and_policy_changes():
    chain = _new_year()
    chain.block()
    chain.cash_out(0, NOODLES, 21_000)
    chain.cash_out(1, BAKERY_SHOP, 7_500)
    chain.block(42)
    chain("treasury", "RedemptionSettled", id=0, account=NOODLES, payout=21_000,
          bankReference="0x07")  # fmt: skip
    chain("token", "Transfer", **{"from": ZERO_ADDRESS, "to": BAKERY_SHOP, "value": 7_500})
    chain("treasury", "RedemptionReturned", id=1, account=BAKERY_SHOP, restored=7_500,
          reason="0x08")  # fmt: skip
    chain.block()
    chain.pay(OTHER, NOODLES, 2_000)
    chain.pay(NOODLES, OTHER, 500)
    chain("token", "Refunded", merchant=NOODLES, payer=OTHER, paymentId="0x09", value=500)
    chain.cash_out(2, BAKERY_SHOP, 1_000)
    chain("treasury", "PolicyChanged", parameter="0x" + b"annualIssuanceCap".ljust(32, b"\0").hex(),
          oldValue=1_000_000_000, newValue=2_000_000_000)  # fmt: skip

    figures = DashboardFigures({"gimpo": 1})
    figures.apply_all(chain.events)
    gimpo = figures.city("gimpo")
    s = build_summary(gimpo, city=CITY, annual_cap=gimpo.annual_cap, now=at("2026-01-01 12:00"))
    kpis = s["kpis"]
    assert (kpis["annualCap"], kpis["capUsedPercent"]) == (2_000_000_000, 0.0)
    assert (kpis["cashOutsThisYear"], kpis["cashOutAmountThisYear"]) == (3, 29_500)
    assert (kpis["cashOutsSettledThisYear"], kpis["cashOutSettledAmountThisYear"]) == (1, 21_000)
    assert (kpis["cashOutsReturnedThisYear"], kpis["redemptionsPending"]) == (1, 1)
    assert (kpis["outstanding"], kpis["medianSecondsToSettle"], kpis["maxSecondsToSettle"]) == (
        1_000,
        42,
        42,
    )
    assert (kpis["refundsThisYear"], kpis["refundAmountThisYear"]) == (1, 500)
    assert kpis["circulation"] == 165_000 - 21_000 - 1_000
    statuses = [(r["id"], r["status"]["en"]) for r in s["tables"]["redemptions"]["rows"]]
    assert statuses == [(2, "Pending"), (1, "Returned"), (0, "Settled")]
    assert s["tables"]["redemptions"]["rows"][2]["secondsToSettle"] == 42
    assert [r["amount"] for r in s["tables"]["refunds"]["rows"]] == [500]
    # The refund's movement back to the resident is no payment.
    assert [p["amount"] for p in s["tables"]["payments"]["rows"]] == [2_000, 3_000, 4_500, 12_000,
                                                                      9_000]  # fmt: skip


def _busy_history(residents: int, merchants: int, payments: int) -> Chain:
    chain = Chain(at("2026-03-02 08:00"))
    for n in range(residents):
        chain.resident(wallet("a", n))
    for n in range(merchants):
        chain.merchant(wallet("b", n), (RESTAURANT, BAKERY, 4761)[n % 3], GIMPO + n % 4)
    for n in range(residents):
        chain.charge(wallet("a", n), 400_000, 40_000)
    for n in range(payments):
        if n % 40 == 0:
            chain.block(37)  # blocks of 40 payments, the day spread over the hours
        chain.pay(wallet("a", n % residents), wallet("b", (n * 7) % merchants), 1_000 + n % 9_000)
    return chain


def test_folding_block_by_block_gives_what_folding_at_once_gives():
    chain = _busy_history(residents=60, merchants=12, payments=2_000)
    now = chain.time + 60
    at_once = summary(chain.events, now)
    figures = DashboardFigures({"gimpo": 1})
    for block in chain.blocks:
        figures.apply_all(block)
        build_summary(figures.city("gimpo"), city=CITY, annual_cap=1_000_000_000, now=now)
    by_block = build_summary(figures.city("gimpo"), city=CITY, annual_cap=1_000_000_000, now=now)
    assert by_block == at_once
    assert at_once["kpis"]["paymentsThisYear"] == 2_000


def test_a_block_costs_the_dashboard_its_own_events_not_the_history():
    chain = _busy_history(residents=2_000, merchants=300, payments=100_000)
    history, recent = chain.blocks[:-50], chain.blocks[-50:]
    figures = DashboardFigures({"gimpo": 1})
    started = time.perf_counter()
    for block in history:
        figures.apply_all(block)
    folded = time.perf_counter() - started
    gimpo = figures.city("gimpo")
    started = time.perf_counter()
    for block in recent:  # what the dashboard does after each block: fold it, summarize
        figures.apply_all(block)
        build_summary(gimpo, city=CITY, annual_cap=1_000_000_000, now=chain.time + 60)
    per_block = (time.perf_counter() - started) / len(recent)
    events = sum(len(block) for block in history)
    print(
        f"\nfolded {events:,} events in {folded:.2f} s; then {per_block * 1000:.1f} ms a block "
        "(40 payments folded and the summary built again)"
    )
    assert per_block < folded / 20


def test_money_by_class_policy_money_by_place_and_gifts():
    """A youth allowance paid to a resident who spends part of it at the noodle shop; its expiry
    sends the rest back to the city; some general money expires too; a gift between residents."""
    chain = _new_year()
    code = "0x" + b"YOUTH-2026".ljust(32, b"\0").hex()
    expiry = at("2026-03-31 00:00")
    chain.block()
    chain("programs", "ProgramCreated", program=1, code=code,
          terms=(code, 1_000_000, 300_000, 0, expiry, 2**64 - 1, [], []))  # fmt: skip
    chain("programs", "ProgramFunded", program=1, amount=1_000_000, bankReference="0x06", by="0x07")
    chain("token", "Transfer", **{"from": ZERO_ADDRESS, "to": OTHER, "value": 300_000})
    chain("programs", "ProgramPaid", program=1, recipient=OTHER, amount=300_000)
    chain.block()
    chain("programs", "ProgramSpent", program=1, payer=OTHER, merchant=NOODLES, amount=20_000)
    chain.pay(OTHER, NOODLES, 20_000)
    chain("gifts", "Gifted", **{"from": RESIDENT, "to": OTHER, "value": 5_000, "nonce": "0x00"})
    chain("token", "Transfer", **{"from": RESIDENT, "to": OTHER, "value": 5_000})
    chain.block(at("2026-04-01 00:00") - chain.time)
    chain("programs", "Expired", account=OTHER, program=1, amount=280_000)
    chain("programs", "Expired", account=OTHER, program=0, amount=1_000)
    chain("token", "Transfer", **{"from": OTHER, "to": ZERO_ADDRESS, "value": 281_000})

    s = summary(chain.events, now=at("2026-04-01 12:00"))
    classes = {row["class"]["en"]: row for row in s["tables"]["classes"]["rows"]}
    youth = classes["Program YOUTH-2026"]
    assert (youth["issued"], youth["spent"], youth["expired"]) == (300_000, 20_000, 280_000)
    # Not closed: what was funded and never paid out is not returned yet.
    assert (youth["returned"], youth["outstanding"], youth["expiry"]) == (280_000, 0, expiry)
    general = classes["General issue"]
    assert (general["issued"], general["spent"], general["expired"]) == (165_000, 28_500, 1_000)
    # Merchants' balances are general money too: all that is left in circulation.
    assert general["outstanding"] == s["kpis"]["circulation"] == 165_000 + 300_000 - 281_000
    spending = s["tables"]["programSpending"]["rows"]
    assert [(r["program"], r["category"]["en"], r["amount"]) for r in spending] == [
        ("YOUTH-2026", s["tables"]["categories"]["rows"][0]["category"]["en"], 20_000)
    ]
    kpis = s["kpis"]
    assert (kpis["programMoney"], kpis["expiredTotal"], kpis["giftedTotal"]) == (0, 281_000, 5_000)


def test_a_city_that_turns_to_cashback_shows_each_months_incentive_as_it_was_paid():
    """Discount at charge in January; from February, cashback on payments: a month's row says
    how it paid, and the year's issuance and incentive count both as the treasury does."""
    chain = _new_year()
    chain.block(at("2026-02-03 10:00") - chain.time)
    chain("treasury", "IncentiveModeChanged", oldMode=0, newMode=1)
    chain("treasury", "CashbackLinked", cashback=wallet("c", 1))
    chain("cashback", "CashbackBudgetChanged", oldBudget=0, newBudget=500_000)
    chain.charge(OTHER, 20_000, 0)
    chain.pay(OTHER, NOODLES, 30_000)
    chain("token", "Transfer", **{"from": ZERO_ADDRESS, "to": OTHER, "value": 3_000})
    chain("cashback", "CashbackPaid", payer=OTHER, merchant=NOODLES, paymentId="0x0a",
          resident=OTHER, base=30_000, bps=1_000, minted=3_000, fromDebt=0)  # fmt: skip
    chain.block(at("2026-03-05 10:00") - chain.time)
    chain.pay(NOODLES, OTHER, 10_000)
    chain("token", "Refunded", merchant=NOODLES, payer=OTHER, paymentId="0x0a", value=10_000)
    chain("token", "Transfer", **{"from": OTHER, "to": ZERO_ADDRESS, "value": 1_000})
    chain("cashback", "CashbackReversed", payer=OTHER, merchant=NOODLES, paymentId="0x0a",
          resident=OTHER, base=10_000, amount=1_000, burned=1_000)  # fmt: skip

    s = summary(chain.events, now=at("2026-03-20 12:00"))
    kpis = s["kpis"]
    assert kpis["incentiveMode"] == {"ko": "결제 캐시백", "en": "Cashback on payments"}
    # 2026: the charge of 1 January (50,000 + 5,000), February's 20,000 and 3,000 of cashback.
    assert (kpis["issuedThisYear"], kpis["chargedThisYear"]) == (78_000, 70_000)
    assert (kpis["incentiveThisYear"], kpis["incentiveTotal"]) == (8_000, 18_000)
    assert (kpis["cashbackThisMonth"], kpis["cashbackTotal"]) == (0, 3_000)
    assert (kpis["cashbackReversedTotal"], kpis["cashbackOwed"]) == (1_000, 0)
    assert kpis["cashbackBudget"] == 500_000 - 3_000 + 1_000
    months = {row["month"]: row for row in s["tables"]["incentive"]["rows"]}
    assert [
        (months[m]["mode"]["en"], months[m]["chargeIncentive"], months[m]["cashbackPaid"],
         months[m]["cashbackReversed"])
        for m in ("2025-12", "2026-01", "2026-02", "2026-03")
    ] == [
        ("Discount at charge", 10_000, 0, 0),
        ("Discount at charge", 5_000, 0, 0),
        ("Cashback on payments", 0, 3_000, 0),
        ("Cashback on payments", 0, 0, 1_000),
    ]  # fmt: skip
    assert months["2026-02"]["cashbacks"] == 1
    # A city that never linked a cashback contract has no budget to show.
    assert summary(_new_year().events, now=at("2026-01-01 12:00"))["kpis"]["cashbackBudget"] is None
