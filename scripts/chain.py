"""The project's own chain: an anvil node with the platform's settings, kept in data/chain/.

    python -m scripts.chain start|stop|status|reset [--port N] [--chain-id N] [--data-dir DIR]

Chain id 58210 (the platform's own: not 1, not anvil's 31337, so a wallet or a key can never mix
it up with another network), 1-second blocks like a QBFT network, zero gas price, a 100,000,000
block gas limit for batched payments. The state lives in <data-dir>/state.json: anvil loads it
on start, dumps it every few seconds and on stop, so a restart keeps every contract and balance.
Defaults come from chain.env (CITY_CHAIN_PORT, CITY_CHAIN_ID, CITY_CHAIN_DATA); flags win.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import requests
from dotenv import dotenv_values

ROOT = Path(__file__).resolve().parent.parent
ANVIL = ROOT / ".toolchain" / "bin" / "anvil"

BLOCK_TIME_SECONDS = 1
BLOCK_GAS_LIMIT = 100_000_000
DEV_ACCOUNTS = 20
# Seconds between state dumps while running: a crash loses at most this much.
STATE_INTERVAL_SECONDS = 5
START_TIMEOUT_SECONDS = 20
STOP_TIMEOUT_SECONDS = 20
HISTORIES = ("full", "pruned")
# anvil 1.7 keeps each of them as a whole copy of the state: 64 copies of a state of 200,000
# storage slots took 1.0 GB (4 copies 0.1 GB), and a million payments use a million slots.
PRUNED_STATES_KEPT = 8


class ChainError(RuntimeError):
    """A chain command failed; the message says why and what to do."""


@dataclass(frozen=True)
class ChainSettings:
    port: int
    chain_id: int
    data_dir: Path
    # "full": every block's state kept and dumped to the state file, so a restart resumes it;
    # "pruned": blocks and logs kept, the last 8 states only, nothing dumped: a throwaway chain
    # for a long benchmark, whose node would otherwise keep a copy of the state per block in
    # memory (18.7 GB by block 468 of a million payments).
    history: str = "full"

    @classmethod
    def from_env(
        cls, *, port: int | None = None, chain_id: int | None = None, data_dir: str | None = None
    ) -> ChainSettings:
        """chain.env's defaults, overridden by the environment, overridden by the arguments."""
        values = {**dotenv_values(ROOT / "chain.env"), **os.environ}
        port = port if port is not None else _int_setting(values, "CITY_CHAIN_PORT")
        chain_id = chain_id if chain_id is not None else _int_setting(values, "CITY_CHAIN_ID")
        folder = Path(data_dir or values["CITY_CHAIN_DATA"])
        history = values.get("CITY_CHAIN_HISTORY") or "full"
        if history not in HISTORIES:
            raise ChainError(
                f"CITY_CHAIN_HISTORY={history!r}: accepted values are {', '.join(HISTORIES)}"
            )
        return cls(
            port=port,
            chain_id=chain_id,
            data_dir=folder if folder.is_absolute() else ROOT / folder,
            history=history,
        )

    @property
    def rpc_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def state_file(self) -> Path:
        return self.data_dir / "state.json"

    @property
    def log_file(self) -> Path:
        return self.data_dir / "anvil.log"

    @property
    def run_file(self) -> Path:
        """The running node's pid, port and chain id, written by start, removed by stop."""
        return self.data_dir / "anvil.json"

    @property
    def manifest_file(self) -> Path:
        """Where the deployment on this chain is recorded: beside the chain's data, not in git."""
        return self.data_dir.parent / "deployments" / f"{self.chain_id}.json"


def _int_setting(values: dict, name: str) -> int:
    raw = values.get(name)
    try:
        return int(raw)
    except (TypeError, ValueError):
        raise ChainError(
            f"{name}={raw!r} is not a number (set it in chain.env or the environment)"
        ) from None


@dataclass(frozen=True)
class ChainStatus:
    running: bool
    pid: int | None
    port: int
    chain_id: int | None
    block_number: int | None
    rpc_url: str
    state_file: str
    log_file: str

    def describe(self) -> str:
        if not self.running:
            return f"stopped (state {self.state_file})"
        return (
            f"running: pid {self.pid}, {self.rpc_url}, chain id {self.chain_id}, "
            f"block {self.block_number}, state {self.state_file}, log {self.log_file}"
        )


# --- Commands ---------------------------------------------------------------------------------


def start(settings: ChainSettings) -> ChainStatus:
    """Starts the node in the background and waits until it answers; a running node is kept."""
    current = status(settings)
    if current.running:
        if current.port != settings.port or current.chain_id != settings.chain_id:
            raise ChainError(
                f"the chain of {settings.data_dir} already runs on port {current.port} with chain "
                f"id {current.chain_id}; stop it first (python -m scripts.chain stop)"
            )
        return current
    _require_free_port(settings.port)
    if not ANVIL.exists():
        raise ChainError(f"anvil not found at {ANVIL}: run `make setup` first")
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    command = [
        str(ANVIL),
        "--port", str(settings.port),
        "--chain-id", str(settings.chain_id),
        "--block-time", str(BLOCK_TIME_SECONDS),
        "--gas-limit", str(BLOCK_GAS_LIMIT),
        "--base-fee", "0",
        "--gas-price", "0",
        # eth_gasPrice then answers 0, so a wallet that asks the node prices its payment at zero.
        "--disable-min-priority-fee",
        "--accounts", str(DEV_ACCOUNTS),
        *(
            ["--state", str(settings.state_file), "--state-interval", str(STATE_INTERVAL_SECONDS)]
            if settings.history == "full"
            # The last 8 blocks' states: a reader that pins a recent block (the auditor's
            # views at the block it read the logs to, on the benchmark's chain, which mines
            # nothing while it is read) finds it.
            else ["--prune-history", str(PRUNED_STATES_KEPT)]
        ),
        # --quiet drops the banner that lists the development private keys; RUST_LOG keeps the
        # node's own log (blocks mined, RPC methods called) for the log file.
        "--quiet",
    ]  # fmt: skip
    env = {
        **os.environ,
        "RUST_LOG": os.environ.get("CITY_CHAIN_LOG_LEVEL", "info"),
        "NO_COLOR": "1",
    }
    with settings.log_file.open("ab") as log:
        process = subprocess.Popen(
            command,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            env=env,
            start_new_session=True,  # outlives the command that started it (make, a test)
        )
    deadline = time.monotonic() + START_TIMEOUT_SECONDS
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise ChainError(
                f"anvil exited with code {process.returncode} while starting; "
                f"last lines of {settings.log_file}:\n{_tail(settings.log_file)}"
            )
        chain_id = _rpc_chain_id(settings.rpc_url)
        if chain_id is not None:
            settings.run_file.write_text(
                json.dumps(
                    {"pid": process.pid, "port": settings.port, "chain_id": settings.chain_id}
                )
            )
            return status(settings)
        time.sleep(0.1)
    process.terminate()
    raise ChainError(
        f"anvil did not answer on {settings.rpc_url} within {START_TIMEOUT_SECONDS} s; "
        f"see {settings.log_file}"
    )


def stop(settings: ChainSettings) -> bool:
    """Stops the node (it dumps its state on the way out). Returns False if it was not running."""
    record = _run_record(settings)
    if record is None:
        return False
    pid = record["pid"]
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + STOP_TIMEOUT_SECONDS
    while _is_anvil(pid) and time.monotonic() < deadline:
        time.sleep(0.1)
    if _is_anvil(pid):
        raise ChainError(
            f"anvil (pid {pid}) did not stop within {STOP_TIMEOUT_SECONDS} s; it is still "
            f"writing {settings.state_file} or hung: see {settings.log_file}"
        )
    settings.run_file.unlink(missing_ok=True)
    return True


def status(settings: ChainSettings) -> ChainStatus:
    record = _run_record(settings)
    port = record["port"] if record else settings.port
    url = f"http://127.0.0.1:{port}"
    block_number = _rpc(url, "eth_blockNumber") if record else None
    return ChainStatus(
        running=record is not None,
        pid=record["pid"] if record else None,
        port=port,
        chain_id=_rpc_chain_id(url) if record else None,
        block_number=int(block_number, 16) if block_number else None,
        rpc_url=url,
        state_file=str(settings.state_file),
        log_file=str(settings.log_file),
    )


def reset(settings: ChainSettings) -> list[Path]:
    """Stops the node and deletes its state, log and deployment manifest: the next start is a
    fresh chain and the next deploy deploys everything."""
    stop(settings)
    removed = []
    for path in (settings.state_file, settings.log_file, settings.manifest_file):
        if path.exists():
            path.unlink()
            removed.append(path)
    return removed


# --- Helpers ----------------------------------------------------------------------------------


def _require_free_port(port: int) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        # As a server binds: a port whose last connections are still in TIME_WAIT is free.
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(("127.0.0.1", port))
        except OSError as taken:
            raise ChainError(
                f"port {port} is already in use by another program ({taken.strerror}); "
                "choose another with --port or CITY_CHAIN_PORT"
            ) from None


def _run_record(settings: ChainSettings) -> dict | None:
    """The run file's record if its process is still a live anvil; a stale file is removed."""
    try:
        record = json.loads(settings.run_file.read_text())
    except (FileNotFoundError, ValueError):
        return None
    if not _is_anvil(record.get("pid", 0)):
        settings.run_file.unlink(missing_ok=True)
        return None
    return record


def _is_anvil(pid: int) -> bool:
    """Whether `pid` is a live anvil: a pid reused by another program is not ours to signal."""
    if pid <= 0:
        return False
    if Path("/proc/self").exists():
        try:
            command = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")[0].decode()
            state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[-1].split()[0]
        except (FileNotFoundError, ProcessLookupError, IndexError):
            return False
    else:  # macOS and other systems without /proc
        shown = subprocess.run(
            ["ps", "-o", "stat=", "-o", "comm=", "-p", str(pid)], capture_output=True, text=True
        ).stdout.split()
        if len(shown) < 2:
            return False
        state, command = shown[0], shown[-1]
    return not state.startswith("Z") and Path(command).name == "anvil"


def _rpc(url: str, method: str):
    try:
        response = requests.post(
            url, json={"jsonrpc": "2.0", "id": 1, "method": method, "params": []}, timeout=2
        )
        return response.json().get("result")
    except (requests.RequestException, ValueError):
        return None


def _rpc_chain_id(url: str) -> int | None:
    result = _rpc(url, "eth_chainId")
    return int(result, 16) if result else None


def _tail(path: Path, lines: int = 15) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except FileNotFoundError:
        return "(no log)"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m scripts.chain", description=__doc__.split("\n")[0]
    )
    parser.add_argument("command", choices=["start", "stop", "status", "reset"])
    parser.add_argument("--port", type=int, help="JSON-RPC port (default: CITY_CHAIN_PORT)")
    parser.add_argument("--chain-id", type=int, help="chain id (default: CITY_CHAIN_ID)")
    parser.add_argument("--data-dir", help="state, log and run files (default: CITY_CHAIN_DATA)")
    parser.add_argument("--json", action="store_true", help="print the status as JSON")
    args = parser.parse_args(argv)
    try:
        settings = ChainSettings.from_env(
            port=args.port, chain_id=args.chain_id, data_dir=args.data_dir
        )
        if args.command == "stop":
            was_running = stop(settings)
            print(
                f"chain: stopped, state kept in {settings.state_file}"
                if was_running
                else "chain: was not running"
            )
            return 0
        if args.command == "reset":
            removed = reset(settings)
            print("chain: reset; removed " + (", ".join(map(str, removed)) or "nothing"))
            return 0
        result = start(settings) if args.command == "start" else status(settings)
    except ChainError as error:
        print(f"chain: {error}", file=sys.stderr)
        return 1
    print(json.dumps(asdict(result)) if args.json else f"chain: {result.describe()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
