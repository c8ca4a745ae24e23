"""The invariants an auditor checks, each violation with the numbers that break it.

- supply: the token's totalSupply == the Transfers' mints less burns == issued - burned + returned
  + what programs paid out - what expired or went back to the city (from the treasury's and the
  programs' events), and the treasury's own totals() agree with its events;
- programs: none funded over its budget nor paid out over its funding;
- redemptions: every cash-out or refund the treasury counts was requested once and is settled,
  returned or pending, as its events and the contract both say;
- annual cap: what charging and cashback minted in each fiscal year never passed the cap in
  force, and this year's sum agrees with the treasury's issuedThisFiscalYear();
- cashback: the budget left by the cashback contract's events is its budget(), the incentive
  mode by the treasury's events its incentiveMode(), and each resident a reversal named owes by
  the events what its debtOf() says;
- reserve: every bank statement the directory recorded is the bank's (its digest recomputed from
  its fields, signed by the custody key the city named), the supply it recorded is the supply by
  the events, and the custody account held at least what the city owed at the statement's time
  (supply plus pending payouts): a shortfall is a violation;
- the events themselves: nothing the books found contradictory (see Books.anomalies).
"""

from __future__ import annotations

from collections import deque
from dataclasses import asdict, dataclass, field
from typing import Any

from citypay.audit.source import ChainSource
from citypay.audit.views import CityViews, read_views
from citypay.ledger.books import Anomaly, CityBooks, fiscal_year


@dataclass(frozen=True)
class Violation:
    city: str
    code: str
    message: str
    values: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def _won(value: int) -> str:
    return f"{value:,} won"


def _supply(books: CityBooks, views: CityViews) -> list[Violation]:
    figures, classes = books.figures, books.classes()
    paid_out, programs_expired = classes["programs_paid_out"], classes["programs_expired"]
    expired = programs_expired + classes["general_expired"]
    from_treasury = figures.issued - figures.burned + figures.returned + paid_out - expired
    values = {
        "total_supply": views.total_supply,
        "supply_from_transfers": books.supply,
        "issued": figures.issued,
        "burned": figures.burned,
        "returned": figures.returned,
        "programs_paid_out": paid_out,
        "expired": expired,
        "issued_minus_burned_plus_returned": from_treasury,
    }
    violations = []
    if views.total_supply != from_treasury:
        violations.append(
            Violation(
                books.code,
                "supply_mismatch",
                f"totalSupply is {_won(views.total_supply)} but issued - burned + returned + paid "
                f"out by programs - expired is {_won(figures.issued)} - {_won(figures.burned)} + "
                f"{_won(figures.returned)} + {_won(paid_out)} - {_won(expired)} = "
                f"{_won(from_treasury)} (difference {views.total_supply - from_treasury:+,})",
                values,
            )
        )
    if views.total_supply != books.supply:
        violations.append(
            Violation(
                books.code,
                "supply_transfers_mismatch",
                f"totalSupply is {_won(views.total_supply)} but the Transfer events mint "
                f"{_won(books.minted)} and burn {_won(books.destroyed)}: {_won(books.supply)}",
                values,
            )
        )
    from_events = {
        "issued": figures.issued,
        "incentive": figures.incentive,
        "burned": figures.burned,
        "returned": figures.returned,
        "settled": figures.settled,
        "clawed_back": figures.clawed_back,
    }
    for name, expected in from_events.items():
        stated = views.totals[name]
        if stated != expected:
            violations.append(
                Violation(
                    books.code,
                    "treasury_totals_mismatch",
                    f"the treasury's totals() say {name} {_won(stated)}, its events "
                    f"{_won(expected)} (difference {stated - expected:+,})",
                    {"total": name, "treasury": stated, "events": expected},
                )
            )
    return violations


def _programs(books: CityBooks) -> list[Violation]:
    violations = []
    for program in books.programs.values():
        for over, limit, what in (
            (program.funded, program.budget, "funded over its budget"),
            (program.paid_out, program.funded, "paid out over its funding"),
        ):
            if over > limit:
                violations.append(
                    Violation(
                        books.code,
                        "program_over_budget",
                        f"program {program.code} ({program.program}) {what}: {_won(over)} "
                        f"against {_won(limit)}",
                        {"program": program.program, "amount": over, "limit": limit},
                    )
                )
        if program.outstanding < 0:
            violations.append(
                Violation(
                    books.code,
                    "program_negative",
                    f"program {program.code} ({program.program}) has spent and expired more than "
                    f"it paid out and was refunded: outstanding {_won(program.outstanding)}",
                    program.as_dict(),
                )
            )
    return violations


def _redemptions(books: CityBooks, views: CityViews) -> list[Violation]:
    violations = []
    requested = set(books.redemptions)
    missing = sorted(set(range(views.redemption_count)) - requested)
    unknown = sorted(requested - set(range(views.redemption_count)))
    if missing or unknown:
        violations.append(
            Violation(
                books.code,
                "redemption_count_mismatch",
                f"the treasury counts {views.redemption_count} redemptions; the events request "
                f"{len(requested)} (without a request: {missing[:20]}, beyond the count: "
                f"{unknown[:20]})",
                {
                    "redemption_count": views.redemption_count,
                    "requested": len(requested),
                    "missing": missing,
                    "unknown": unknown,
                },
            )
        )
    for number, redemption in sorted(books.redemptions.items()):
        on_chain = views.redemption_status.get(number)
        if on_chain is not None and on_chain != redemption.status:
            violations.append(
                Violation(
                    books.code,
                    "redemption_status_mismatch",
                    f"redemption {number} ({redemption.kind} of {_won(redemption.burned)} by "
                    f"{redemption.account}) is {redemption.status} by its events but "
                    f"{on_chain} on chain",
                    {"id": number, "events": redemption.status, "chain": on_chain},
                )
            )
    return violations


def _annual_cap(books: CityBooks, views: CityViews) -> list[Violation]:
    violations = []
    start = views.fiscal_year_start_month
    caps = sorted(
        (change for change in books.policy_changes if change.parameter == "annualIssuanceCap"),
        key=lambda change: (change.block_number, change.log_index),
    )
    # The cap the treasury was deployed with is the first change's old value, or today's.
    cap = caps[0].old if caps else views.annual_cap
    changes = deque(caps)
    # What the cap counts, in chain order: charges (amount + incentive) and cashback minted.
    mints = sorted(
        [
            ((i.block_number, i.log_index), "charge", i.resident, i.block_time,
             i.amount + i.incentive)
            for i in books.issuances
        ]
        + [
            ((c.block_number, c.log_index), "cashback", c.resident, c.block_time, c.minted)
            for c in books.cashback_mints
        ]
    )  # fmt: skip
    running: dict[int, int] = {}
    for position, kind, resident, block_time, total in mints:
        while changes and (changes[0].block_number, changes[0].log_index) < position:
            cap = changes.popleft().new
        year = fiscal_year(block_time, start)
        running[year] = running.get(year, 0) + total
        if running[year] > cap:
            violations.append(
                Violation(
                    books.code,
                    "annual_cap_exceeded",
                    f"fiscal year {year}: the {kind} of {_won(total)} to {resident} in "
                    f"block {position[0]} brought the year's issuance to "
                    f"{_won(running[year])}, over the cap of {_won(cap)}",
                    {
                        "fiscal_year": year,
                        "issued": running[year],
                        "cap": cap,
                        "block": position[0],
                    },
                )
            )
    this_year = running.get(views.current_fiscal_year, 0)
    if this_year != views.issued_this_fiscal_year:
        violations.append(
            Violation(
                books.code,
                "fiscal_year_issuance_mismatch",
                f"fiscal year {views.current_fiscal_year}: the treasury says "
                f"{_won(views.issued_this_fiscal_year)} issued, its Issued and CashbackPaid "
                f"events {_won(this_year)}",
                {
                    "fiscal_year": views.current_fiscal_year,
                    "treasury": views.issued_this_fiscal_year,
                    "events": this_year,
                },
            )
        )
    return violations


def _cashback(books: CityBooks, views: CityViews) -> list[Violation]:
    violations = []
    if views.cashback_budget is not None and views.cashback_budget != books.cashback_budget:
        violations.append(
            Violation(
                books.code,
                "cashback_budget_mismatch",
                f"the cashback contract's budget() is {_won(views.cashback_budget)}, its events "
                f"leave {_won(books.cashback_budget)} (difference "
                f"{views.cashback_budget - books.cashback_budget:+,})",
                {"cashback": views.cashback_budget, "events": books.cashback_budget},
            )
        )
    if views.incentive_mode is not None and views.incentive_mode != books.incentive_mode:
        violations.append(
            Violation(
                books.code,
                "incentive_mode_mismatch",
                f"the treasury's incentiveMode() is {views.incentive_mode}, its events say "
                f"{books.incentive_mode}",
                {"treasury": views.incentive_mode, "events": books.incentive_mode},
            )
        )
    for wallet, debt in sorted(views.cashback_debts.items()):
        account = books.accounts.get(wallet)
        owed = account.figures.cashback_owed if account is not None else 0
        if debt != owed:
            violations.append(
                Violation(
                    books.code,
                    "cashback_debt_mismatch",
                    f"{wallet} owes {_won(debt)} of reversed cashback by the cashback "
                    f"contract's debtOf(), {_won(owed)} by its events",
                    {"wallet": wallet, "cashback": debt, "events": owed},
                )
            )
    return violations


def _reserve(books: CityBooks) -> list[Violation]:
    violations = []
    for statement in books.reserve:
        values = statement.as_dict()
        where = f"the statement recorded in block {statement.block_number}"
        if not (statement.hash_matches and statement.signed_by_signer):
            violations.append(
                Violation(
                    books.code,
                    "reserve_statement_forged",
                    f"{where} is not signed by {statement.signer} over its own fields "
                    f"(digest {'matches' if statement.hash_matches else 'differs'}, signature "
                    f"{'valid' if statement.signed_by_signer else 'not the key'})",
                    values,
                )
            )
        if not statement.custody_matches:
            violations.append(
                Violation(
                    books.code,
                    "reserve_statement_not_custody",
                    f"{where} names account {statement.account} and key {statement.signer}, "
                    f"not the custody the city configured ({books.custody})",
                    values,
                )
            )
        if statement.outstanding != statement.supply_at_record:
            violations.append(
                Violation(
                    books.code,
                    "reserve_outstanding_mismatch",
                    f"{where} records {_won(statement.outstanding)} outstanding, but the "
                    f"Transfer events make the supply {_won(statement.supply_at_record)}",
                    values,
                )
            )
        if statement.margin < 0:
            violations.append(
                Violation(
                    books.code,
                    "reserve_shortfall",
                    f"the custody account held {_won(statement.balance)} at {statement.as_of} "
                    f"(bank time), but the city owed {_won(statement.owed)} then (supply plus "
                    f"pending payouts): short by {_won(-statement.margin)} ({where})",
                    values,
                )
            )
    return violations


def _anomalies(anomalies: list[Anomaly]) -> list[Violation]:
    return [
        Violation(
            a.city,
            a.code,
            f"{a.message} (block {a.block_number}, transaction {a.tx_hash})",
            {"block": a.block_number, "tx_hash": a.tx_hash},
        )
        for a in anomalies
    ]


def check_city(books: CityBooks, views: CityViews, anomalies: list[Anomaly]) -> list[Violation]:
    """Every violation in one city; none when its books and contracts agree."""
    return (
        _supply(books, views)
        + _redemptions(books, views)
        + _annual_cap(books, views)
        + _cashback(books, views)
        + _programs(books)
        + _reserve(books)
        + _anomalies([a for a in anomalies if a.city == books.code])
    )


def check(source: ChainSource, city: str | None = None) -> list[Violation]:
    """Every violation in the cities the source has read (or in one), at the block it read to."""
    codes = [source.city(city).code] if city else sorted(source.cities)
    violations = []
    for code in codes:
        books = source.books.city(code)
        # A debt follows its resident to a recovered wallet's replacement.
        debtors = sorted({books.current_wallet(wallet) for wallet in books.cashback_debtors})
        views = read_views(
            source.gateway, source.city(code), source.scanned_to, list(books.redemptions), debtors
        )
        violations += check_city(books, views, source.books.anomalies)
    return violations
