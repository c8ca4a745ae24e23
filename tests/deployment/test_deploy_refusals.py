"""What the deploy command refuses, each with a clear error and no transaction sent; and the
permissioned path (keystore keys, another chain id) that a Besu deployment takes."""

import json
import subprocess
import time

import pytest

from scripts.chain import ANVIL

OTHER_CHAIN_ID = 31999
PASSWORD = "correct horse battery staple"


@pytest.fixture(scope="module")
def other_chain(start_chain):
    """A chain that is not the embedded chain: another chain id, like a Besu network."""
    return start_chain(chain_id=OTHER_CHAIN_ID)


@pytest.fixture(scope="module")
def operator(tmp_path_factory, new_keystore, city_config):
    """A deployer with a fresh key in a keystore, and a one-city configuration naming it."""
    folder = tmp_path_factory.mktemp("operator")
    account = new_keystore(folder / "keys", PASSWORD)

    def own_deployer(raw):
        raw["accounts"]["deployer"] = account.address

    config = city_config(folder / "gimpo.yaml", ("gimpo",), own_deployer)
    return account, folder, config


def permissioned(chain, config, manifest, *extra: str, password: str | None = None):
    args = [
        "--network", "permissioned",
        "--rpc-url", chain.rpc_url,
        "--chain-id", str(OTHER_CHAIN_ID),
        "--config", str(config),
        "--manifest", str(manifest),
        *extra,
    ]  # fmt: skip
    env = {"CITY_KEYSTORE_PASSWORD": password} if password is not None else {}
    return chain.deploy(*args, env=env)


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


def test_development_keys_are_refused_off_the_embedded_chain(other_chain, operator, tmp_path):
    _, _, config = operator
    result = permissioned(other_chain, config, tmp_path / "m.json", "--keys", "dev")
    refused(
        result, f"embedded chain (chain id 58210 on this machine), not on chain id {OTHER_CHAIN_ID}"
    )
    assert not (tmp_path / "m.json").exists()


def test_wrong_keystore_password_is_refused_and_sends_nothing(other_chain, operator, tmp_path):
    account, folder, config = operator
    nonce = other_chain.nonce(account.address)
    keys = ("--keystore-dir", str(folder / "keys"))
    result = permissioned(other_chain, config, tmp_path / "m.json", *keys, password="wrong")
    refused(result, f"{account.address}): wrong password (MAC mismatch)")
    assert other_chain.nonce(account.address) == nonce
    assert not (tmp_path / "m.json").exists()


def test_invalid_configuration_is_refused_and_sends_nothing(
    other_chain, operator, city_config, tmp_path
):
    account, folder, _ = operator

    def over_100_percent(raw):
        raw["accounts"]["deployer"] = account.address
        raw["cities"][0]["policy"]["incentive_percent"] = 120

    config = city_config(tmp_path / "bad.yaml", ("gimpo",), over_100_percent)
    nonce = other_chain.nonce(account.address)
    keys = ("--keystore-dir", str(folder / "keys"))
    result = permissioned(other_chain, config, tmp_path / "m.json", *keys, password=PASSWORD)
    refused(
        result, "cities[gimpo].policy.incentive_percent = 120: must be less than or equal to 100"
    )
    assert other_chain.nonce(account.address) == nonce


def test_manifest_whose_contracts_are_gone_is_refused(other_chain, operator, tmp_path):
    account, folder, config = operator
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
def keystore_deployment(other_chain, operator):
    """Gimpo deployed to the other chain by the keystore deployer alone."""
    _, folder, config = operator
    manifest_path = folder / "deployments" / f"{OTHER_CHAIN_ID}.json"
    keys = ("--keystore-dir", str(folder / "keys"))
    result = permissioned(other_chain, config, manifest_path, *keys, password=PASSWORD)
    assert result.returncode == 0, result.stdout + result.stderr
    return result, manifest_path


def test_keystore_deployer_deploys_to_another_chain_and_keeps_no_role(
    other_chain, operator, keystore_deployment
):
    account = operator[0]
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
    account, folder, _ = operator
    _, manifest_path = keystore_deployment

    def own_deployer(raw):
        raw["accounts"]["deployer"] = account.address

    # The deployer renounced its roles: listing a new city needs the directory admin's key.
    config = city_config(tmp_path / "two.yaml", ("gimpo", "gongju"), own_deployer)
    nonce = other_chain.nonce(account.address)
    keys = ("--keystore-dir", str(folder / "keys"))
    result = permissioned(other_chain, config, manifest_path, *keys, password=PASSWORD)
    refused(result, "registerCity(gongju) needs the key of an account holding DIRECTORY_ADMIN_ROLE")
    assert other_chain.nonce(account.address) == nonce
    assert "gongju" not in json.loads(manifest_path.read_text())["cities"]


def test_chain_without_cancun_is_refused_before_anything_is_sent(
    operator, unused_port, chain_at, tmp_path
):
    # The contracts are compiled for Cancun: a node on an older fork (a Besu genesis without
    # cancunTime) would reject them half-way; the deployment probes the EVM first.
    account, folder, config = operator
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
