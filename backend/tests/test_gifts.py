"""Relayed gifts (선물하기) end to end: a resident-signed GiftAuthorization posted by anyone,
checked against the city's gifts contract, sent by the city's relayer, followed to inclusion;
every refusal names its field and value, the contract's refusals their error and arguments; one
gift per nonce however often it is posted."""

from __future__ import annotations

import json
import subprocess
import sys
import time

import pytest
from citypay.authorization import GIFT_AUTHORIZATION, TokenDomain, sign_authorization
from citypay.chain.enums import AuthorizationState
from citypay.chain.events import packaged_abi
from citypay.wallet.client import WalletClient
from citypay.wallet.sign_in import sign_in
from conftest import CITY, bearer, poll_status
from platform_harness import ROOT, new_wallet

PATH = f"/v1/cities/{CITY}/gifts"
FINAL = ("included", "failed")
# The resident fixture charges 100,000 KRW; its 10% incentive is not giftable.
CHARGED = 100_000


# --- fixtures ---------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def domain(api) -> TokenDomain:
    """The gifts' domain, as a wallet reads it before it signs."""
    return TokenDomain.from_dict(api.get(f"/v1/cities/{CITY}/gift-domain").json())


@pytest.fixture
def receiver(chain, request):
    wallet = new_wallet(f"gift-receiver:{request.node.nodeid}:{time.time_ns()}")
    chain.register_resident(CITY, wallet)
    return wallet


def _now(chain) -> int:
    return chain.w3.eth.get_block("latest")["timestamp"]


def _gift(chain, domain, giver, to: str, value: int, *, signer=None, **window):
    """The giver's signed gift, its window from the chain's clock."""
    now = _now(chain)
    window.setdefault("valid_after", now - 60)
    window.setdefault("valid_before", now + 3600)
    signed = sign_authorization(
        (signer or giver).key,
        domain,
        to=to,
        value=value,
        primary_type=GIFT_AUTHORIZATION,
        **window,
    )
    return signed.as_json(joined=True) | {"from": giver.address}


def _wait(api, giver, gift_id: int) -> dict:
    session = bearer(sign_in(api, giver))
    return poll_status(
        api, f"{PATH}/{gift_id}", FINAL, what=f"gift {gift_id}", headers=session, timeout=30
    )


def _error(response, status: int) -> dict:
    assert response.status_code == status, response.text
    return response.json()["error"]


def _given(city, giver, nonce: str) -> list:
    """The Gifted events of the giver's nonce: the transactions that gave it."""
    return city.chain.gifts.logs(
        "Gifted", giver.address, None, bytes.fromhex(nonce[2:]), from_block=0
    )


def _balance(city, wallet) -> int:
    return city.token.functions.balanceOf(wallet.address).call()


# --- the gift -----------------------------------------------------------------------------------


def test_the_domain_is_the_gifts_contracts(api, city, chain):
    domain = api.get(f"/v1/cities/{CITY}/gift-domain").json()
    assert domain == {
        "name": f"{city.name} Gifts",
        "version": "1",
        "chainId": chain.chain_id,
        "verifyingContract": city.chain.gifts.address,
    }


def test_a_signed_gift_is_relayed_and_included(api, chain, city, domain, resident, receiver):
    before = api.get(f"/v1/cities/{CITY}/accounts/{resident.address}/giftable").json()
    assert (before["giftable"], before["sentThisMonth"]) == (CHARGED, 0)
    # Gimpo's configuration (config/cities.yaml), as its gifts contract holds them.
    assert (before["monthlySendCap"], before["monthlyReceiveCap"]) == (200_000, 1_000_000)

    accepted = api.post(PATH, json=_gift(chain, domain, resident, receiver.address, 30_000))
    assert accepted.status_code == 202, accepted.text
    gift = accepted.json()
    assert (gift["status"], gift["from"], gift["to"], gift["value"]) == (
        "accepted",
        resident.address,
        receiver.address,
        30_000,
    )
    done = _wait(api, resident, gift["id"])
    assert done["status"] == "included" and done["final"], done
    assert (_balance(city, resident), _balance(city, receiver)) == (110_000 - 30_000, 30_000)
    [given] = _given(city, resident, gift["nonce"])
    assert (given["transactionHash"], int(given["blockNumber"], 16)) == (
        done["transactionHash"],
        done["blockNumber"],
    )
    after = api.get(f"/v1/cities/{CITY}/accounts/{resident.address}/giftable").json()
    assert (after["giftable"], after["sentThisMonth"]) == (CHARGED - 30_000, 30_000)
    received = api.get(f"/v1/cities/{CITY}/accounts/{receiver.address}/giftable").json()
    assert received["receivedThisMonth"] == 30_000


def test_the_same_gift_posted_twice_is_one_gift(api, chain, city, domain, resident, receiver):
    body = _gift(chain, domain, resident, receiver.address, 10_000)
    first, again = api.post(PATH, json=body), api.post(PATH, json=body)
    assert (first.status_code, again.status_code) == (202, 200)
    assert again.json()["id"] == first.json()["id"]
    _wait(api, resident, first.json()["id"])
    after = api.post(PATH, json=body)
    assert (after.status_code, after.json()["id"], after.json()["status"]) == (
        200,
        first.json()["id"],
        "included",
    )
    assert len(_given(city, resident, body["nonce"])) == 1
    assert _balance(city, receiver) == 10_000
    # The same nonce with other terms is another gift's: refused, naming what differs.
    other = _gift(chain, domain, resident, receiver.address, 2_000) | {"nonce": body["nonce"]}
    error = _error(api.post(PATH, json=other), 409)
    assert (error["code"], error["field"]) == ("nonce_reused", "value")


def test_the_giver_the_receiver_and_the_citys_staff_read_a_gift(
    api, chain, domain, keys, resident, receiver
):
    gift = api.post(PATH, json=_gift(chain, domain, resident, receiver.address, 1_000)).json()
    path = f"{PATH}/{gift['id']}"
    for headers in (
        bearer(sign_in(api, resident)),
        bearer(sign_in(api, receiver)),
        bearer(keys["operator"]),
        bearer(keys["auditor"]),
    ):
        assert api.get(path, headers=headers).status_code == 200
    stranger = bearer(sign_in(api, new_wallet(f"gift-stranger:{time.time_ns()}")))
    assert _error(api.get(path, headers=stranger), 403)["code"] == "forbidden"
    assert _error(api.get(path), 401)
    assert _error(api.get(f"{PATH}/2147483647", headers=bearer(keys["operator"])), 404)
    _wait(api, resident, gift["id"])


# --- refusals of the message ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("field", "sent"),
    [
        ("value", 0),
        ("value", -1),
        ("value", 2**64),
        ("value", 2**256),
        ("value", 10**200),
        ("value", 1.5),
        ("value", "1000"),
        ("validBefore", 2**256),
        ("to", "0x1234"),
        ("nonce", "0x12"),
        ("signature", "0x" + "00" * 64),
    ],
)
def test_a_malformed_field_is_refused_by_name(api, chain, domain, resident, receiver, field, sent):
    body = _gift(chain, domain, resident, receiver.address, 1_000) | {field: sent}
    error = _error(api.post(PATH, json=body), 422)
    assert (error["code"], error["field"]) == ("invalid_field", field)
    # A value is echoed whole up to 140 characters.
    assert error["value"] == sent if len(str(sent)) <= 140 else "truncated" in error["value"]
    assert error["accepted"]


def test_nan_a_huge_number_and_an_unknown_field_are_refused(api, chain, domain, resident, receiver):
    body = _gift(chain, domain, resident, receiver.address, 1_000)
    text = json.dumps(body)
    nan = text.replace('"value": 1000', '"value": NaN')
    error = _error(api.post(PATH, content=nan, headers={"content-type": "application/json"}), 422)
    assert error["field"] == "value"
    huge = text.replace('"value": 1000', '"value": ' + "9" * 5000)
    assert api.post(
        PATH, content=huge, headers={"content-type": "application/json"}
    ).status_code in (
        400,
        422,
    )
    error = _error(api.post(PATH, json=body | {"memo": "for you"}), 422)
    assert error["field"] == "memo"


def test_a_gift_signed_by_another_key_or_for_another_city_is_refused(
    api, chain, domain, resident, receiver
):
    thief = new_wallet(f"gift-thief:{time.time_ns()}")
    forged = _gift(chain, domain, resident, receiver.address, 1_000, signer=thief)
    error = _error(api.post(PATH, json=forged), 422)
    assert (error["code"], error["field"]) == ("invalid_signature", "signature")
    assert f"not the giver {resident.address}" in error["message"]
    gongju = TokenDomain.from_dict(api.get("/v1/cities/gongju/gift-domain").json())
    elsewhere = _gift(chain, gongju, resident, receiver.address, 1_000)
    error = _error(api.post(PATH, json=elsewhere), 422)
    assert (error["code"], error["field"]) == ("invalid_signature", "signature")
    assert domain.name in error["accepted"]
    # A value changed after signing no longer matches the signature.
    altered = _gift(chain, domain, resident, receiver.address, 1_000) | {"value": 2_000}
    assert _error(api.post(PATH, json=altered), 422)["code"] == "invalid_signature"


@pytest.mark.parametrize(
    ("window", "code", "field"),
    [
        ({"valid_after": -7200, "valid_before": -3600}, "expired", "validBefore"),
        ({"valid_after": -60, "valid_before": 10}, "expired", "validBefore"),
        ({"valid_after": 600, "valid_before": 3600}, "not_yet_valid", "validAfter"),
        ({"valid_after": -60, "valid_before": 2 * 86_400}, "validity_too_long", "validBefore"),
        (
            {"valid_after": -2 * 86_400, "valid_before": 3600},
            "authorization_window_too_long",
            "validAfter",
        ),
    ],
)
def test_a_window_the_relay_or_the_contract_would_not_take_is_refused(
    api, chain, domain, resident, receiver, window, code, field
):
    now = _now(chain)
    moments = {key: now + offset for key, offset in window.items()}
    body = _gift(chain, domain, resident, receiver.address, 1_000, **moments)
    error = _error(api.post(PATH, json=body), 422)
    assert (error["code"], error["field"]) == (code, field)


def test_a_zero_nonce_is_refused(api, chain, domain, resident, receiver):
    body = _gift(chain, domain, resident, receiver.address, 1_000, nonce=bytes(32))
    assert _error(api.post(PATH, json=body), 422)["code"] == "zero_nonce"


# --- refusals of the contract -------------------------------------------------------------------


def _refused_and_nothing_sent(api, city, body: dict, resident, receiver) -> dict:
    balances = (_balance(city, resident), _balance(city, receiver))
    error = _error(api.post(PATH, json=body), 422)
    state = city.chain.gifts.call(
        "authorizationState", resident.address, bytes.fromhex(body["nonce"][2:])
    )
    assert state is AuthorizationState.UNUSED
    assert (_balance(city, resident), _balance(city, receiver)) == balances
    return error


def test_more_than_the_money_bought_with_krw_is_refused_naming_the_contracts_error(
    api, chain, city, domain, resident, receiver
):
    body = _gift(chain, domain, resident, receiver.address, CHARGED + 1)
    error = _refused_and_nothing_sent(api, city, body, resident, receiver)
    assert (error["code"], error["field"], error["value"]) == (
        "not_cash_funded",
        "value",
        CHARGED + 1,
    )
    assert f"CityGiftsNotCashFunded(from={resident.address}, giftable={CHARGED}" in error["message"]
    assert error["accepted"].startswith(f"at most {CHARGED}")


def test_over_the_receivers_monthly_cap_is_refused(api, chain, city, domain, resident, receiver):
    gifts = chain.w3.eth.contract(address=city.chain.gifts.address, abi=packaged_abi("CityGifts"))
    send_cap, receive_cap = (
        gifts.functions.monthlySendCap().call(),
        (gifts.functions.monthlyReceiveCap().call()),
    )
    admin = city.roles["city_admin"]
    chain.send(admin, gifts.functions.setMonthlyCaps(send_cap, 5_000))
    try:
        body = _gift(chain, domain, resident, receiver.address, 6_000)
        error = _refused_and_nothing_sent(api, city, body, resident, receiver)
    finally:
        chain.send(admin, gifts.functions.setMonthlyCaps(send_cap, receive_cap))
    assert (error["code"], error["field"]) == ("receive_cap_exceeded", "value")
    assert "CityGiftsReceiveCapExceeded" in error["message"]
    assert error["accepted"].startswith("at most 5000")


def test_a_gift_to_a_merchant_or_to_oneself_is_refused(
    api, chain, city, domain, merchant, resident, receiver
):
    body = _gift(chain, domain, resident, merchant.address, 1_000)
    error = _error(api.post(PATH, json=body), 422)
    assert (error["code"], error["field"], error["value"]) == (
        "not_active_resident",
        "to",
        merchant.address,
    )
    body = _gift(chain, domain, resident, resident.address, 1_000)
    error = _refused_and_nothing_sent(api, city, body, resident, receiver)
    assert (error["code"], error["field"]) == ("gift_to_self", "to")


def test_gifts_on_their_way_count_against_what_the_giver_may_give(
    api, chain, city, domain, resident, receiver
):
    first = api.post(PATH, json=_gift(chain, domain, resident, receiver.address, 60_000))
    assert first.status_code == 202, first.text
    second = _gift(chain, domain, resident, receiver.address, 60_000)
    response = api.post(PATH, json=second)
    # Refused while the first is on its way, or by the chain once it is included.
    error = _error(response, 422)
    assert (error["code"], error["field"]) == ("not_cash_funded", "value")
    assert _wait(api, resident, first.json()["id"])["status"] == "included"
    assert _balance(city, receiver) == 60_000


# --- the wallet ---------------------------------------------------------------------------------


def test_the_wallet_client_gives_and_follows_the_gift(backend, city, resident, receiver):
    with WalletClient(backend.url, resident) as wallet:
        gift = wallet.gift(receiver.address, 7_000)
    assert (gift["status"], gift["value"], gift["to"]) == ("included", 7_000, receiver.address)
    assert _balance(city, receiver) == 7_000


def test_the_command_line_gives_with_a_key_file(backend, city, resident, receiver, tmp_path):
    key_file = tmp_path / "giver.key"
    key_file.write_text("0x" + resident.key.hex() + "\n")

    def wallet(amount: int):
        return subprocess.run(
            [
                *(sys.executable, "-m", "citypay.wallet", "gift", "--city", CITY),
                *("--to", receiver.address, "--amount", str(amount)),
                *("--key-file", str(key_file), "--api", backend.url),
            ],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=90,
        )

    done = wallet(5_000)
    assert done.returncode == 0, done.stderr
    printed = json.loads(done.stdout)
    assert (printed["status"], printed["value"], printed["from"], printed["final"]) == (
        "included",
        5_000,
        resident.address,
        True,
    )
    assert _balance(city, receiver) == 5_000
    refused = wallet(CHARGED)
    assert refused.returncode == 2
    assert "CityGiftsNotCashFunded" in refused.stderr
