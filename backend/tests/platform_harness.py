"""Starts the real pieces for backend tests: the project's chain, a deployment, the backend."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import tempfile
import time
from collections.abc import Iterator
from functools import cache
from pathlib import Path

import httpx
import yaml
from citypay.chain.deployment import Deployment
from citypay.chain.keys import development_account
from citypay.core.config import EMBEDDED_CHAIN_ID
from citypay.day.processes import (  # noqa: F401
    ROOT,
    BackendProcess,
    SandboxBank,
    chain_tool,
    listener_process,
)
from citypay.registry_authorization import merchant_registration, registry_domain_for
from eth_account import Account
from eth_account.signers.local import LocalAccount
from eth_utils import keccak
from web3 import Web3

BANK_WEBHOOK_SECRET = "test-bank-webhook-secret"  # the backend's, so tests sign deposits


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie (exited, not yet reaped by its parent) counts as gone.
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().split()[2] != "Z"
    except FileNotFoundError:
        return False


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _chain_settings(port: int, data_dir: Path) -> dict:
    return {
        "CITY_CHAIN_PORT": str(port),
        "CITY_CHAIN_ID": str(EMBEDDED_CHAIN_ID),
        "CITY_CHAIN_DATA": str(data_dir),
    }


@cache
def _deployed_template() -> Path:
    """Where this process keeps its first freshly deployed chain for the next ones."""
    return Path(tempfile.mkdtemp(prefix="deployed-chain-")) / "chain"


class ChainUnderTest:
    """The project's anvil on a free port (or `port`) with a fresh state folder, and the three
    cities."""

    chain_id = EMBEDDED_CHAIN_ID

    def __init__(self, data_dir: Path, port: int | None = None) -> None:
        self.port = port or free_port()
        self.data_dir = data_dir
        self.rpc_url = f"http://127.0.0.1:{self.port}"
        self.manifest = data_dir / "manifest.json"

    def start_and_deploy(self) -> None:
        # A pruned chain (CITY_CHAIN_HISTORY=pruned) writes no state file to keep or start from:
        # it deploys its own cities.
        pruned = os.environ.get("CITY_CHAIN_HISTORY") == "pruned"
        deployed = _deployed_template() if type(self) is ChainUnderTest and not pruned else None
        if deployed is not None and deployed.exists():
            # The cities as this process deployed them first: its state, manifest and ABIs
            # (anvil starts from the state file in 0.2 s, where a deployment takes 6 s).
            shutil.copytree(deployed, self.data_dir, dirs_exist_ok=True)
            self.start()
        else:
            self.start()
            self._deploy_or_stop()
            if deployed is not None:
                self.stop()  # the node writes its state file on the way out
                shutil.copytree(
                    self.data_dir, deployed, ignore=shutil.ignore_patterns("anvil.json", "*.log")
                )
                self.start()
        self.w3 = Web3(Web3.HTTPProvider(self.rpc_url))
        self.deployment = Deployment(self.manifest, self.w3, chain_id=self.chain_id)

    def _deploy_or_stop(self) -> None:
        """deploy(); when it fails, the node just started is stopped before the error goes up:
        its caller has no chain to stop yet, and a node left running outlives it."""
        try:
            self.deploy()
        except BaseException:
            self.stop()
            raise

    def deploy(self) -> None:
        chain_tool(
            "scripts.deploy",
            "--network",
            "embedded",
            "--manifest",
            str(self.manifest),
            env=_chain_settings(self.port, self.data_dir),
        )

    def stop(self) -> None:
        """Stops the node the way an operator does: it writes its state file on the way out."""
        chain_tool(
            "scripts.chain",
            "stop",
            "--chain-id",
            str(self.chain_id),
            env=_chain_settings(self.port, self.data_dir),
        )

    def start(self) -> None:
        """Starts the node (again, from its state file: blocks, balances, contracts)."""
        chain_tool(
            "scripts.chain",
            "start",
            "--chain-id",
            str(self.chain_id),
            env=_chain_settings(self.port, self.data_dir),
        )

    def kill(self) -> None:
        """kill -9 of the node: it writes nothing; what it mined since its last state dump is
        lost when it starts again."""
        record = json.loads((self.data_dir / "anvil.json").read_text())
        os.kill(record["pid"], signal.SIGKILL)
        while _alive(record["pid"]):
            time.sleep(0.05)
        (self.data_dir / "anvil.json").unlink()

    @property
    def state_file(self) -> Path:
        return self.data_dir / "state.json"

    def keep_state(self, path: Path) -> None:
        """Stops the node, keeps a copy of its state file, and starts it again: `path` is then
        the chain as it was at this moment, for restore_state."""
        self.stop()
        shutil.copyfile(self.state_file, path)
        self.start()

    def restore_state(self, path: Path) -> None:
        """kill -9, then the node starts from an older state file: the blocks mined since that
        state was kept are gone, as after a crash of a node restored from a backup."""
        self.kill()
        shutil.copyfile(path, self.state_file)
        self.start()

    def service_settings(self, database_url: str) -> dict:
        """The settings a backend or listener process finds this chain, its deployment and
        `database_url` by."""
        return {
            "DATABASE_URL": database_url,
            "RPC_URL": self.rpc_url,
            "CHAIN_ID": str(self.chain_id),
            "MANIFEST_PATH": str(self.manifest),
        }

    # --- the city's duties, signed with the keys of the accounts the deployment named -------

    def signer(self, address: str) -> LocalAccount:
        """The key of an account the deployment names: here anvil's development key."""
        return development_account(address)

    def send(self, duty_address: str, call) -> dict:
        account = self.signer(duty_address)
        transaction = call.build_transaction(
            {
                "from": account.address,
                "nonce": self.w3.eth.get_transaction_count(account.address, "pending"),
                "gas": 1_000_000,
                "gasPrice": 0,
                "chainId": self.chain_id,
            }
        )
        tx_hash = self.w3.eth.send_raw_transaction(
            account.sign_transaction(transaction).raw_transaction
        )
        receipt = self.w3.eth.wait_for_transaction_receipt(tx_hash, timeout=30, poll_latency=0.1)
        assert receipt["status"] == 1, f"{call.fn_name} reverted"
        return receipt

    def register_resident(self, city_code: str, wallet, region: int = 41570) -> None:
        city = self.deployment.city(city_code)
        registrar = city.roles["registrar"]
        identity = keccak(text=f"identity:{wallet.address}")
        self.send(
            registrar, city.registry.functions.registerResident(wallet.address, identity, region)
        )

    def register_merchant(
        self, city_code: str, wallet, category: int = 5611, region: int = 41570
    ) -> None:
        city = self.deployment.city(city_code)
        registrar = city.roles["registrar"]
        application = (
            keccak(text=f"business:{wallet.address}"),
            keccak(text=f"bank-account:{wallet.address}"),
            300_000_000,
            category,
            region,
        )
        domain = registry_domain_for(
            city.token.functions.name().call(), self.deployment.chain_id, city.registry.address
        )
        deadline = self.w3.eth.get_block("latest")["timestamp"] + 3600
        registration = merchant_registration(wallet.key, domain, application, deadline=deadline)
        self.send(registrar, city.registry.functions.registerMerchant(*registration))

    def charge(self, city_code: str, wallet, amount: int) -> None:
        city = self.deployment.city(city_code)
        issuer = city.roles["issuers"][0]  # the manifest records each duty's address
        reference = keccak(text=f"deposit:{wallet.address}:{time.time_ns()}")
        self.send(issuer, city.treasury.functions.issue(wallet.address, amount, reference))


KEYSTORE_PASSWORD = "a city's own network"


class OwnNetworkUnderTest(ChainUnderTest):
    """anvil configured as a city's own permissioned network, set up as docs/deploy-besu.md says:
    its own chain id, the shipped three cities with every account a fresh key of its own (each
    city its own bank, compliance and relayer; one registrar and settler for all), the
    deployer's key in the deploy's keystore folder and the backend's duty keys in the backend's
    (`backend_keys`), each file encrypted under KEYSTORE_PASSWORD; deployed with
    `scripts.deploy --network permissioned`. The backend finds its keys with KEYSTORE_DIR and
    CITY_KEYSTORE_PASSWORD."""

    chain_id = 2026

    def __init__(self, data_dir: Path, port: int | None = None) -> None:
        super().__init__(data_dir, port)
        self.manifest = data_dir / "deployments" / f"{self.chain_id}.json"
        self.config = data_dir / "cities.yaml"
        self.deploy_keys = data_dir / "keys" / "deploy"
        self.backend_keys = data_dir / "keys" / "backend"
        self.accounts: dict[str, LocalAccount] = {}  # every account of the configuration, by name

    def deploy(self) -> None:
        self._write_configuration()
        chain_tool(
            "scripts.deploy",
            "--network", "permissioned",
            "--rpc-url", self.rpc_url,
            "--chain-id", str(self.chain_id),
            "--config", str(self.config),
            "--keystore-dir", str(self.deploy_keys),
            "--manifest", str(self.manifest),
            env=_chain_settings(self.port, self.data_dir)
            | {"CITY_KEYSTORE_PASSWORD": KEYSTORE_PASSWORD},
        )  # fmt: skip

    def _write_configuration(self) -> None:
        config = yaml.safe_load((ROOT / "config" / "cities.yaml").read_text(encoding="utf-8"))
        names = [name for name in config["accounts"] if name not in ("relayer", "relayer-2")]
        backend = ["registrar", "settler"]
        for city in config["cities"]:
            city["roles"]["relayer"] = f"{city['code']}-relayer"
            city["roles"]["more_relayers"] = []  # one relayer per city, as the guide's
            names.append(f"{city['code']}-relayer")
            backend += [f"{city['code']}-{duty}" for duty in ("relayer", "bank", "compliance")]
        self.accounts = {name: Account.create() for name in names}
        config["accounts"] = {name: account.address for name, account in self.accounts.items()}
        self.config.write_text(yaml.safe_dump(config, allow_unicode=True, sort_keys=False))
        self._keystore(self.deploy_keys, ["deployer"])
        self._keystore(self.backend_keys, backend)

    def _keystore(self, folder: Path, names: list[str]) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        for name in names:
            # pbkdf2 with few iterations keeps the test fast; real keystores use scrypt.
            encrypted = Account.encrypt(
                self.accounts[name].key, KEYSTORE_PASSWORD, kdf="pbkdf2", iterations=1_000
            )
            (folder / f"{name}.json").write_text(json.dumps(encrypted))

    def signer(self, address: str) -> LocalAccount:
        return next(a for a in self.accounts.values() if a.address == address)

    def service_settings(self, database_url: str) -> dict:
        return super().service_settings(database_url) | {
            "KEYSTORE_DIR": str(self.backend_keys),
            "CITY_KEYSTORE_PASSWORD": KEYSTORE_PASSWORD,
        }


def deployed_chain(folder: Path) -> Iterator[ChainUnderTest]:
    """For a fixture (`yield from deployed_chain(folder)`): a chain with the cities, stopped
    after."""
    chain = ChainUnderTest(folder)
    chain.start_and_deploy()
    try:
        yield chain
    finally:
        chain.stop()


def serving(service):
    """For a fixture (`yield from serving(service)`): the backend or bank started, stopped
    after."""
    service.start()
    try:
        yield service
    finally:
        service.stop()


def new_wallet(seed: str):
    return Account.from_key(keccak(text=f"backend-test-wallet:{seed}"))


class BackendUnderTest(BackendProcess):
    """The backend on a free port (or `port`), set up for the chain under test and a database.
    Fixtures and tests add to `settings` before start() (BANK_URL, CITYPAY_CRASH_AT)."""

    def __init__(
        self,
        chain: ChainUnderTest,
        database_url: str,
        log_path: Path,
        port: int | None = None,
        replicas: int = 1,
    ) -> None:
        self.chain = chain
        self.database_url = database_url
        super().__init__(
            port or free_port(),
            chain.service_settings(database_url)
            | {
                "RELAY_INTERVAL": "0.1",
                "BANK_WEBHOOK_SECRET": BANK_WEBHOOK_SECRET,
                "CASHOUT_RETRY_INTERVAL": "0.5",
                "BANK_TIMEOUT": "2",
                # The tests drive a backend from one address with a few keys and wallets,
                # schemathesis faster than any till and the relay's tests hundreds of payments of
                # one wallet at once: test_surge.py sets the limits it tests.
                "RATE_LIMIT_PER_KEY": "",
                "RATE_LIMIT_PER_WALLET": "",
            },
            log_path,
            replicas=replicas,
        )


class BankUnderTest(SandboxBank):
    """The sandbox bank on a free port, with its own books in `data_dir`."""

    def __init__(self, data_dir: Path) -> None:
        super().__init__(free_port(), data_dir / "bank.sqlite3", data_dir / "bank.log")

    def transfers(self, order_id: str | None = None) -> list[dict]:
        """Every transfer the bank booked (of one order id)."""
        booked = httpx.get(f"{self.url}/transfers", timeout=10).json()
        return [t for t in booked if order_id is None or t["order_id"] == order_id]
