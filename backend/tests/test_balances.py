"""A resident's balance by class over HTTP (GET .../accounts/{account}/balance) and in the wallet's
`balance` command: general money by expiry and a program's money, adding up to balanceOf, read at
one block; a bad address is a 422 naming it."""

from __future__ import annotations

import json
import subprocess
import sys
import time

from conftest import CITY

CODE = "BALANCE-TEST"


def test_the_balance_is_shown_by_class_and_adds_up(chain, api, city, resident, tmp_path):
    roles, programs = city.roles, city.programs
    now = chain.w3.eth.get_block("latest")["timestamp"]
    code = f"{CODE}-{time.time_ns() % 10**6}".encode().ljust(32, b"\0")
    terms = (code, 100_000, 40_000, 0, now + 30 * 86_400, 2**64 - 1, [], [])
    chain.send(roles["program_manager"], programs.functions.createProgram(terms))
    number = programs.functions.programOfCode(code).call()
    chain.send(roles["program_funder"], programs.functions.fundProgram(number, 100_000, code))
    chain.send(
        roles["program_payer"], programs.functions.payOut(number, [(resident.address, 40_000)])
    )

    shown = api.get(f"/v1/cities/{CITY}/accounts/{resident.address}/balance")
    assert shown.status_code == 200, shown.text
    body = shown.json()
    on_chain = city.token.functions.balanceOf(resident.address).call(block_identifier=body["block"])
    assert body["balance"] == on_chain
    assert body["programs"] == [
        {
            "program": number,
            "code": code.rstrip(b"\0").decode(),
            "amount": 40_000,
            "expiresAt": terms[4],
        }
    ]
    (lot,) = body["general"]
    assert lot["amount"] == on_chain - 40_000 and lot["expiresAt"] > now + 5 * 365 * 86_400
    assert sum(g["amount"] for g in body["general"]) + 40_000 + body["expired"] == on_chain

    key_file = tmp_path / "resident.key"
    key_file.write_text(resident.key.hex())
    command = [sys.executable, "-m", "citypay.wallet", "balance", "--key-file", str(key_file)]
    done = subprocess.run(
        [*command, "--api", str(api.base_url), "--city", CITY],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["programs"][0]["amount"] == 40_000


def test_the_programs_are_listed_with_their_figures(chain, api, city):
    roles, programs = city.roles, city.programs
    now = chain.w3.eth.get_block("latest")["timestamp"]
    code = f"LISTED-{time.time_ns() % 10**6}".encode().ljust(32, b"\0")
    terms = (code, 500_000, 50_000, 0, now + 30 * 86_400, 2**64 - 1, [], [])
    chain.send(roles["program_manager"], programs.functions.createProgram(terms))
    number = programs.functions.programOfCode(code).call()
    chain.send(roles["program_funder"], programs.functions.fundProgram(number, 200_000, code))
    listed = api.get(f"/v1/cities/{CITY}/programs")
    assert listed.status_code == 200, listed.text
    (program,) = [p for p in listed.json()["programs"] if p["program"] == number]
    assert program | {"spendFrom": 0} == {
        "program": number,
        "code": code.rstrip(b"\0").decode(),
        "budget": 500_000,
        "funded": 200_000,
        "paidOut": 0,
        "spent": 0,
        "refunded": 0,
        "expired": 0,
        "outstanding": 0,
        "maxPerRecipient": 50_000,
        "spendFrom": 0,
        "expiresAt": terms[4],
        "closed": False,
    }


def test_a_bad_account_is_a_422_naming_it(api):
    response = api.get(f"/v1/cities/{CITY}/accounts/0x123/balance")
    assert response.status_code == 422
    error = response.json()["error"]
    assert error["field"] == "path.account" and error["value"] == "0x123"


def test_an_unknown_city_is_a_404(api):
    response = api.get("/v1/cities/atlantis/accounts/" + "0x" + "11" * 20 + "/balance")
    assert response.status_code == 404
