"""docs/deploy-besu.md runs: the blocks it marks `<!-- guide-test: KIND -->`, in the guide's
order, pasted into one shell in a project folder as a reader would, on anvil configured as the
guide's network (its chain id, 41570; zero gas price; keys in encrypted keystores; three cities
each with its own bank, compliance and relayer). Then the chain, the sandbox bank and each node's
allowlist are checked against what the guide says happened.

The test reads the commands from the guide, so the two cannot drift apart. What it does itself,
and only that:
- `settings`: runs the block as written, then gives its own values to the variables that name
  places (the node's URL, the backend's and the bank's addresses, the database), on free ports;
- `by-hand configuration`: the one step the reader does in an editor, as the guide describes it
  (the addresses the keys command printed, other holders' addresses, a relayer per city);
- `service NAME`: a command the guide runs in a terminal of its own, run as a process with the
  settings (its `--port` given the test's free port), waited for until its /health answers;
- `city`: the blocks for one city, run for each of the three (`CITY=gimpo` set to each).
The guide's Besu commands and `make setup` are not marked; anvil stands in for the network.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import time
import tomllib
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
import yaml
from citypay.chain.deployment import Deployment
from citypay.chain.enums import IncentiveMode
from citypay.day.processes import wait_for_health
from conftest import own_database_url
from eth_account import Account
from eth_utils import to_checksum_address
from platform_harness import ROOT, OwnNetworkUnderTest, free_port
from web3 import Web3

GUIDE = ROOT / "docs" / "deploy-besu.md"
CITIES = ("gimpo", "gongju", "ulsan")
# The settings block's variables that name places: the test gives them its own values.
PLACES = ("CITY_RPC_URL", "API", "BANK_URL", "DATABASE_URL")
# What the guide's commands need of the project folder besides what they write themselves.
SHARED = (".venv", ".venv-backend", "scripts", "node_modules")
COPIED = ("config/cities.yaml", "config/fraud.yaml")
BLOCK_TIMEOUT = 300

_MARKED = re.compile(r"<!-- guide-test: ([a-z-]+)(?: ([a-z-]+))? -->\n```sh\n(.*?)\n```", re.S)


@dataclass(frozen=True)
class Block:
    kind: str
    name: str | None
    text: str


def guide_blocks() -> list[Block]:
    """The marked blocks, in order: one `settings` first, the city's last."""
    text = GUIDE.read_text(encoding="utf-8")
    blocks = [Block(kind, name, block) for kind, name, block in _MARKED.findall(text)]
    markers = re.findall(r"^<!-- guide-test:", text, re.M)
    assert len(blocks) == len(markers), "a marker not followed by a sh block"
    unknown = {b.kind for b in blocks} - {"settings", "run", "by-hand", "service", "city"}
    assert not unknown, f"{GUIDE} marks blocks of kinds the test does not know: {unknown}"
    kinds = [b.kind for b in blocks]
    assert kinds[0] == "settings" and kinds.count("settings") == 1
    first_city = kinds.index("city")
    assert set(kinds[first_city:]) == {"city"}, "the blocks for one city come last"
    return blocks


class GuideNetwork(OwnNetworkUnderTest):
    """anvil as the guide's network: its chain id. The guide, not the harness, makes the keys,
    the configuration and the deployment."""

    chain_id = 41570


class GuideShell:
    """One bash in the project folder, the reader's terminal: each block is sourced in turn, so
    its variables and functions stay for the next; a failing command ends it (-e, pipefail)."""

    def __init__(self, folder: Path, environment: dict) -> None:
        self.folder = folder
        self.log = folder / "guide-shell.log"
        self.process = subprocess.Popen(
            ["bash", "--noprofile", "--norc", "-e", "-o", "pipefail"],
            cwd=folder,
            env=environment,
            stdin=subprocess.PIPE,
            stdout=self.log.open("ab"),
            stderr=subprocess.STDOUT,
            text=True,
            start_new_session=True,  # its own process group: close() ends what it left running
        )
        self.count = 0

    def run(self, text: str, what: str) -> None:
        self.count += 1
        script, done = self.folder / f".guide-{self.count}.sh", self.folder / f".guide-{self.count}"
        script.write_text(text + "\n")
        with self.log.open("a") as log:
            log.write(f"\n### block {self.count}: {what}\n")
        # Sourced with stdin from /dev/null: no command of the block can read the next lines.
        self.process.stdin.write(f"source {script} < /dev/null\n: > {done}\n")
        self.process.stdin.flush()
        deadline = time.monotonic() + BLOCK_TIMEOUT
        while not done.exists():
            if self.process.poll() is not None or time.monotonic() > deadline:
                raise AssertionError(
                    f"the guide's block {what} failed:\n{text}\n--- shell ---\n{self.tail()}"
                )
            time.sleep(0.1)

    def tail(self, lines: int = 60) -> str:
        return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])

    def close(self) -> None:
        if self.process.poll() is None:
            self.process.stdin.close()
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(timeout=30)


class GuideService:
    """A command the guide runs in a terminal of its own."""

    def __init__(self, folder: Path, name: str, text: str, environment: dict, url: str) -> None:
        self.name, self.url = name, url
        self.log = folder / f"{name}.log"
        self.process = subprocess.Popen(
            ["bash", "-e", "-c", text],
            cwd=folder,
            env=environment,
            stdout=self.log.open("ab"),
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group: stop() ends bash and the service
        )

    def wait_until_up(self) -> None:
        """Until its /health answers."""
        try:
            wait_for_health(self.url, self.process, f"the guide's {self.name}", self.log, 120)
        except RuntimeError as failed:
            raise AssertionError(str(failed)) from None

    def stop(self) -> None:
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            self.process.wait(timeout=30)


def project_folder(folder: Path) -> Path:
    """A project folder as step 0 (`make setup compile`) leaves it, sharing this one's tools and
    build: the test run has made the tools (make test runs make setup); this compiles as `make
    compile` does, when a contract changed since the last build."""
    subprocess.run(
        [str(ROOT / ".venv" / "bin" / "brownie"), "compile"],
        cwd=ROOT,
        env=os.environ
        | {
            "PATH": f"{ROOT / '.toolchain' / 'bin'}{os.pathsep}{os.environ['PATH']}",
            "SOLCX_BINARY_PATH": str(ROOT / ".toolchain" / "solc"),
        },
        check=True,
        capture_output=True,
        timeout=600,
    )
    for name in SHARED:
        (folder / name).symlink_to(ROOT / name)
    for name in COPIED:
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        (folder / name).write_bytes((ROOT / name).read_bytes())
    return folder


def fill_in_configuration(folder: Path) -> None:
    """Step 3, done as the guide tells the reader: config/besu.yaml is the shipped configuration
    with the addresses the keys command printed, the other holders' own (fresh addresses here),
    and a relayer per city."""
    held = {
        path.stem: to_checksum_address(json.loads(path.read_text())["address"])
        for keys in (folder / "keys", folder / "keys" / "backend")
        for path in keys.glob("*.json")
    }
    config = yaml.safe_load((folder / "config" / "cities.yaml").read_text(encoding="utf-8"))
    accounts = [name for name in config["accounts"] if name not in ("relayer", "relayer-2")]
    for city in config["cities"]:
        city["roles"]["relayer"] = f"{city['code']}-relayer"
        city["roles"]["more_relayers"] = []
        accounts.append(f"{city['code']}-relayer")
    config["accounts"] = {name: held.get(name) or Account.create().address for name in accounts}
    (folder / "config" / "besu.yaml").write_text(
        yaml.safe_dump(config, allow_unicode=True, sort_keys=False), encoding="utf-8"
    )


def _exported(block: Block) -> dict[str, str]:
    return dict(re.findall(r"\b([A-Z][A-Z0-9_]*)=(\S+)", block.text))


@pytest.fixture(scope="module")
def guide_run(tmp_path_factory):
    """The guide, run: the project folder, the network, the services, and the addresses the
    guide's commands used."""
    folder = project_folder(tmp_path_factory.mktemp("guide-project"))
    network = GuideNetwork(tmp_path_factory.mktemp("guide-chain"))
    api_port, bank_port = free_port(), free_port()
    places = {
        "CITY_RPC_URL": network.rpc_url,
        "API": f"http://127.0.0.1:{api_port}",
        "BANK_URL": f"http://127.0.0.1:{bank_port}",
        "DATABASE_URL": own_database_url(folder, "guide"),
    }
    ports = {"bank": ("--port 8549", bank_port), "backend": ("--port 8000", api_port)}
    # The reader's environment: no project tools on PATH, none of the test run's settings.
    path = os.pathsep.join(
        p for p in os.environ["PATH"].split(os.pathsep) if not p.startswith(str(ROOT))
    )
    environment = {"PATH": path, "HOME": str(Path.home()), "LANG": "C.UTF-8"}
    blocks = guide_blocks()
    settings = blocks[0]
    assert set(PLACES) <= set(_exported(settings)), f"the guide's first block sets {PLACES}"
    assert _exported(settings)["CITY_RPC_CHAIN_ID"] == str(network.chain_id)
    preamble = settings.text + "\n" + "\n".join(f"export {k}='{v}'" for k, v in places.items())
    network.start()
    shell, services = GuideShell(folder, environment), []
    try:
        shell.run(preamble, "settings")
        for block in blocks:
            if block.kind == "run":
                shell.run(block.text, block.text.splitlines()[0])
            elif block.kind == "by-hand":
                assert block.name == "configuration"
                fill_in_configuration(folder)
            elif block.kind == "service":
                literal, port = ports[block.name]
                place = "API" if block.name == "backend" else "BANK_URL"
                # The guide's service listens where its first block says it does.
                assert literal in block.text, f"the guide's {block.name} runs with {literal}"
                assert _exported(settings)[place].endswith(":" + literal.split()[1])
                text = preamble + "\n" + block.text.replace(literal, f"--port {port}")
                url = places[place]
                services.append(GuideService(folder, block.name, text, environment, url))
                services[-1].wait_until_up()
        city_blocks = [b.text for b in blocks if b.kind == "city"]
        assert city_blocks[0].startswith("CITY=gimpo\n"), "the city blocks start with CITY=gimpo"
        for code in CITIES:
            for number, text in enumerate(city_blocks):
                shell.run(text.replace("CITY=gimpo\n", f"CITY={code}\n", 1), f"{code} #{number}")
        shell.close()
        network.manifest = folder / "deployments" / f"{network.chain_id}.json"
        network.w3 = Web3(Web3.HTTPProvider(network.rpc_url))
        network.deployment = Deployment(network.manifest, network.w3, chain_id=network.chain_id)
        yield {"folder": folder, "network": network, "bank": places["BANK_URL"]}
    finally:
        shell.close()
        for service in reversed(services):
            service.stop()
        network.stop()


def _balance_becomes(token, account: str, expected: int, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while (balance := token.balanceOf(account).call()) != expected:
        assert time.monotonic() < deadline, f"{account} holds {balance:,}, not {expected:,}"
        time.sleep(0.2)


def _wallet(folder: Path, name: str) -> str:
    keystore = json.loads((folder / "wallets" / f"{name}.json").read_text())
    return to_checksum_address(keystore["address"])


def _configured(folder: Path) -> dict[str, str]:
    config = yaml.safe_load((folder / "config" / "besu.yaml").read_text(encoding="utf-8"))
    return config["accounts"]


@pytest.mark.parametrize("code", CITIES)
def test_the_guide_registers_charges_pays_and_cashes_out_in_each_city(guide_run, code):
    folder, network = guide_run["folder"], guide_run["network"]
    accounts = _configured(folder)
    city = network.deployment.city(code)
    token, treasury, w3 = city.token.functions, city.treasury, network.w3
    resident, shop = _wallet(folder, f"{code}-resident"), _wallet(folder, f"{code}-shop")
    # Registered through the office's API, which sends from the registrar.
    assert (token.accountKind(resident).call(), token.accountKind(shop).call()) == (1, 2)
    (registered,) = city.registry.events.ResidentRegistered.get_logs(
        from_block=0, argument_filters={"wallet": resident}
    )
    assert w3.eth.get_transaction(registered["transactionHash"])["from"] == accounts["registrar"]
    # Charged on the bank's notification, issued by the city's own bank.
    (issued,) = treasury.events.Issued.get_logs(
        from_block=0, argument_filters={"resident": resident}
    )
    assert issued["args"]["issuer"] == accounts[f"{code}-bank"]
    assert issued["args"]["amount"] == 100_000
    # Paid through the relayer: the city's own.
    (paid,) = city.token.events.Transfer.get_logs(
        from_block=0, argument_filters={"from": resident, "to": shop}
    )
    assert paid["args"]["value"] == 30_000
    assert w3.eth.get_transaction(paid["transactionHash"])["from"] == accounts[f"{code}-relayer"]
    # Ulsan pays its incentive as cashback on the payment instead, once the backend settles it.
    cashback = 30_000 * city.chain.cashback.call("rateOf", shop) // 10_000
    if treasury.functions.incentiveMode().call() == IncentiveMode.DISCOUNT:
        cashback = 0
    _balance_becomes(token, resident, 70_000 + issued["args"]["incentive"] + cashback)
    # Cashed out: burned, paid by the bank to the payout account the merchant signed, settled.
    assert token.balanceOf(shop).call() == 0
    (settled,) = treasury.events.RedemptionSettled.get_logs(
        from_block=0, argument_filters={"account": shop}
    )
    assert settled["args"]["payout"] == 30_000
    assert w3.eth.get_transaction(settled["transactionHash"])["from"] == accounts["settler"]
    payout_account = "0x" + city.registry.functions.merchantOf(shop).call()[1].hex()
    transfers = httpx.get(f"{guide_run['bank']}/transfers", timeout=10).json()
    (transfer,) = [t for t in transfers if t["order_id"].startswith(f"{code}:{shop}:")]
    assert (transfer["status"], transfer["amount"], transfer["account"]) == (
        "paid",
        30_000,
        payout_account,
    )
    reference = settled["args"]["bankReference"].rstrip(b"\0").decode()
    assert reference == transfer["reference"]


def test_every_node_allowlist_admits_every_account_the_guide_sent_from(guide_run):
    folder, w3 = guide_run["folder"], guide_run["network"].w3
    accounts = _configured(folder)
    configured = {address.lower() for address in accounts.values()}
    senders = {
        transaction["from"].lower()
        for number in range(w3.eth.block_number + 1)
        for transaction in w3.eth.get_block(number, full_transactions=True)["transactions"]
    }
    # The deploy's, and the backend's for this guide's work: no wallet sends a transaction.
    names = ["deployer", "registrar", "settler"]
    names += [f"{code}-{duty}" for code in CITIES for duty in ("bank", "relayer")]
    assert senders == {accounts[name].lower() for name in names}
    for node in range(1, 5):
        path = folder / "QBFT-Network" / f"Node-{node}" / "data" / "permissions_config.toml"
        allowlist = tomllib.loads(path.read_text())["accounts-allowlist"]
        assert len(allowlist) == len(set(allowlist)), f"{path} names an account twice"
        assert all(re.fullmatch(r"0x[0-9a-f]{40}", a) for a in allowlist), path
        assert set(allowlist) == configured, f"{path} is not the configuration's accounts"
        assert senders <= set(allowlist), f"{path} lacks {senders - set(allowlist)}"
