"""Chain events indexed per second, against the raw eth_getLogs rate of the same run; then the
listener's lag while relayed payments come in.

    make bench-listener     # BENCH_LISTENER_PAYMENTS=20000, BENCH_POSTGRES_URL=postgresql+psycopg://...

Starts a chain of its own (BENCH_CHAIN_PORT, a free port if unset) and deploys the cities,
registers and charges payers, then makes BENCH_LISTENER_PAYMENTS payments as payer-signed EIP-3009
authorizations settled by `transferWithAuthorizationBatch` in batches of BENCH_LISTENER_BATCH
(bench/history.py; generation is timed apart). Each payment leaves two events (Transfer and
AuthorizationUsed). Then, over the same blocks and addresses, best of BENCH_LISTENER_REPEATS:

- raw: the listener's LogReader and its chunking, nothing else: eth_getLogs, and the block
  headers by which a chunk of more than one block ends before its blocks' gas could pay for
  more than LogReader.max_logs logs;
- decode: every log of that read through citypay.chain.events.decode_log, in this process;
- SQLite and PostgreSQL: the listener from scratch (fresh database, no checkpoint) to the head,
  read, decoded and stored with a checkpoint per chunk, as `python -m citypay.listener` does (a
  thread reading ahead, another decoding, while it stores; its start-up heap out of the garbage
  collector's walks, settle_start_up); the raw and decode rows' logs and events are let go
  before, as the listener's process holds none. PostgreSQL when BENCH_POSTGRES_URL names a
  database the benchmark may empty.

Before the history, the lag: on the chain as the relay benchmark has it (the cities, payers and
merchants), the backend (LISTENER_IN_API=false, as the relay benchmark runs it) and the listener
as its own process share a SQLite database, and the relay benchmark's relayed run
(bench/relay.py: BENCH_PAYMENTS payments POSTed by BENCH_CLIENTS clients, the merchants' tills
following them) goes through; the listener's /metrics is sampled every 0.1 s from before the
first POST until every block of the load is indexed.

Prints the tables and writes bench/results/listener.md and listener.json.
"""

from __future__ import annotations

import json
import os
import statistics
import sys
import threading
import time
from collections import Counter
from pathlib import Path

import httpx
from prometheus_client.parser import text_string_to_metric_families

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "backend" / "tests"))
sys.path.insert(0, str(ROOT / "bench"))

from citypay.chain.log_reader import LogReader  # noqa: E402
from citypay.core.config import Settings  # noqa: E402
from citypay.db.migrate import upgrade  # noqa: E402
from citypay.db.session import Database  # noqa: E402
from citypay.listener.indexer import listener_for, settle_start_up  # noqa: E402
from history import decode_all, make_history, people, read_raw  # noqa: E402
from platform_harness import BackendUnderTest, ChainUnderTest, free_port, listener_process  # noqa: E402
from relay import CLIENTS, _empty, _percentile, run_relayed  # noqa: E402

CITY = "gimpo"
PAYMENTS = int(os.environ.get("BENCH_LISTENER_PAYMENTS", "20000"))
BATCH = int(os.environ.get("BENCH_LISTENER_BATCH", "100"))
REPEATS = int(os.environ.get("BENCH_LISTENER_REPEATS", "3"))
PAYERS = max(1, min(1_000, PAYMENTS // 100))
MERCHANTS = 8
CHAIN_PORT = int(os.environ.get("BENCH_CHAIN_PORT", "0")) or None
POSTGRES_URL = os.environ.get("BENCH_POSTGRES_URL")
SETTINGS = Settings()  # the LISTENER_* settings the listener runs with (environment, defaults)
SAMPLE_EVERY = 0.1  # seconds between two scrapes of the listener's /metrics
RESULTS = ROOT / "bench" / "results"


def _value(index: int) -> int:
    return 1 + index % 97  # a payer's payments stay well within its charge


def _best(runs: list[tuple[float, object]]) -> tuple[float, object]:
    return min(runs, key=lambda run: run[0])


def index_from_scratch(database_url: str, chain, last: int) -> tuple[float, int]:
    """(seconds, events stored): the listener on an empty database until it has `last`."""
    db = Database(database_url)
    upgrade(db.engine)
    listener = listener_for(SETTINGS, db, chain.deployment)  # as python -m citypay.listener
    settle_start_up()  # as python -m citypay.listener does once started
    started = time.perf_counter()
    stored = 0
    while (listener.indexed_to or -1) < last:
        stored += listener.step()
    seconds = time.perf_counter() - started
    db.engine.dispose()
    return seconds, stored


def _indexing(name: str, events: int, runs: list[tuple[float, object]]) -> dict:
    seconds, _ = _best(runs)
    return {
        "path": name,
        "events": events,
        "seconds": seconds,
        "per_second": events / seconds,
        "runs": [run[0] for run in runs],
    }


def measure_indexing(chain, workdir: Path) -> tuple[list[dict], dict]:
    """The four rows of the table, over every block since the deployment; and what was read."""
    watched = chain.deployment.watched_contracts()
    where = {w.address.lower(): (w.city, w.kind) for w in watched}
    first, last = min(w.deployed_at for w in watched), chain.w3.eth.block_number
    max_span = SETTINGS.LISTENER_MAX_SPAN
    rpc = chain.deployment.gateway.rpc
    load = os.getloadavg()[0]

    raw_runs = []
    for _ in range(REPEATS):
        seconds, logs, chunks = read_raw(rpc, where, first, last, max_span=max_span)
        raw_runs.append((seconds, None))
    decode_runs = []
    for _ in range(REPEATS):
        seconds, events = decode_all(logs, where)
        decode_runs.append((seconds, None))
    kinds = Counter(event.event for event in events)
    assert kinds["AuthorizationUsed"] >= PAYMENTS and not kinds["AuthorizationFailed"], kinds
    count = len(logs)
    # The listener's own process holds no one else's logs and events: kept here, they would be
    # walked by each of the garbage collector's full collections during the listener's runs.
    del logs, events
    rows = [
        _indexing("raw eth_getLogs (the listener's LogReader and chunking)", count, raw_runs),
        _indexing("decode only (decode_log of every log, in process)", count, decode_runs),
    ]

    sqlite_runs = []
    for run in range(REPEATS):
        url = f"sqlite:///{workdir / f'listener-{run}.sqlite3'}"
        seconds, stored = index_from_scratch(url, chain, last)
        assert stored == count, (stored, count)
        sqlite_runs.append((seconds, None))
    rows.append(_indexing("listener into SQLite, from scratch", count, sqlite_runs))
    if POSTGRES_URL:
        postgres_runs = []
        for _ in range(REPEATS):
            _empty(POSTGRES_URL)
            seconds, stored = index_from_scratch(POSTGRES_URL, chain, last)
            assert stored == count, (stored, count)
            postgres_runs.append((seconds, None))
        rows.append(_indexing("listener into PostgreSQL, from scratch", count, postgres_runs))
    reader = LogReader(rpc, list(where), max_span=max_span)
    history = {
        "first_block": first,
        "last_block": last,
        "logs": count,
        "chunks": chunks,
        "first_span": reader.span,
        "max_span": max_span,
        "max_logs": reader.max_logs,
        "indexing_load_average": load,
        "events": dict(kinds.most_common()),
    }
    return rows, history


# --- the lag under relayed load --------------------------------------------------------------


def _scrape(url: str) -> Counter:
    """A /metrics page as {sample name: value}, summed over labels."""
    totals: Counter = Counter()
    for family in text_string_to_metric_families(httpx.get(url, timeout=5).text):
        for sample in family.samples:
            totals[sample.name] += sample.value
    return totals


class LagSampler:
    """Scrapes the listener's /metrics every SAMPLE_EVERY seconds: lag in blocks and seconds."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.blocks: list[float] = []
        self.seconds: list[float] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()

    def _sample(self) -> None:
        while not self._stop.is_set():
            samples = _scrape(self.url)
            self.blocks.append(samples["citypay_listener_lag_blocks"])
            self.seconds.append(samples["citypay_listener_lag_seconds"])
            self._stop.wait(SAMPLE_EVERY)

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=10)


def _wait_caught_up(url: str, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if _scrape(url).get("citypay_listener_lag_blocks", 99) <= 1:
                return
        except httpx.HTTPError:
            pass  # not serving yet
        time.sleep(0.2)
    raise RuntimeError(f"the listener did not catch up within {timeout} s")


def measure_lag(chain, database_url: str, payers: list, merchants: list, workdir: Path) -> dict:
    """The listener's lag while the relay benchmark's relayed run goes through the backend."""
    backend = BackendUnderTest(chain, database_url, workdir / "backend.log")
    backend.settings["LISTENER_IN_API"] = "false"  # as the relay benchmark runs it
    port = free_port()
    listener = listener_process(
        chain.service_settings(database_url)
        | {"LISTENER_METRICS_PORT": str(port), "LOG_FORMAT": "json"},
        workdir / "listener.log",
    )
    metrics = f"http://127.0.0.1:{port}/metrics"
    try:
        backend.start()
        api_key = backend.api_key(f"bench-listener-{os.getpid()}", "operator", CITY)
        _wait_caught_up(metrics)
        sampler = LagSampler(metrics)
        relayed = run_relayed(backend, chain, payers, merchants, api_key)
        _wait_caught_up(metrics)  # and every block of the load indexed
        sampler.stop()
    finally:
        listener.terminate()
        listener.wait(timeout=15)
        backend.stop()
    return {
        "relayed": relayed,
        "clients": CLIENTS,
        "samples": len(sampler.blocks),
        "blocks_max": max(sampler.blocks),
        "blocks_p99": _percentile(sampler.blocks, 0.99),
        "blocks_p50": statistics.median(sampler.blocks),
        "seconds_max": max(sampler.seconds),
        "seconds_p99": _percentile(sampler.seconds, 0.99),
        "seconds_p50": statistics.median(sampler.seconds),
    }


# --- the run ------------------------------------------------------------------------------------


def main() -> None:
    workdir = ROOT / "data" / "bench-listener" / str(os.getpid())
    workdir.mkdir(parents=True)
    chain = ChainUnderTest(workdir / "chain", CHAIN_PORT)
    print(f"listener benchmark: {PAYMENTS:,} payments by {PAYERS} payers, batches of {BATCH}")
    load = os.getloadavg()[0]
    started = time.perf_counter()
    chain.start_and_deploy()
    try:
        payers, merchants = people(chain, PAYERS, MERCHANTS)
        setup = time.perf_counter() - started
        # The lag first, on the chain as the relay benchmark has it (the cities and their
        # people): a listener starting on the long history would first spend its start-up on it.
        lag = measure_lag(chain, f"sqlite:///{workdir / 'lag.sqlite3'}", payers, merchants, workdir)
        made = make_history(
            chain, CITY, payers, merchants, PAYMENTS, _value, label="bench-listener", batch=BATCH
        )
        rows, history = measure_indexing(chain, workdir)
    finally:
        chain.stop()
    history |= made | {
        "payments": PAYMENTS,
        "batch": BATCH,
        "payers": PAYERS,
        "setup_seconds": setup,
        "load_average": load,
    }
    report(rows, history, lag)


def report(rows: list[dict], history: dict, lag: dict) -> None:
    raw = rows[0]["per_second"]
    lines = [
        f"| {history['logs']:,} events (blocks {history['first_block']}-{history['last_block']}) "
        "| seconds | events/s | x raw |",
        "|---|---:|---:|---:|",
        *(
            f"| {row['path']} | {row['seconds']:.2f} | {row['per_second']:,.0f} | "
            f"{row['per_second'] / raw:.2f}x |"
            for row in rows
        ),
        "",
        "| listener lag while relayed payments come in | max | p99 | median |",
        "|---|---:|---:|---:|",
        f"| blocks behind the head | {lag['blocks_max']:.0f} | {lag['blocks_p99']:.0f} | "
        f"{lag['blocks_p50']:.0f} |",
        f"| seconds behind the head (chain time) | {lag['seconds_max']:.0f} | "
        f"{lag['seconds_p99']:.0f} | {lag['seconds_p50']:.0f} |",
        "",
        f"- History: {history['payments']:,} payments in batches of {history['batch']} "
        f"(transferWithAuthorizationBatch) in blocks {history['payment_blocks'][0]}-"
        f"{history['payment_blocks'][1]}, by {history['payers']} payers to {MERCHANTS} merchants, "
        f"after the deployment and registrations; the reader's spans start at "
        f"{history['first_span']:,} blocks (up to {history['max_span']:,}) and end before their "
        f"blocks' gas could pay for more than {history['max_logs']:,} logs (block headers), so "
        f"it read them in {history['chunks']} eth_getLogs "
        f"call{'s' if history['chunks'] > 1 else ''}. "
        f"Best of {REPEATS} runs each; the listener "
        "starts from an empty database and commits its events and checkpoint per chunk.",
        f"- Generation, apart: set-up {history['setup_seconds']:.0f} s; signed (coincurve) in "
        f"{history['signing_seconds']:.1f} s; mined in {history['mining_seconds']:.1f} s "
        "(1-second blocks).",
        f"- Lag: the listener as its own process (python -m citypay.listener) and the backend "
        f"(LISTENER_IN_API=false) on one SQLite database, under the relay benchmark's relayed "
        f"run (bench/relay.py): {lag['relayed']['payments']:,} payments POSTed by "
        f"{lag['clients']} clients, {lag['relayed']['per_second']:.0f} payments/s included and "
        f"told to the tills, p99 {lag['relayed']['p99_seconds']:.2f} s; {lag['samples']} samples "
        f"of the listener's /metrics, one every {SAMPLE_EVERY} s, from before the first POST to "
        "the last block indexed.",
        f"- {os.cpu_count()} cores shared by the node, the database, the backend, the listener "
        f"and the load generator (load average {history['load_average']:.1f} as the run began, "
        f"{history['indexing_load_average']:.1f} as the indexing rows' runs began).",
    ]
    table = "\n".join(lines)
    print(table)
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "listener.md").write_text(table + "\n", encoding="utf-8")
    result = {"indexing": rows, "history": history, "lag": lag, "cores": os.cpu_count()}
    (RESULTS / "listener.json").write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
