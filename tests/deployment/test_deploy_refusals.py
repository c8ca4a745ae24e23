"""What the deploy command refuses, each with a clear error and no transaction sent; and the
permissioned path (keystore keys, another chain id) that a Besu deployment takes."""

import json
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import pytest
from eth_account import Account

from scripts.chain import ANVIL

OTHER_CHAIN_ID = 31999
PASSWORD = "correct horse battery staple"
ADMIN_PASSWORD = "the city admin's own"


@pytest.fixture(scope="module")
def other_chain(start_chain):
    """A chain that is not the embedded chain: another chain id, like a Besu network."""
    return start_chain(chain_id=OTHER_CHAIN_ID)


@dataclass
class Operator:
    """A network's operator: every account of the configuration its own (fresh addresses), the
    deployer's and Gimpo's admin's keys in a keystore folder, each under its own password."""

    deployer: Account
    city_admin: Account
    folder: Path
    addresses: dict[str, str]

    @property
    def keys(self) -> tuple[str, str]:
        return ("--keystore-dir", str(self.folder / "keys"))

    def own_accounts(self, raw: dict) -> None:
        raw["accounts"] = dict(self.addresses)

    def config(self, path: Path, city_config, cities=("gimpo",), change=None) -> Path:
        def changed(raw):
            self.own_accounts(raw)
            if change:
                change(raw)

        return city_config(path, cities, changed)


@pytest.fixture(scope="module")
def operator(tmp_path_factory, new_keystore, shipped_accounts):
    folder = tmp_path_factory.mktemp("operator")
    deployer = new_keystore(folder / "keys", PASSWORD)
    city_admin = new_keystore(folder / "keys", ADMIN_PASSWORD)
    addresses = {name: Account.create().address for name in shipped_accounts}
    addresses |= {"deployer": deployer.address, "gimpo-admin": city_admin.address}
    return Operator(deployer, city_admin, folder, addresses)


@pytest.fixture(scope="module")
def operator_config(operator, city_config):
    """A one-city configuration (Gimpo) naming only the operator's own accounts."""
    return operator.config(operator.folder / "gimpo.yaml", city_config)


def permissioned(chain, config, manifest, *extra: str, password: str | None = None, env=None):
    args = [
        "--network", "permissioned",
        "--rpc-url", chain.rpc_url,
        "--chain-id", str(OTHER_CHAIN_ID),
        "--config", str(config),
        "--manifest", str(manifest),
        *extra,
    ]  # fmt: skip
    passwords = {"CITY_KEYSTORE_PASSWORD": password} if password is not None else {}
    return chain.deploy(*args, env=passwords | (env or {}))


def refused(result: subprocess.CompletedProcess, message: str) -> None:
    assert result.returncode == 1, result.stdout
    assert message in result.stderr


def test_wrong_rpc_url_is_a_clear_error(chain_at, unused_port, tmp_path):
    port = unused_port()  # nobody listens there
    result = chain_at(port=port, chain_id=58210, folder=tmp_path).deploy()
    refused(result, f"cannot reach a chain at http://127.0.0.1:{port}")


def test_wrong_chain_id_is_refused_and_sends_nothing(other_chain, shipped_accounts):
    # The embedded network expects chain id 58210; this node answers 31999.
    result = other_chain.deploy()
    refused(result, f"has chain id {OTHER_CHAIN_ID}, expected 58210")
    assert other_chain.nonce(shipped_accounts["deployer"]) == 0


def test_development_keys_are_refused_off_the_embedded_chain(
    other_chain, operator_config, tmp_path
):
    result = permissioned(other_chain, operator_config, tmp_path / "m.json", "--keys", "dev")
    refused(
        result, f"embedded chain (chain id 58210 on this machine), not on chain id {OTHER_CHAIN_ID}"
    )
    assert not (tmp_path / "m.json").exists()


def test_wrong_keystore_password_is_refused_and_sends_nothing(
    other_chain, operator, operator_config, tmp_path
):
    account = operator.deployer
    nonce = other_chain.nonce(account.address)
    result = permissioned(
        other_chain, operator_config, tmp_path / "m.json", *operator.keys, password="wrong"
    )
    refused(result, f"{account.address}): wrong password (MAC mismatch)")
    assert other_chain.nonce(account.address) == nonce
    assert not (tmp_path / "m.json").exists()


def test_invalid_configuration_is_refused_and_sends_nothing(
    other_chain, operator, city_config, tmp_path
):
    def over_100_percent(raw):
        raw["cities"][0]["policy"]["incentive_percent"] = 120

    config = operator.config(tmp_path / "bad.yaml", city_config, change=over_100_percent)
    nonce = other_chain.nonce(operator.deployer.address)
    result = permissioned(
        other_chain, config, tmp_path / "m.json", *operator.keys, password=PASSWORD
    )
    refused(
        result, "cities[gimpo].policy.incentive_percent = 120: must be less than or equal to 100"
    )
    assert other_chain.nonce(operator.deployer.address) == nonce


def test_development_accounts_in_any_role_are_refused_off_the_embedded_chain(
    other_chain, operator, city_config, shipped_accounts, tmp_path
):
    # The shipped configuration's accounts (anvil's public ones) for everything but the deployer.
    def public_roles(raw):
        raw["accounts"] = shipped_accounts | {"deployer": operator.deployer.address}

    config = city_config(tmp_path / "public.yaml", ("gimpo",), public_roles)
    result = permissioned(
        other_chain, config, tmp_path / "m.json", *operator.keys, password=PASSWORD
    )
    refused(result, f"on chain id {OTHER_CHAIN_ID} the configuration may not name development")
    for where, name, index in (
        ("directory_admin", "platform-admin", 1),
        ("cities[gimpo].roles.city_admin", "gimpo-admin", 6),
        ("cities[gimpo].roles.issuers.account", "gimpo-bank", 8),
        ("cities[gimpo].roles.relayer", "relayer", 2),
    ):
        assert (
            f"{where} = {name}: {shipped_accounts[name]} is development account #{index} "
            "of the public mnemonic" in result.stderr
        )
    assert "deployer =" not in result.stderr  # the operator's own key is not blamed
    assert other_chain.nonce(operator.deployer.address) == 0
    assert not (tmp_path / "m.json").exists()


def test_a_development_key_imported_into_a_keystore_is_refused_off_the_embedded_chain(
    other_chain, operator, city_config, new_keystore, dev_keys, shipped_accounts, tmp_path
):
    anvil_first = dev_keys.signer(shipped_accounts["deployer"], "deployer")
    new_keystore(tmp_path / "keys", PASSWORD, account=anvil_first)

    def anvil_deployer(raw):
        raw["accounts"]["deployer"] = anvil_first.address

    config = operator.config(tmp_path / "anvil.yaml", city_config, change=anvil_deployer)
    keys = ("--keystore-dir", str(tmp_path / "keys"))
    result = permissioned(other_chain, config, tmp_path / "m.json", *keys, password=PASSWORD)
    refused(result, f"deployer = deployer: {anvil_first.address} is development account #0")
    assert other_chain.nonce(anvil_first.address) == 0


def test_manifest_whose_contracts_are_gone_is_refused(
    other_chain, operator, operator_config, tmp_path
):
    account, folder, config = operator.deployer, operator.folder, operator_config
    gone = "0x" + "ab" * 20
    stale = tmp_path / "stale.json"
    stale.write_text(
        json.dumps(
            {
                "chain_id": OTHER_CHAIN_ID,
                "network": "permissioned",
                "deployer": account.address,
                "directory": {
                    "address": gone,
                    "block": 1,
                    "transaction": "0x" + "00" * 32,
                    "code_hash": "0x" + "11" * 32,
                },
            }
        )
    )
    nonce = other_chain.nonce(account.address)
    keys = ("--keystore-dir", str(folder / "keys"))
    result = permissioned(other_chain, config, stale, *keys, password=PASSWORD)
    refused(result, f"records directory at {gone}, but the chain (id {OTHER_CHAIN_ID}) has no code")
    assert other_chain.nonce(account.address) == nonce


@pytest.fixture(scope="module")
def keystore_deployment(other_chain, operator, operator_config):
    """Gimpo deployed to the other chain by the keystore deployer alone."""
    manifest_path = operator.folder / "deployments" / f"{OTHER_CHAIN_ID}.json"
    result = permissioned(
        other_chain, operator_config, manifest_path, *operator.keys, password=PASSWORD
    )
    assert result.returncode == 0, result.stdout + result.stderr
    return result, manifest_path


def test_keystore_deployer_deploys_to_another_chain_and_keeps_no_role(
    other_chain, operator, keystore_deployment
):
    account = operator.deployer
    result, manifest_path = keystore_deployment
    manifest = json.loads(manifest_path.read_text())
    assert (manifest["chain_id"], manifest["deployer"]) == (OTHER_CHAIN_ID, account.address)
    # No other key was at hand: the deployer took the issuer admin role to give the bank its
    # allowance, then renounced it with the rest.
    assert "gimpo.treasury: grant ISSUER_ADMIN_ROLE to deployer" in result.stdout
    gimpo = manifest["cities"]["gimpo"]
    abi = json.loads((manifest_path.parent / "abi" / "CityTreasury.json").read_text())
    treasury = other_chain.w3.eth.contract(
        address=gimpo["contracts"]["treasury"]["address"], abi=abi
    )
    for role in ("DEFAULT_ADMIN_ROLE", "ISSUER_ADMIN_ROLE"):
        role_id = treasury.functions[role]().call()
        assert not treasury.functions.hasRole(role_id, account.address).call()
    assert treasury.functions.issuerAllowance(gimpo["roles"]["issuers"][0]).call() == 2_000_000_000
    written = result.stdout + result.stderr + manifest_path.read_text()
    assert PASSWORD not in written
    assert account.key.hex().removeprefix("0x") not in written


def test_city_that_needs_a_missing_key_is_refused_before_anything_is_sent(
    other_chain, operator, keystore_deployment, city_config, tmp_path
):
    account = operator.deployer
    _, manifest_path = keystore_deployment
    # The deployer renounced its roles: listing a new city needs the directory admin's key.
    config = operator.config(tmp_path / "two.yaml", city_config, ("gimpo", "gongju"))
    nonce = other_chain.nonce(account.address)
    result = permissioned(other_chain, config, manifest_path, *operator.keys, password=PASSWORD)
    refused(result, "registerCity(gongju) needs the key of an account holding DIRECTORY_ADMIN_ROLE")
    assert other_chain.nonce(account.address) == nonce
    assert "gongju" not in json.loads(manifest_path.read_text())["cities"]


def test_chain_without_cancun_is_refused_before_anything_is_sent(
    operator, city_config, unused_port, chain_at, tmp_path
):
    # The contracts are compiled for Cancun: a node on an older fork (a Besu genesis without
    # cancunTime) would reject them half-way; the deployment probes the EVM first.
    account, folder = operator.deployer, operator.folder
    config = operator.config(tmp_path / "gimpo.yaml", city_config)
    node = chain_at(port=unused_port(), chain_id=OTHER_CHAIN_ID, folder=tmp_path)
    shanghai = subprocess.Popen(
        [str(ANVIL), "--port", str(node.port), "--chain-id", str(OTHER_CHAIN_ID), "--quiet",
         "--hardfork", "shanghai", "--base-fee", "0", "--gas-price", "0"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 15
        while not node.w3.is_connected() and time.monotonic() < deadline:
            time.sleep(0.1)
        keys = ("--keystore-dir", str(folder / "keys"))
        result = permissioned(node, config, tmp_path / "m.json", *keys, password=PASSWORD)
        refused(result, "this chain does not run Cancun bytecode (PUSH0, MCOPY, TLOAD)")
        assert node.nonce(account.address) == 0
    finally:
        shanghai.terminate()
        shanghai.wait(timeout=10)


def monthly_purchase_limit_on_chain(chain, manifest_path: Path) -> int:
    gimpo = json.loads(manifest_path.read_text())["cities"]["gimpo"]
    abi = json.loads((manifest_path.parent / "abi" / "CityTreasury.json").read_text())
    treasury = chain.w3.eth.contract(address=gimpo["contracts"]["treasury"]["address"], abi=abi)
    return treasury.functions.policy().call()[1]  # Policy.monthlyPurchaseLimit


@pytest.mark.parametrize(
    ("deployer_password", "monthly_purchase_limit"), [("wrong", 600_000), (None, 650_000)]
)
def test_a_policy_change_needs_only_the_city_admins_key(
    other_chain,
    operator,
    keystore_deployment,
    city_config,
    tmp_path,
    deployer_password,
    monthly_purchase_limit,
):
    _, manifest_path = keystore_deployment
    before = monthly_purchase_limit_on_chain(other_chain, manifest_path)

    def new_limit(raw):
        raw["cities"][0]["policy"]["monthly_purchase_limit"] = monthly_purchase_limit

    config = operator.config(tmp_path / "policy.yaml", city_config, change=new_limit)
    deployer_nonce = other_chain.nonce(operator.deployer.address)
    admin_nonce = other_chain.nonce(operator.city_admin.address)
    # The deployer's password is wrong (CITY_KEYSTORE_PASSWORD, which would also serve the admin)
    # or missing altogether; only the city admin's own is right.
    result = permissioned(
        other_chain,
        config,
        manifest_path,
        *operator.keys,
        password=deployer_password,
        env={"CITY_KEYSTORE_PASSWORD_GIMPO_ADMIN": ADMIN_PASSWORD},
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert (
        f"gimpo.treasury: setMonthlyPurchaseLimit({monthly_purchase_limit}) (was {before})"
        in result.stdout
    )
    assert "1 transaction(s) sent" in result.stdout
    assert other_chain.nonce(operator.city_admin.address) == admin_nonce + 1
    assert other_chain.nonce(operator.deployer.address) == deployer_nonce
    assert monthly_purchase_limit_on_chain(other_chain, manifest_path) == monthly_purchase_limit
