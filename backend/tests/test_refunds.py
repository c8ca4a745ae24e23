"""Relayed refunds (환불) end to end: a merchant-signed RefundWithAuthorization posted by the
merchant's signed-in wallet or its till, checked against the chain, sent by the relayer, followed
to inclusion; every refusal names its field and value; one refund per nonce across a restart."""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
import time

import httpx
import pytest
from citypay.authorization import TokenDomain, sign_authorization, sign_cancellation, sign_refund
from citypay.wallet.client import WalletClient, WalletError
from citypay.wallet.sign_in import sign_in
from conftest import CITY, bearer, poll_status, wait_for_status
from platform_harness import ROOT, new_wallet
from test_cashout import _send_as
from web3.logs import DISCARD

PAID = 10_000
ZERO = bytes(32)
FINAL = ("included", "failed")
PATH = f"/v1/cities/{CITY}/refunds"


# --- fixtures ---------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def domain(api) -> TokenDomain:
    """The token's domain, as a wallet reads it before it signs."""
    return TokenDomain.from_dict(api.get(f"/v1/cities/{CITY}").json()["domain"])


@pytest.fixture(scope="module")
def shop(chain):
    """A merchant of this module; each test's payment to it comes from a fresh resident."""
    wallet = new_wallet(f"refund-merchant:{time.time_ns()}")
    chain.register_merchant(CITY, wallet)
    return wallet


@pytest.fixture(scope="module")
def session(api, shop) -> dict:
    return bearer(sign_in(api, shop))


@pytest.fixture
def paid(api, city, domain, shop, resident) -> bytes:
    """The payment id (nonce) of 10,000 KRW the resident paid the shop through the relay."""
    authorization = sign_authorization(resident.key, domain, to=shop.address, value=PAID)
    accepted = api.post(f"/v1/cities/{CITY}/payments", json=authorization.as_json(joined=True))
    assert accepted.status_code == 202, accepted.text
    assert wait_for_status(api, accepted.json())["status"] == "included"
    return authorization.nonce


def _refund(chain, domain, payer, payment_id: bytes, value: int, *, signer=None, merchant, **kw):
    """The merchant's signed refund, its window from the chain's clock."""
    now = chain.w3.eth.get_block("latest")["timestamp"]
    kw.setdefault("valid_before", now + 3600)
    return sign_refund(
        (signer or merchant).key,
        domain,
        payer=payer.address,
        payment_id=payment_id,
        value=value,
        merchant=merchant.address,
        **kw,
    )


def _wait(api, headers, refund_id: int, timeout: float = 30) -> dict:
    path = f"{PATH}/{refund_id}"
    return poll_status(
        api, path, FINAL, what=f"refund {refund_id}", headers=headers, timeout=timeout
    )


def _error(response, status: int) -> dict:
    assert response.status_code == status, response.text
    return response.json()["error"]


def _refundable(city, payer, merchant, payment_id: bytes) -> int:
    return city.token.functions.refundableAmount(payer.address, merchant.address, payment_id).call()


# --- the refund ---------------------------------------------------------------------------------


def test_a_signed_in_merchant_refunds_part_of_a_payment(
    api, chain, city, domain, shop, session, resident, paid
):
    before = city.token.functions.balanceOf(resident.address).call()
    refund = _refund(chain, domain, resident, paid, 4_000, merchant=shop)
    accepted = api.post(PATH, json=refund.as_json(joined=True), headers=session)
    assert accepted.status_code == 202, accepted.text
    assert accepted.json()["status"] == "accepted"

    done = _wait(api, session, accepted.json()["id"])
    assert (done["status"], done["value"], done["paymentId"]) == (
        "included",
        4_000,
        "0x" + paid.hex(),
    )
    assert city.token.functions.balanceOf(resident.address).call() == before + 4_000
    assert _refundable(city, resident, shop, paid) == PAID - 4_000
    receipt = chain.w3.eth.get_transaction_receipt(done["transactionHash"])
    assert receipt["blockNumber"] == done["blockNumber"]
    [event] = city.token.events.Refunded().process_receipt(receipt, errors=DISCARD)
    assert (event.args.merchant, event.args.payer, event.args.value) == (
        shop.address,
        resident.address,
        4_000,
    )


def test_the_same_refund_posted_twice_is_one_refund(
    api, chain, city, domain, shop, session, resident, paid
):
    body = _refund(chain, domain, resident, paid, 3_000, merchant=shop).as_json()
    first = api.post(PATH, json=body, headers=session)
    again = api.post(PATH, json=body, headers=session)
    assert (first.status_code, again.status_code) == (202, 200)
    assert again.json()["id"] == first.json()["id"]
    _wait(api, session, first.json()["id"])
    after = api.post(PATH, json=body, headers=session)
    assert (after.status_code, after.json()["id"], after.json()["status"]) == (
        200,
        first.json()["id"],
        "included",
    )
    assert _refundable(city, resident, shop, paid) == PAID - 3_000


def test_the_same_nonce_with_other_terms_is_refused(
    api, chain, domain, shop, session, resident, paid
):
    first = _refund(chain, domain, resident, paid, 1_000, merchant=shop)
    assert api.post(PATH, json=first.as_json(), headers=session).status_code == 202
    other = _refund(chain, domain, resident, paid, 2_000, merchant=shop, nonce=first.nonce)
    error = _error(api.post(PATH, json=other.as_json(), headers=session), 409)
    assert (error["code"], error["field"], error["value"]) == ("nonce_reused", "value", 2_000)
    assert error["accepted"].startswith("1000")


def test_the_till_posts_a_refund_with_its_api_key(api, chain, domain, shop, keys, resident, paid):
    refund = _refund(chain, domain, resident, paid, PAID, merchant=shop)
    accepted = api.post(PATH, json=refund.as_json(), headers=bearer(keys["pos"]))
    assert accepted.status_code == 202, accepted.text
    assert _wait(api, bearer(keys["pos"]), accepted.json()["id"])["status"] == "included"


def test_a_refund_of_plain_transfers_draws_on_their_total(
    api, chain, city, domain, shop, session, resident
):
    _send_as(chain, resident, city.token.functions.transfer(shop.address, 5_000))
    refund = _refund(chain, domain, resident, ZERO, 5_000, merchant=shop)
    accepted = api.post(PATH, json=refund.as_json(), headers=session)
    assert _wait(api, session, accepted.json()["id"])["status"] == "included"
    assert _refundable(city, resident, shop, ZERO) == 0


# --- who may post and read ----------------------------------------------------------------------


def test_someone_else_may_not_post_a_merchants_refund(
    api, chain, domain, shop, keys, resident, paid
):
    body = _refund(chain, domain, resident, paid, 1_000, merchant=shop).as_json()
    other = bearer(sign_in(api, new_wallet(f"other:{time.time_ns()}")))
    assert _error(api.post(PATH, json=body, headers=other), 403)["code"] == "forbidden"
    assert _error(api.post(PATH, json=body), 401)["code"] == "missing_credentials"
    for key in ("operator", "gongju-operator"):
        assert _error(api.post(PATH, json=body, headers=bearer(keys[key])), 403)
    assert api.post(PATH, json=body, headers=bearer(sign_in(api, resident))).status_code == 403


def test_the_merchant_the_payer_and_the_citys_staff_read_a_refund(
    api, chain, domain, shop, session, keys, resident, paid
):
    refund = _refund(chain, domain, resident, paid, 1_000, merchant=shop)
    refund_id = api.post(PATH, json=refund.as_json(), headers=session).json()["id"]
    readers = [session, bearer(sign_in(api, resident))]
    readers += [bearer(keys[role]) for role in ("operator", "auditor", "pos")]
    for headers in readers:
        assert api.get(f"{PATH}/{refund_id}", headers=headers).status_code == 200
    stranger = bearer(sign_in(api, new_wallet(f"stranger:{time.time_ns()}")))
    assert _error(api.get(f"{PATH}/{refund_id}", headers=stranger), 403)["code"] == "forbidden"
    gongju = bearer(keys["gongju-operator"])
    assert _error(api.get(f"{PATH}/{refund_id}", headers=gongju), 403)
    missing = _error(api.get(f"{PATH}/999999", headers=session), 404)
    assert (missing["code"], missing["field"], missing["value"]) == ("unknown_refund", "id", 999999)
    _wait(api, session, refund_id)


# --- refusals before anything is sent: each names its field and value ---------------------------


def test_a_refund_signed_by_another_key_is_refused(
    api, chain, city, domain, shop, session, resident, paid
):
    forger = new_wallet(f"forger:{time.time_ns()}")
    refund = _refund(chain, domain, resident, paid, 1_000, merchant=shop, signer=forger)
    error = _error(api.post(PATH, json=refund.as_json(joined=True), headers=session), 422)
    assert (error["code"], error["field"], error["value"]) == (
        "invalid_signature",
        "signature",
        "0x" + refund.signature.hex(),
    )
    assert forger.address in error["message"]
    assert _refundable(city, resident, shop, paid) == PAID


def test_a_changed_amount_no_longer_matches_the_signature(
    api, chain, domain, shop, session, resident, paid
):
    body = _refund(chain, domain, resident, paid, 1_000, merchant=shop).as_json()
    body["value"] = 9_000
    error = _error(api.post(PATH, json=body, headers=session), 422)
    assert (error["code"], error["field"]) == ("invalid_signature", "signature")


def test_an_expired_refund_is_refused(api, chain, domain, shop, session, resident, paid):
    now = chain.w3.eth.get_block("latest")["timestamp"]
    refund = _refund(chain, domain, resident, paid, 1_000, merchant=shop, valid_before=now - 1)
    error = _error(api.post(PATH, json=refund.as_json(), headers=session), 422)
    assert (error["code"], error["field"], error["value"]) == ("expired", "validBefore", now - 1)


def test_a_refund_not_yet_valid_is_refused(api, chain, domain, shop, session, resident, paid):
    now = chain.w3.eth.get_block("latest")["timestamp"]
    refund = _refund(chain, domain, resident, paid, 1_000, merchant=shop, valid_after=now + 600)
    error = _error(api.post(PATH, json=refund.as_json(), headers=session), 422)
    assert (error["code"], error["field"], error["value"]) == (
        "not_yet_valid",
        "validAfter",
        now + 600,
    )


def test_a_zero_nonce_is_refused(api, chain, domain, shop, session, resident, paid):
    refund = _refund(chain, domain, resident, paid, 1_000, merchant=shop, nonce=ZERO)
    error = _error(api.post(PATH, json=refund.as_json(), headers=session), 422)
    assert (error["code"], error["field"], error["value"]) == (
        "zero_nonce",
        "nonce",
        "0x" + ZERO.hex(),
    )


def test_a_nonce_the_merchant_cancelled_on_chain_is_refused(
    api, chain, city, domain, shop, session, resident, paid
):
    refund = _refund(chain, domain, resident, paid, 1_000, merchant=shop)
    cancellation = sign_cancellation(shop.key, domain, refund.nonce)
    cancel = city.token.functions.cancelAuthorization(shop.address, refund.nonce, cancellation)
    _send_as(chain, resident, cancel)  # anyone may send a signed cancellation
    error = _error(api.post(PATH, json=refund.as_json(), headers=session), 409)
    assert (error["code"], error["field"], error["value"]) == (
        "nonce_used",
        "nonce",
        "0x" + refund.nonce.hex(),
    )


def test_more_than_the_payment_is_refused_naming_what_is_left(
    api, chain, domain, shop, session, resident, paid
):
    refund = _refund(chain, domain, resident, paid, PAID + 1, merchant=shop)
    error = _error(api.post(PATH, json=refund.as_json(), headers=session), 422)
    assert (error["code"], error["field"], error["value"]) == (
        "refund_exceeds_payment",
        "value",
        PAID + 1,
    )
    assert error["accepted"] == f"1 to {PAID}"


def test_refunds_on_their_way_count_against_the_payment(
    api, chain, domain, shop, session, resident, paid
):
    first = _refund(chain, domain, resident, paid, 6_000, merchant=shop)
    assert api.post(PATH, json=first.as_json(), headers=session).status_code == 202
    second = _refund(chain, domain, resident, paid, 5_000, merchant=shop)
    error = _error(api.post(PATH, json=second.as_json(), headers=session), 422)
    # Whether the first is still on its way or already refunded, 4,000 KRW are left.
    assert (error["code"], error["field"], error["accepted"]) == (
        "refund_exceeds_payment",
        "value",
        "1 to 4000",
    )


def test_a_payment_the_payer_never_made_is_refused(
    api, chain, city, domain, shop, session, resident
):
    unknown = os.urandom(32)
    refund = _refund(chain, domain, resident, unknown, 1_000, merchant=shop)
    error = _error(api.post(PATH, json=refund.as_json(), headers=session), 422)
    assert (error["code"], error["field"], error["value"]) == (
        "unknown_payment",
        "paymentId",
        "0x" + unknown.hex(),
    )


def test_a_refund_in_a_paused_city_is_refused(
    api, chain, city, domain, shop, session, resident, paid
):
    pauser = city.roles["pauser"]
    chain.send(pauser, city.token.functions.pause())
    try:
        refund = _refund(chain, domain, resident, paid, 1_000, merchant=shop)
        error = _error(api.post(PATH, json=refund.as_json(), headers=session), 409)
    finally:
        chain.send(pauser, city.token.functions.unpause())
    assert (error["code"], error["field"], error["value"]) == ("city_paused", "city", CITY)


@pytest.mark.parametrize(
    ("field", "value"),
    [("value", 0), ("nonce", "0x1234"), ("payer", "0xnot-an-address"), ("paymentId", None)],
)
def test_a_malformed_field_is_refused_by_name(
    api, chain, domain, shop, session, resident, paid, field, value
):
    body = _refund(chain, domain, resident, paid, 1_000, merchant=shop).as_json()
    body[field] = value
    error = _error(api.post(PATH, json=body, headers=session), 422)
    assert (error["code"], error["field"], error["value"]) == ("invalid_field", field, value)


# --- the wallet client and its command line -----------------------------------------------------


def test_the_wallet_client_signs_in_and_refunds_as_the_merchant(
    backend, city, shop, resident, paid
):
    with WalletClient(backend.url, shop, city=CITY) as wallet:
        with pytest.raises(WalletError, match="positive amount"):
            wallet.refund(resident.address, "0x" + paid.hex(), 0)
        with pytest.raises(WalletError, match="more than is left"):
            wallet.refund(resident.address, "0x" + paid.hex(), PAID + 1)
        refund = wallet.refund(resident.address, "0x" + paid.hex(), 1_500)
    assert (refund["status"], refund["merchant"], refund["value"]) == (
        "included",
        shop.address,
        1_500,
    )
    assert _refundable(city, resident, shop, paid) == PAID - 1_500


def test_the_command_line_refunds_with_a_key_file(backend, city, shop, resident, paid, tmp_path):
    key_file = tmp_path / "merchant.key"
    key_file.write_text("0x" + shop.key.hex() + "\n")

    def wallet(*args):
        return subprocess.run(
            [sys.executable, "-m", "citypay.wallet", "refund", *args],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=90,
        )

    common = ["--payer", resident.address, "--key-file", str(key_file), "--api", backend.url]
    done = wallet(*common, "--payment-id", "0x" + paid.hex(), "--value", "2000")
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["status"] == "included"
    assert _refundable(city, resident, shop, paid) == PAID - 2_000
    refused = wallet(*common, "--payment-id", "0x1234", "--value", "1")
    assert refused.returncode == 2 and "payment id 0x1234 is not 32 bytes" in refused.stderr


# --- a restart between recording and sending, and between sending and the outcome --------------


@pytest.mark.parametrize("point", ["after_refund_recorded", "after_refund_sent"])
def test_a_crash_while_sending_refunds_exactly_once(
    api, backend, chain, city, domain, shop, session, resident, paid, point
):
    before = city.token.functions.balanceOf(resident.address).call()
    refund = _refund(chain, domain, resident, paid, 2_500, merchant=shop)
    backend.kill()
    backend.settings["CITYPAY_CRASH_AT"] = point
    try:
        backend.start()
        # The worker may die before or after the response goes out.
        with contextlib.suppress(httpx.HTTPError):
            api.post(PATH, json=refund.as_json(), headers=session)
        assert backend.process.wait(timeout=30) == 86, "the backend did not crash at the point"
    finally:
        backend.settings.pop("CITYPAY_CRASH_AT")
        if backend.process.poll() is not None:
            backend.start()
    again = api.post(PATH, json=refund.as_json(), headers=session)
    assert again.status_code == 200, again.text
    done = _wait(api, session, again.json()["id"])
    assert done["status"] == "included"
    assert city.token.functions.balanceOf(resident.address).call() == before + 2_500
    assert _refundable(city, resident, shop, paid) == PAID - 2_500
