"""Deploying to the project's own chain: the first run, a second run that sends nothing, a city
added, a policy changed, a restart from the state file, and the city view."""

import json
from types import SimpleNamespace

import pytest
from citypay.reserve.statement import custody_account_hash
from eth_account import Account
from eth_utils import keccak

from scripts.city_suite import SUITE_ROLES
from scripts.deploy import deploy_platform
from scripts.deployment.config import load_config
from scripts.deployment.plan import ARTIFACT_OF, role_id

CITY_CONTRACTS = {kind: name for kind, name in ARTIFACT_OF.items() if kind != "directory"}


def deploy(chain, config) -> str:
    result = chain.deploy("--config", str(config))
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout


def suite(chain, manifest: dict, code: str) -> dict:
    contracts = manifest["cities"][code]["contracts"]
    return {
        kind: chain.contract(contracts[kind]["address"], name)
        for kind, name in CITY_CONTRACTS.items()
    }


@pytest.fixture(scope="module")
def deployed(chain, city_config, tmp_path_factory):
    """Gimpo and Gongju deployed by a first run."""
    folder = tmp_path_factory.mktemp("config")
    config = city_config(folder / "two-cities.yaml", ("gimpo", "gongju"))
    deploy(chain, config)
    return SimpleNamespace(folder=folder, config=config, first=chain.manifest())


@pytest.fixture(scope="module")
def three_cities(chain, deployed, city_config):
    """Ulsan added to the configuration and deployed."""
    since = chain.w3.eth.block_number
    config = city_config(deployed.folder / "three-cities.yaml", ("gimpo", "gongju", "ulsan"))
    before = chain.manifest()
    deploy(chain, config)
    deployed.config = config
    return SimpleNamespace(since=since, before=before)


def test_first_run_deploys_and_lists_each_city_with_matching_code(chain, deployed):
    manifest = deployed.first
    assert set(manifest["cities"]) == {"gimpo", "gongju"}
    directory = chain.contract(manifest["directory"]["address"], "CityDirectory")
    listed = {entry[0]: list(entry[2:5]) for entry in directory.functions.cities().call()}
    for code, city in manifest["cities"].items():
        contracts = city["contracts"]
        assert listed[code] == [contracts[k]["address"] for k in ("token", "registry", "treasury")]
    for record in [
        manifest["directory"],
        *(r for c in manifest["cities"].values() for r in c["contracts"].values()),
    ]:
        code = chain.w3.eth.get_code(record["address"])
        assert "0x" + keccak(code).hex() == record["code_hash"]
        assert record["block"] >= 1
    assert (chain.manifest_path.parent / manifest["abi"]["CityToken"]).exists()


def test_first_run_grants_each_role_as_configured_and_the_deployer_keeps_none(chain, deployed):
    manifest, config = deployed.first, load_config(deployed.config)
    deployer = config.address(config.deployer)
    directory = chain.contract(manifest["directory"]["address"], "CityDirectory")
    for role in ("DEFAULT_ADMIN_ROLE", "DIRECTORY_ADMIN_ROLE"):
        assert directory.functions.hasRole(role_id(role), config.address("platform-admin")).call()
        assert not directory.functions.hasRole(role_id(role), deployer).call()
    for city in config.cities:
        contracts = suite(chain, manifest, city.code)
        for duty, grants in SUITE_ROLES.items():
            for kind, role in grants:
                for holder in (config.address(name) for name in city.roles.holders(duty)):
                    assert contracts[kind].functions.hasRole(role_id(role), holder).call(), duty
                assert not contracts[kind].functions.hasRole(role_id(role), deployer).call()
        relayers = [config.address(name) for name in city.roles.holders("relayer")]
        assert manifest["cities"][city.code]["roles"]["relayers"] == relayers
        (issuer,) = city.roles.issuers
        bank = config.address(issuer.account)
        treasury = contracts["treasury"].functions
        assert treasury.hasRole(role_id("ISSUER_ROLE"), bank).call()
        assert treasury.issuerAllowance(bank).call() == issuer.allowance


def test_first_run_applies_each_citys_policy(chain, deployed):
    gongju = suite(chain, deployed.first, "gongju")
    assert list(gongju["treasury"].functions.policy().call()) == [
        50_000_000_000,
        700_000,
        2_000_000,
        1_000,
        70_000,
    ]
    assert gongju["registry"].functions.merchantRevenueCap().call() == 3_000_000_000
    assert gongju["registry"].functions.isCategoryExcluded(4712).call()
    assert gongju["token"].functions.symbol().call() == "GONGJU"
    # Gifts: linked once to the city's programs, under the default monthly caps.
    assert gongju["programs"].functions.gifts().call() == gongju["gifts"].address
    assert gongju["gifts"].functions.monthlySendCap().call() == 500_000
    assert gongju["gifts"].functions.monthlyReceiveCap().call() == 1_500_000


def test_second_run_sends_no_transaction(chain, deployed):
    manifest = chain.manifest()
    nonces = {address: chain.nonce(address) for address in manifest["accounts"].values()}
    since = chain.w3.eth.block_number
    recorded = chain.manifest_path.read_bytes()
    output = deploy(chain, deployed.config)
    assert "nothing to send" in output
    assert {address: chain.nonce(address) for address in nonces} == nonces
    assert chain.transactions_since(since) == []
    assert chain.manifest_path.read_bytes() == recorded


def test_python_entry_point_returns_the_manifest(chain, deployed):
    lines = []
    manifest = deploy_platform(
        deployed.config, rpc_url=chain.rpc_url, manifest_path=chain.manifest_path, log=lines.append
    )
    assert manifest == chain.manifest()
    assert any("nothing to send" in line for line in lines)


def test_adding_a_city_deploys_only_that_city(chain, three_cities):
    before, after = three_cities.before, chain.manifest()
    assert after["directory"] == before["directory"]
    for code in ("gimpo", "gongju"):
        assert after["cities"][code]["contracts"] == before["cities"][code]["contracts"]
    ulsan = {record["address"] for record in after["cities"]["ulsan"]["contracts"].values()}
    directory = chain.contract(after["directory"]["address"], "CityDirectory")
    directory_calls = []
    for tx in chain.transactions_since(three_cities.since):
        if tx["to"] is None:
            assert chain.w3.eth.get_transaction_receipt(tx["hash"])["contractAddress"] in ulsan
        elif tx["to"] == directory.address:
            directory_calls.append(directory.decode_function_input(tx["input"]))
        else:
            assert tx["to"] in ulsan
    assert [(call.fn_name, args["code"]) for call, args in directory_calls] == [
        ("registerCity", "ulsan"),
        ("setCustody", "ulsan"),  # by Ulsan's admin, once listed
    ]


def test_each_citys_custody_account_and_bank_key_are_in_the_directory(
    chain, three_cities, shipped_accounts
):
    manifest = chain.manifest()
    directory = chain.contract(manifest["directory"]["address"], "CityDirectory")
    for code in ("gimpo", "gongju", "ulsan"):
        account, signer, last = directory.functions.custody(code).call()
        assert (account, signer, last) == (
            custody_account_hash(f"SBX-CUSTODY-{code.upper()}"),
            shipped_accounts["sandbox-bank-statements"],
            0,
        )
        assert manifest["cities"][code]["custody"] == {
            "account": f"SBX-CUSTODY-{code.upper()}",
            "signer": shipped_accounts["sandbox-bank-statements"],
        }


def test_a_changed_bank_key_is_one_set_custody_call_by_the_city_admin(
    chain, deployed, three_cities, city_config, shipped_accounts
):
    def new_bank_key(raw):
        raw["cities"][1]["custody"]["signer"] = "gongju-finance"

    config = city_config(
        deployed.folder / "new-bank.yaml", ("gimpo", "gongju", "ulsan"), new_bank_key
    )
    since = chain.w3.eth.block_number
    deploy(chain, config)
    deployed.config = config
    sent = chain.transactions_since(since)
    directory = chain.contract(chain.manifest()["directory"]["address"], "CityDirectory")
    assert [(tx["from"], tx["to"]) for tx in sent] == [
        (shipped_accounts["gongju-admin"], directory.address)
    ]
    assert directory.functions.custody("gongju").call()[1] == shipped_accounts["gongju-finance"]
    # Back to the shipped key, for the tests that follow on this chain.
    deploy(chain, city_config(deployed.folder / "bank-back.yaml", ("gimpo", "gongju", "ulsan")))
    assert (
        directory.functions.custody("gongju").call()[1]
        == (shipped_accounts["sandbox-bank-statements"])
    )


def test_changed_policy_is_applied_by_setters_not_by_a_redeploy(
    chain, deployed, three_cities, city_config, shipped_accounts
):
    def raise_gimpo_limits(raw):
        policy = raw["cities"][0]["policy"]
        policy.update(
            incentive_percent=8, monthly_purchase_limit=600_000, gift_monthly_receive_cap=1_200_000
        )
        policy["excluded_categories"].append(5813)

    config = city_config(
        deployed.folder / "changed.yaml", ("gimpo", "gongju", "ulsan"), raise_gimpo_limits
    )
    before = chain.manifest()
    since = chain.w3.eth.block_number
    deploy(chain, config)
    deployed.config = config
    after = chain.manifest()
    assert {c: r["contracts"] for c, r in after["cities"].items()} == {
        c: r["contracts"] for c, r in before["cities"].items()
    }
    gimpo = suite(chain, after, "gimpo")
    assert list(gimpo["treasury"].functions.policy().call()) == [
        29_200_000_000,
        600_000,
        2_000_000,
        800,
        50_000,
    ]
    assert gimpo["registry"].functions.isCategoryExcluded(5813).call()
    assert gimpo["gifts"].functions.monthlyReceiveCap().call() == 1_200_000
    calls = set()
    for tx in chain.transactions_since(since):
        assert tx["from"] == shipped_accounts["gimpo-admin"]  # the deployer renounced its roles
        kind = next(k for k, c in gimpo.items() if c.address == tx["to"])
        calls.add((kind, gimpo[kind].decode_function_input(tx["input"])[0].fn_name))
    assert calls == {
        ("treasury", "setMonthlyPurchaseLimit"),
        ("treasury", "setIncentiveBps"),
        ("registry", "setCategoryExcluded"),
        ("gifts", "setMonthlyCaps"),
    }


def test_ulsan_pays_its_incentive_as_cashback_at_its_configured_rates(chain, three_cities):
    ulsan = suite(chain, chain.manifest(), "ulsan")
    treasury, cashback = ulsan["treasury"], ulsan["cashback"]
    assert treasury.functions.cashback().call() == cashback.address
    assert treasury.functions.incentiveMode().call() == 1  # Cashback
    assert treasury.functions.policy().call()[3] == 0  # no discount at charge
    assert [tuple(b) for b in cashback.functions.bands().call()] == [
        (300_000_000, 1_000),
        (3_000_000_000, 700),
    ]
    assert [tuple(r) for r in cashback.functions.regionRates().call()] == [(31170, 1_200)]
    assert cashback.functions.budget().call() == 6_000_000_000


def test_a_city_goes_to_cashback_and_back_by_setters(chain, deployed, three_cities, city_config):
    """Gongju moves its incentive from the charge to payments, then back: each run sends the
    setters in an order the treasury accepts (no rate in cashback mode) and redeploys nothing."""

    def to_cashback(raw):
        policy = raw["cities"][1]["policy"]
        policy.update(incentive_percent=0, incentive_mode="cashback")
        policy["cashback"] = {"bands": [{"revenue_up_to": 3_000_000_000, "percent": 10}]}

    def back_to_discount(raw):
        raw["cities"][1]["policy"]["incentive_percent"] = 6.5

    before = chain.manifest()
    for name, change, mode, bps, bands in (
        ("cashback.yaml", to_cashback, 1, 0, [(3_000_000_000, 1_000)]),
        ("discount.yaml", back_to_discount, 0, 650, []),
    ):
        config = city_config(deployed.folder / name, ("gimpo", "gongju", "ulsan"), change)
        deploy(chain, config)
        deployed.config = config
        gongju = suite(chain, chain.manifest(), "gongju")
        assert gongju["treasury"].functions.incentiveMode().call() == mode
        assert gongju["treasury"].functions.policy().call()[3] == bps
        assert [tuple(b) for b in gongju["cashback"].functions.bands().call()] == bands
    after = chain.manifest()
    assert after["cities"]["gongju"]["contracts"] == before["cities"]["gongju"]["contracts"]


def test_restart_from_the_state_file_keeps_every_city_and_balance(
    chain, deployed, three_cities, dev_keys
):
    manifest = chain.manifest()
    accounts = manifest["accounts"]
    gimpo = suite(chain, manifest, "gimpo")
    resident = Account.from_key(keccak(text="deployment-test-resident"))
    registrar = dev_keys.signer(accounts["registrar"], "registrar")
    bank = dev_keys.signer(accounts["gimpo-bank"], "gimpo-bank")
    chain.transact(
        registrar,
        gimpo["registry"].functions.registerResident(
            resident.address, keccak(text="identity:resident"), 41570
        ),
    )
    chain.transact(
        bank,
        gimpo["treasury"].functions.issue(
            resident.address, 100_000, keccak(text="deposit:restart")
        ),
    )
    balance = gimpo["token"].functions.balanceOf(resident.address).call()
    assert balance > 100_000  # the incentive on top
    block = chain.w3.eth.block_number

    stopped = chain.command("stop")
    assert stopped.returncode == 0, stopped.stderr
    assert json.loads(chain.command("status", "--json").stdout)["running"] is False
    restarted = chain.command("start")
    assert restarted.returncode == 0, restarted.stderr

    assert chain.w3.eth.block_number >= block
    assert gimpo["token"].functions.balanceOf(resident.address).call() == balance
    assert gimpo["token"].functions.totalSupply().call() == balance
    assert gimpo["registry"].functions.residentCount().call() == 1
    directory = chain.contract(manifest["directory"]["address"], "CityDirectory")
    assert [entry[0] for entry in directory.functions.cities().call()] == [
        "gimpo",
        "gongju",
        "ulsan",
    ]
    since = chain.w3.eth.block_number
    output = deploy(chain, deployed.config)  # checks every code hash against the manifest
    assert "nothing to send" in output
    assert chain.transactions_since(since) == []


def test_city_view_shows_contracts_roles_policy_and_circulation(
    chain, three_cities, shipped_accounts
):
    shown = chain.city("ulsan", "--json")
    assert shown.returncode == 0, shown.stderr
    view = json.loads(shown.stdout)
    assert view["listed_in_directory"] is True
    assert all(c["code_matches_manifest"] for c in view["contracts"].values())
    roles = {(r["contract"], r["role"]): [h["name"] for h in r["holders"]] for r in view["roles"]}
    assert roles[("token", "PAUSER_ROLE")] == ["ulsan-admin"]
    assert roles[("treasury", "ISSUER_ROLE")] == ["ulsan-bank"]
    assert view["issuers"][0]["allowance"] == 20_000_000_000
    assert view["policy"]["annual_issuance_cap"] == 300_000_000_000
    assert view["policy"]["excluded_categories"] == [4711, 4712, 5621, 9124]
    assert (view["total_supply"], view["issued_this_fiscal_year"]) == (0, 0)
    assert (view["residents"], view["merchants"]) == (0, 0)
    text = chain.city("ulsan").stdout
    assert "Ulsan Pay (울산페이)" in text
    assert "issued in fiscal" in text and "of 300,000,000,000 KRW" in text
