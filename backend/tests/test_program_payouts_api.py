"""Program payouts over HTTP: an operator posts a recipient list as CSV, follows the payout to its
end and reads each recipient's result; the same list again pays nobody twice; a bad list, a wrong
media type, an unknown or closed program and a key without the operator role are refused before
anything is recorded; the auditor's reconcile matches each recipient's result with the chain."""

from __future__ import annotations

import csv
import io
import time

import pytest
from citypay.db.session import Database
from citypay.programs.models import PayoutRecipient
from conftest import CITY, bearer, poll_status
from eth_utils import keccak
from platform_harness import new_wallet
from sqlalchemy import select, update
from test_audit_any_node import audit
from test_program_payout import _send_all

RECIPIENTS = 30
AMOUNT = 20_000


def _path(code: str) -> str:
    return f"/v1/cities/{CITY}/programs/{code}/payouts"


def _csv(rows) -> str:
    return "wallet,amount\n" + "".join(f"{w},{a}\n" for w, a in rows)


@pytest.fixture(scope="module")
def program(chain, city):
    roles, programs = city.roles, city.programs
    stamp = time.time_ns()
    code = f"API-{stamp % 10**8}"
    raw = code.encode().ljust(32, b"\0")
    now = chain.w3.eth.get_block("latest")["timestamp"]
    terms = (raw, 10_000_000, 50_000, 0, now + 60 * 86_400, 2**64 - 1, [], [])
    chain.send(roles["program_manager"], programs.functions.createProgram(terms))
    number = programs.functions.programOfCode(raw).call()
    chain.send(roles["program_funder"], programs.functions.fundProgram(number, 10_000_000, raw))
    wallets = [new_wallet(f"api-payout-{n}:{stamp}").address for n in range(RECIPIENTS)]
    register = city.registry.functions.registerResident
    _send_all(
        chain, roles["registrar"], [register(w, keccak(text=f"id:{w}"), 41570) for w in wallets]
    )
    return code, number, wallets


def _post(api, keys, code, text, content_type="text/csv", key="operator"):
    return api.post(
        _path(code),
        content=text.encode(),
        headers=bearer(keys[key]) | {"Content-Type": content_type},
    )


def _follow(api, keys, code, payout):
    return poll_status(
        api,
        f"{_path(code)}/{payout['id']}",
        ("done", "stopped"),
        what=f"payout {payout['id']}",
        headers=bearer(keys["operator"]),
        timeout=60,
    )


def test_a_posted_list_is_paid_and_each_result_read(api, keys, city, program):
    code, number, wallets = program
    stranger = new_wallet(f"api-stranger:{time.time_ns()}").address
    accepted = _post(api, keys, code, _csv([(w, AMOUNT) for w in wallets] + [(stranger, 1)]))
    assert accepted.status_code == 202, accepted.text
    assert accepted.json()["total"] == RECIPIENTS + 1
    done = _follow(api, keys, code, accepted.json())
    assert (done["status"], done["settled"], done["paid"], done["refused"]) == (
        "done", RECIPIENTS + 1, RECIPIENTS, 1,
    )  # fmt: skip
    for wallet in wallets:
        assert city.programs.functions.holdingOf(wallet, number).call() == AMOUNT
    results = api.get(f"{_path(code)}/{done['id']}/results", headers=bearer(keys["auditor"]))
    assert results.status_code == 200 and results.headers["content-type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(results.text.removeprefix("\ufeff"))))
    assert [r["wallet"] for r in rows] == [*wallets, stranger]
    assert {r["status"] for r in rows[:-1]} == {"paid"}
    assert rows[-1]["status"] == "refused" and "CityToken" in rows[-1]["reason"]

    again = _post(api, keys, code, _csv([(w, AMOUNT) for w in wallets]))
    repeated = _follow(api, keys, code, again.json())
    assert (repeated["paid"], repeated["alreadyPaid"]) == (0, RECIPIENTS)
    for wallet in wallets:
        assert city.programs.functions.holdingOf(wallet, number).call() == AMOUNT


def test_reconcile_matches_each_recipient_with_the_chain(chain, backend, api, keys, program):
    code, _, wallets = program

    def differences() -> list[dict]:
        found = audit(
            chain, "reconcile", "--database-url", backend.database_url, "--city", CITY, expect=None
        )  # fmt: skip
        return [d for d in found["differences"] if d["record"] == "program_payout"]

    accepted = _post(api, keys, code, _csv([(w, AMOUNT) for w in wallets]))
    _follow(api, keys, code, accepted.json())
    assert [d for d in differences() if d["key"].startswith(code)] == []
    # One recipient's amount altered by a won in the database: named, with both values.
    db = Database(backend.database_url)
    try:
        with db.session() as session:
            row = session.scalars(
                select(PayoutRecipient).where(
                    PayoutRecipient.wallet == wallets[0], PayoutRecipient.status == "paid"
                )
            ).one()
            same = update(PayoutRecipient).where(PayoutRecipient.id == row.id)
            session.execute(same.values(amount=AMOUNT + 1))
        try:
            altered = [d for d in differences() if d["key"].startswith(code)]
        finally:
            with db.session() as session:
                session.execute(same.values(amount=AMOUNT))
    finally:
        db.engine.dispose()
    assert altered == [
        {
            "city": CITY,
            "record": "program_payout",
            "key": f"{code}/{wallets[0]}",
            "account": wallets[0],
            "field": "amount",
            "database": AMOUNT + 1,
            "chain": AMOUNT,
        }
    ]


@pytest.mark.parametrize(
    ("text", "status", "words"),
    [
        ("wallet,amount\n0x12,5\n", 422, ["line 2", "'0x12'"]),
        ("wallet,amount\n0x8626f6940E2eb28930eFb4CeF49B2d1F2C9C1199,50001\n", 422, ["50,000"]),
        ("address,value\n", 422, ["header"]),
        ("wallet,amount\n", 422, ["no recipient"]),
    ],
)
def test_a_bad_list_is_refused_naming_its_line(api, keys, program, text, status, words):
    code, _, _ = program
    response = _post(api, keys, code, text)
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert error["field"] == "body"
    for word in words:
        assert word in error["message"], error


def test_refusals_before_anything_is_recorded(api, keys, program):
    code, _, wallets = program
    body = _csv([(wallets[0], 1)])
    assert _post(api, keys, code, body, content_type="application/json").status_code == 415
    assert _post(api, keys, "NO-SUCH-PROGRAM", body).status_code == 404
    assert _post(api, keys, code, body, key="bank").status_code == 403
    assert _post(api, keys, code, body, key="gongju-operator").status_code == 403
    unknown = api.get(f"{_path(code)}/999999", headers=bearer(keys["operator"]))
    assert unknown.status_code == 404
