"""The backend's scheduled sweep (EXPIRY_SWEEP_INTERVAL): a program's money left unspent by a
resident who no longer pays goes back to the city once the program has expired, without anyone
asking; a resident holding nothing expired is left alone."""

from __future__ import annotations

import time

import pytest
from conftest import CITY, own_database_url
from platform_harness import BackendUnderTest, deployed_chain, new_wallet, serving

RELIEF = 40_000


@pytest.fixture(scope="module")
def own_chain(tmp_path_factory):
    yield from deployed_chain(tmp_path_factory.mktemp("sweep-chain"))


@pytest.fixture(scope="module")
def sweeping_backend(own_chain, tmp_path_factory):
    folder = tmp_path_factory.mktemp("sweep-backend")
    server = BackendUnderTest(own_chain, own_database_url(folder, "sweep"), folder / "backend.log")
    server.settings["EXPIRY_SWEEP_INTERVAL"] = "1"
    yield from serving(server)


def test_expired_program_money_goes_back_to_the_city_on_schedule(own_chain, sweeping_backend):
    chain = own_chain
    city = chain.deployment.city(CITY)
    roles, programs, token = city.roles, city.programs, city.token
    stamp = time.time_ns()
    idle, busy = (new_wallet(f"sweep-{n}:{stamp}") for n in range(2))
    for wallet in (idle, busy):
        chain.register_resident(CITY, wallet)
    chain.charge(CITY, busy, 10_000)
    now = chain.w3.eth.get_block("latest")["timestamp"]
    code = f"SWEEP-{stamp % 10**6}".encode().ljust(32, b"\0")
    terms = (code, 100_000, RELIEF, 0, now + 30, 2**64 - 1, [], [])
    chain.send(roles["program_manager"], programs.functions.createProgram(terms))
    number = programs.functions.programOfCode(code).call()
    chain.send(roles["program_funder"], programs.functions.fundProgram(number, 100_000, code))
    chain.send(roles["program_payer"], programs.functions.payOut(number, [(idle.address, RELIEF)]))
    supply = token.functions.totalSupply().call()
    busy_balance = token.functions.balanceOf(busy.address).call()

    chain.w3.provider.make_request("evm_increaseTime", [60])
    chain.w3.provider.make_request("evm_mine", [])
    deadline = time.monotonic() + 30
    while token.functions.balanceOf(idle.address).call() and time.monotonic() < deadline:
        time.sleep(0.5)
    assert token.functions.balanceOf(idle.address).call() == 0
    assert token.functions.totalSupply().call() == supply - RELIEF
    assert programs.functions.program(number).call()[12] == RELIEF  # Program.expired
    assert token.functions.balanceOf(busy.address).call() == busy_balance
