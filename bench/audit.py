"""Time to audit 100,000 payments, against the raw eth_getLogs read of the same blocks.

    make bench-audit            # BENCH_AUDIT_PAYMENTS=20000 for a shorter run, 1000000 a longer

Starts a chain of its own (BENCH_CHAIN_PORT, a free port if unset) and deploys the cities,
registers and charges payers, then makes BENCH_AUDIT_PAYMENTS payments as payer-signed EIP-3009
authorizations settled by `transferWithAuthorizationBatch` in batches of BENCH_AUDIT_BATCH, in
blocks it mines itself (BENCH_AUDIT_GAS_LIMIT gas every BENCH_AUDIT_BLOCK_TIME seconds). The
authorizations are signed with coincurve over the digest worked out word by word (eth-account's
typed-data signing takes about 2 ms each); their generation is timed apart from the audit.

Then, in the same run, the two compared best of BENCH_AUDIT_REPEATS (3) runs each, as the cores are
shared with whatever else runs on the machine:
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
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "backend" / "tests"))
sys.path.insert(0, str(ROOT / "bench"))

from citypay.audit.source import ChainSource, connect  # noqa: E402
from citypay.chain.log_reader import LogReader  # noqa: E402
from citypay.chain.rpc import JsonRpc  # noqa: E402
from citypay.ledger import Books  # noqa: E402
from history import count_raw, decode_all, make_history, people, read_raw  # noqa: E402
from platform_harness import ChainUnderTest  # noqa: E402

CITY = "gimpo"
PAYMENTS = int(os.environ.get("BENCH_AUDIT_PAYMENTS", "100000"))
BATCH = int(os.environ.get("BENCH_AUDIT_BATCH", "300"))
PAYERS = max(1, min(1_000, PAYMENTS // 100))
MERCHANTS = 20
# The history's blocks, after the setup's: 400,000,000 gas (about 9,500 payments) every 6 s,
# the same at any length of history, so the auditor reads blocks as dense. anvil 1.7 rebuilds
# its whole state trie and copies its state for every block it mines, empty or not: 0.4 s at
# 200,000 storage slots, 1.8 s at 1,000,000 (a payment uses one, its authorization's). At the
# chain's own 1-second blocks of 100,000,000 gas that passed the block time about 830,000
# payments in: the node mined without pause, the sender's requests waited behind it, and blocks
# went out nearly empty. Under that load it also keeps memory for every block it mines, more as
# the state grows (2.6 GB at 250,000 payments in blocks of 2,100, 0.7 GB more every 10 blocks
# past 500,000, whatever --prune-history keeps): four times fewer blocks kept a million
# payments' node under 9 GB.
BLOCK_SECONDS = float(os.environ.get("BENCH_AUDIT_BLOCK_TIME", "6"))
BLOCK_GAS = int(os.environ.get("BENCH_AUDIT_GAS_LIMIT", "400000000"))
# Between the end of a block and the next, at least: the sender's requests wait while the node
# mines, and are answered here.
BLOCK_GAP_SECONDS = 0.5
CHAIN_PORT = int(os.environ.get("BENCH_CHAIN_PORT", "0")) or None
REPEATS = int(os.environ.get("BENCH_AUDIT_REPEATS", "3"))
RESULTS = ROOT / "bench" / "results"


def _value(index: int) -> int:
    # 1 to 199 won: a payer's 1,000 payments (a million over 1,000 payers) stay within its
    # 220,000 won charge.
    return 1 + index % 199


# The auditor is started by a small Python process of its own, which waits for it and prints its
# peak memory (ru_maxrss, KiB on Linux) as the last line of their shared stdout. Started from this
# process, whose peak is the logs read_raw held, the auditor would report that peak as its own:
# Linux keeps the parent's high-water mark in the child's ru_maxrss when the child execs. (The
# 584 MiB this bench once printed for the auditor at 100,000 payments was this process's peak; the
# auditor of the same code, measured apart on such a history, peaked at 439 MiB.)
LAUNCHER = (
    "import os, sys; "
    "pid = os.spawnv(os.P_NOWAIT, sys.executable, [sys.executable, *sys.argv[1:]]); "
    "_, status, usage = os.wait4(pid, 0); "
    "print(usage.ru_maxrss, flush=True); "
    "sys.exit(os.waitstatus_to_exitcode(status))"
)


def audit_report(chain: ChainUnderTest, directory: str) -> tuple[float, dict, int]:
    """(seconds, report, peak resident memory in KiB) of the auditor's own process."""
    started = time.perf_counter()
    auditor = subprocess.run(
        [sys.executable, "-c", LAUNCHER, "-m", "citypay.audit", "report", "--rpc-url",
         chain.rpc_url, "--directory", directory, "--city", CITY, "--format", "json",
         "--no-progress"],
        cwd=ROOT, stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    seconds = time.perf_counter() - started
    if auditor.returncode != 0:
        raise SystemExit(f"the audit failed (exit {auditor.returncode})")
    report, peak_kib = auditor.stdout.rstrip("\n").rsplit("\n", 1)
    return seconds, json.loads(report), int(peak_kib)


class BlockMaker:
    """While in use, a block of at most `gas` every `seconds`, mined with evm_mine from a thread
    of its own, and never sooner than BLOCK_GAP_SECONDS after the last one; none before or after
    (the chain stands still while it is read: a block mined then would take a core from the reads
    timed). Not anvil's interval mining, which mines the ticks it missed back to back once a block
    takes longer than the interval, the sender's requests waiting behind each."""

    def __init__(self, chain: ChainUnderTest, seconds: float, gas: int) -> None:
        self.rpc = JsonRpc(chain.rpc_url, timeout=120)
        self.seconds = seconds
        self.rpc.request("evm_setIntervalMining", 0)
        self.rpc.request("evm_setBlockGasLimit", hex(gas))
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._mine, name="block-maker", daemon=True)
        self.failure: Exception | None = None

    def __enter__(self) -> BlockMaker:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()
        self.rpc.close()
        if self.failure is not None and exc[0] is None:
            raise self.failure

    def _mine(self) -> None:
        due = time.monotonic() + self.seconds
        while not self._stop.wait(max(0.0, due - time.monotonic())):
            try:
                self.rpc.request("evm_mine")
            except Exception as failure:  # the sender stalls and says why; this says what
                self.failure = failure
                print(f"bench-audit: evm_mine failed ({failure}); no more blocks")
                return
            due = max(due + self.seconds, time.monotonic() + BLOCK_GAP_SECONDS)


def raw_read(chain: ChainUnderTest, directory: str) -> dict:
    """The same range and addresses the auditor reads, with its reader, and the decode and fold
    of what came back, each timed."""
    source = ChainSource(connect(chain.rpc_url), directory)
    head = source.head()
    source.locate(head)
    where = source.watched
    runs = [count_raw(source.gateway.rpc, where, source.first_block, head) for _ in range(REPEATS)]
    read = min(seconds for seconds, _, _ in runs)
    _, logs, widest = runs[0]
    # As this benchmark read before: every log kept in one list, whose growing heap the
    # collector walks again and again; the audit keeps a chunk at a time, like count_raw.
    held, kept, _ = read_raw(source.gateway.rpc, where, source.first_block, head)
    assert len(kept) == logs, (len(kept), logs)
    del kept
    decoded, folded, books = decode_and_fold(source.gateway.rpc, where, source.first_block, head)
    return {
        "first_block": source.first_block,
        "last_block": head,
        "logs": logs,
        "read_seconds": read,
        "read_held_seconds": held,
        "widest_chunk": widest,
        "decode_seconds": decoded,
        "fold_seconds": folded,
        "payments": books.cities[CITY].figures.payments,
    }


def decode_and_fold(rpc, where: dict, first: int, last: int) -> tuple[float, float, Books]:
    """(decode seconds, fold seconds, books): the range read again, each chunk decoded and folded
    as it comes, as the auditor does, so that neither the logs nor the events of the whole
    history are held at once; the reads are not counted."""
    books = Books()
    decoding = folding = 0.0
    for chunk in LogReader(rpc, list(where)).read(first, last):
        seconds, events = decode_all(chunk.logs, where)
        started = time.perf_counter()
        books.apply_all(events)
        folding += time.perf_counter() - started
        decoding += seconds
    return decoding, folding, books


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
        with BlockMaker(chain, BLOCK_SECONDS, BLOCK_GAS):
            made = make_history(
                chain, CITY, payers, merchants, PAYMENTS, _value, label="bench-audit", batch=BATCH
            )

        directory = json.loads(chain.manifest.read_text())["directory"]["address"]
        # What else ran on the machine: the cores are shared, and the audit is timed wall-clock.
        load_average = os.getloadavg()[0]
        raw = raw_read(chain, directory)
        audits = [audit_report(chain, directory) for _ in range(REPEATS)]
        audit_seconds = min(seconds for seconds, _, _ in audits)
        report = audits[0][1]
        audit_peak_kib = max(peak for _, _, peak in audits)
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
            "block_seconds": BLOCK_SECONDS,
            "block_gas_limit": BLOCK_GAS,
            "payers": PAYERS,
            "merchants": MERCHANTS,
            "repeats": REPEATS,
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
    best = f"best of {result['repeats']}"
    rows = [
        (f"raw eth_getLogs of the range (LogReader, no decoding; {best})", raw["read_seconds"], ""),
        ("the same, every log kept in one list", raw["read_held_seconds"], ""),
        (f"audit report, end to end (subprocess, JSON out; {best})", result["audit_seconds"],
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
        f"- audit / raw read: {result['audit_seconds'] / raw['read_seconds']:.2f}x (against the "
        f"read that keeps every log: {result['audit_seconds'] / raw['read_held_seconds']:.2f}x); "
        "the audit "
        f"found {result['payments']:,} payments and {result['audited_paid']:,} won paid, as made.",
        f"- the reader's widest chunk: {raw['widest_chunk'][0]:,} logs, blocks "
        f"{raw['widest_chunk'][1]}-{raw['widest_chunk'][2]} (a chunk of more than one block ends "
        "before its blocks' gas could pay for more than the reader's max_logs logs; a block comes "
        "whole). The auditor holds up to three chunks, parsed: one folded, one queued, one being "
        "read.",
        f"- generation, apart: {result['payers']} payers and {result['merchants']} merchants "
        f"registered and charged with the deployment in {result['setup_seconds']:.0f} s; "
        f"{result['payments']:,} authorizations signed (coincurve) in "
        f"{result['signing_seconds']:.1f} s; mined in batches of {result['batch']} in "
        f"{result['mining_seconds']:.1f} s (a block of at most {result['block_gas_limit']:,} gas "
        f"every {result['block_seconds']:g} s, evm_mine).",
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
