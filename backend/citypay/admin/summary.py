"""A city's dashboard as JSON: the headline figures and every table, each table with its columns
named in Korean and English, so the page and the CSV export show the same thing."""

from __future__ import annotations

import heapq
import statistics
from dataclasses import dataclass
from datetime import timedelta
from itertools import islice
from typing import Any

from citypay.admin.figures import CityFigures, RedemptionFigures, Tally, YearFigures, kst
from citypay.admin.labels import Label, category_label, region_label
from citypay.ledger.books import fiscal_year

TOP_MERCHANTS = 10
DAYS_SHOWN = 30
MONTHS_SHOWN = 12
RECENT_ROWS = 20
FEED_ROWS = 50

REDEMPTION_KINDS = {
    "cash_out": Label("환전", "Cash-out"),
    "resident_refund": Label("환불", "Resident refund"),
}
UNITS = {
    "won": Label("원", "KRW"),
    "count": Label("건", "count"),
    "percent": Label("%", "%"),
    "seconds": Label("초", "seconds"),
}
INCENTIVE_MODES = {
    "discount": Label("충전 할인", "Discount at charge"),
    "cashback": Label("결제 캐시백", "Cashback on payments"),
}
REDEMPTION_STATUS = {
    "pending": Label("처리 중", "Pending"),
    "settled": Label("지급 완료", "Settled"),
    "returned": Label("반환", "Returned"),
}


@dataclass(frozen=True)
class Column:
    key: str
    ko: str
    en: str
    # How to show the value: text, label ({"ko", "en"}), count, won, percent, time (unix
    # seconds, shown in KST), date, month, hour, seconds, address, tx.
    kind: str = "text"

    def as_dict(self) -> dict[str, str]:
        return {"key": self.key, "ko": self.ko, "en": self.en, "kind": self.kind}


@dataclass(frozen=True)
class TableShape:
    key: str
    ko: str
    en: str
    columns: tuple[Column, ...]

    def of(self, rows: list[dict[str, Any]]) -> dict[str, Any]:
        return {
            "key": self.key,
            "title": {"ko": self.ko, "en": self.en},
            "columns": [c.as_dict() for c in self.columns],
            "rows": rows,
        }


_PAYMENTS = Column("payments", "결제 건수", "Payments", "count")
_AMOUNT = Column("amount", "결제 금액", "Amount", "won")
_SHARE = Column("share", "비중", "Share", "percent")
_CATEGORY = Column("category", "업종", "Category", "label")
_REGION = Column("region", "지역", "Region", "label")
_MERCHANT = Column("merchant", "가맹점 지갑", "Merchant wallet", "address")
_ACTIVE = Column("activeWallets", "활성 지갑", "Active wallets", "count")

TABLES = {
    t.key: t
    for t in (
        TableShape(
            "overview",
            "요약",
            "Overview",
            (
                Column("item", "항목", "Item", "label"),
                Column("value", "값", "Value", "text"),
                Column("unit", "단위", "Unit", "label"),
            ),
        ),
        TableShape(
            "categories",
            "업종별 결제 (올해)",
            "Payments by business category (this fiscal year)",
            (Column("code", "업종 코드", "KSIC code"), _CATEGORY, _PAYMENTS, _AMOUNT, _SHARE),
        ),
        TableShape(
            "regions",
            "지역별 결제 (올해)",
            "Payments by region (this fiscal year)",
            (Column("code", "지역 코드", "Region code"), _REGION, _PAYMENTS, _AMOUNT, _SHARE),
        ),
        TableShape(
            "hours",
            "시간대별 결제",
            "Payments by hour of day",
            (
                Column("hour", "시간대", "Hour (KST)", "hour"),
                Column("todayPayments", "오늘 건수", "Today: payments", "count"),
                Column("todayAmount", "오늘 금액", "Today: amount", "won"),
                Column("yearPayments", "올해 건수", "This year: payments", "count"),
                Column("yearAmount", "올해 금액", "This year: amount", "won"),
            ),
        ),
        TableShape(
            "daily",
            "일별 활성 지갑",
            "Active wallets per day",
            (Column("date", "날짜", "Date", "date"), _ACTIVE, _PAYMENTS, _AMOUNT),
        ),
        TableShape(
            "monthly",
            "월별 활성 지갑",
            "Active wallets per month",
            (
                Column("month", "월", "Month", "month"),
                _ACTIVE,
                Column("merchantsPaid", "결제받은 가맹점", "Merchants paid", "count"),
                _PAYMENTS,
                _AMOUNT,
            ),
        ),
        TableShape(
            "incentive",
            "월별 인센티브·결제 캐시백",
            "Incentive and cashback per month",
            (
                Column("month", "월", "Month", "month"),
                Column("mode", "지급 방식", "Paid as", "label"),
                Column("chargeIncentive", "충전 인센티브", "Incentive at charge", "won"),
                Column("cashbacks", "캐시백 건수", "Cashbacks", "count"),
                Column("cashbackPaid", "캐시백 지급액", "Cashback paid", "won"),
                Column("cashbackReversed", "캐시백 환수액", "Cashback taken back", "won"),
            ),
        ),
        TableShape(
            "topMerchants",
            "매출 상위 가맹점 (올해)",
            "Top merchants (this fiscal year)",
            (
                Column("rank", "순위", "Rank", "count"),
                _MERCHANT,
                _CATEGORY,
                _REGION,
                _PAYMENTS,
                _AMOUNT,
            ),
        ),
        TableShape(
            "classes",
            "종류별 발행·사용·소멸 (일반발행·정책발행)",
            "Money by class: issued, spent, expired, returned (general and each program)",
            (
                Column("class", "구분", "Class", "label"),
                Column("issued", "발행액", "Issued", "won"),
                Column("spent", "가맹점 사용액", "Spent at merchants", "won"),
                Column("expired", "유효기간 경과 소멸", "Expired", "won"),
                Column("returned", "지자체 환수", "Returned to the city", "won"),
                Column("outstanding", "잔액", "Outstanding", "won"),
                Column("expiry", "유효기간", "Valid until", "time"),
            ),
        ),
        TableShape(
            "programSpending",
            "정책발행 업종·지역별 사용 (올해)",
            "Policy money spent by category and region (this fiscal year)",
            (
                Column("program", "정책", "Program", "text"),
                _CATEGORY,
                _REGION,
                _PAYMENTS,
                _AMOUNT,
            ),
        ),
        TableShape(
            "redemptions",
            "최근 환전·환불 지급",
            "Recent cash-outs and resident refunds",
            (
                Column("id", "번호", "No.", "count"),
                Column("kind", "구분", "Kind", "label"),
                Column("account", "지갑", "Wallet", "address"),
                Column("burned", "소각액", "Burned", "won"),
                Column("payout", "지급액", "Payout", "won"),
                Column("status", "상태", "Status", "label"),
                Column("requestedAt", "요청 시각", "Requested", "time"),
                Column("closedAt", "완료 시각", "Closed", "time"),
                Column("secondsToSettle", "정산 소요", "Time to settle", "seconds"),
            ),
        ),
        TableShape(
            "refunds",
            "최근 가맹점 환불",
            "Recent merchant refunds",
            (
                Column("time", "시각", "Time", "time"),
                _MERCHANT,
                Column("payer", "이용자 지갑", "Resident wallet", "address"),
                Column("amount", "환불 금액", "Refunded", "won"),
                Column("tx", "거래", "Transaction", "tx"),
            ),
        ),
        TableShape(
            "payments",
            "실시간 결제",
            "Live payments",
            (
                Column("time", "시각", "Time", "time"),
                Column("payer", "이용자 지갑", "Resident wallet", "address"),
                _MERCHANT,
                _CATEGORY,
                _AMOUNT,
                Column("block", "블록", "Block", "count"),
                Column("tx", "거래", "Transaction", "tx"),
            ),
        ),
    )
}

# Headline figures in the order of the overview table: key, label, unit.
OVERVIEW = (
    ("issuedThisYear", Label("올해 발행액", "Issued this fiscal year"), "won"),
    ("annualCap", Label("연간 발행 한도", "Annual issuance cap"), "won"),
    ("capUsedPercent", Label("한도 소진율", "Cap used"), "percent"),
    ("chargedThisYear", Label("올해 충전액", "Charged this year"), "won"),
    ("incentiveThisYear", Label("올해 인센티브 지급액", "Incentive paid this year"), "won"),
    ("incentiveTotal", Label("누적 인센티브", "Incentive paid, all time"), "won"),
    ("cashbackThisMonth", Label("이번 달 결제 캐시백", "Cashback paid this month"), "won"),
    ("cashbackTotal", Label("누적 결제 캐시백", "Cashback paid, all time"), "won"),
    (
        "cashbackReversedTotal",
        Label("누적 캐시백 환수 (결제 환불)", "Cashback taken back, all time"),
        "won",
    ),
    ("cashbackOwed", Label("캐시백 미환수액", "Cashback owed by residents"), "won"),
    ("cashbackBudget", Label("캐시백 예산 잔액", "Cashback budget left"), "won"),
    ("circulation", Label("유통 잔액", "In circulation"), "won"),
    ("paymentsThisYear", Label("올해 결제 건수", "Payments this year"), "count"),
    ("paymentsAmountThisYear", Label("올해 결제 금액", "Paid this year"), "won"),
    ("paymentsToday", Label("오늘 결제 건수", "Payments today"), "count"),
    ("paymentsAmountToday", Label("오늘 결제 금액", "Paid today"), "won"),
    ("merchants", Label("등록 가맹점", "Registered merchants"), "count"),
    ("merchantsActive", Label("영업 중 가맹점", "Active merchants"), "count"),
    ("merchantsPaidThisYear", Label("올해 결제받은 가맹점", "Merchants paid this year"), "count"),
    ("participationPercent", Label("가맹점 참여율", "Merchant participation"), "percent"),
    ("residents", Label("등록 이용자", "Registered residents"), "count"),
    ("activeWalletsToday", Label("오늘 활성 지갑", "Active wallets today"), "count"),
    ("activeWalletsThisMonth", Label("이번 달 활성 지갑", "Active wallets this month"), "count"),
    ("cashOutsThisYear", Label("올해 환전 건수", "Cash-outs this year"), "count"),
    ("cashOutAmountThisYear", Label("올해 환전액", "Cashed out this year"), "won"),
    ("cashOutsSettledThisYear", Label("올해 환전 지급 건수", "Cash-outs settled"), "count"),
    ("cashOutSettledAmountThisYear", Label("올해 환전 지급액", "Settled this year"), "won"),
    ("cashOutsReturnedThisYear", Label("올해 환전 반환 건수", "Cash-outs returned"), "count"),
    ("redemptionsPending", Label("지급 대기 건수", "Payouts pending"), "count"),
    ("outstanding", Label("지급 대기액", "Payouts outstanding"), "won"),
    ("medianSecondsToSettle", Label("정산 소요 (중앙값)", "Time to settle (median)"), "seconds"),
    ("maxSecondsToSettle", Label("정산 소요 (최대)", "Time to settle (longest)"), "seconds"),
    ("refundsThisYear", Label("올해 가맹점 환불 건수", "Merchant refunds this year"), "count"),
    ("refundAmountThisYear", Label("올해 가맹점 환불액", "Refunded by merchants"), "won"),
    ("residentRefundsThisYear", Label("올해 이용자 환불 건수", "Resident refunds"), "count"),
    (
        "residentRefundAmountThisYear",
        Label("올해 이용자 환불액", "Resident refunds (burned)"),
        "won",
    ),
    ("programMoney", Label("정책발행 잔액", "Policy money outstanding"), "won"),
    ("expiredTotal", Label("유효기간 경과 소멸 (누적)", "Expired, all time"), "won"),
    ("giftedTotal", Label("선물하기 (누적)", "Gifted between residents, all time"), "won"),
    ("reserveBalance", Label("예치 잔액 (은행 증명)", "Custody balance (bank statement)"), "won"),
    ("reserveOwed", Label("지급 의무 (증명 시점)", "Owed at the statement"), "won"),
    ("reserveMargin", Label("지급준비금 여유", "Reserve margin"), "won"),
)


def _percent(part: int, whole: int) -> float | None:
    return round(100 * part / whole, 1) if whole else None


def _by_code(tallies: dict[int | None, Tally], key: str, name) -> list[dict[str, Any]]:
    total = sum(t.amount for t in tallies.values())
    ranked = sorted(tallies.items(), key=lambda item: (-item[1].amount, item[0] or 0))
    return [
        {
            "code": code,
            key: name(code).as_dict(),
            "payments": tally.count,
            "amount": tally.amount,
            "share": _percent(tally.amount, total),
        }
        for code, tally in ranked
    ]


def _last_months(now_kst, count: int) -> list[str]:
    index = now_kst.year * 12 + now_kst.month - 1
    return [f"{i // 12:04d}-{i % 12 + 1:02d}" for i in range(index - count + 1, index + 1)]


def build_summary(
    figures: CityFigures, *, city: dict[str, str], annual_cap: int, now: float
) -> dict[str, Any]:
    """Everything the page shows for one city as of `now` (unix seconds). Cheap: its cost is
    the size of the tables, not of the history."""
    books = figures.books
    moment = kst(int(now))
    today = moment.date().isoformat()
    this_month = moment.strftime("%Y-%m")
    year_number = fiscal_year(int(now), figures.fiscal_year_start_month)
    year = figures.years.get(year_number) or YearFigures()
    day = figures.days.get(today)
    month = figures.months.get(this_month)
    registry = figures.registry
    cash_outs = year.redemptions.get("cash_out") or RedemptionFigures()
    resident_refunds = year.redemptions.get("resident_refund") or RedemptionFigures()
    settle = cash_outs.settle_seconds
    reserve = books.reserve[-1] if books.reserve else None
    classes = books.classes()

    kpis = {
        "issuedThisYear": year.issued,
        "annualCap": annual_cap,
        "capUsedPercent": _percent(year.issued, annual_cap),
        "chargedThisYear": year.charged,
        # The city's incentive, at charge or as cashback on payments: cashback is incentive.
        "incentiveThisYear": year.incentive + year.cashback.amount,
        "incentiveTotal": books.figures.incentive,
        "incentiveMode": _mode_label(books.incentive_mode),
        "cashbackThisMonth": month.cashback.amount if month else 0,
        "cashbackTotal": books.figures.cashback,
        "cashbackReversedTotal": books.figures.cashback_reversed,
        "cashbackOwed": books.figures.cashback_owed,
        # What the cashback contract may still pay, by its events; none without one.
        "cashbackBudget": books.cashback_budget if books.cashback_contract else None,
        "circulation": books.supply,
        "paymentsThisYear": year.payments.count,
        "paymentsAmountThisYear": year.payments.amount,
        "paymentsToday": day.payments.count if day else 0,
        "paymentsAmountToday": day.payments.amount if day else 0,
        "merchants": registry.merchants,
        "merchantsActive": registry.merchants_active,
        "merchantsPaidThisYear": len(year.by_merchant),
        "participationPercent": _percent(len(year.by_merchant), registry.merchants_active),
        "residents": registry.residents,
        "activeWalletsToday": len(day.payers) if day else 0,
        "activeWalletsThisMonth": len(month.payers) if month else 0,
        "cashOutsThisYear": cash_outs.requested.count,
        "cashOutAmountThisYear": cash_outs.requested.amount,
        "cashOutsSettledThisYear": cash_outs.settled.count,
        "cashOutSettledAmountThisYear": cash_outs.settled.amount,
        "cashOutsReturnedThisYear": cash_outs.returned.count,
        "redemptionsPending": figures.redemptions_pending,
        "outstanding": books.figures.outstanding,
        "medianSecondsToSettle": statistics.median(settle) if settle else None,
        "maxSecondsToSettle": settle[-1] if settle else None,
        "refundsThisYear": year.refunds.count,
        "refundAmountThisYear": year.refunds.amount,
        "residentRefundsThisYear": resident_refunds.requested.count,
        "residentRefundAmountThisYear": resident_refunds.requested.amount,
        "programMoney": books.program_money,
        "expiredTotal": classes["general_expired"] + classes["programs_expired"],
        "giftedTotal": books.figures.gifted,
        # The latest bank statement of the custody account, against what the city owed then.
        "reserveBalance": reserve.balance if reserve else None,
        "reserveOwed": reserve.owed if reserve else None,
        "reserveMargin": reserve.margin if reserve else None,
        "reserveAsOf": reserve.as_of if reserve else None,
    }
    hours_today = day.by_hour if day else None
    days = [
        (moment - timedelta(days=back)).date().isoformat() for back in range(DAYS_SHOWN - 1, -1, -1)
    ]
    top = heapq.nlargest(TOP_MERCHANTS, year.by_merchant.items(), key=lambda kv: kv[1].amount)
    recent_redemptions = islice(reversed(books.redemptions.values()), RECENT_ROWS)
    rows = {
        "overview": [
            {"item": label.as_dict(), "value": kpis[key], "unit": UNITS[unit].as_dict()}
            for key, label, unit in OVERVIEW
        ],
        "categories": _by_code(year.by_category, "category", category_label),
        "regions": _by_code(year.by_region, "region", region_label),
        "hours": [
            {
                "hour": hour,
                "todayPayments": hours_today[hour].count if hours_today else 0,
                "todayAmount": hours_today[hour].amount if hours_today else 0,
                "yearPayments": year.by_hour[hour].count,
                "yearAmount": year.by_hour[hour].amount,
            }
            for hour in range(24)
        ],
        "daily": [_day_row(date, figures.days.get(date)) for date in days],
        "monthly": [
            _month_row(key, figures.months.get(key)) for key in _last_months(moment, MONTHS_SHOWN)
        ],
        "incentive": [
            _incentive_row(key, figures.months.get(key), figures.mode_in(key))
            for key in _last_months(moment, MONTHS_SHOWN)
        ],
        "topMerchants": [
            {
                "rank": rank,
                "merchant": address,
                "category": category_label(books.accounts[address].category).as_dict(),
                "region": region_label(books.accounts[address].region).as_dict(),
                "payments": tally.count,
                "amount": tally.amount,
            }
            for rank, (address, tally) in enumerate(top, start=1)
        ],
        "classes": _class_rows(books, classes),
        "programSpending": [
            {
                "program": books.programs[program].code if program in books.programs else program,
                "category": category_label(category).as_dict(),
                "region": region_label(region).as_dict(),
                "payments": tally.count,
                "amount": tally.amount,
            }
            for (program, category, region), tally in sorted(
                year.program_spending.items(), key=lambda item: -item[1].amount
            )
        ],
        "redemptions": [
            {
                "id": r.id,
                "kind": REDEMPTION_KINDS.get(r.kind, Label(r.kind, r.kind)).as_dict(),
                "account": r.account,
                "burned": r.burned,
                "payout": r.payout,
                "status": REDEMPTION_STATUS.get(r.status, Label(r.status, r.status)).as_dict(),
                "requestedAt": r.requested_at,
                "closedAt": r.closed_at,
                "secondsToSettle": (
                    r.closed_at - r.requested_at if r.status == "settled" else None
                ),
            }
            for r in recent_redemptions
        ],
        "refunds": [
            {
                "time": refund.block_time,
                "merchant": refund.merchant,
                "payer": refund.payer,
                "amount": refund.value,
                "tx": refund.tx_hash,
            }
            for refund in islice(reversed(figures.refunds), RECENT_ROWS)
        ],
        "payments": [payment_row(p) for p in islice(reversed(figures.feed), FEED_ROWS)],
    }
    return {
        "city": city,
        "fiscalYear": year_number,
        "today": today,
        "generatedAt": int(now),
        "kpis": kpis,
        "tables": {key: TABLES[key].of(table_rows) for key, table_rows in rows.items()},
        "lastPayment": figures.payments_seen,
    }


def _class_rows(books, classes: dict[str, int]) -> list[dict[str, Any]]:
    """General money (charges with their incentive, less what programs account for), then each
    program: what was issued, spent at merchants, expired and returned, what is left and when
    it expires. General money expires by purchase date, lot by lot: no one date."""
    general_spent = (
        books.figures.paid
        - books.figures.refunded
        - sum(p.spent - p.refunded for p in books.programs.values())
    )
    rows = [
        {
            "class": Label("일반발행", "General issue").as_dict(),
            "issued": books.figures.issued,
            "spent": general_spent,
            "expired": classes["general_expired"],
            "returned": classes["general_expired"],
            "outstanding": classes["general"],
            "expiry": None,
        }
    ]
    for program in sorted(books.programs.values(), key=lambda p: p.program):
        rows.append(
            {
                "class": Label(f"정책발행 {program.code}", f"Program {program.code}").as_dict(),
                "issued": program.paid_out,
                "spent": program.spent - program.refunded,
                "expired": program.expired,
                "returned": program.returned_to_city,
                "outstanding": program.outstanding,
                "expiry": program.expiry,
            }
        )
    return rows


def payment_row(payment) -> dict[str, Any]:
    """A payment as the live feed's row (also pushed alone by the stream)."""
    return {
        "seq": payment.seq,
        "time": payment.block_time,
        "payer": payment.payer,
        "merchant": payment.merchant,
        "category": category_label(payment.category).as_dict(),
        "amount": payment.value,
        "block": payment.block_number,
        "tx": payment.tx_hash,
    }


def _day_row(date: str, day) -> dict[str, Any]:
    return {
        "date": date,
        "activeWallets": len(day.payers) if day else 0,
        "payments": day.payments.count if day else 0,
        "amount": day.payments.amount if day else 0,
    }


def _month_row(key: str, month) -> dict[str, Any]:
    return {
        "month": key,
        "activeWallets": len(month.payers) if month else 0,
        "merchantsPaid": len(month.merchants) if month else 0,
        "payments": month.payments.count if month else 0,
        "amount": month.payments.amount if month else 0,
    }


def _mode_label(mode: str) -> dict[str, str]:
    return INCENTIVE_MODES.get(mode, Label(mode, mode)).as_dict()


def _incentive_row(key: str, month, mode: str) -> dict[str, Any]:
    return {
        "month": key,
        "mode": _mode_label(mode),
        "chargeIncentive": month.incentive if month else 0,
        "cashbacks": month.cashback.count if month else 0,
        "cashbackPaid": month.cashback.amount if month else 0,
        "cashbackReversed": month.cashback_reversed if month else 0,
    }
