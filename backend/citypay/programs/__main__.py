"""python -m citypay.programs payout --city gimpo --program YOUTH-2026H1 --csv recipients.csv

Pays a policy program's money to the recipients of a `wallet,amount` CSV, in batches, with a
progress bar, and writes what the chain did for each recipient next to the list
(<list>.result.csv: paid, already_paid or refused with the contract's reason). Run it again after
a crash or kill at any point: it pays those not yet paid and nobody twice (programs/payout.py).
It signs with the city's program payer key, as the backend does (KEYSTORE_DIR on a city's own
network), and records its transactions in the backend's database (DATABASE_URL).

Exit codes: 0 every recipient paid (now or before), 1 some refused (see the result file),
2 nothing was sent (a bad list, an unknown program or city, no key, no node).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeRemainingColumn

from citypay.chain.deployment import open_deployment
from citypay.chain.duties import DutySenders
from citypay.chain.keys import DutyKeys, SigningKeyError
from citypay.chain.outbox import Outbox
from citypay.core.config import get_settings
from citypay.db.migrate import upgrade
from citypay.db.session import Database
from citypay.programs.payout import (
    DEFAULT_BATCH,
    MAX_BATCH,
    Payout,
    PayoutStopped,
    RecipientListError,
    read_recipients,
    write_outcomes,
)


def _arguments(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m citypay.programs", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    payout = commands.add_parser("payout", help="pay a program out to a CSV of recipients")
    payout.add_argument("--city", required=True, help="the city's code, e.g. gimpo")
    payout.add_argument("--program", required=True, help="the program's code, e.g. YOUTH-2026H1")
    payout.add_argument("--csv", required=True, type=Path, help="wallet,amount per line")
    payout.add_argument(
        "--batch",
        type=int,
        default=DEFAULT_BATCH,
        help=f"recipients a transaction, 1 to {MAX_BATCH}",
    )
    return parser.parse_args(argv)


def _code(text: str) -> bytes:
    raw = text.encode()
    if not 1 <= len(raw) <= 32:
        raise RecipientListError(f"program code {text!r}: 1 to 32 bytes of text")
    return raw.ljust(32, b"\0")


def _say(message: str) -> None:
    """A message for the operator, on one line whatever the terminal's width."""
    print(message, file=sys.stderr)


def main(argv: list[str] | None = None) -> int:
    args = _arguments(argv)
    console = Console(stderr=True)
    if not 1 <= args.batch <= MAX_BATCH:
        _say(f"--batch {args.batch}: from 1 to {MAX_BATCH}")
        return 2
    settings = get_settings()
    deployment = open_deployment(settings)
    city = deployment.cities.get(args.city)
    if city is None or city.programs is None:
        _say(f"city {args.city!r} has no programs contract in {deployment.path}")
        return 2
    gateway = deployment.gateway
    programs = gateway.contract(city.programs.address, "programs")
    try:
        number = programs.call("programOfCode", _code(args.program))
        if number == 0:
            raise RecipientListError(f"city {args.city} has no program {args.program!r}")
        terms = programs.call("program", number)
        recipients = read_recipients(
            args.csv.read_text(encoding="utf-8"), max_amount=terms.maxPerRecipient
        )
        keys = DutyKeys.unlock(settings, deployment)
    except (RecipientListError, OSError, UnicodeDecodeError, SigningKeyError) as refused:
        _say(f"nothing was sent: {refused}")
        return 2
    db = Database(settings.DATABASE_URL)
    upgrade(db.engine)
    outbox = Outbox(db, gateway, confirmations=settings.CHAIN_CONFIRMATIONS)
    sender = DutySenders(keys, outbox).sender("program_payer", city.roles["program_payer"])
    payout = Payout(outbox, sender, programs, number, city=args.city, batch_size=args.batch)
    columns = (*Progress.get_default_columns()[:1], BarColumn(), MofNCompleteColumn())
    try:
        with Progress(*columns, TimeRemainingColumn(), console=console) as progress:
            total = len(recipients)
            task = progress.add_task(f"{args.program} to {total:,}", total=total)
            outcomes = payout.run(recipients, lambda done: progress.advance(task, len(done)))
    except PayoutStopped as stopped:
        _say(f"stopped: {stopped}")
        return 2
    result = args.csv.with_suffix(".result.csv")
    write_outcomes(result, outcomes)
    counts = {s: sum(o.status == s for o in outcomes) for s in ("paid", "already_paid", "refused")}
    print(
        f"{args.program}: {counts['paid']:,} paid now, {counts['already_paid']:,} paid before, "
        f"{counts['refused']:,} refused; each recipient's result in {result}"
    )
    return 1 if counts["refused"] else 0


if __name__ == "__main__":
    sys.exit(main())
