"""Who may call what: API keys with roles for staff, banks and auditors; Sign-In with Ethereum
(EIP-4361) for wallets and merchants; every protected endpoint refuses everyone else."""

from __future__ import annotations

import time

from citypay.wallet.sign_in import sign_in, siwe_message
from conftest import CITY, bearer, wait_for_status
from eth_account import Account
from eth_account.messages import encode_defunct
from platform_harness import new_wallet
from test_relay import post, signed


def _offer(api) -> dict:
    return api.post("/v1/auth/nonce").json()


def _signed_message(api, account, **changes) -> dict:
    offer = _offer(api)
    fields = {
        "domain": offer["domain"],
        "uri": str(api.base_url),
        "address": account.address,
        "chain_id": offer["chainId"],
        "nonce": offer["nonce"],
    } | changes
    message = siwe_message(**fields)
    signature = account.sign_message(encode_defunct(text=message)).signature
    return {"message": message, "signature": "0x" + signature.hex()}


def _error(response, status: int) -> dict:
    assert response.status_code == status, response.text
    return response.json()["error"]


# --- API keys -------------------------------------------------------------------------------


def test_an_api_key_identifies_its_role_and_city(api, keys):
    me = api.get("/v1/auth/me", headers=bearer(keys["bank"])).json()
    assert (me["role"], me["city"], me["address"]) == ("bank", CITY, None)


def test_a_revoked_api_key_is_refused(api, backend):
    key = backend.api_key("soon-revoked", "operator", CITY)
    assert api.get("/v1/auth/me", headers=bearer(key)).status_code == 200
    import subprocess
    import sys

    from platform_harness import ROOT

    subprocess.run(
        [sys.executable, "-m", "citypay.auth", "revoke", "soon-revoked"],
        cwd=ROOT,
        env=backend.environment(),
        check=True,
        capture_output=True,
    )
    assert _error(api.get("/v1/auth/me", headers=bearer(key)), 401)["code"] == "invalid_api_key"


def test_an_unknown_api_key_is_refused(api):
    error = _error(api.get("/v1/auth/me", headers=bearer("cpk_" + "x" * 43)), 401)
    assert error["code"] == "invalid_api_key"


def test_a_request_without_credentials_is_told_what_to_send(api):
    error = _error(api.get("/v1/auth/me"), 401)
    assert (error["code"], error["field"]) == ("missing_credentials", "Authorization")
    assert "Bearer" in error["accepted"]


def test_a_token_of_no_known_kind_is_refused(api):
    error = _error(api.get("/v1/auth/me", headers=bearer("hello")), 401)
    assert error["code"] == "invalid_credentials"


# --- Sign-In with Ethereum ------------------------------------------------------------------


def test_a_wallet_signs_in_and_speaks_for_its_address(api):
    wallet = Account.create()
    token = sign_in(api, wallet)
    me = api.get("/v1/auth/me", headers=bearer(token)).json()
    assert (me["address"], me["role"]) == (wallet.address, None)


def test_a_sign_in_nonce_works_once(api):
    wallet = Account.create()
    body = _signed_message(api, wallet)
    assert api.post("/v1/auth/siwe", json=body).status_code == 200
    error = _error(api.post("/v1/auth/siwe", json=body), 401)
    assert (error["code"], error["field"]) == ("invalid_nonce", "nonce")


def test_a_nonce_the_backend_never_issued_is_refused(api):
    wallet = Account.create()
    message = siwe_message(
        domain="localhost",
        uri=str(api.base_url),
        address=wallet.address,
        chain_id=58210,
        nonce="madeup1234567890",
    )
    signature = "0x" + wallet.sign_message(encode_defunct(text=message)).signature.hex()
    error = _error(
        api.post("/v1/auth/siwe", json={"message": message, "signature": signature}), 401
    )
    assert error["code"] == "invalid_nonce"


def test_a_message_for_another_domain_is_refused_naming_both(api):
    error = _error(
        api.post(
            "/v1/auth/siwe", json=_signed_message(api, Account.create(), domain="evil.example")
        ),
        401,
    )
    assert (error["code"], error["value"], error["accepted"]) == (
        "wrong_domain",
        "evil.example",
        "localhost",
    )


def test_a_message_for_another_chain_is_refused(api):
    error = _error(
        api.post("/v1/auth/siwe", json=_signed_message(api, Account.create(), chain_id=1)), 401
    )
    assert (error["code"], error["value"]) == ("wrong_chain", 1)


def test_a_message_signed_by_another_key_is_refused(api):
    claimed, signer = Account.create(), Account.create()
    body = _signed_message(api, claimed)
    forged = signer.sign_message(encode_defunct(text=body["message"])).signature
    error = _error(api.post("/v1/auth/siwe", json=body | {"signature": "0x" + forged.hex()}), 401)
    assert (error["code"], error["field"]) == ("invalid_siwe_signature", "signature")


def test_a_message_that_is_not_eip_4361_is_refused(api):
    body = {"message": "let me in", "signature": "0x" + "11" * 65}
    assert _error(api.post("/v1/auth/siwe", json=body), 401)["code"] == "invalid_siwe_message"


def test_a_long_message_that_is_not_eip_4361_is_refused_at_once(api):
    # siwe's ABNF parser took 8 s (13 s under load) of CPU for this on an open endpoint.
    started = time.monotonic()
    refused = api.post("/v1/auth/siwe", json={"message": "0" * 4096, "signature": "0x" + "00" * 65})
    assert _error(refused, 401)["code"] == "invalid_siwe_message"
    assert time.monotonic() - started < 1


# --- Who may create an invoice --------------------------------------------------------------


def _invoice(api, merchant, headers):
    return api.post(
        f"/v1/cities/{CITY}/invoices",
        json={"merchant": merchant.address, "amount": 5_000},
        headers=headers,
    )


def test_the_merchant_signed_in_creates_its_invoice(api, merchant):
    assert _invoice(api, merchant, bearer(sign_in(api, merchant))).status_code == 201


def test_the_city_operator_and_till_create_invoices(api, merchant, keys):
    for role in ("operator", "pos"):
        assert _invoice(api, merchant, bearer(keys[role])).status_code == 201, role


def test_invoices_are_refused_to_everyone_else(api, merchant, keys):
    stranger = bearer(sign_in(api, new_wallet(f"stranger-{time.time_ns()}")))
    for headers in (
        stranger,
        bearer(keys["bank"]),
        bearer(keys["auditor"]),
        bearer(keys["gongju-operator"]),
    ):
        error = _error(_invoice(api, merchant, headers), 403)
        assert merchant.address in error["accepted"]
    assert _error(_invoice(api, merchant, {}), 401)["code"] == "missing_credentials"


# --- Who may read a payment -----------------------------------------------------------------


def test_a_payment_is_read_by_its_parties_and_the_citys_staff_only(
    api, city, resident, merchant, keys
):
    accepted = post(api, signed(city, resident, merchant, 1_000)).json()
    wait_for_status(api, accepted)
    path = f"/v1/payments/{accepted['id']}"
    for token in (
        sign_in(api, resident),
        sign_in(api, merchant),
        keys["auditor"],
        keys["operator"],
        keys["pos"],
    ):
        assert api.get(path, headers=bearer(token)).json()["id"] == accepted["id"]
    for token in (sign_in(api, Account.create()), keys["bank"], keys["gongju-operator"]):
        _error(api.get(path, headers=bearer(token)), 403)
    _error(api.get(path), 401)


def test_the_merchants_payment_feed_needs_the_merchant_or_staff(api, merchant, keys):
    path = f"/v1/cities/{CITY}/merchants/{merchant.address}/payments/events"
    _error(api.get(path), 401)
    _error(api.get(path, headers=bearer(sign_in(api, Account.create()))), 403)
    _error(api.get(path, headers=bearer(keys["bank"])), 403)
