"""The auditor and a city's policy programs (정책발행): a youth allowance created, funded, paid to
two residents, spent in part at a shop and left to expire with the other. Knowing only the RPC
URL and the directory, the auditor's JSON lists the program with every figure the test did to the
won, the supply by class, and `check` finds the supply equation whole with payouts and expiry."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

import pytest
from conftest import CITY
from eth_utils import keccak
from platform_harness import deployed_chain, new_wallet
from test_audit_any_node import audit
from test_cashout import _send_as

DAY = 86_400
CODE = "YOUTH-2026H1"


def _travel(chain, seconds: int) -> None:
    chain.w3.provider.make_request("evm_increaseTime", [seconds])
    chain.w3.provider.make_request("evm_mine", [])


@pytest.fixture(scope="module")
def own_chain(tmp_path_factory):
    """A chain of this module's own: its clock moves past the program's expiry."""
    yield from deployed_chain(tmp_path_factory.mktemp("programs-chain"))


@pytest.fixture(scope="module")
def allowance(own_chain):
    chain = own_chain
    city = chain.deployment.city(CITY)
    programs, roles = city.programs, city.roles
    stamp = time.time_ns()
    first, second = (new_wallet(f"youth-{n}:{stamp}") for n in range(2))
    shop = new_wallet(f"youth-shop:{stamp}")
    for wallet in (first, second):
        chain.register_resident(CITY, wallet)
        chain.charge(CITY, wallet, 50_000)
    chain.register_merchant(CITY, shop)
    before = audit(chain, "report", "--city", CITY)["cities"][CITY]

    now = chain.w3.eth.get_block("latest")["timestamp"]
    code = CODE.encode().ljust(32, b"\0")
    terms = (code, 1_000_000, 100_000, 0, now + 10 * DAY, 2**64 - 1, [], [])
    chain.send(roles["program_manager"], programs.functions.createProgram(terms))
    number = programs.functions.programOfCode(code).call()
    chain.send(
        roles["program_funder"],
        programs.functions.fundProgram(number, 300_000, keccak(text="city budget")),
    )
    payouts = [(first.address, 100_000), (second.address, 50_000)]
    chain.send(roles["program_payer"], programs.functions.payOut(number, payouts))
    # Program money pays first: 30,000 of the first resident's allowance.
    _send_as(chain, first, city.token.functions.transfer(shop.address, 30_000))
    _travel(chain, 11 * DAY)
    chain.send(roles["registrar"], city.token.functions.sweep(second.address))
    return chain, before, number


def test_the_report_lists_the_program_with_every_figure(allowance):
    chain, before, number = allowance
    city = audit(chain, "report", "--city", CITY)["cities"][CITY]
    (program,) = [p for p in city["programs"] if p["program"] == number]
    assert program == {
        "program": number,
        "code": CODE,
        "budget": 1_000_000,
        "funded": 300_000,
        "paid_out": 150_000,
        "recipients": 2,
        "spent": 30_000,
        "refunded": 0,
        "expired": 50_000,
        "returned_to_city": 50_000,
        "outstanding": 70_000,
        "closed": False,
        "expiry": program["expiry"],
    }
    classes = city["classes"]
    assert classes["programs"] == 70_000
    assert classes["general"] + classes["programs"] == city["supply"]
    assert city["supply"] - before["supply"] == 150_000 - 50_000
    # The payment counts as a payment like any other.
    assert city["paid"] - before["paid"] == 30_000


def test_check_holds_with_payouts_and_expiry(allowance):
    chain, _, _ = allowance
    assert audit(chain, "check", "--city", CITY)["violations"] == []


def test_the_statutory_report_counts_policy_issue_by_program(allowance):
    chain, _, number = allowance
    city = chain.deployment.city(CITY)
    moment = datetime.fromtimestamp(chain.w3.eth.get_block("latest")["timestamp"], UTC)
    moment += timedelta(hours=9)  # KST
    period = f"{moment.year}H{1 if moment.month <= 6 else 2}"
    report = audit(chain, "report", "--period", period, "--city", CITY)["cities"][CITY]
    figures = report["figures"]
    assert figures["policy_issued"] == 150_000
    assert figures["expired"] == figures["returned_to_city"] == 50_000
    assert figures["outstanding_at_end"] == city.token.functions.totalSupply().call()
    (program,) = [p for p in report["programs"] if p["program"] == number]
    assert program == {
        "program": number,
        "code": CODE,
        "paid_out": 150_000,
        "recipients": 2,
        "spent": 30_000,
        "refunded": 0,
        "expired": 50_000,
        "returned_to_city": 50_000,
    }
