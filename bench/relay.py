"""Relayed payments per second, end to end, against raw ERC-20 transfers on the same chain.

    make bench-relay            # BENCH_PAYMENTS=2000 BENCH_CLIENTS=32 to change the load

BENCH_CHAIN_PORT and BENCH_BACKEND_PORT fix the node's and the backend's ports (free ports if
unset); DATABASE_URL runs the backend on that database instead of a fresh SQLite file. On
PostgreSQL the relayed side runs with 1, 2 and 4 replicas (BENCH_REPLICAS=1,2,4: uvicorn's worker
processes behind the one address), then a failover run on 2 replicas kills the lease holder with
-9 one second into the window and reports the time to take over and resume, and the payments
lost and doubled (BENCH_FAILOVER=0 skips it).

Starts the project's chain (1-second blocks) and deploys the cities, starts the backend as a real
uvicorn process, registers and charges payers, then, in the same run:

- relayed: every payment is a payer-signed EIP-3009 authorization, POSTed over HTTP by
  BENCH_CLIENTS concurrent clients; its latency runs from the POST to the moment a merchant's
  POS learns from the backend's server-sent events that it is included on chain;
- raw: the same number of pre-signed plain ERC-20 `transfer` transactions of the same token,
  sent straight to the node with eth_sendRawTransaction by as many clients; a transfer counts
  once a block holding it is out (the node is asked for its newest block every 20 ms).

Both sides are signed before their timed window, which opens just after a block is out (the same
phase of the 1-second block clock for both) and closes when the last payment is known included;
one payment per client goes first on each side, untimed (connections open, first-request costs
paid). The POS tills listen in a process of their own. The backend runs without the chain event
listener in its process (LISTENER_IN_API=false): the listener can run as its own process, and
this measures the relay. Beside the rates: the CPU-seconds each process used in each window.

Prints a table and writes bench/results/relay.md and relay.json.
"""

from __future__ import annotations

import json
import multiprocessing
import os
import signal
import statistics
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from types import SimpleNamespace

import httpx
from eth_account import Account
from eth_utils import keccak
from sqlalchemy import create_engine, text

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "backend" / "tests"))
sys.path.insert(0, str(ROOT / "bench"))

from citypay.authorization import TokenDomain, sign_authorization  # noqa: E402
from citypay.chain.keys import development_account  # noqa: E402
from citypay.registry_authorization import merchant_registration, registry_domain_for  # noqa: E402
from platform_harness import BackendUnderTest, ChainUnderTest  # noqa: E402
from sending import send_from  # noqa: E402

CITY = "gimpo"
PAYMENTS = int(os.environ.get("BENCH_PAYMENTS", "2000"))
CLIENTS = int(os.environ.get("BENCH_CLIENTS", "32"))
PAYERS = max(1, PAYMENTS // 10)
MERCHANTS = 8
CHAIN_PORT = int(os.environ.get("BENCH_CHAIN_PORT", "0")) or None
BACKEND_PORT = int(os.environ.get("BENCH_BACKEND_PORT", "0")) or None
RESULTS = ROOT / "bench" / "results"


def _wallet(kind: str, index: int):
    return Account.from_key(keccak(text=f"bench-relay:{kind}:{index}:{time.time_ns()}"))


def _send_all(chain: ChainUnderTest, sender: str, calls: list) -> None:
    """Sends every call from `sender` with consecutive nonces (bench/sending.py: a window in
    flight rather than one block each)."""
    address = development_account(sender).address
    fields = {"from": address, "gas": 500_000, "gasPrice": 0, "chainId": chain.deployment.chain_id}
    send_from(chain, sender, [call.build_transaction(fields) for call in calls])


def _application(merchant) -> tuple:
    """ICityRegistry.MerchantApplication: business and bank account hashes, revenue, category,
    region."""
    address = merchant.address
    return (
        keccak(text=f"business:{address}"),
        keccak(text=f"bank:{address}"),
        300_000_000,
        5611,
        41570,
    )


def _populate(chain: ChainUnderTest, payers: list, merchants: list) -> None:
    city = chain.deployment.city(CITY)
    registrar = chain.deployment.account("registrar")
    domain = registry_domain_for(
        city.token.functions.name().call(), chain.deployment.chain_id, city.registry.address
    )
    deadline = chain.w3.eth.get_block("latest")["timestamp"] + 3600
    register = [
        city.registry.functions.registerResident(p.address, keccak(text=f"id:{p.address}"), 41570)
        for p in payers
    ] + [
        city.registry.functions.registerMerchant(
            *merchant_registration(
                m.key,
                domain,
                _application(m),
                deadline=deadline,
            )
        )
        for m in merchants
    ]
    _send_all(chain, registrar, register)
    issuer = city.roles["issuers"][0]
    charges = [
        city.treasury.functions.issue(p.address, 200_000, keccak(text=f"deposit:{p.address}"))
        for p in payers
    ]
    _send_all(chain, issuer, charges)


def _percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


def _stat(pid: int) -> list[str] | None:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (FileNotFoundError, ProcessLookupError):
        return None


def _cpu_seconds(pid: int, *, descendants: bool = False) -> float:
    """CPU-seconds of the process, and of its live descendants if asked (the backend's: uvicorn's
    workers, the replicas; not the load generator's, whose children are the backend and tills)."""
    children: dict[int, list[int]] = {}
    if descendants:
        for entry in Path("/proc").iterdir():
            if entry.name.isdigit() and (fields := _stat(int(entry.name))) is not None:
                children.setdefault(int(fields[1]), []).append(int(entry.name))
    ticks, todo = 0, [pid]
    while todo:
        current = todo.pop()
        if (fields := _stat(current)) is not None:
            ticks += int(fields[11]) + int(fields[12])
        todo.extend(children.get(current, []))
    return ticks / os.sysconf("SC_CLK_TCK")


class CpuMeter:
    """CPU-seconds each named process used since the meter was made."""

    def __init__(self, **pids: int) -> None:
        self.pids = pids
        self.start = {name: self._seconds(name) for name in pids}

    def _seconds(self, name: str) -> float:
        return _cpu_seconds(self.pids[name], descendants=name == "backend")

    def used(self) -> dict[str, float]:
        return {name: round(self._seconds(name) - self.start[name], 2) for name in self.pids}


def _node_pid(chain: ChainUnderTest) -> int:
    return json.loads((chain.data_dir / "anvil.json").read_text())["pid"]


class BlockWatcher:
    """Notes when each transaction is first seen in a block, asking the node for its newest
    block every 20 ms."""

    def __init__(self, rpc_url: str) -> None:
        self.client = httpx.Client(base_url=rpc_url, timeout=30)
        self.seen: dict[str, float] = {}
        self.blocks: dict[str, int] = {}  # transaction hash -> block number
        self.newest = self._rpc("eth_blockNumber")
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._watch, daemon=True)
        self._thread.start()

    def _rpc(self, method: str, *params):
        answer = self.client.post(
            "", json={"jsonrpc": "2.0", "id": 1, "method": method, "params": list(params)}
        ).json()
        if "error" in answer:
            raise RuntimeError(f"{method} refused: {answer['error']}")
        return answer["result"]

    def _watch(self) -> None:
        while not self._stop.is_set():
            newest = self._rpc("eth_blockNumber")
            for number in range(int(self.newest, 16) + 1, int(newest, 16) + 1):
                block = self._rpc("eth_getBlockByNumber", hex(number), False)
                now = time.monotonic()
                for tx_hash in block["transactions"]:
                    self.seen[tx_hash] = now
                    self.blocks[tx_hash] = number
            self.newest = newest
            time.sleep(0.02)

    def next_block(self) -> None:
        """Returns just after the next block is out."""
        current = self.newest
        while self.newest == current:
            time.sleep(0.005)

    def wait_for(self, hashes: list[str], timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while not all(h in self.seen for h in hashes):
            if time.monotonic() > deadline:
                missing = sum(h not in self.seen for h in hashes)
                raise RuntimeError(f"{missing} transfers not included in {timeout} s")
            time.sleep(0.02)

    def failed(self, hashes: list[str]) -> int:
        """How many of the transactions reverted (one eth_getBlockReceipts a block)."""
        wanted = set(hashes)
        reverted = 0
        for number in sorted({self.blocks[h] for h in hashes}):
            for receipt in self._rpc("eth_getBlockReceipts", hex(number)):
                if receipt["transactionHash"] in wanted and receipt["status"] != "0x1":
                    reverted += 1
        return reverted

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)


class IncludedWatcher:
    """A POS per merchant listening to the backend's server-sent events; notes when each
    payment is first reported included."""

    def __init__(self, url: str, api_key: str, merchants: list) -> None:
        self.seen: dict[int, float] = {}
        self.failed: dict[int, str] = {}
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._threads = [
            threading.Thread(target=self._listen, args=(url, api_key, m.address), daemon=True)
            for m in merchants
        ]
        for thread in self._threads:
            thread.start()

    def _listen(self, url: str, api_key: str, merchant: str) -> None:
        path = f"{url}/v1/cities/{CITY}/merchants/{merchant}/payments/events"
        headers = {"Authorization": f"Bearer {api_key}"}
        while not self._stop.is_set():
            try:
                with httpx.stream("GET", path, headers=headers, timeout=None) as stream:
                    for line in stream.iter_lines():
                        if self._stop.is_set():
                            return
                        if line.startswith("data:"):
                            self._note(json.loads(line[5:]))
            except httpx.HTTPError:
                # The replica it listened to was killed (the failover run): a till connects
                # again, to whichever replica answers, and hears the latest payments first.
                time.sleep(0.1)

    def _note(self, payment: dict) -> None:
        with self._lock:
            if payment["status"] == "included":
                self.seen.setdefault(payment["id"], time.monotonic())
            elif payment["status"] == "failed":
                self.failed[payment["id"]] = payment["failureReason"]

    def wait_for(self, ids: set[int], timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self._lock:
                if ids <= (self.seen.keys() | self.failed.keys()):
                    return
            time.sleep(0.05)
        raise RuntimeError(f"{len(ids - self.seen.keys())} payments not included in {timeout} s")

    def stop(self) -> None:
        self._stop.set()


def _tills(url: str, api_key: str, merchants: list, conn) -> None:
    """The POS tills' process: listens, says so, then answers one wait_for."""
    watcher = IncludedWatcher(url, api_key, merchants)
    time.sleep(1)  # every stream connected and past its backlog
    conn.send("listening")
    ids, timeout = conn.recv()
    try:
        watcher.wait_for(ids, timeout)
        conn.send((watcher.seen, watcher.failed))
    except RuntimeError as late:
        conn.send(str(late))
    watcher.stop()


class PosTills:
    """The merchants' POS tills (IncludedWatcher) in a process of their own: in the load
    generator's, their event parsing would share one interpreter lock with the clients that
    post. Their times are time.monotonic(), one clock for every process of the machine."""

    def __init__(self, url: str, api_key: str, merchants: list) -> None:
        context = multiprocessing.get_context("spawn")
        self._conn, child = context.Pipe()
        addresses = [SimpleNamespace(address=m.address) for m in merchants]
        self._process = context.Process(
            target=_tills, args=(url, api_key, addresses, child), daemon=True
        )
        self._process.start()
        if not self._conn.poll(60) or self._conn.recv() != "listening":
            raise RuntimeError("the POS tills did not start listening")

    @property
    def pid(self) -> int:
        return self._process.pid

    def wait_for(self, ids: set[int], timeout: float) -> tuple[dict, dict]:
        """(seen, failed) once every payment in `ids` is reported included or failed."""
        self._conn.send((ids, timeout))
        answer = self._conn.recv()
        if isinstance(answer, str):
            raise RuntimeError(answer)
        return answer

    def stop(self) -> None:
        self._process.terminate()
        self._process.join(timeout=10)


def _not_included(url: str, bodies: list[dict], timeout: float = 60) -> list[dict]:
    """Polls each payment's public status until every one is included or `timeout` seconds
    passed; the payments not included by then."""
    deadline = time.monotonic() + timeout
    missing = []
    with httpx.Client(base_url=url, timeout=10) as client:
        for body in bodies:
            path = f"/v1/cities/{CITY}/payments/{body['from']}/{body['nonce']}"
            while client.get(path).json()["status"] != "included":
                if time.monotonic() > deadline:
                    missing.append(body)
                    break
                time.sleep(0.1)
    return missing


def _after_next_block(rpc_url: str) -> None:
    blocks = BlockWatcher(rpc_url)
    blocks.next_block()
    blocks.stop()


class HolderKiller:
    """The failover run: kill -9 of the replica holding the duties `after` seconds into the
    window, then the time until another replica holds them."""

    def __init__(self, database_url: str, after: float) -> None:
        self.engine = create_engine(database_url)
        self.killed_at: float | None = None
        self.took_over: float | None = None
        self._thread = threading.Thread(target=self._run, args=(after,), daemon=True)
        self._thread.start()

    def _holder(self) -> str | None:
        with self.engine.connect() as connection:
            return connection.scalar(text("SELECT holder FROM leases WHERE name = 'backend'"))

    def _run(self, after: float) -> None:
        time.sleep(after)
        holder = self._holder()
        os.kill(int(holder.split(":")[1]), signal.SIGKILL)
        self.killed_at = time.monotonic()
        while (now := self._holder()) in (holder, None):
            time.sleep(0.02)
        self.took_over = time.monotonic() - self.killed_at
        print(f"failover: holder {holder} killed, {now} took over in {self.took_over:.2f} s")

    def join(self) -> None:
        self._thread.join(timeout=60)
        self.engine.dispose()


def _balances(city, merchants: list) -> int:
    return sum(city.token.functions.balanceOf(m.address).call() for m in merchants)


def run_relayed(backend, chain, payers, merchants, api_key: str, *, failover: bool = False) -> dict:
    city = chain.deployment.city(CITY)
    domain = TokenDomain(city.name, "1", chain.deployment.chain_id, city.token.address)
    valid_before = int(time.time()) + 3600
    authorizations = [
        sign_authorization(
            payers[i % len(payers)].key,
            domain,
            to=merchants[i % len(merchants)].address,
            value=100,
            valid_before=valid_before,
        )
        for i in range(PAYMENTS + CLIENTS)
    ]
    bodies = [a.as_json() for a in authorizations]
    warm_up, bodies = bodies[:CLIENTS], bodies[CLIENTS:]
    tills = PosTills(backend.url, api_key, merchants)
    posted: dict[int, float] = {}
    local = threading.local()

    def post(body: dict) -> None:
        client = getattr(local, "client", None)
        if client is None:
            client = local.client = httpx.Client(base_url=backend.url, timeout=60)
        started = time.monotonic()
        while True:
            try:
                response = client.post(f"/v1/cities/{CITY}/payments", json=body)
                break
            except httpx.TransportError:
                if not failover:
                    raise
                # Its replica was killed: the client posts the same authorization again, to
                # whichever replica answers (a payment recorded before the kill is returned).
                client = local.client = httpx.Client(base_url=backend.url, timeout=60)
        if response.status_code not in (200, 202):
            raise RuntimeError(f"payment refused: {response.text}")
        posted[response.json()["id"]] = started

    # One payment per client first, untimed: each client's connection is open, and the
    # backend's first-request costs (lazy imports, caches) are paid before the window.
    with ThreadPoolExecutor(CLIENTS) as pool:
        list(pool.map(post, warm_up))
        if _not_included(backend.url, warm_up):
            raise RuntimeError("a warm-up payment was not included within 60 s")
        posted.clear()
        _after_next_block(chain.rpc_url)
        meter = CpuMeter(
            backend=backend.process.pid,
            node=_node_pid(chain),
            load_generator=os.getpid(),
            pos_tills=tills.pid,
        )
        paid_before = _balances(chain.deployment.city(CITY), merchants)
        started = time.monotonic()
        killer = HolderKiller(backend.database_url, after=1.0) if failover else None
        list(pool.map(post, bodies))
        accepted_in = time.monotonic() - started
    lost = []
    if killer is not None:
        killer.join()
        # Each payment's own status first: a till reconnecting after the kill hears the latest
        # payments, not necessarily every one.
        lost = _not_included(backend.url, bodies, timeout=120)
        if lost:
            raise RuntimeError(f"failover: {len(lost)} of {len(bodies)} payments not included")
    seen, failed = tills.wait_for(set(posted), timeout=300)
    elapsed = max(seen.values()) - started
    cpu = meter.used()
    tills.stop()
    if failed:
        raise RuntimeError(f"{len(failed)} payments failed: {list(failed.values())[:3]}")
    latencies = [seen[i] - posted[i] for i in posted]
    result = {}
    if killer is not None:
        moved = _balances(chain.deployment.city(CITY), merchants) - paid_before
        result["failover"] = {
            "took_over_seconds": killer.took_over,
            # From the kill to the first payment a till heard included after it.
            "resumed_seconds": min(t for t in seen.values() if t > killer.killed_at)
            - killer.killed_at,
            "accepted": len(posted),
            "lost": len(lost),
            # Merchants' balances moved by more than the payments accepted (100 KRW each).
            "doubled": (moved - 100 * len(posted)) // 100,
        }
    return result | {
        "payments": len(posted),
        "seconds": elapsed,
        "per_second": len(posted) / elapsed,
        "accepted_per_second": len(posted) / accepted_in,
        "p50_seconds": statistics.median(latencies),
        "p99_seconds": _percentile(latencies, 0.99),
        "backend_cpu_seconds": cpu["backend"],
        "per_cpu_second": len(posted) / cpu["backend"] if cpu["backend"] else None,
        "cpu_seconds": cpu,
    }


def run_raw(chain, payers, merchants) -> dict:
    city = chain.deployment.city(CITY)
    w3 = chain.w3
    warm = min(CLIENTS, len(payers))
    warm_up, raw = [], []
    for index, payer in enumerate(payers):
        nonce = w3.eth.get_transaction_count(payer.address)
        timed = PAYMENTS // len(payers) + (index < PAYMENTS % len(payers))
        for k in range(timed + (index < warm)):
            call = city.token.functions.transfer(
                merchants[(index + k) % len(merchants)].address, 100
            )
            transaction = call.build_transaction(
                {
                    "from": payer.address,
                    "nonce": nonce + k,
                    "gas": 200_000,
                    "gasPrice": 0,
                    "chainId": chain.deployment.chain_id,
                }
            )
            signed = payer.sign_transaction(transaction).raw_transaction
            (warm_up if index < warm and k == 0 else raw).append(signed)
    local = threading.local()

    def send(payload: bytes) -> str:
        client = getattr(local, "client", None)
        if client is None:
            client = local.client = httpx.Client(timeout=60)
        answer = client.post(
            chain.rpc_url,
            json={
                "jsonrpc": "2.0",
                "id": 1,
                "method": "eth_sendRawTransaction",
                "params": ["0x" + payload.hex()],
            },
        ).json()
        if "error" in answer:
            raise RuntimeError(f"raw transfer refused: {answer['error']}")
        return answer["result"]

    blocks = BlockWatcher(chain.rpc_url)
    # As on the relayed side: one transfer per client first, untimed.
    with ThreadPoolExecutor(CLIENTS) as pool:
        blocks.wait_for(list(pool.map(send, warm_up)), timeout=60)
        blocks.next_block()
        meter = CpuMeter(node=_node_pid(chain), load_generator=os.getpid())
        started = time.monotonic()
        hashes = list(pool.map(send, raw))
        sent_in = time.monotonic() - started
    blocks.wait_for(hashes, timeout=300)
    elapsed = max(blocks.seen[h] for h in hashes) - started
    cpu = meter.used()
    blocks.stop()
    reverted = blocks.failed(hashes)
    if reverted:
        raise RuntimeError(f"{reverted} raw transfers reverted")
    return {
        "payments": len(raw),
        "seconds": elapsed,
        "per_second": len(raw) / elapsed,
        "sent_per_second": len(raw) / sent_in,
        "cpu_seconds": cpu,
    }


def _replica_counts(postgres: bool) -> list[int]:
    counts = [
        int(n) for n in os.environ.get("BENCH_REPLICAS", "1,2,4" if postgres else "1").split(",")
    ]
    if not postgres and counts != [1]:
        raise SystemExit("BENCH_REPLICAS above 1 needs PostgreSQL: set DATABASE_URL")
    return counts


def main() -> None:
    workdir = ROOT / "data" / "bench-relay"
    for stale in ("chain", "log"):
        (workdir / stale).mkdir(parents=True, exist_ok=True)
    database_url = os.environ.get("DATABASE_URL")
    postgres = bool(database_url) and database_url.startswith("postgresql")
    counts = _replica_counts(postgres)
    failover = postgres and os.environ.get("BENCH_FAILOVER", "1") != "0"
    if database_url:
        _empty(database_url)
    database_url = database_url or f"sqlite:///{workdir / f'relay-{os.getpid()}.sqlite3'}"
    chain = ChainUnderTest(workdir / "chain" / str(os.getpid()), CHAIN_PORT)
    chain.data_dir.mkdir(parents=True)
    print(
        f"relay benchmark: {PAYMENTS} payments, {CLIENTS} clients, {PAYERS} payers, "
        f"replicas {', '.join(map(str, counts))}{', then a failover run' if failover else ''}"
    )
    chain.start_and_deploy()
    relayed: dict[int, dict] = {}
    backend = None
    try:
        payers = [_wallet("payer", i) for i in range(PAYERS)]
        merchants = [_wallet("merchant", i) for i in range(MERCHANTS)]
        _populate(chain, payers, merchants)
        api_key = None
        load = os.getloadavg()[0]
        runs = [(count, False) for count in counts] + ([(2, True)] if failover else [])
        for count, kill in runs:
            backend = _backend(chain, database_url, workdir, count)
            backend.start()
            api_key = api_key or backend.api_key(f"bench-{os.getpid()}", "operator", CITY)
            result = run_relayed(backend, chain, payers, merchants, api_key, failover=kill)
            backend.stop()
            backend = None
            if kill:
                relayed["failover"] = result
            else:
                relayed[count] = result
        raw = run_raw(chain, payers, merchants)
    finally:
        if backend is not None:
            backend.stop()
        chain.stop()
    report(relayed, raw, load)


def _backend(chain, database_url: str, workdir: Path, replicas: int) -> BackendUnderTest:
    backend = BackendUnderTest(
        chain, database_url, workdir / "log" / "backend.log", BACKEND_PORT, replicas=replicas
    )
    backend.settings["LISTENER_IN_API"] = "false"
    # Every client of the load is this one address, and one key follows the tills' events: the
    # per-address and per-key limits a city runs with would measure the limiter, not the relay.
    backend.settings.update(RATE_LIMIT_PER_ADDRESS="", RATE_LIMIT_PER_KEY="")
    return backend


def _empty(database_url: str) -> None:
    """A clean schema on that PostgreSQL database: the benchmark owns it for the run."""
    engine = create_engine(database_url)
    with engine.begin() as connection:
        connection.execute(text("DROP SCHEMA public CASCADE"))
        connection.execute(text("CREATE SCHEMA public"))
    engine.dispose()


def _cpu_line(cpu: dict[str, float]) -> str:
    return ", ".join(f"{name.replace('_', ' ')} {seconds:.2f}" for name, seconds in cpu.items())


def report(relayed: dict, raw: dict, load: float) -> None:
    postgres = os.environ.get("DATABASE_URL", "").startswith("postgres")
    database = "PostgreSQL" if postgres else "SQLite"
    runs = {count: run for count, run in relayed.items() if count != "failover"}
    rows = [
        (
            "raw: pre-signed ERC-20 `transfer`s to the node",
            f"{raw['per_second']:.0f}",
            "",
            "",
            "",
            "",
        )
    ]
    goals = []
    for count, run in runs.items():
        ratio = run["per_second"] / raw["per_second"]
        per_payment_ms = 1000 * run["backend_cpu_seconds"] / run["payments"]
        rows.append(
            (
                f"relayed, {count} replica{'s' if count > 1 else ''}: HTTP POST of signed "
                "authorizations -> included -> POS told",
                f"{run['per_second']:.0f} ({ratio:.2f}x)",
                f"{run['p50_seconds']:.2f} s",
                f"{run['p99_seconds']:.2f} s",
                f"{per_payment_ms:.2f} ms",
                f"{run['accepted_per_second']:.0f}",
            )
        )
        goals.append(
            f"- {count} replica{'s' if count > 1 else ''}: relayed / raw {ratio:.2f}x (goal >= "
            f"1.0x: {_mark(ratio >= 1.0)}); p99 {run['p99_seconds']:.2f} s (goal <= 2 s: "
            f"{_mark(run['p99_seconds'] <= 2)}); backend CPU {per_payment_ms:.2f} ms a payment "
            f"(goal <= 1 ms: {_mark(per_payment_ms <= 1)})"
        )
    first = next(iter(runs.values()))
    lines = [
        "| path | payments/s | p50 latency | p99 latency | backend CPU per payment "
        "| POSTs accepted/s |",
        "|---|---:|---:|---:|---:|---:|",
        *(f"| {' | '.join(row)} |" for row in rows),
        "",
        *goals,
        f"- {first['payments']} payments each, {CLIENTS} concurrent clients, 1-second blocks; the "
        f"node took raw transactions at {raw['sent_per_second']:.0f}/s. Database: {database}; "
        f"{os.cpu_count()} cores shared by the node, the backend's replicas and the load "
        f"generator (load average {load:.1f} as the run began); replicas are uvicorn's worker "
        "processes on one address; the chain event listener not in the backend's processes.",
        *(
            f"- CPU-seconds in the window, relayed with {count}: {_cpu_line(run['cpu_seconds'])}"
            for count, run in runs.items()
        ),
        f"- CPU-seconds in the window, raw: {_cpu_line(raw['cpu_seconds'])}. Both windows open "
        "just after a block and close when the last payment is known included; both sides are "
        "signed before.",
    ]
    if "failover" in relayed:
        f = relayed["failover"]["failover"]
        lines.append(
            f"- failover (2 replicas, kill -9 of the lease holder 1 s into the window): another "
            f"replica held the duties {f['took_over_seconds']:.2f} s after the kill, the first "
            f"payment was included {f['resumed_seconds']:.2f} s after it; {f['accepted']} "
            f"accepted, {f['lost']} lost, {f['doubled']} doubled "
            f"({relayed['failover']['per_second']:.0f} payments/s, p99 "
            f"{relayed['failover']['p99_seconds']:.2f} s)"
        )
    table = "\n".join(lines)
    print(table)
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "relay.md").write_text(table + "\n", encoding="utf-8")
    (RESULTS / "relay.json").write_text(
        json.dumps(
            {
                "relayed": {str(k): v for k, v in relayed.items()},
                "raw": raw,
                "clients": CLIENTS,
                "database": database,
                "load_average": load,
            },
            indent=2,
        )
        + "\n",
        encoding="utf-8",
    )


def _mark(passed: bool) -> str:
    return "PASS" if passed else "MISS"


if __name__ == "__main__":
    main()
