"""`python -m citypay.audit`: report, check, reconcile and serve, from an RPC URL and the
directory's address.

Exit codes: 0 audited and found nothing; 1 audited and found violations (check) or differences
(reconcile); 2 could not audit (the node unreachable or failing, its history missing, the
directory no directory, a bad manifest or argument), with the reason on stderr. Where reading
starts: see citypay.audit.source.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import click
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from citypay.audit.invariants import check as check_invariants
from citypay.audit.report import print_differences, print_report, print_violations
from citypay.audit.report import report as build_report
from citypay.audit.source import ChainSource, Manifest, cannot_audit, connect
from citypay.audit.statutory import (
    Period,
    PeriodError,
    StatutoryTally,
    print_statutory,
    statutory_csv,
)
from citypay.ledger import Books

FORMATS = click.Choice(["table", "json"])


class AuditFailed(click.ClickException):
    """The audit could not be made (node, directory, arguments): exit 2, apart from findings."""

    exit_code = 2


@contextmanager
def _progress_bar(shown: bool | None) -> Iterator[Callable[[int, int, int, int], None] | None]:
    """A bar on stderr when it is a terminal or --progress asked for one."""
    console = Console(stderr=True)
    if not (console.is_terminal if shown is None else shown):
        yield None
        return
    with Progress(
        TextColumn("[bold]reading blocks"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[events]:,} events"),
        TimeRemainingColumn(),
        console=console,
        # Refreshed by the updates themselves: one scan is short, and a terminal not needed.
        auto_refresh=console.is_terminal,
    ) as bar:
        task = bar.add_task("scan", total=None, events=0)

        def update(first: int, last: int, reached: int, events: int) -> None:
            bar.update(task, total=last - first + 1, completed=reached - first + 1, events=events)
            if not console.is_terminal:
                bar.refresh()

        yield update


@contextmanager
def _auditing(rpc_url: str) -> Iterator[None]:
    """Every way the audit cannot be made ends in exit code 2 and its reason, never in a
    traceback: an uncaught exception would exit 1, which says "violations found"."""
    try:
        yield
    except KeyboardInterrupt:
        raise AuditFailed("interrupted: nothing was concluded") from None
    except click.ClickException:
        raise
    except Exception as error:
        reason = cannot_audit(error, rpc_url)
        raise AuditFailed(
            str(reason)
            if reason is not None
            else f"the auditor failed unexpectedly ({type(error).__name__}: {error}); nothing "
            "was concluded: please report it with this message"
        ) from None


def _read(options: dict[str, Any], on_new_books: Callable[[Books], None] | None = None):
    with _auditing(options["rpc_url"]):
        manifest = options["manifest"]
        source = ChainSource(
            connect(options["rpc_url"]),
            options["directory"],
            confirmations=options["confirmations"],
            from_block=options["from_block"],
            manifest=Manifest.read(manifest) if manifest is not None else None,
            on_new_books=on_new_books,
        )
        with _progress_bar(options["progress"]) as progress:
            source.catch_up(progress=progress)
    return source


def _console() -> Console:
    """stdout; as wide as a merchant row when it is a file or a pipe (rich's default is 80)."""
    console = Console()
    return console if console.is_terminal else Console(width=180)


def _emit_json(document: Any) -> None:
    json.dump(document, sys.stdout, indent=2, ensure_ascii=False)
    sys.stdout.write("\n")


def chain_options(command):
    for option in reversed(
        [
            click.option("--rpc-url", envvar="AUDIT_RPC_URL", required=True, help="The node."),
            click.option(
                "--directory",
                envvar="AUDIT_DIRECTORY",
                required=True,
                help="The CityDirectory's address: the cities are found through it.",
            ),
            click.option(
                "--manifest",
                envvar="AUDIT_MANIFEST",
                type=click.Path(dir_okay=False),
                help="The deployment manifest (data/deployments/<chain id>.json): reading starts "
                "at the earliest `block` it records for the contracts the directory lists.",
            ),
            click.option(
                "--from-block",
                type=click.IntRange(min=0),
                help="Start reading at this block, before any other source's word: every "
                "platform event must be at or after it.",
            ),
            click.option(
                "--confirmations",
                default=0,
                show_default=True,
                type=click.IntRange(min=0),
                help="Blocks below the head to stop at.",
            ),
            click.option(
                "--progress/--no-progress",
                default=None,
                help="A progress bar on stderr (default: when stderr is a terminal).",
            ),
        ]
    ):
        command = option(command)
    return command


def output_option(command):
    return click.option("--format", "output", type=FORMATS, default="table", show_default=True)(
        command
    )


@click.group()
def cli() -> None:
    """The auditor: a city's books from the chain alone, its invariants, and the backend's
    database against them.

    \b
    Reading starts at the first of:
      --from-block N   the operator's word;
      --manifest PATH  the earliest block it records for the listed contracts;
      the events       the directory's first log, then any earlier one of its cities;
      a probe          eth_getCode bisection, only if the directory has no log at all.
    None needs the state of past blocks but the probe, so a node restarted from a state file
    or pruned is audited from its logs; when the blocks read lack a listed city's
    CityRegistered, the audit is refused.

    \b
    Exit codes: 0 audited, nothing found; 1 violations (check) or differences (reconcile);
    2 could not audit (node, history, directory, manifest or arguments), with the reason.
    """


@cli.command()
@chain_options
@click.option(
    "--format",
    "output",
    type=click.Choice(["table", "json", "csv"]),
    default="table",
    show_default=True,
    help="csv: the statutory report (--period) as a spreadsheet, UTF-8 with a BOM.",
)
@click.option("--city", help="One city's code (default: every city).")
@click.option("--merchant", help="One merchant's address.")
@click.option(
    "--period",
    help="The statutory report for the Ministry of the Interior and Safety: a half year "
    "(2026H1, 2026H2) or a year (2026), in Korean time.",
)
def report(
    output: str, city: str | None, merchant: str | None, period: str | None, **options
) -> None:
    """Issued, incentive, paid, refunded, cashed out, settled, returned, outstanding: per city
    and per merchant; with --period, the half-yearly statutory report."""
    if period is not None:
        _statutory(output, city, merchant, period, options)
        return
    if output == "csv":
        raise AuditFailed("--format csv is the statutory report's: give --period (e.g. 2026H1)")
    source = _read(options)
    with _auditing(options["rpc_url"]):
        document = build_report(source, city, merchant)
    if output == "json":
        _emit_json(document)
    else:
        print_report(document, _console())


def _statutory(output: str, city: str | None, merchant: str | None, period: str, options):
    if merchant is not None:
        raise AuditFailed("--merchant does not go with --period: the statutory report is a city's")
    try:
        tally = StatutoryTally(Period.parse(period))
    except PeriodError as error:
        raise AuditFailed(str(error)) from None
    source = _read(options, on_new_books=tally.attach)
    with _auditing(options["rpc_url"]):
        codes = [source.city(city).code] if city else sorted(source.cities)
        block_time = int(source.gateway.block(source.scanned_to)["timestamp"], 16)
        document = {
            "chain_id": source.chain_id,
            "block": source.scanned_to,
            "block_time": block_time,
            # A period not yet over is reported up to the block read, and says so.
            "complete": block_time >= tally.period.end,
        } | tally.report(codes)
    if output == "json":
        _emit_json(document)
    elif output == "csv":
        sys.stdout.buffer.write(statutory_csv(document).encode("utf-8"))
    else:
        print_statutory(document, _console())


@cli.command()
@chain_options
@output_option
@click.option("--city", help="One city's code (default: every city).")
def check(output: str, city: str | None, **options) -> None:
    """Checks the invariants: exit code 0 when every one holds, 1 when one is violated, 2 when
    the audit could not be made."""
    source = _read(options)
    with _auditing(options["rpc_url"]):
        violations = check_invariants(source, city)
    if output == "json":
        _emit_json({"block": source.scanned_to, "violations": [v.as_dict() for v in violations]})
    else:
        print_violations(violations, _console())
    sys.exit(1 if violations else 0)


@cli.command()
@chain_options
@output_option
@click.option(
    "--database-url",
    envvar="DATABASE_URL",
    required=True,
    help="The backend's database (SQLAlchemy URL).",
)
@click.option("--city", help="One city's code (default: every city).")
def reconcile(output: str, database_url: str, city: str | None, **options) -> None:
    """Lists every difference between the backend's database and the chain; exit code 1 when
    there is one."""
    # Only this command reads a database: SQLAlchemy and the tables load here, not at start.
    from sqlalchemy.exc import SQLAlchemyError

    from citypay.audit.reconcile import PaymentIndex
    from citypay.audit.reconcile import reconcile as reconcile_database

    payments = PaymentIndex()
    source = _read(options, on_new_books=payments.attach)
    with _auditing(options["rpc_url"]):
        if city is not None:
            source.city(city)
        try:
            differences = reconcile_database(database_url, source.books, payments, city)
        except SQLAlchemyError as error:
            raise AuditFailed(f"the backend's database could not be read: {error}") from None
    if output == "json":
        _emit_json({"block": source.scanned_to, "differences": [d.as_dict() for d in differences]})
    else:
        print_differences(differences, _console())
    sys.exit(1 if differences else 0)


@cli.command()
@chain_options
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8740, show_default=True, type=click.IntRange(1, 65535))
def serve(host: str, port: int, **options) -> None:
    """The read-only API: GET /cities, /cities/{code}/report, /cities/{code}/merchants/{address},
    /cities/{code}/check."""
    import uvicorn

    from citypay.audit.api import create_audit_app

    source = _read(options)
    uvicorn.run(create_audit_app(source), host=host, port=port, log_level="info")
