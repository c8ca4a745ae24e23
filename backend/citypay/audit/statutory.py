"""The report a city makes to the Ministry of the Interior and Safety every half year, from the
chain alone: `python -m citypay.audit report --period 2026H1` (or a year, `--period 2026`).

Periods are calendar halves and years in Korean time (KST), as the ministry counts them; an event
belongs to the period its block's time falls in. Per city:

- issuance by kind: general issue (charges and their incentive), the sales (the KRW residents
  paid in) and the incentive given, at charge or as cashback on payments (결제 캐시백, which is
  general issue too); policy issue (정책발행), in all and by program (paid out, recipients,
  spent at merchants, refunded, expired, returned to the city);
- use: payments, merchants' refunds of payments, and gifts between residents (선물하기);
- redemption: merchants' cash-outs (requested, paid, returned by the bank), residents' refunds
  (tokens burned and KRW paid out), balances confiscated after illegal exchange, cashback taken
  back (burned) from residents whose payment was refunded;
- outstanding: the tokens in circulation at the start and end of the period, the payouts still
  pending at its end, what expired and went back to the city (expired tokens, and the funding a
  closed program never paid out), and the reversed cashback residents still owed at its end;
- merchants registered and revoked (for illegal exchange among them), residents registered, and
  the active users: residents who paid and merchants paid in the period.

As a table, as JSON, and as CSV in UTF-8 with a byte-order mark, which Excel opens with Hangul.
"""

from __future__ import annotations

import csv
import io
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from rich.console import Console
from rich.table import Table

from citypay.admin.export import BOM
from citypay.chain.enums import Status
from citypay.chain.events import ChainEvent
from citypay.ledger.books import Books, CityBooks, Movement

KST = timedelta(hours=9)
_PERIOD = re.compile(r"^(\d{4})(?:H([12]))?$")
PERIOD_FORMS = "a year and half, 2026H1 or 2026H2, or a whole year, 2026"


class PeriodError(ValueError):
    pass


@dataclass(frozen=True)
class Period:
    label: str
    start: int  # unix seconds, inclusive
    end: int  # unix seconds, exclusive

    @classmethod
    def parse(cls, text: str) -> Period:
        match = _PERIOD.match(text.strip())
        if match is None or not 2000 <= int(match.group(1)) <= 9998:
            raise PeriodError(f"--period {text!r}: expected {PERIOD_FORMS}")
        year, half = int(match.group(1)), match.group(2)
        first, last = {None: (1, 13), "1": (1, 7), "2": (7, 13)}[half]

        def kst_month_start(year_: int, month: int) -> int:
            if month == 13:
                year_, month = year_ + 1, 1
            return int((datetime(year_, month, 1, tzinfo=UTC) - KST).timestamp())

        return cls(text.strip(), kst_month_start(year, first), kst_month_start(year, last))

    def holds(self, moment: int) -> bool:
        return self.start <= moment < self.end

    def as_dict(self) -> dict[str, Any]:
        def kst(moment: int) -> str:
            return (datetime.fromtimestamp(moment, UTC) + KST).strftime("%Y-%m-%d")

        last_day = kst(self.end - 1)
        return {"label": self.label, "from": kst(self.start), "to": last_day, "timezone": "KST"}


@dataclass(frozen=True)
class Item:
    key: str
    ko: str
    en: str
    unit: str  # won or count


# The report's rows, by section, in the order a person reads them.
SECTIONS: tuple[tuple[str, str, str, tuple[Item, ...]], ...] = (
    ("issuance", "발행", "Issuance", (
        Item("general_issued", "일반발행액 (인센티브 포함)", "General issue", "won"),
        Item("general_charges", "충전 건수", "Charges", "count"),
        Item("sales", "판매액 (이용자 입금)", "Sales (KRW paid in)", "won"),
        Item("incentive", "인센티브 지원액 (결제 캐시백 포함)", "Incentive given", "won"),
        Item("cashbacks", "결제 캐시백 건수", "Cashbacks on payments", "count"),
        Item("cashback_paid", "결제 캐시백 지급액", "of which cashback on payments", "won"),
        Item("policy_issued", "정책발행액", "Policy issue", "won"),
    )),
    ("use", "사용", "Use", (
        Item("payments", "결제 건수", "Payments", "count"),
        Item("paid", "결제액", "Paid at merchants", "won"),
        Item("merchant_refunds", "가맹점 결제 환불 건수", "Merchant refunds", "count"),
        Item("merchant_refunded", "가맹점 결제 환불액", "Refunded by merchants", "won"),
        Item("gifts", "선물하기 건수", "Gifts between residents", "count"),
        Item("gifted", "선물하기 금액", "Gifted", "won"),
    )),
    ("redemption", "환전·환불", "Redemption", (
        Item("cash_outs", "환전 신청 건수", "Cash-outs requested", "count"),
        Item("cashed_out", "환전 신청액", "Cashed out (burned)", "won"),
        Item("cash_outs_paid", "환전 지급액", "Cash-outs paid by the bank", "won"),
        Item("cash_outs_returned", "환전 반환액 (이체 실패)", "Cash-outs returned", "won"),
        Item("resident_refunds", "이용자 환불 건수", "Resident refunds", "count"),
        Item("resident_refunded", "이용자 환불 소멸액", "Resident refunds (burned)", "won"),
        Item("resident_refund_paid", "이용자 환불 지급액", "Resident refunds paid out", "won"),
        Item("confiscations", "부정유통 환수 건수", "Confiscations", "count"),
        Item("confiscated", "부정유통 환수액", "Confiscated", "won"),
        Item("cashback_reversed", "결제 캐시백 환수액 (결제 환불)", "Cashback taken back", "won"),
    )),
    ("outstanding", "잔액", "Outstanding", (
        Item("outstanding_at_start", "기초 유통잔액", "In circulation at the start", "won"),
        Item("outstanding_at_end", "기말 유통잔액", "In circulation at the end", "won"),
        Item("payouts_pending_at_end", "기말 지급 대기액", "Payouts pending at the end", "won"),
        Item("expired", "유효기간 경과 소멸액", "Expired", "won"),
        Item("returned_to_city", "지자체 환수액", "Returned to the city", "won"),
        Item("cashback_owed_at_end", "기말 캐시백 미환수액", "Cashback owed at the end", "won"),
    )),
    ("registry", "가맹점·이용자", "Merchants and users", (
        Item("merchants_registered", "가맹점 신규 등록", "Merchants registered", "count"),
        Item("merchants_revoked", "가맹점 등록 취소", "Merchants revoked", "count"),
        Item("merchants_revoked_illegal", "부정유통 취소", "of which illegal exchange", "count"),
        Item("merchants_at_end", "기말 등록 가맹점", "Merchants registered at the end", "count"),
        Item("residents_registered", "이용자 신규 등록", "Residents registered", "count"),
        Item("residents_at_end", "기말 등록 이용자", "Residents registered at the end", "count"),
        Item("active_payers", "결제 이용자 수", "Residents who paid", "count"),
        Item("active_merchants", "결제 가맹점 수", "Merchants paid", "count"),
    )),
)  # fmt: skip
ITEMS = {item.key: item for _, _, _, items in SECTIONS for item in items}


@dataclass
class _CityPeriod:
    """What one city did in the period, folded as the events pass."""

    figures: dict[str, int] = field(default_factory=lambda: dict.fromkeys(ITEMS, 0))
    payers: set[str] = field(default_factory=set)
    merchants_paid: set[str] = field(default_factory=set)
    # Registered, less revoked, up to the period's end.
    merchants: int = 0
    residents: int = 0
    # (block time, won) of every program payout and cashback minted (+), expiry and cashback
    # burned (-): the circulation they change beside charges and redemptions.
    flows: list[tuple[int, int]] = field(default_factory=list)
    # Each program's figures in the period, by its number.
    programs: dict[int, dict[str, Any]] = field(default_factory=dict)


class StatutoryTally:
    """Attach to the books before the fold (ChainSource's on_new_books); then `report()`."""

    def __init__(self, period: Period) -> None:
        self.period = period
        self.cities: dict[str, _CityPeriod] = {}
        self.books: Books | None = None

    def attach(self, books: Books) -> None:
        self.books = books
        self.cities = {}
        books.subscribe(self._movement)
        books.observe(self._event)

    def _city(self, code: str) -> _CityPeriod:
        found = self.cities.get(code)
        if found is None:
            found = self.cities[code] = _CityPeriod()
        return found

    def _movement(self, movement: Movement) -> None:
        if not self.period.holds(movement.block_time):
            return
        city = self._city(movement.city)
        figures = city.figures
        if movement.kind == "payment":
            figures["payments"] += 1
            figures["paid"] += movement.value
            city.payers.add(movement.account)
            city.merchants_paid.add(movement.counterparty)
        elif movement.kind == "refund":
            figures["merchant_refunds"] += 1
            figures["merchant_refunded"] += movement.value
        elif movement.kind == "gift":
            figures["gifts"] += 1
            figures["gifted"] += movement.value

    def _event(self, books: CityBooks, event: ChainEvent) -> None:
        if event.contract == "programs":
            self._program_event(books, event)
            return
        if event.contract == "cashback":
            self._cashback_event(books, event)
            return
        if event.contract != "registry" or event.block_time >= self.period.end:
            return
        city = self._city(books.code)
        during = event.block_time >= self.period.start
        figures = city.figures
        if event.event == "MerchantRegistered":
            city.merchants += 1
            figures["merchants_registered"] += during
        elif event.event == "ResidentRegistered":
            city.residents += 1
            figures["residents_registered"] += during
        elif event.event == "StatusChanged" and event.args["newStatus"] == Status.REVOKED:
            kind = books.account(event.args["wallet"]).kind
            if kind == "merchant":
                city.merchants -= 1
                figures["merchants_revoked"] += during
                figures["merchants_revoked_illegal"] += during and event.args["illegalExchange"]
            elif kind == "resident":
                city.residents -= 1

    def _program_event(self, books: CityBooks, event: ChainEvent) -> None:
        city = self._city(books.code)
        amount = event.args.get("amount", 0)
        if event.event == "ProgramPaid":
            city.flows.append((event.block_time, amount))
        elif event.event == "Expired":
            city.flows.append((event.block_time, -amount))
        if not self.period.holds(event.block_time):
            return
        number = event.args.get("program", 0)
        figures = city.figures
        if event.event == "Expired":
            figures["expired"] += amount
            figures["returned_to_city"] += amount
        elif event.event == "ProgramClosed":
            figures["returned_to_city"] += event.args["unpaidBudget"]
        if number == 0 or number not in books.programs:
            return  # general money's expiry: the city's figures only
        program = city.programs.get(number)
        if program is None:
            program = city.programs[number] = {
                "program": number,
                "code": books.programs[number].code,
                "paid_out": 0,
                "recipients": 0,
                "spent": 0,
                "refunded": 0,
                "expired": 0,
                "returned_to_city": 0,
            }
        if event.event == "ProgramPaid":
            figures["policy_issued"] += amount
            program["paid_out"] += amount
            program["recipients"] += 1
        elif event.event == "ProgramSpent":
            program["spent"] += amount
        elif event.event == "ProgramRefunded":
            program["refunded"] += amount
        elif event.event == "Expired":
            program["expired"] += amount
            program["returned_to_city"] += amount
        elif event.event == "ProgramClosed":
            program["returned_to_city"] += event.args["unpaidBudget"]

    def _cashback_event(self, books: CityBooks, event: ChainEvent) -> None:
        args = event.args
        if event.event == "CashbackPaid":
            minted, burned, owed = args["minted"], 0, -args["fromDebt"]
        elif event.event == "CashbackReversed":
            minted, burned, owed = 0, args["burned"], args["amount"] - args["burned"]
        else:
            return  # terms and budget: no money moves
        city = self._city(books.code)
        city.flows.append((event.block_time, minted - burned))
        if event.block_time >= self.period.end:
            return
        figures = city.figures
        figures["cashback_owed_at_end"] += owed
        if event.block_time < self.period.start:
            return
        if minted:
            # Cashback is the city's incentive, minted as general money: general issue.
            figures["cashbacks"] += 1
            figures["cashback_paid"] += minted
            figures["incentive"] += minted
            figures["general_issued"] += minted
        figures["cashback_reversed"] += burned

    # --- after the fold: what the books keep with its time ---------------------------------------

    def report(self, codes: list[str]) -> dict[str, Any]:
        assert self.books is not None, "attach() before the fold"
        return {
            "period": self.period.as_dict(),
            "cities": {code: self._city_report(code) for code in codes},
        }

    def _city_report(self, code: str) -> dict[str, Any]:
        books = self.books.city(code)
        city = self._city(code)
        figures = dict(city.figures)
        period = self.period
        supply = {"start": 0, "end": 0}
        for issuance in books.issuances:
            minted = issuance.amount + issuance.incentive
            if period.holds(issuance.block_time):
                figures["general_charges"] += 1
                figures["sales"] += issuance.amount
                figures["incentive"] += issuance.incentive
                figures["general_issued"] += minted
            for edge, moment in (("start", period.start), ("end", period.end)):
                if issuance.block_time < moment:
                    supply[edge] += minted
        kinds = {
            "cash_out": ("cash_outs", "cashed_out"),
            "resident_refund": ("resident_refunds", "resident_refunded"),
            "confiscation": ("confiscations", "confiscated"),
        }
        for redemption in books.redemptions.values():
            closed = redemption.closed_at
            for edge, moment in (("start", period.start), ("end", period.end)):
                if redemption.requested_at < moment:
                    supply[edge] -= redemption.burned
                    if redemption.status == "returned" and closed < moment:
                        supply[edge] += redemption.restored
            if redemption.requested_at < period.end and (closed is None or closed >= period.end):
                figures["payouts_pending_at_end"] += redemption.payout
            if period.holds(redemption.requested_at):
                count, amount = kinds[redemption.kind]
                figures[count] += 1
                figures[amount] += redemption.burned
            if closed is not None and period.holds(closed):
                if redemption.status == "settled" and redemption.kind == "cash_out":
                    figures["cash_outs_paid"] += redemption.payout
                elif redemption.status == "settled" and redemption.kind == "resident_refund":
                    figures["resident_refund_paid"] += redemption.payout
                elif redemption.status == "returned" and redemption.kind == "cash_out":
                    figures["cash_outs_returned"] += redemption.restored
        for moment, won in city.flows:
            for edge, edge_moment in (("start", period.start), ("end", period.end)):
                if moment < edge_moment:
                    supply[edge] += won
        figures["outstanding_at_start"] = supply["start"]
        figures["outstanding_at_end"] = supply["end"]
        figures["merchants_at_end"] = city.merchants
        figures["residents_at_end"] = city.residents
        figures["active_payers"] = len(city.payers)
        figures["active_merchants"] = len(city.merchants_paid)
        return {
            "city": code,
            "name": books.name,
            "figures": figures,
            # Policy issue by program: each program active in the period, by its number.
            "programs": [city.programs[n] for n in sorted(city.programs)],
        }


def _rows(document: dict[str, Any]):
    for code, city in document["cities"].items():
        for _, section_ko, section_en, items in SECTIONS:
            for item in items:
                yield code, section_ko, section_en, item, city["figures"][item.key]


def statutory_csv(document: dict[str, Any]) -> str:
    """One row per city and item, Korean and English names side by side; amounts as plain
    integers a spreadsheet adds up."""
    out = io.StringIO()
    out.write(BOM)
    writer = csv.writer(out, lineterminator="\r\n")
    period = document["period"]
    writer.writerow(
        ["기간 period", "도시 city", "구분", "section", "항목", "item", "값 value", "단위 unit"]
    )
    for code, section_ko, section_en, item, value in _rows(document):
        unit = "원" if item.unit == "won" else "건"
        writer.writerow(
            [period["label"], code, section_ko, section_en, item.ko, item.en, value, unit]
        )
    return out.getvalue()


def print_statutory(document: dict[str, Any], console: Console) -> None:
    period = document["period"]
    cities = document["cities"]
    table = Table(
        title=f"지역사랑상품권 발행·운영 현황 / statutory report {period['label']} "
        f"({period['from']} to {period['to']}, KST)"
    )
    table.add_column("구분 section")
    table.add_column("항목 item")
    for code in cities:
        table.add_column(code, justify="right")
    for _, section_ko, section_en, items in SECTIONS:
        for item in items:
            values = [cities[code]["figures"][item.key] for code in cities]
            table.add_row(
                f"{section_ko} {section_en}", f"{item.ko} / {item.en}", *(f"{v:,}" for v in values)
            )
    console.print(table)
