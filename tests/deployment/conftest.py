"""Fixtures for the deployment tests: the project's own chain on free ports (started with the
project's chain command, not Brownie's), the deploy and city commands run as a user runs them,
and web3 to look at the chain. Brownie's chain on CITY_TEST_RPC_PORT is left to the other tests.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml
from citypay.chain.keystore import DevKeys
from eth_account import Account
from web3 import Web3

ROOT = Path(__file__).resolve().parents[2]
SHIPPED_CONFIG = ROOT / "config" / "cities.yaml"
EMBEDDED_CHAIN_ID = 58210
_handed_out: set[int] = set()


def free_port() -> int:
    """A port nobody listens on, counting up from just above Brownie's test chain (each
    pytest-xdist worker from its own offset, so two workers never race for one port)."""
    worker = int(os.environ.get("PYTEST_XDIST_WORKER", "gw0").removeprefix("gw") or 0)
    start = int(os.environ.get("CITY_TEST_RPC_PORT", "8545")) + 1 + 20 * worker
    for port in range(start, start + 200):
        if port in _handed_out:
            continue
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                probe.bind(("127.0.0.1", port))
            except OSError:
                continue
        _handed_out.add(port)
        return port
    raise RuntimeError(f"no free port in {start}-{start + 199}")


def run(*args: str, env: dict) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", *args],
        cwd=ROOT,
        env=env,
        stdin=subprocess.DEVNULL,  # never a terminal: a missing password is an error, not a prompt
        capture_output=True,
        text=True,
        timeout=180,
    )


def write_config(path: Path, cities: tuple[str, ...], change=None) -> Path:
    """The shipped configuration with only `cities`, after `change(raw)` if given."""
    raw = yaml.safe_load(SHIPPED_CONFIG.read_text())
    raw["cities"] = [city for city in raw["cities"] if city["code"] in cities]
    if change:
        change(raw)
    path.write_text(yaml.safe_dump(raw, allow_unicode=True, sort_keys=False))
    return path


@dataclass
class Chain:
    """A chain started by `python -m scripts.chain`, with the environment that points at it."""

    port: int
    chain_id: int
    folder: Path

    @property
    def env(self) -> dict:
        inherited = {k: v for k, v in os.environ.items() if not k.startswith("CITY_KEYSTORE")}
        return {
            **inherited,
            "CITY_CHAIN_PORT": str(self.port),
            "CITY_CHAIN_ID": str(EMBEDDED_CHAIN_ID),
            "CITY_CHAIN_DATA": str(self.folder / "chain"),
        }

    @property
    def rpc_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def manifest_path(self) -> Path:
        return self.folder / "deployments" / f"{self.chain_id}.json"

    @property
    def w3(self) -> Web3:
        return Web3(Web3.HTTPProvider(self.rpc_url))

    def command(self, *args: str) -> subprocess.CompletedProcess:
        return run("scripts.chain", *args, "--chain-id", str(self.chain_id), env=self.env)

    def deploy(self, *args: str, env: dict | None = None) -> subprocess.CompletedProcess:
        return run("scripts.deploy", *args, env={**self.env, **(env or {})})

    def city(self, *args: str) -> subprocess.CompletedProcess:
        return run("scripts.city", *args, env=self.env)

    def manifest(self) -> dict:
        return json.loads(self.manifest_path.read_text())

    def nonce(self, address: str) -> int:
        return self.w3.eth.get_transaction_count(address, "pending")

    def transactions_since(self, block: int) -> list[dict]:
        """Every transaction mined after `block`."""
        w3 = self.w3
        return [
            tx
            for number in range(block + 1, w3.eth.block_number + 1)
            for tx in w3.eth.get_block(number, full_transactions=True)["transactions"]
        ]

    def contract(self, address: str, name: str):
        abi = json.loads((self.manifest_path.parent / "abi" / f"{name}.json").read_text())
        return self.w3.eth.contract(address=address, abi=abi)

    def transact(self, account, call) -> dict:
        """Sends a contract call signed by `account` (zero fees) and waits for it."""
        w3 = self.w3
        tx = call.build_transaction(
            {
                "from": account.address,
                "nonce": w3.eth.get_transaction_count(account.address, "pending"),
                "maxFeePerGas": 0,
                "maxPriorityFeePerGas": 0,
            }
        )
        tx_hash = w3.eth.send_raw_transaction(account.sign_transaction(tx).raw_transaction)
        receipt = w3.eth.wait_for_transaction_receipt(tx_hash, timeout=30, poll_latency=0.2)
        assert receipt["status"] == 1, receipt
        return receipt


# --- Fixtures (the test modules import nothing from here: pytest hands these over) ------------


@pytest.fixture(scope="module")
def start_chain(tmp_path_factory):
    """Starts chains with the project's chain command; stops them after the module."""
    started: list[Chain] = []

    def start(chain_id: int = EMBEDDED_CHAIN_ID) -> Chain:
        chain = Chain(port=free_port(), chain_id=chain_id, folder=tmp_path_factory.mktemp("chain"))
        result = chain.command("start")
        assert result.returncode == 0, result.stderr
        started.append(chain)
        return chain

    yield start
    for chain in started:
        chain.command("stop")


@pytest.fixture(scope="module")
def chain(start_chain):
    """The project's embedded chain (chain id 58210), on a free port, for one test module."""
    return start_chain()


@pytest.fixture(scope="session")
def unused_port():
    return free_port


@pytest.fixture(scope="session")
def chain_at():
    """A Chain handle for a port and folder, started or not."""
    return Chain


@pytest.fixture(scope="session")
def city_config():
    """Writes the shipped configuration with some of its cities, optionally changed."""
    return write_config


@pytest.fixture(scope="session")
def shipped_accounts() -> dict[str, str]:
    """The shipped configuration's account names and addresses."""
    return yaml.safe_load(SHIPPED_CONFIG.read_text())["accounts"]


@pytest.fixture(scope="session")
def dev_keys():
    return DevKeys()


@pytest.fixture(scope="session")
def new_keystore():
    """Puts a fresh account (not a development key, unless `account` is given) in an encrypted
    keystore file."""

    def create(folder: Path, password: str, account=None):
        account = account or Account.create()
        folder.mkdir(parents=True, exist_ok=True)
        # pbkdf2 with few iterations keeps the test fast; real keystores use the scrypt default.
        encrypted = Account.encrypt(account.key, password, kdf="pbkdf2", iterations=1_000)
        (folder / f"{account.address}.json").write_text(json.dumps(encrypted))
        return account

    return create
