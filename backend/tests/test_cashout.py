"""Cash-out (환전) end to end: a signed-in merchant's request, the redemption on chain, the payout
through the sandbox bank and the settlement (or return) on chain; exactly once across a crash
between redemption and payout, and between payout and settlement."""

from __future__ import annotations

import contextlib
import os
import time

import httpx
import pytest
from citypay.authorization import TokenDomain
from citypay.cashout.authorization import cash_out_body
from citypay.core.config import EMBEDDED_CHAIN_ID
from citypay.wallet.sign_in import sign_in
from conftest import CITY, bearer, poll_status
from eth_utils import keccak
from platform_harness import new_wallet

PENDING, SETTLED, RETURNED = 1, 2, 3
FINAL = ("settled", "returned", "refused")
PAID_TO_MERCHANT = 60_000


# --- fixtures ---------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def domain(api) -> TokenDomain:
    d = api.get(f"/v1/cities/{CITY}/cashout-domain").json()
    return TokenDomain.from_dict(d)


@pytest.fixture
def shop(chain, city, request):
    """A fresh merchant that a fresh resident paid 60,000 KRW."""
    merchant = new_wallet(f"cash-out-merchant:{request.node.name}:{time.time_ns()}")
    resident = new_wallet(f"cash-out-resident:{request.node.name}:{time.time_ns()}")
    chain.register_merchant(CITY, merchant)
    chain.register_resident(CITY, resident)
    chain.charge(CITY, resident, 100_000)
    _send_as(chain, resident, city.token.functions.transfer(merchant.address, PAID_TO_MERCHANT))
    return merchant


@pytest.fixture
def session(api, shop) -> dict:
    return bearer(sign_in(api, shop))


def _send_as(chain, wallet, call) -> None:
    """A wallet's own transaction (gas price zero on the embedded chain)."""
    transaction = call.build_transaction(
        {
            "from": wallet.address,
            "nonce": chain.w3.eth.get_transaction_count(wallet.address, "pending"),
            "gas": 300_000,
            "gasPrice": 0,
            "chainId": EMBEDDED_CHAIN_ID,
        }
    )
    tx_hash = chain.w3.eth.send_raw_transaction(
        wallet.sign_transaction(transaction).raw_transaction
    )
    assert chain.w3.eth.wait_for_transaction_receipt(tx_hash, timeout=30)["status"] == 1


def _request(chain, domain, wallet, amount: int, *, valid_for: int = 3600, signer=None) -> dict:
    return cash_out_body(
        (signer or wallet).key,
        domain,
        amount=amount,
        payout_account_hash=keccak(text=f"bank-account:{wallet.address}"),
        valid_before=chain.w3.eth.get_block("latest")["timestamp"] + valid_for,
        nonce=os.urandom(32),
        merchant=wallet.address,
    )


def _path(wallet) -> str:
    return f"/v1/cities/{CITY}/merchants/{wallet.address}/cashouts"


def _wait(api, headers, wallet, cash_out_id: int, timeout: float = 30) -> dict:
    path = f"{_path(wallet)}/{cash_out_id}"
    return poll_status(
        api, path, FINAL, what=f"cash-out {cash_out_id}", headers=headers, timeout=timeout
    )


def _account_hash(wallet) -> str:
    """The payout account hash the harness registered the merchant with."""
    return "0x" + keccak(text=f"bank-account:{wallet.address}").hex()


def _error(response, status: int) -> dict:
    assert response.status_code == status, response.text
    return response.json()["error"]


# --- the happy path and the bank's refusal ----------------------------------------------------


def test_cash_out_is_burned_paid_and_settled(api, chain, city, bank, domain, shop, session):
    body = _request(chain, domain, shop, 25_000)
    accepted = api.post(_path(shop), json=body, headers=session)
    assert accepted.status_code == 202, accepted.text
    assert accepted.json()["status"] == "requested"

    done = _wait(api, session, shop, accepted.json()["id"])
    assert done["status"] == "settled"
    assert city.token.functions.balanceOf(shop.address).call() == PAID_TO_MERCHANT - 25_000
    [transfer] = bank.transfers(done["orderId"])
    assert (transfer["status"], transfer["amount"], transfer["account"]) == (
        "paid",
        25_000,
        _account_hash(shop),
    )
    # The bank's order is the cash-out's own (city, merchant, nonce), never a redemption id.
    assert done["orderId"] == f"{CITY}:{shop.address}:{done['nonce']}"
    assert done["bankReference"] == transfer["reference"]
    redemption = city.treasury.functions.redemption(done["redemptionId"]).call()
    assert (redemption[0], redemption[2], redemption[5]) == (shop.address, SETTLED, 25_000)
    assert redemption[10].rstrip(b"\0").decode() == transfer["reference"]

    again = api.post(_path(shop), json=body, headers=session)
    assert (again.status_code, again.json()["id"]) == (200, done["id"])
    assert len(bank.transfers(done["orderId"])) == 1


def test_a_failed_bank_transfer_is_returned_on_chain(api, chain, city, bank, domain, shop, session):
    bank.faults(fail_accounts=[_account_hash(shop)], fail_reason="account_closed")
    try:
        accepted = api.post(
            _path(shop), json=_request(chain, domain, shop, 10_000), headers=session
        )
        done = _wait(api, session, shop, accepted.json()["id"])
    finally:
        bank.faults()
    assert (done["status"], done["failureReason"]) == ("returned", "account_closed")
    assert city.token.functions.balanceOf(shop.address).call() == PAID_TO_MERCHANT
    [transfer] = bank.transfers(done["orderId"])
    assert transfer["status"] == "failed"
    redemption = city.treasury.functions.redemption(done["redemptionId"]).call()
    assert redemption[2] == RETURNED
    assert redemption[10].rstrip(b"\0") == b"account_closed"


def test_a_slow_bank_is_asked_again_by_order_id(api, chain, city, bank, domain, shop, session):
    """The bank books the transfer but answers after the backend stopped waiting (BANK_TIMEOUT
    is 2 s in the harness): the worker asks again by order id and settles one transfer."""
    bank.faults(delay=3)
    try:
        accepted = api.post(_path(shop), json=_request(chain, domain, shop, 5_000), headers=session)
        done = _wait(api, session, shop, accepted.json()["id"])
    finally:
        bank.faults()
    assert done["status"] == "settled"
    assert len(bank.transfers(done["orderId"])) == 1


# --- refusals before anything is sent ---------------------------------------------------------


def test_more_than_the_balance_is_refused_naming_amount_and_balance(
    api, chain, domain, shop, session
):
    response = api.post(_path(shop), json=_request(chain, domain, shop, 60_001), headers=session)
    error = _error(response, 422)
    assert (error["code"], error["field"], error["value"]) == (
        "amount_over_balance",
        "amount",
        60_001,
    )
    assert "60001" in error["message"] and "60000" in error["message"]
    assert error["accepted"] == "1 to 60000 KRW (the balance)"


def test_an_expired_authorization_is_refused(api, chain, domain, shop, session):
    response = api.post(
        _path(shop), json=_request(chain, domain, shop, 1_000, valid_for=-1), headers=session
    )
    error = _error(response, 422)
    assert (error["code"], error["field"]) == ("expired", "validBefore")


def test_a_signature_by_another_key_is_refused(api, chain, city, domain, shop, session):
    forger = new_wallet(f"forger:{time.time_ns()}")
    body = _request(chain, domain, shop, 1_000, signer=forger)
    error = _error(api.post(_path(shop), json=body, headers=session), 422)
    assert (error["code"], error["field"]) == ("invalid_signature", "signature")
    assert forger.address in error["message"]
    assert city.token.functions.balanceOf(shop.address).call() == PAID_TO_MERCHANT


def test_someone_else_signed_in_is_forbidden(api, chain, domain, shop):
    other = bearer(sign_in(api, new_wallet(f"other:{time.time_ns()}")))
    response = api.post(_path(shop), json=_request(chain, domain, shop, 1_000), headers=other)
    assert _error(response, 403)["code"] == "forbidden"
    assert _error(api.post(_path(shop), json=_request(chain, domain, shop, 1_000)), 401)


def test_operators_and_auditors_read_other_cities_do_not(api, chain, domain, shop, session, keys):
    accepted = api.post(_path(shop), json=_request(chain, domain, shop, 1_000), headers=session)
    cash_out_id = accepted.json()["id"]
    for role in ("operator", "auditor"):
        headers = bearer(keys[role])
        assert api.get(f"{_path(shop)}/{cash_out_id}", headers=headers).status_code == 200
        assert [c["id"] for c in api.get(_path(shop), headers=headers).json()] == [cash_out_id]
    gongju = bearer(keys["gongju-operator"])
    assert api.get(_path(shop), headers=gongju).status_code == 403
    _wait(api, session, shop, cash_out_id)


# --- crashes: kill the backend at a step, restart it, one payout ------------------------------


@pytest.mark.parametrize("point", ["after_redemption", "after_payout"])
def test_a_crash_between_steps_pays_exactly_once(
    api, chain, city, bank, backend, domain, shop, session, point
):
    backend.kill()
    backend.settings["CITYPAY_CRASH_AT"] = point
    try:
        backend.start()
        # The worker may die before or after the response goes out.
        with contextlib.suppress(httpx.HTTPError):
            api.post(_path(shop), json=_request(chain, domain, shop, 20_000), headers=session)
        assert backend.process.wait(timeout=30) == 86, "the backend did not crash at the point"
    finally:
        backend.settings.pop("CITYPAY_CRASH_AT")
        if backend.process.poll() is not None:
            backend.start()
    # Burned on chain before the crash; paid already if the crash came after the payout.
    assert city.token.functions.balanceOf(shop.address).call() == PAID_TO_MERCHANT - 20_000
    [cash_out] = api.get(_path(shop), headers=session).json()
    done = _wait(api, session, shop, cash_out["id"])
    assert done["status"] == "settled"
    assert len(bank.transfers(done["orderId"])) == 1
    assert bank.transfers(done["orderId"])[0]["amount"] == 20_000
    redemption = city.treasury.functions.redemption(done["redemptionId"]).call()
    assert redemption[2] == SETTLED
