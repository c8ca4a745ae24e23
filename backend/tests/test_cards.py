"""Card payments for residents without a smartphone, over HTTP on the real chain: the backend
keeps the card's wallet (sealed), checks the PIN, signs for the wallet and relays the payment."""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from types import SimpleNamespace

import pytest
from citypay.cards.numbers import luhn_check_digit
from citypay.cards.vault import key_encryption_key, unseal
from citypay.core.config import Settings
from conftest import CITY, bearer, wait_for_status
from eth_account import Account
from sqlalchemy import create_engine, text

PIN = "4821"
GIMPO_REGION = 41570


def issue(api, keys, pin: str = PIN, identity: bytes | None = None):
    identity = identity or os.urandom(32)
    return api.post(
        f"/v1/cities/{CITY}/cards",
        json={"pin": pin, "identityHash": "0x" + identity.hex(), "region": GIMPO_REGION},
        headers=bearer(keys["operator"]),
    )


@pytest.fixture
def card(api, keys):
    response = issue(api, keys)
    assert response.status_code == 201, response.text
    return response.json()


@pytest.fixture
def charged_card(card, chain):
    chain.charge(CITY, SimpleNamespace(address=card["wallet"]), 50_000)
    return card


def pay(api, keys, card_number: str, merchant, amount: int, pin: str = PIN, **extra):
    return api.post(
        f"/v1/cities/{CITY}/card-payments",
        json={"card": card_number, "pin": pin, "merchant": merchant.address, "amount": amount}
        | extra,
        headers=bearer(keys["pos"]),
    )


def status(api, keys, number: str) -> dict:
    response = api.get(f"/v1/cities/{CITY}/cards/{number}", headers=bearer(keys["operator"]))
    assert response.status_code == 200, response.text
    return response.json()


def error(response, code: int) -> dict:
    assert response.status_code == code, response.text
    return response.json()["error"]


def test_an_issued_card_is_a_resident_wallet_ready_to_be_charged(api, keys, card, city, chain):
    number = card["number"]
    assert len(number) == 16 and luhn_check_digit(number[:-1]) == number[-1]
    assert (card["status"], card["attemptsLeft"], card["balance"]) == ("active", 5, 0)
    assert card["registrationTx"].startswith("0x")
    assert city.token.functions.accountKind(card["wallet"]).call() == 1  # resident
    chain.charge(CITY, SimpleNamespace(address=card["wallet"]), 10_000)
    assert status(api, keys, number)["balance"] == 11_000  # with the 10% incentive


def test_a_card_payment_is_signed_relayed_and_included(api, keys, charged_card, city, merchant):
    before = city.token.functions.balanceOf(merchant.address).call()
    response = pay(api, keys, charged_card["number"], merchant, 12_000)
    assert response.status_code == 202, response.text
    accepted = response.json()
    assert (accepted["payer"], accepted["value"]) == (charged_card["wallet"], 12_000)
    assert wait_for_status(api, accepted)["status"] == "included"
    assert city.token.functions.balanceOf(merchant.address).call() == before + 12_000
    assert status(api, keys, charged_card["number"])["balance"] == 55_000 - 12_000


def test_a_card_pays_an_invoice_and_a_retried_request_is_the_same_payment(
    api, keys, charged_card, merchant
):
    invoice = api.post(
        f"/v1/cities/{CITY}/invoices",
        json={"merchant": merchant.address, "amount": 7_000},
        headers=bearer(keys["pos"]),
    ).json()
    first = pay(api, keys, charged_card["number"], merchant, 7_000, invoiceId=invoice["invoiceId"])
    assert first.status_code == 202 and first.json()["invoiceId"] == invoice["invoiceId"]
    again = pay(api, keys, charged_card["number"], merchant, 7_000, invoiceId=invoice["invoiceId"])
    assert (again.status_code, again.json()["id"]) == (200, first.json()["id"])
    other = issue(api, keys).json()
    taken = error(
        pay(api, keys, other["number"], merchant, 7_000, invoiceId=invoice["invoiceId"]), 409
    )
    assert (taken["code"], taken["field"]) == ("invoice_already_paid", "invoiceId")
    sale = {"requestId": "till-7-sale-000123"}
    spaced = " ".join(charged_card["number"][i : i + 4] for i in range(0, 16, 4))
    one, two = (
        pay(api, keys, charged_card["number"], merchant, 900, **sale),
        pay(api, keys, spaced, merchant, 900, **sale),
    )
    assert (one.status_code, two.status_code, two.json()["id"]) == (202, 200, one.json()["id"])
    assert wait_for_status(api, first.json())["status"] == "included"


def test_a_wrong_pin_is_refused_with_the_attempts_left_and_a_right_one_clears_them(
    api, keys, charged_card, merchant
):
    wrong = error(pay(api, keys, charged_card["number"], merchant, 1_000, pin="9999"), 401)
    assert (wrong["code"], wrong["field"], wrong["attemptsLeft"]) == ("wrong_pin", "pin", 4)
    assert "9999" not in str(wrong)
    assert status(api, keys, charged_card["number"])["attemptsLeft"] == 4
    assert pay(api, keys, charged_card["number"], merchant, 1_000).status_code == 202
    assert status(api, keys, charged_card["number"])["attemptsLeft"] == 5


def test_five_wrong_pins_lock_the_card_until_an_operator_unlocks_it(
    api, keys, charged_card, merchant
):
    number = charged_card["number"]
    left = [
        error(pay(api, keys, number, merchant, 1_000, pin="1357"), 401)["attemptsLeft"]
        for _ in range(4)
    ]
    assert left == [4, 3, 2, 1]
    locking = error(pay(api, keys, number, merchant, 1_000, pin="1357"), 423)
    assert locking["code"] == "card_locked" and "locked it" in locking["message"]
    refused = error(pay(api, keys, number, merchant, 1_000), 423)  # the right PIN
    assert refused["field"] == "card" and number[-4:] in refused["value"]
    assert status(api, keys, number)["status"] == "locked"

    bank = api.post(f"/v1/cities/{CITY}/cards/{number}/unlock", headers=bearer(keys["bank"]))
    assert bank.status_code == 403
    unlocked = api.post(
        f"/v1/cities/{CITY}/cards/{number}/unlock", headers=bearer(keys["operator"])
    )
    assert unlocked.status_code == 200 and unlocked.json()["status"] == "active"
    response = pay(api, keys, number, merchant, 1_000)
    assert response.status_code == 202 and wait_for_status(api, response.json())["status"] == (
        "included"
    )


def test_concurrent_wrong_pins_never_exceed_the_limit(api, keys, card, merchant, backend):
    def guess(pin: str):
        return pay(api, keys, card["number"], merchant, 1_000, pin=pin).status_code

    with ThreadPoolExecutor(12) as pool:
        codes = list(pool.map(guess, [f"{n:04d}" for n in range(2000, 2012)]))
    assert sorted(codes) == [401] * 4 + [423] * 8
    assert _card_row(backend, card["number"]).failed_pins == 5


def test_unknown_and_malformed_card_numbers_are_named(api, keys, merchant):
    body = "941000000000000"
    unknown = error(pay(api, keys, body + luhn_check_digit(body), merchant, 1_000), 404)
    assert (unknown["code"], unknown["field"]) == ("unknown_card", "card")
    bad_digit = body + str((int(luhn_check_digit(body)) + 1) % 10)
    mistyped = error(pay(api, keys, bad_digit, merchant, 1_000), 422)
    assert (mistyped["code"], mistyped["field"]) == ("invalid_card_number", "card")
    assert "check digit" in mistyped["message"]
    short = error(pay(api, keys, "12345", merchant, 1_000), 422)
    assert "16 digits" in short["message"]


def test_only_a_citys_tills_pay_and_only_its_operators_issue(api, keys, card, merchant):
    body = {"card": card["number"], "pin": PIN, "merchant": merchant.address, "amount": 1}
    path = f"/v1/cities/{CITY}/card-payments"
    assert error(api.post(path, json=body), 401)["code"] == "missing_credentials"
    for who in ("bank", "operator", "gongju-operator"):
        assert api.post(path, json=body, headers=bearer(keys[who])).status_code == 403
    for who in ("pos", "bank", "gongju-operator"):
        refused = api.post(
            f"/v1/cities/{CITY}/cards",
            json={"pin": PIN, "identityHash": "0x" + "11" * 32, "region": GIMPO_REGION},
            headers=bearer(keys[who]),
        )
        assert refused.status_code == 403, who
    card_path = f"/v1/cities/{CITY}/cards/{card['number']}"
    assert api.get(card_path, headers=bearer(keys["pos"])).status_code == 403
    assert api.get(card_path).status_code == 401
    assert status(api, keys, card["number"])["attemptsLeft"] == 5  # no refused call counted


def test_issuing_refuses_guessable_pins_and_an_identity_already_registered(api, keys, backend):
    assert error(issue(api, keys, pin="1111"), 422)["field"] == "pin"
    assert error(issue(api, keys, pin="1234"), 422)["field"] == "pin"
    identity = os.urandom(32)
    assert issue(api, keys, identity=identity).status_code == 201
    again = error(issue(api, keys, identity=identity), 409)
    assert again["code"] == "registration_refused" and "IdentityInUse" in again["message"]


def test_the_wallet_key_is_sealed_and_the_pin_hashed_in_the_database(card, backend):
    row = _card_row(backend, card["number"])
    sealed = bytes(row.sealed_key)
    windows = [sealed[i : i + 32] for i in range(len(sealed) - 31)]
    assert all(Account.from_key(w).address != card["wallet"] for w in windows)
    assert card["wallet"][2:].lower().encode() not in sealed.hex().encode()
    assert row.pin_hash.startswith("$argon2id$") and PIN not in row.pin_hash
    # The backend's development key-encryption key opens it, to this card's wallet only.
    kek = key_encryption_key(Settings())
    key = unseal(kek, row.kek_fingerprint, card["number"], card["wallet"], sealed)
    assert Account.from_key(key).address == card["wallet"]


def _card_row(backend, number: str):
    engine = create_engine(backend.database_url)
    try:
        with engine.connect() as connection:
            return connection.execute(
                text("SELECT * FROM cards WHERE number = :number"), {"number": number}
            ).one()
    finally:
        engine.dispose()
