"""The books as a report: a JSON document, or tables for a person."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from rich.console import Console
from rich.table import Table

from citypay.audit.invariants import Violation
from citypay.audit.source import AuditError, ChainSource, checksummed
from citypay.ledger.books import CityBooks

if TYPE_CHECKING:  # the reconcile command's: the other commands start without SQLAlchemy
    from citypay.audit.reconcile import Difference

# What a person reads first, in this order; the JSON carries every figure.
CITY_ROWS = (
    "charged",
    "incentive",
    "issued",
    "paid",
    "payments",
    "refunded",
    "refunds",
    "cashed_out",
    "resident_refunded",
    "confiscated",
    "burned",
    "settled",
    "returned",
    "outstanding",
    "clawed_back",
    "incentive_mode",
    "cashback",
    "cashbacks",
    "cashback_reversed",
    "cashback_owed",
    "cashback_budget",
    "supply",
    "resident_count",
    "merchant_count",
    "redemption_count",
    "redemptions_pending",
    "events",
)
MERCHANT_COLUMNS = (
    "received",
    "payments",
    "refunded",
    "cashed_out",
    "settled",
    "returned",
    "outstanding",
    "balance",
)


def merchant_report(books: CityBooks, address: str) -> dict[str, Any]:
    account = books.accounts.get(checksummed(address, "merchant"))
    if account is None or account.kind != "merchant":
        raise AuditError(f"{address} is no merchant of {books.code} by its registry's events")
    redemptions = [
        r.as_dict()
        for r in books.redemptions.values()
        if r.account == account.address and r.kind == "cash_out"
    ]
    return account.as_dict() | {"cash_outs": redemptions}


def city_report(books: CityBooks, merchant: str | None = None) -> dict[str, Any]:
    report = books.summary()
    if merchant is not None:
        report["merchants"] = {checksummed(merchant, "merchant"): merchant_report(books, merchant)}
    else:
        report["merchants"] = {a.address: a.as_dict() for a in books.merchants()}
    report["reserve_statements"] = [statement.as_dict() for statement in books.reserve]
    return report


def report(
    source: ChainSource, city: str | None = None, merchant: str | None = None
) -> dict[str, Any]:
    codes = [source.city(city).code] if city else sorted(source.cities)
    return {
        "chain_id": source.chain_id,
        "directory": source.directory_address,
        "first_block": source.first_block,
        "first_block_from": source.first_block_from,
        "block": source.scanned_to,
        "cities": {code: city_report(source.books.city(code), merchant) for code in codes},
    }


def _number(value: Any) -> str:
    if value is None:
        return "-"  # a figure that does not apply (the budget of a city without cashback)
    return f"{value:,}" if isinstance(value, int) and not isinstance(value, bool) else str(value)


def print_report(document: dict[str, Any], console: Console) -> None:
    cities = document["cities"]
    table = Table(
        title=f"Books at block {document['block']:,} (from block {document['first_block']:,}, "
        f"found by {document['first_block_from']})"
    )
    table.add_column("won / count")
    for code in cities:
        table.add_column(code, justify="right")
    for row in CITY_ROWS:
        table.add_row(row, *(_number(cities[code][row]) for code in cities))
    console.print(table)
    print_reserve(cities, console)
    for code, city in cities.items():
        if not city["merchants"]:
            continue
        merchants = Table(title=f"{code}: merchants")
        merchants.add_column("merchant", no_wrap=True)
        for column in ("category", "region", "status"):
            merchants.add_column(column)
        for column in MERCHANT_COLUMNS:
            merchants.add_column(column, justify="right")
        for address, m in city["merchants"].items():
            merchants.add_row(
                address,
                str(m["category"]),
                str(m["region"]),
                m["status"],
                *(_number(m[column]) for column in MERCHANT_COLUMNS),
            )
        console.print(merchants)


def print_reserve(cities: dict[str, Any], console: Console) -> None:
    """The bank statements of each city's custody account, against what the city owed."""
    rows = [
        (code, statement)
        for code, city in cities.items()
        for statement in city.get("reserve_statements", [])
    ]
    if not rows:
        return
    table = Table(title="Proof of reserve: the custody account against what the city owed")
    for column in ("city", "block", "bank time (UTC)", "balance", "owed", "margin", "verified"):
        table.add_column(column, justify="left" if column in ("city", "verified") else "right")
    for code, statement in rows:
        table.add_row(
            code,
            _number(statement["block"]),
            datetime.fromtimestamp(statement["as_of"], UTC).strftime("%Y-%m-%d %H:%M:%S"),
            _number(statement["balance"]),
            _number(statement["owed"]),
            f"{statement['margin']:+,}",
            "yes" if statement["verified"] else "NO",
        )
    console.print(table)


def print_violations(violations: list[Violation], console: Console) -> None:
    if not violations:
        console.print("No violation: every invariant holds.")
        return
    table = Table(title=f"{len(violations)} violation(s)")
    table.add_column("city")
    table.add_column("invariant")
    table.add_column("what the numbers say")
    for violation in violations:
        table.add_row(violation.city, violation.code, violation.message)
    console.print(table)


def print_differences(differences: list[Difference], console: Console) -> None:
    if not differences:
        console.print("No difference: the database and the chain agree.")
        return
    table = Table(title=f"{len(differences)} difference(s) between the database and the chain")
    for column in ("city", "record", "key", "field", "database", "chain"):
        table.add_column(column, overflow="fold")
    for d in differences:
        table.add_row(d.city, d.record, d.key, d.field, _number(d.database), _number(d.chain))
    console.print(table)
