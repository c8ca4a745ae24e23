"""Starts the real pieces for backend tests: the project's chain, a deployment, the backend."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
from citypay.chain.deployment import Deployment
from citypay.chain.keys import development_account
from citypay.core.config import EMBEDDED_CHAIN_ID
from eth_account import Account
from eth_utils import keccak
from web3 import Web3

ROOT = Path(__file__).resolve().parents[2]
CHAIN_PYTHON = ROOT / ".venv" / "bin" / "python"
BANK_WEBHOOK_SECRET = "test-bank-webhook-secret"  # the backend's, so tests sign deposits


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _chain_env(port: int, data_dir: Path) -> dict:
    return {
        **os.environ,
        "CITY_CHAIN_PORT": str(port),
        "CITY_CHAIN_ID": str(EMBEDDED_CHAIN_ID),
        "CITY_CHAIN_DATA": str(data_dir),
        "PATH": f"{ROOT / '.toolchain' / 'bin'}:{os.environ['PATH']}",
        "SOLCX_BINARY_PATH": str(ROOT / ".toolchain" / "solc"),
    }


def run_chain_command(args: list[str], port: int, data_dir: Path) -> str:
    done = subprocess.run(
        [str(CHAIN_PYTHON), *args],
        cwd=ROOT,
        env=_chain_env(port, data_dir),
        capture_output=True,
        text=True,
        timeout=600,
    )
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(args)} failed:\n{done.stdout}\n{done.stderr}")
    return done.stdout


class ChainUnderTest:
    """The project's anvil on a free port with a fresh state folder, and the three cities."""

    def __init__(self, data_dir: Path) -> None:
        self.port = free_port()
        self.data_dir = data_dir
        self.rpc_url = f"http://127.0.0.1:{self.port}"
        self.manifest = data_dir / "manifest.json"

    def start_and_deploy(self) -> None:
        run_chain_command(["-m", "scripts.chain", "start"], self.port, self.data_dir)
        run_chain_command(
            ["-m", "scripts.deploy", "--network", "embedded", "--manifest", str(self.manifest)],
            self.port,
            self.data_dir,
        )
        self.w3 = Web3(Web3.HTTPProvider(self.rpc_url))
        self.deployment = Deployment(self.manifest, self.w3, chain_id=EMBEDDED_CHAIN_ID)

    def stop(self) -> None:
        run_chain_command(["-m", "scripts.chain", "stop"], self.port, self.data_dir)

    # --- the city's duties, signed with the development keys the deployment named ---------

    def send(self, duty_address: str, call) -> dict:
        account = development_account(duty_address)
        transaction = call.build_transaction(
            {
                "from": account.address,
                "nonce": self.w3.eth.get_transaction_count(account.address, "pending"),
                "gas": 1_000_000,
                "gasPrice": 0,
                "chainId": EMBEDDED_CHAIN_ID,
            }
        )
        tx_hash = self.w3.eth.send_raw_transaction(
            account.sign_transaction(transaction).raw_transaction
        )
        receipt = self.w3.eth.wait_for_transaction_receipt(tx_hash, timeout=30, poll_latency=0.1)
        assert receipt["status"] == 1, f"{call.fn_name} reverted"
        return receipt

    def register_resident(self, city_code: str, wallet) -> None:
        city = self.deployment.city(city_code)
        registrar = self.deployment.account("registrar")
        identity = keccak(text=f"identity:{wallet.address}")
        self.send(
            registrar, city.registry.functions.registerResident(wallet.address, identity, 41570)
        )

    def register_merchant(self, city_code: str, wallet, category: int = 5611) -> None:
        city = self.deployment.city(city_code)
        registrar = self.deployment.account("registrar")
        application = (
            keccak(text=f"business:{wallet.address}"),
            keccak(text=f"bank-account:{wallet.address}"),
            300_000_000,
            category,
            41570,
        )
        self.send(registrar, city.registry.functions.registerMerchant(wallet.address, application))

    def charge(self, city_code: str, wallet, amount: int) -> None:
        city = self.deployment.city(city_code)
        issuer = city.roles["issuers"][0]  # the manifest records each duty's address
        reference = keccak(text=f"deposit:{wallet.address}:{time.time_ns()}")
        self.send(issuer, city.treasury.functions.issue(wallet.address, amount, reference))


def new_wallet(seed: str):
    return Account.from_key(keccak(text=f"backend-test-wallet:{seed}"))


class BackendUnderTest:
    """The backend as a real uvicorn process on a free port."""

    def __init__(self, chain: ChainUnderTest, database_url: str, log_path: Path) -> None:
        self.chain = chain
        self.database_url = database_url
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = log_path
        self.process: subprocess.Popen | None = None
        # Set by fixtures and tests before start(): BANK_URL, CITYPAY_CRASH_AT, ...
        self.extra_env: dict[str, str] = {}

    def env(self) -> dict:
        return {
            **os.environ,
            "DATABASE_URL": self.database_url,
            "RPC_URL": self.chain.rpc_url,
            "CHAIN_ID": str(EMBEDDED_CHAIN_ID),
            "MANIFEST_PATH": str(self.chain.manifest),
            "RELAY_INTERVAL": "0.1",
            "BANK_WEBHOOK_SECRET": BANK_WEBHOOK_SECRET,
            "CASHOUT_RETRY_INTERVAL": "0.5",
            "BANK_TIMEOUT": "2",
            **self.extra_env,
        }

    def create_api_key(self, name: str, role: str, city: str | None = None) -> str:
        """An API key made with the operators' command, as a city's staff would."""
        args = [sys.executable, "-m", "citypay.auth", "create", name, "--role", role]
        done = subprocess.run(
            [*args, *(["--city", city] if city else [])],
            cwd=ROOT,
            env=self.env(),
            capture_output=True,
            text=True,
            timeout=60,
        )
        if done.returncode != 0:
            raise RuntimeError(f"creating API key {name} failed: {done.stderr}")
        return done.stdout.strip()

    def start(self) -> None:
        log = self.log_path.open("ab")
        self.process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "uvicorn",
                "--factory",
                "citypay.api.app:app",
                "--host",
                "127.0.0.1",
                "--port",
                str(self.port),
                "--log-level",
                "warning",
            ],
            cwd=ROOT,
            env=self.env(),
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(
                    f"the backend exited with {self.process.returncode}: see {self.log_path}"
                )
            try:
                if httpx.get(f"{self.url}/health", timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        raise RuntimeError(f"the backend did not answer within 60 s: see {self.log_path}")

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(timeout=15)

    def kill(self) -> None:
        """kill -9: no shutdown code runs."""
        if self.process is not None:
            self.process.kill()
            self.process.wait(timeout=15)


class BankUnderTest:
    """The sandbox bank (python -m citypay.bank.sandbox) on a free port, with its own books."""

    def __init__(self, data_dir: Path) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.data_dir = data_dir
        self.process: subprocess.Popen | None = None

    def start(self) -> None:
        args = ["--port", str(self.port), "--database", str(self.data_dir / "bank.sqlite3")]
        self.process = subprocess.Popen(
            [sys.executable, "-m", "citypay.bank.sandbox", *args],
            cwd=ROOT,
            stdout=(self.data_dir / "bank.log").open("ab"),
            stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"the sandbox bank exited: see {self.data_dir / 'bank.log'}")
            try:
                if httpx.get(f"{self.url}/health", timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        raise RuntimeError("the sandbox bank did not answer within 30 s")

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(timeout=15)

    def transfers(self, order_id: str | None = None) -> list[dict]:
        """Every transfer the bank booked (of one order id)."""
        booked = httpx.get(f"{self.url}/transfers", timeout=10).json()
        return [t for t in booked if order_id is None or t["order_id"] == order_id]

    def faults(self, **faults) -> None:
        """fail_accounts=[...], fail_next=N, delay=seconds; no arguments: a healthy bank."""
        httpx.put(f"{self.url}/control", json=faults, timeout=10).raise_for_status()
