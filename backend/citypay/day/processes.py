"""The platform's processes for the main job: the project's chain and its deployment (run with the
chain tools' environment, .venv), the backend as a uvicorn process, and the listener."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import httpx
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

ROOT = Path(__file__).resolve().parents[3]
CHAIN_PYTHON = ROOT / ".venv" / "bin" / "python"


def chain_tool(*args: str, env: dict | None = None, timeout: float = 600) -> str:
    """Runs `python -m scripts.<tool> ...` with the chain tools; its output, or RuntimeError."""
    environment = {
        **os.environ,
        **(env or {}),
        "PATH": f"{ROOT / '.toolchain' / 'bin'}:{os.environ['PATH']}",
        "SOLCX_BINARY_PATH": str(ROOT / ".toolchain" / "solc"),
    }
    done = subprocess.run(
        [str(CHAIN_PYTHON), "-m", *args],
        cwd=ROOT,
        env=environment,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(args)} failed:\n{done.stdout}\n{done.stderr}")
    return done.stdout


def create_database(url: str) -> None:
    """Creates the PostgreSQL database `url` names when its server lacks it."""
    target = make_url(url)
    server = create_engine(target.set(database="postgres"), isolation_level="AUTOCOMMIT")
    try:
        with server.connect() as connection:
            exists = connection.scalar(
                text("SELECT 1 FROM pg_database WHERE datname = :name"),
                {"name": target.database},
            )
            if not exists:
                connection.execute(text(f'CREATE DATABASE "{target.database}"'))
    finally:
        server.dispose()


def listener_process(settings: dict, log_path: Path) -> subprocess.Popen:
    """python -m citypay.listener with `settings` in its environment and its output appended to
    `log_path`; not waited for: it serves no /health (its metrics only if asked)."""
    return subprocess.Popen(
        [sys.executable, "-m", "citypay.listener"],
        cwd=ROOT,
        env={**os.environ, **settings},
        stdout=log_path.open("ab"),
        stderr=subprocess.STDOUT,
    )


def wait_for_health(
    url: str, process: subprocess.Popen, name: str, log_path: Path, timeout: float
) -> None:
    """Until the service's /health answers 200; RuntimeError if its process exits first (its
    log's tail in the message) or it does not answer within `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            tail = log_path.read_text(errors="replace")[-3000:] if log_path.exists() else ""
            raise RuntimeError(f"{name} exited with {process.returncode}: see {log_path}\n{tail}")
        try:
            if httpx.get(f"{url}/health", timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise RuntimeError(f"{name} did not answer within {timeout} s: see {log_path}")


class ServiceProcess:
    """A Python service module run as its own process, up once its /health answers."""

    def __init__(self, args: list[str], port: int, settings: dict, log_path: Path) -> None:
        self.args = args
        self.port = port
        self.url = f"http://127.0.0.1:{port}"
        # Read at every start: a caller may change them between a stop and the next start.
        self.settings = dict(settings)
        self.log_path = log_path
        self.process: subprocess.Popen | None = None

    def environment(self) -> dict:
        return {**os.environ, **self.settings}

    def start(self, timeout: float = 60) -> None:
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        self.process = subprocess.Popen(
            [sys.executable, "-m", *self.args],
            cwd=ROOT,
            env=self.environment(),
            stdout=self.log_path.open("ab"),
            stderr=subprocess.STDOUT,
        )
        wait_for_health(self.url, self.process, self.args[0], self.log_path, timeout)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(timeout=15)

    def kill(self) -> None:
        """kill -9: no shutdown code runs."""
        if self.process is not None:
            self.process.kill()
            self.process.wait(timeout=15)


class SandboxBank(ServiceProcess):
    """The sandbox bank with its own books (python -m citypay.bank.sandbox)."""

    def __init__(self, port: int, books: Path, log_path: Path) -> None:
        args = ["citypay.bank.sandbox", "--port", str(port), "--database", str(books)]
        super().__init__(args, port, {}, log_path)

    def faults(self, **faults) -> None:
        """fail_accounts=[...], fail_next=N, delay=seconds; no arguments: a healthy bank."""
        httpx.put(f"{self.url}/control", json=faults, timeout=10).raise_for_status()


class BackendProcess(ServiceProcess):
    """The backend as a real uvicorn process, with its settings in the environment."""

    def __init__(self, port: int, settings: dict, log_path: Path, replicas: int = 1) -> None:
        args = ["uvicorn", "--factory", "citypay.api.app:app", "--host", "127.0.0.1"]
        # Replicas as uvicorn's worker processes: one address, each process a replica of its own
        # (api/replica.py), and uvicorn starts a worker again when one dies.
        workers = ["--workers", str(replicas)] if replicas > 1 else []
        super().__init__(
            [*args, "--port", str(port), "--log-level", "warning", *workers],
            port,
            settings,
            log_path,
        )

    def api_key(self, name: str, role: str, city: str | None = None) -> str:
        """An API key made with the operators' command, as a city's staff would."""
        args = [sys.executable, "-m", "citypay.auth", "create", name, "--role", role]
        done = subprocess.run(
            [*args, *(["--city", city] if city else [])],
            cwd=ROOT,
            env=self.environment(),
            capture_output=True,
            text=True,
            timeout=60,
        )
        if done.returncode != 0:
            raise RuntimeError(f"creating API key {name} failed: {done.stderr}")
        return done.stdout.strip()
