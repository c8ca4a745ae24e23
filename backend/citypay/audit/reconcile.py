"""The backend's database against the chain: every payment, deposit and cash-out, to the won.

Each record is matched by the identity both sides share: a payment by (payer, authorization
nonce), a deposit by its bank reference, a cash-out by (merchant, authorization nonce) or its
redemption id. A difference names the record, the field, and both values.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from sqlalchemy import select

from citypay.cashout.models import CashOut, CashOutStatus
from citypay.charging.models import Deposit, DepositStatus
from citypay.db.models import Payment, PaymentStatus
from citypay.db.session import Database
from citypay.ledger import Books, Movement
from citypay.ledger.books import CityBooks, Redemption

# What the chain shows of a cash-out the database has at each step.
CASH_OUT_ON_CHAIN = {
    CashOutStatus.REQUESTED: "none",
    CashOutStatus.REDEEMED: "pending",
    CashOutStatus.PAYING: "pending",
    CashOutStatus.PAID: "pending",
    CashOutStatus.PAYOUT_FAILED: "pending",
    CashOutStatus.SETTLED: "settled",
    CashOutStatus.RETURNED: "returned",
    CashOutStatus.REFUSED: "none",
}


@dataclass(frozen=True)
class Difference:
    city: str
    record: str  # payment, deposit or cash_out
    key: str  # payer/nonce, the deposit reference, merchant/nonce
    account: str  # the payer, resident or merchant
    field: str
    database: Any
    chain: Any

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    @property
    def message(self) -> str:
        return f"{self.field}: database {_shown(self.database)}, chain {_shown(self.chain)}"


def _shown(value: Any) -> str:
    if value is None:
        return "none"
    return f"{value:,}" if isinstance(value, int) else str(value)


@dataclass(frozen=True)
class ChainPayment:
    merchant: str
    value: int
    tx_hash: str
    block_number: int


class PaymentIndex:
    """Gasless payments by (city, payer, nonce), collected while the books fold."""

    def __init__(self) -> None:
        self.payments: dict[tuple[str, str, str], ChainPayment] = {}

    def __call__(self, movement: Movement) -> None:
        if movement.kind == "payment" and movement.reference is not None:
            key = (movement.city, movement.account, movement.reference.lower())
            self.payments[key] = ChainPayment(
                movement.counterparty or "", movement.value, movement.tx_hash, movement.block_number
            )

    def attach(self, books: Books) -> None:
        """Follows `books` from its first event (ChainSource's on_new_books)."""
        self.payments.clear()
        books.subscribe(self)


def _compare(city, record, key, account, pairs) -> list[Difference]:
    return [
        Difference(city, record, key, account, name, ours, theirs)
        for name, ours, theirs in pairs
        if ours != theirs
    ]


def _payments(rows: list[Payment], index: PaymentIndex, cities: set[str]) -> list[Difference]:
    differences = []
    seen = set()
    for row in rows:
        key = (row.city, row.payer, row.nonce.lower())
        seen.add(key)
        on_chain = index.payments.get(key)
        label = f"{row.payer}/{row.nonce}"
        included = row.status == PaymentStatus.INCLUDED
        if on_chain is None:
            if included:
                differences.append(
                    Difference(
                        row.city,
                        "payment",
                        label,
                        row.payer,
                        "status",
                        f"included ({row.value:,} won in {row.tx_hash})",
                        "absent",
                    )
                )
            continue
        if not included:
            differences.append(
                Difference(
                    row.city,
                    "payment",
                    label,
                    row.payer,
                    "status",
                    str(row.status),
                    f"included ({on_chain.value:,} won in {on_chain.tx_hash})",
                )
            )
            continue
        differences += _compare(
            row.city,
            "payment",
            label,
            row.payer,
            [
                ("merchant", row.merchant, on_chain.merchant),
                ("value", row.value, on_chain.value),
                ("tx_hash", (row.tx_hash or "").lower(), on_chain.tx_hash.lower()),
            ],
        )
    for (city, payer, nonce), on_chain in index.payments.items():
        if city in cities and (city, payer, nonce) not in seen:
            differences.append(
                Difference(
                    city,
                    "payment",
                    f"{payer}/{nonce}",
                    payer,
                    "status",
                    "absent",
                    f"included ({on_chain.value:,} won in {on_chain.tx_hash})",
                )
            )
    return differences


def _deposits(rows: list[Deposit], books: dict[str, CityBooks]) -> list[Difference]:
    differences = []
    issued = {
        (code, i.deposit_reference.lower()): i for code, b in books.items() for i in b.issuances
    }
    seen = set()
    for row in rows:
        key = (row.city, row.reference.lower())
        seen.add(key)
        on_chain = issued.get(key)
        if on_chain is None:
            if row.status == DepositStatus.ISSUED:
                differences.append(
                    Difference(
                        row.city,
                        "deposit",
                        row.reference,
                        row.resident,
                        "status",
                        f"issued ({row.amount:,} won)",
                        "absent",
                    )
                )
            continue
        if row.status != DepositStatus.ISSUED:
            differences.append(
                Difference(
                    row.city,
                    "deposit",
                    row.reference,
                    row.resident,
                    "status",
                    str(row.status),
                    f"issued ({on_chain.amount:,} won)",
                )
            )
            continue
        differences += _compare(
            row.city,
            "deposit",
            row.reference,
            row.resident,
            [
                ("resident", row.resident, on_chain.resident),
                ("amount", row.amount, on_chain.amount),
                ("incentive", row.incentive, on_chain.incentive),
            ],
        )
    for (city, reference), on_chain in issued.items():
        if (city, reference) not in seen:
            differences.append(
                Difference(
                    city,
                    "deposit",
                    reference,
                    on_chain.resident,
                    "status",
                    "absent",
                    f"issued ({on_chain.amount:,} won)",
                )
            )
    return differences


def _cash_outs(rows: list[CashOut], books: dict[str, CityBooks]) -> list[Difference]:
    differences = []
    by_nonce: dict[tuple[str, str, str], Redemption] = {}
    by_id: dict[tuple[str, int], Redemption] = {}
    for code, city in books.items():
        for redemption in city.redemptions.values():
            if redemption.kind != "cash_out":
                continue
            by_id[(code, redemption.id)] = redemption
            if redemption.nonce is not None:
                by_nonce[(code, redemption.account, redemption.nonce.lower())] = redemption
    matched = set()
    for row in rows:
        label = f"{row.merchant}/{row.nonce}"
        on_chain = by_nonce.get((row.city, row.merchant, row.nonce.lower()))
        if on_chain is None and row.redemption_id is not None:
            on_chain = by_id.get((row.city, row.redemption_id))
        if on_chain is not None:
            matched.add((row.city, on_chain.id))
        chain_status = on_chain.status if on_chain is not None else "none"
        if CASH_OUT_ON_CHAIN[row.status] != chain_status:
            differences.append(
                Difference(
                    row.city,
                    "cash_out",
                    label,
                    row.merchant,
                    "status",
                    str(row.status),
                    chain_status,
                )
            )
        if on_chain is not None:
            differences += _compare(
                row.city,
                "cash_out",
                label,
                row.merchant,
                [
                    ("amount", row.amount, on_chain.burned),
                    ("redemption_id", row.redemption_id, on_chain.id),
                ],
            )
    for (city, number), redemption in by_id.items():
        if (city, number) not in matched:
            differences.append(
                Difference(
                    city,
                    "cash_out",
                    f"{redemption.account}/{redemption.nonce}",
                    redemption.account,
                    "status",
                    "absent",
                    f"{redemption.status} (redemption {number}, {redemption.burned:,} won)",
                )
            )
    return differences


def reconcile(
    database_url: str, books: Books, payments: PaymentIndex, city: str | None = None
) -> list[Difference]:
    """Every difference between the database at `database_url` and the books of the chain."""
    cities = {code: b for code, b in books.cities.items() if city is None or code == city}
    db = Database(database_url)
    try:
        with db.session() as session:

            def rows(model):
                query = select(model)
                if city is not None:
                    query = query.where(model.city == city)
                return list(session.scalars(query))

            return (
                _payments(rows(Payment), payments, set(cities))
                + _deposits(rows(Deposit), cities)
                + _cash_outs(rows(CashOut), cities)
            )
    finally:
        db.engine.dispose()
