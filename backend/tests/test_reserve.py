"""Proof of reserve end to end: the sandbox bank keeps Gimpo's custody account and signs its
statements, the backend records one on chain when an operator asks, and the books (the backend's
and the auditor's, each from the chain alone) set it against what the city owed at the
statement's time. A chain of this module's own: a shortfall staged here must not reach the
auditor's checks of the shared chain."""

from __future__ import annotations

import time

import httpx
import pytest
from citypay.chain.gateway import ChainRefused
from citypay.chain.keystore import development_accounts
from citypay.reserve.statement import Statement, custody_account_hash
from conftest import bearer, own_database_url
from eth_account import Account
from eth_utils import keccak
from platform_harness import (
    BackendUnderTest,
    BankUnderTest,
    deployed_chain,
    new_wallet,
    serving,
)
from test_audit_any_node import audit

CITY = "gimpo"
CUSTODY = "SBX-CUSTODY-GIMPO"
GONGJU_CUSTODY = "SBX-CUSTODY-GONGJU"
STATEMENTS = f"/v1/cities/{CITY}/reserve-statements"


@pytest.fixture(scope="module")
def chain(tmp_path_factory):
    yield from deployed_chain(tmp_path_factory.mktemp("reserve-chain"))


@pytest.fixture(scope="module")
def bank(tmp_path_factory):
    yield from serving(BankUnderTest(tmp_path_factory.mktemp("reserve-bank")))


@pytest.fixture(scope="module")
def backend(chain, bank, tmp_path_factory):
    folder = tmp_path_factory.mktemp("reserve-backend")
    server = BackendUnderTest(chain, own_database_url(folder, "reserve"), folder / "backend.log")
    server.settings["BANK_URL"] = bank.url
    yield from serving(server)


@pytest.fixture(scope="module")
def api(backend):
    with httpx.Client(base_url=backend.url, timeout=30) as client:
        yield client


@pytest.fixture(scope="module")
def operator(backend):
    return bearer(backend.api_key("reserve-operator", "operator", CITY))


def credit(bank, account: str, amount: int, reference: str | None = None) -> None:
    """Money into the custody account: a resident's deposit or the city's incentive funding."""
    body = {"reference": reference or f"credit-{time.time_ns()}", "amount": amount}
    httpx.post(f"{bank.url}/custody/{account}/credits", json=body, timeout=10).raise_for_status()


def supply(chain) -> int:
    return chain.deployment.city(CITY).token.functions.totalSupply().call()


def statements(api) -> list[dict]:
    found = api.get(STATEMENTS)
    assert found.status_code == 200, found.text
    return found.json()["statements"]


def listened(api, count: int, timeout: float = 20) -> list[dict]:
    """The backend's recorded statements once its listener has read `count` of them."""
    deadline = time.monotonic() + timeout
    while len(found := statements(api)) < count and time.monotonic() < deadline:
        time.sleep(0.2)
    assert len(found) == count, found
    return found


@pytest.fixture(scope="module")
def funded(chain, bank):
    """A resident charged 100,000 KRW (110,000 tokens with the incentive); the bank holds the
    deposit and the city's 10,000 KRW of incentive funding, and 5,000 KRW more."""
    resident = new_wallet(f"reserve-resident:{time.time_ns()}")
    chain.register_resident(CITY, resident)
    chain.charge(CITY, resident, 100_000)
    credit(bank, CUSTODY, 100_000, "resident-deposit")
    credit(bank, CUSTODY, 15_000, "city-incentive-funding")
    assert supply(chain) == 110_000
    return resident


def test_a_statement_is_recorded_with_the_supply_beside_it(api, operator, funded, chain):
    recorded = api.post(STATEMENTS, headers=operator)
    assert recorded.status_code == 201, recorded.text
    body = recorded.json()
    assert (body["account"], body["balance"], body["outstanding"]) == (CUSTODY, 115_000, 110_000)
    assert body["signer"] == list(development_accounts())[18]
    [statement] = listened(api, 1)
    assert statement["balance"] == 115_000
    assert (statement["owed"], statement["margin"]) == (110_000, 5_000)
    assert statement["verified"] is True
    assert statement["account"] == "0x" + custody_account_hash(CUSTODY).hex()
    assert statement["tx_hash"] == body["transactionHash"]


def test_the_auditor_finds_the_statement_and_no_violation(chain, api, operator, funded):
    listened(api, 1)
    report = audit(chain, "report", "--city", CITY)["cities"][CITY]
    [statement] = report["reserve_statements"]
    assert (statement["balance"], statement["owed"], statement["margin"]) == (
        115_000,
        110_000,
        5_000,
    )
    assert audit(chain, "check", "--city", CITY)["violations"] == []


def test_the_dashboard_shows_the_latest_margin(api, operator, funded):
    listened(api, 1)
    kpis = api.get(f"/admin/api/cities/{CITY}/summary", headers=operator).json()["kpis"]
    assert (kpis["reserveBalance"], kpis["reserveOwed"], kpis["reserveMargin"]) == (
        115_000,
        110_000,
        5_000,
    )


def test_a_forged_statement_is_not_recorded(api, operator, funded, bank):
    """The bank answers with a statement signed by a key the city never named: refused before
    anything is sent, and the chain keeps what it had."""
    before = statements(api)
    bank.stop()
    bank.settings["SANDBOX_BANK_STATEMENT_KEY"] = "0x" + keccak(text="not the bank").hex()
    bank.start()
    try:
        refused = api.post(STATEMENTS, headers=operator)
    finally:
        bank.stop()
        del bank.settings["SANDBOX_BANK_STATEMENT_KEY"]
        bank.start()
    assert refused.status_code == 502, refused.text
    assert refused.json()["error"]["code"] == "statement_not_the_banks"
    time.sleep(1)
    assert statements(api) == before


def test_the_directory_refuses_another_citys_or_a_forged_statement(chain, bank):
    """Gongju's statement from the same bank, sent for Gimpo, and one signed by another key."""
    directory = chain.deployment.directory
    gongju = httpx.get(f"{bank.url}/custody/{GONGJU_CUSTODY}/statement", timeout=10).json()
    anyone = Account.from_key(keccak(text="reserve-test:anyone")).address
    signature = bytes.fromhex(gongju["signature"][2:])
    as_gimpo = (CITY, gongju["balance"], gongju["asOf"], signature)
    with pytest.raises(ChainRefused) as refused:
        directory.simulate(anyone, "attestReserve", *as_gimpo)
    assert refused.value.revert.name == "CityDirectoryInvalidStatement"
    as_of = chain.w3.eth.get_block("latest")["timestamp"]
    forged = Statement(custody_account_hash(CUSTODY), 10**12, as_of).sign(
        "0x" + keccak(text="a forger").hex()
    )
    with pytest.raises(ChainRefused) as refused:
        directory.simulate(anyone, "attestReserve", CITY, 10**12, as_of, forged)
    assert refused.value.revert.name == "CityDirectoryInvalidStatement"
    # Where it belongs, it is taken.
    directory.simulate(anyone, "attestReserve", "gongju", *as_gimpo[1:])


def test_a_shortfall_fails_the_auditors_check(chain, api, bank, operator, funded):
    """20,000 KRW leave the custody account with no tokens burned for them."""
    count = len(listened(api, len(statements(api))))
    order = {
        "order_id": f"unbacked-{time.time_ns()}",
        "account": "somebody-elses-account",
        "amount": 20_000,
        "debit_account": CUSTODY,
    }
    httpx.post(f"{bank.url}/transfers", json=order, timeout=10).raise_for_status()
    recorded = api.post(STATEMENTS, headers=operator)
    assert recorded.status_code == 201, recorded.text
    assert recorded.json()["balance"] == 95_000
    latest = listened(api, count + 1)[-1]
    assert (latest["owed"], latest["margin"]) == (110_000, -15_000)
    found = audit(chain, "check", "--city", CITY, expect=1)["violations"]
    shortfalls = [v for v in found if v["code"] == "reserve_shortfall"]
    assert [v["values"]["margin"] for v in shortfalls] == [-15_000], found
    assert "short by 15,000 won" in shortfalls[0]["message"]
    assert {v["code"] for v in found} == {"reserve_shortfall"}


def test_recording_needs_an_operator_key_of_the_city(api, backend, funded):
    assert api.post(STATEMENTS).status_code == 401
    gongju = bearer(backend.api_key("reserve-gongju-operator", "operator", "gongju"))
    refused = api.post(STATEMENTS, headers=gongju)
    assert refused.status_code == 403, refused.text


def test_the_sandbox_bank_gives_no_statement_of_an_overdrawn_account(bank):
    """Paid out more than came in (a test's cash-outs with no deposits booked): no statement of a
    negative balance, which no bank account has and no uint256 can carry."""
    order = {
        "order_id": f"overdraw-{time.time_ns()}",
        "account": "an-account",
        "amount": 1,
        "debit_account": "SBX-CUSTODY-EMPTY",
    }
    httpx.post(f"{bank.url}/transfers", json=order, timeout=10).raise_for_status()
    answer = httpx.get(f"{bank.url}/custody/SBX-CUSTODY-EMPTY/statement", timeout=10)
    assert answer.status_code == 409
    assert "overdrawn by 1 KRW" in answer.json()["error"]
