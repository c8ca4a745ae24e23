"""The fraud rules' alerts (깡) as a dashboard table, read with the fraud module's own query."""

from __future__ import annotations

from typing import Any

from citypay.admin.labels import Label
from citypay.admin.summary import Column, TableShape
from citypay.db.session import Database
from citypay.fraud.alerts import alerts_for

ALERTS_SHOWN = 50

RULES = {
    "quick_cash_out": Label("결제 직후 환전", "Cash-out right after payments"),
    "fresh_wallet_feed": Label("신규 지갑 결제 집중", "Fed by freshly charged wallets"),
    "round_under_limit": Label("한도 아래 반복 결제", "Round payments under a limit"),
    "outside_business_hours": Label("영업시간 외 결제", "Paid outside business hours"),
    "incentive_spend_all": Label("충전 즉시 전액 사용", "Charge spent at once at one shop"),
    "gift_chain": Label("선물 모아 한 가맹점 결제", "Gifts gathered, spent at one shop"),
}
SUBJECT_KINDS = {"merchant": Label("가맹점", "Merchant"), "wallet": Label("지갑", "Wallet")}

ALERTS = TableShape(
    "alerts",
    "이상거래 알림 (상품권깡 의심)",
    "Fraud alerts (상품권깡)",
    (
        Column("time", "시각", "Time", "time"),
        Column("rule", "유형", "Pattern", "label"),
        Column("subjectKind", "대상", "Subject", "label"),
        Column("subject", "지갑", "Wallet", "address"),
        Column("message", "내용", "What was seen", "text"),
        Column("events", "근거 이벤트", "Evidence events", "count"),
        Column("block", "블록", "Block", "count"),
    ),
)


def _label(labels: dict[str, Label], code: str) -> dict[str, str]:
    return (labels.get(code) or Label(code, code)).as_dict()


def alerts_table(db: Database, city: str) -> dict[str, Any]:
    """The city's newest alerts, newest first."""
    with db.session() as session:
        rows = [
            {
                "time": alert.block_time,
                "rule": _label(RULES, alert.rule),
                "subjectKind": _label(SUBJECT_KINDS, alert.subject_kind),
                "subject": alert.subject,
                "message": alert.message,
                "events": len(alert.events),
                "block": alert.block_number,
            }
            for alert in alerts_for(session, city, limit=ALERTS_SHOWN)
        ]
    return ALERTS.of(rows)
