"""Time to audit 100,000 payments, against the raw eth_getLogs read of the same blocks.

    make bench-audit            # BENCH_AUDIT_PAYMENTS=20000 for a shorter run, 1000000 a longer

Starts a chain of its own (BENCH_CHAIN_PORT, a free port if unset) and deploys the cities,
registers and charges payers, then makes BENCH_AUDIT_PAYMENTS payments as payer-signed EIP-3009
authorizations settled by `transferWithAuthorizationBatch` in batches of BENCH_AUDIT_BATCH. The
authorizations are signed with coincurve over the digest worked out word by word (eth-account's
typed-data signing takes about 2 ms each); their generation is timed apart from the audit.

Then, in the same run:
- raw: every log of the directory and the cities' contracts over the audited range, read with the
  auditor's LogReader and nothing else (no decoding, no books);
- audit: `python -m citypay.audit report --format json` end to end, as a subprocess that knows
  only the RPC URL and the directory's address (finding the start block included);
- where the audit's time goes: the same logs decoded (citypay.chain.events.decode_log) and
  folded (citypay.ledger.Books), each timed in this process.

Prints a table and writes bench/results/audit.md and audit.json (audit-N.md and audit-N.json for
another number of payments), with the auditor process's peak memory.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "backend" / "tests"))
sys.path.insert(0, str(ROOT / "bench"))

from citypay.audit.source import ChainSource, connect  # noqa: E402
from citypay.ledger import Books  # noqa: E402
from history import decode_all, make_history, people, read_raw  # noqa: E402
from platform_harness import ChainUnderTest  # noqa: E402

CITY = "gimpo"
PAYMENTS = int(os.environ.get("BENCH_AUDIT_PAYMENTS", "100000"))
BATCH = int(os.environ.get("BENCH_AUDIT_BATCH", "300"))
PAYERS = max(1, min(1_000, PAYMENTS // 100))
MERCHANTS = 20
CHAIN_PORT = int(os.environ.get("BENCH_CHAIN_PORT", "0")) or None
RESULTS = ROOT / "bench" / "results"


def _value(index: int) -> int:
    # 1 to 199 won: a payer's 1,000 payments (a million over 1,000 payers) stay within its
    # 220,000 won charge.
    return 1 + index % 199


def audit_report(chain: ChainUnderTest, directory: str) -> tuple[float, dict, int]:
    """(seconds, report, peak resident memory in KiB) of the auditor's own process."""
    started = time.perf_counter()
    auditor = subprocess.Popen(
        [sys.executable, "-m", "citypay.audit", "report", "--rpc-url", chain.rpc_url,
         "--directory", directory, "--city", CITY, "--format", "json", "--no-progress"],
        cwd=ROOT, stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    output = auditor.stdout.read()
    # wait4 gives the process's own resource use: its peak memory (ru_maxrss, KiB on Linux).
    _, status, usage = os.wait4(auditor.pid, 0)
    seconds = time.perf_counter() - started
    auditor.returncode = os.waitstatus_to_exitcode(status)
    if auditor.returncode != 0:
        raise SystemExit(f"the audit failed (exit {auditor.returncode})")
    return seconds, json.loads(output), usage.ru_maxrss


def raw_read(chain: ChainUnderTest, directory: str) -> dict:
    """The same range and addresses the auditor reads, with its reader, and the decode and fold
    of what came back, each timed."""
    source = ChainSource(connect(chain.rpc_url), directory)
    head = source.head()
    source.locate(head)
    where = source.watched
    read, logs, _ = read_raw(source.gateway.rpc, where, source.first_block, head)
    decoded, events = decode_all(logs, where)
    started = time.perf_counter()
    books = Books().apply_all(events)
    folded = time.perf_counter() - started
    return {
        "first_block": source.first_block,
        "last_block": head,
        "logs": len(logs),
        "read_seconds": read,
        "decode_seconds": decoded,
        "fold_seconds": folded,
        "payments": books.cities[CITY].figures.payments,
    }


def main() -> None:
    # A throwaway chain: blocks and logs, not a copy of the state per block (chain.py).
    os.environ.setdefault("CITY_CHAIN_HISTORY", "pruned")
    workdir = ROOT / "data" / "bench-audit" / str(os.getpid())
    workdir.mkdir(parents=True)
    chain = ChainUnderTest(workdir, CHAIN_PORT)
    print(f"audit benchmark: {PAYMENTS:,} payments by {PAYERS} payers, batches of {BATCH}")
    started = time.perf_counter()
    chain.start_and_deploy()
    try:
        payers, merchants = people(chain, PAYERS, MERCHANTS)
        setup = time.perf_counter() - started
        made = make_history(
            chain, CITY, payers, merchants, PAYMENTS, _value, label="bench-audit", batch=BATCH
        )

        directory = json.loads(chain.manifest.read_text())["directory"]["address"]
        # What else ran on the machine: the cores are shared, and the audit is timed wall-clock.
        load_average = os.getloadavg()[0]
        raw = raw_read(chain, directory)
        audit_seconds, report, audit_peak_kib = audit_report(chain, directory)
    finally:
        chain.stop()
    audited = report["cities"][CITY]
    expected = sum(_value(i) for i in range(PAYMENTS))
    assert audited["payments"] == raw["payments"] == PAYMENTS, (audited["payments"], PAYMENTS)
    assert audited["paid"] == expected, (audited["paid"], expected)
    write_results(
        made
        | {
            "payments": PAYMENTS,
            "batch": BATCH,
            "payers": PAYERS,
            "merchants": MERCHANTS,
            "setup_seconds": setup,
            "audit_seconds": audit_seconds,
            "audit_peak_mib": audit_peak_kib / 1024,
            "audited_paid": audited["paid"],
            "raw": raw,
            "cores": os.cpu_count(),
            "load_average": load_average,
        }
    )


def write_results(result: dict) -> None:
    raw = result["raw"]
    per_second = result["payments"] / result["audit_seconds"]
    rows = [
        ("raw eth_getLogs of the range (LogReader, no decoding)", raw["read_seconds"], ""),
        ("audit report, end to end (subprocess, JSON out)", result["audit_seconds"],
         f"{per_second:,.0f} payments/s, peak memory {result['audit_peak_mib']:,.0f} MiB"),
        ("its parts, timed apart here: decode_log of every log", raw["decode_seconds"], ""),
        ("its parts, timed apart here: Books fold of every event", raw["fold_seconds"], ""),
    ]  # fmt: skip
    lines = [
        f"| {result['payments']:,} payments ({raw['logs']:,} logs, blocks "
        f"{raw['first_block']}-{raw['last_block']}) | seconds | |",
        "|---|---:|---:|",
        *(f"| {name} | {seconds:.2f} | {note} |" for name, seconds, note in rows),
        "",
        f"- audit / raw read: {result['audit_seconds'] / raw['read_seconds']:.1f}x; the audit "
        f"found {result['payments']:,} payments and {result['audited_paid']:,} won paid, as made.",
        f"- generation, apart: {result['payers']} payers and {result['merchants']} merchants "
        f"registered and charged with the deployment in {result['setup_seconds']:.0f} s; "
        f"{result['payments']:,} authorizations signed (coincurve) in "
        f"{result['signing_seconds']:.1f} s; mined in batches of {result['batch']} in "
        f"{result['mining_seconds']:.1f} s (1-second blocks).",
        f"- {result['cores']} cores shared by the node, the auditor and the generator (load "
        f"average {result['load_average']:.1f} when the audit began).",
    ]
    table = "\n".join(lines)
    print(table)
    RESULTS.mkdir(exist_ok=True)
    # audit.md for the default 100,000 payments, audit-1000000.md for a million, and so on.
    name = "audit" if result["payments"] == 100_000 else f"audit-{result['payments']}"
    (RESULTS / f"{name}.md").write_text(table + "\n", encoding="utf-8")
    (RESULTS / f"{name}.json").write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
