"""Numbers out of range are refused at the door, over HTTP: a uint256 past 2**256-1, 1e400, NaN,
Infinity, `true`, a fraction, a negative, an id past the database's integers. Each is a
422 in the API's error shape naming the field, its value and the range accepted; none is a 500,
and none is taken for another number (`true` is not 1, 1500.5 is not 1500)."""

from __future__ import annotations

import json
import time

import pytest
from citypay.charging import notifications
from conftest import CITY, bearer
from platform_harness import BANK_WEBHOOK_SECRET
from test_relay import body, signed

PAYMENTS = f"/v1/cities/{CITY}/payments"
TOO_BIG = 2**256
ROW_ID_MAX = 2**31 - 1  # SQL INTEGER ids: 32 bits on PostgreSQL


@pytest.fixture
def payment(city, resident, merchant) -> dict:
    """A well-formed payment body (each test breaks one of its numbers)."""
    return body(signed(city, resident, merchant, 1_000))


def _raw(fields: dict, field: str, literal: str) -> bytes:
    """`fields` as JSON with `field`'s value written as `literal` (1e400, NaN: no Python value
    serialises to them)."""
    return json.dumps(fields | {field: "@@"}).replace('"@@"', literal).encode()


def _refusal(response, field: str) -> dict:
    assert response.status_code == 422, response.text
    error = response.json()["error"]
    assert error["code"] == "invalid_field"
    assert error["field"] == field
    assert error["accepted"], error
    assert not error["message"].startswith("None")
    return error


@pytest.mark.parametrize("field", ["value", "validAfter", "validBefore"])
@pytest.mark.parametrize(
    ("literal", "echoed"),
    [
        (str(TOO_BIG), TOO_BIG),
        (str(TOO_BIG * 10**20), TOO_BIG * 10**20),
        ("1e400", "Infinity"),
        ("NaN", "NaN"),
        ("-Infinity", "-Infinity"),
        ("true", True),
        ("1500.5", 1500.5),
        ("2.0", 2.0),
        ("-5", -5),
        ('"1000"', "1000"),
    ],
)
def test_a_payment_number_out_of_range_is_a_422_naming_it(api, payment, field, literal, echoed):
    response = api.post(
        PAYMENTS,
        content=_raw(payment, field, literal),
        headers={"content-type": "application/json"},
    )
    error = _refusal(response, field)
    assert error["value"] == echoed
    assert "2**256-1" in error["accepted"] or "MAX_SUPPLY" in error["accepted"]


def test_an_amount_past_the_tokens_supply_cap_names_the_cap(api, payment):
    error = _refusal(api.post(PAYMENTS, json=payment | {"value": 2**64}), "value")
    assert error["value"] == 2**64
    assert f"{2**64 - 1:,}" in error["accepted"] and "MAX_SUPPLY" in error["accepted"]


def test_true_is_not_taken_for_the_number_one(api, keys, merchant):
    response = api.post(
        f"/v1/cities/{CITY}/invoices",
        json={"merchant": merchant.address, "amount": True},
        headers=bearer(keys["pos"]),
    )
    assert _refusal(response, "amount")["value"] is True


def test_a_refund_of_two_to_the_256_is_a_422(api, keys, city, resident, merchant):
    refund = {
        "merchant": merchant.address,
        "payer": resident.address,
        "paymentId": "0x" + "11" * 32,
        "nonce": "0x" + "22" * 32,
        "value": TOO_BIG,
        "validAfter": 0,
        "validBefore": int(time.time()) + 600,
        "signature": "0x" + "33" * 65,
    }
    response = api.post(f"/v1/cities/{CITY}/refunds", json=refund, headers=bearer(keys["pos"]))
    assert _refusal(response, "value")["value"] == TOO_BIG


def test_a_deposit_of_two_to_the_256_is_a_422(api, keys, resident):
    raw = json.dumps({"depositId": "huge-1", "resident": resident.address, "amount": TOO_BIG})
    stamp = str(int(time.time()))
    response = api.post(
        f"/v1/cities/{CITY}/deposits",
        content=raw.encode(),
        headers=bearer(keys["bank"])
        | {
            "content-type": "application/json",
            notifications.TIMESTAMP_HEADER: stamp,
            notifications.SIGNATURE_HEADER: notifications.sign(
                BANK_WEBHOOK_SECRET, stamp, raw.encode()
            ),
        },
    )
    assert _refusal(response, "amount")["value"] == TOO_BIG


@pytest.mark.parametrize(
    ("path", "field"),
    [
        ("/v1/payments/{id}", "path.payment_id"),
        (f"/v1/cities/{CITY}/refunds/{{id}}", "path.refund_id"),
        (f"/v1/cities/{CITY}/merchants/0x{'00' * 20}/cashouts/{{id}}", "path.cash_out_id"),
    ],
)
def test_an_id_past_the_databases_integer_is_a_422_and_the_largest_a_404(api, keys, path, field):
    auditor = bearer(keys["auditor"])
    for wrong in (ROW_ID_MAX + 1, 2**63, TOO_BIG, "9" * 5000, -1, 0, "1.5", "true"):
        error = _refusal(api.get(path.format(id=wrong), headers=auditor), field)
        assert str(ROW_ID_MAX) in error["accepted"]
        assert len(json.dumps(error["value"])) < 200  # never a 5,000-digit echo
    largest = api.get(path.format(id=ROW_ID_MAX), headers=auditor)
    assert largest.status_code == 404, largest.text


def test_a_huge_value_is_echoed_cut_and_says_so(api, payment):
    error = _refusal(api.post(PAYMENTS, json=payment | {"nonce": "0x" + "ab" * 20_000}), "nonce")
    assert len(error["value"]) < 200
    assert error["value"].startswith("0xabab")
    assert error["value"].endswith("(truncated: 40,002 characters)")


def test_an_integer_of_thousands_of_digits_is_a_4xx(api, payment):
    response = api.post(
        PAYMENTS,
        content=_raw(payment, "value", "9" * 5000),
        headers={"content-type": "application/json"},
    )
    assert response.status_code == 400, response.text
    assert response.json()["error"]["code"] == "unreadable_body"
