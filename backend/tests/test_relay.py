"""The gasless payment relay over HTTP, on the real chain."""

from __future__ import annotations

import json
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest
from citypay.authorization import (
    _AUTHORIZATION_FIELDS,
    RECEIVE_WITH_AUTHORIZATION,
    TRANSFER_WITH_AUTHORIZATION,
    TokenDomain,
    authorization_digest,
    sign_authorization,
    typed_message,
)
from conftest import CITY, bearer, wait_for_status
from eth_account.messages import _hash_eip191_message
from platform_harness import new_wallet


def domain(city, chain_id: int = 58210) -> TokenDomain:
    return TokenDomain(city.name, "1", chain_id, city.token.address)


def body(auth) -> dict:
    return auth.as_json()


def signed(city, payer, merchant, value: int, **kwargs):
    kwargs.setdefault("valid_before", int(time.time()) + 600)
    return sign_authorization(
        payer.key, kwargs.pop("domain", domain(city)), to=merchant.address, value=value, **kwargs
    )


def post(api, auth):
    return api.post(f"/v1/cities/{CITY}/payments", json=body(auth))


def test_the_relays_digest_is_the_one_a_wallet_signs():
    payer, merchant = new_wallet("digest-payer"), new_wallet("digest-merchant")
    token_domain = TokenDomain("김포페이", "1", 58210, new_wallet("digest-token").address)
    for primary_type in (TRANSFER_WITH_AUTHORIZATION, RECEIVE_WITH_AUTHORIZATION):
        auth = sign_authorization(
            payer.key,
            token_domain,
            to=merchant.address,
            value=7,
            valid_after=3,
            primary_type=primary_type,
        )
        fields = dict(
            zip(
                ("from", "to", "value", "validAfter", "validBefore", "nonce"),
                auth.as_args()[:6],
                strict=True,
            )
        )
        wallet_message = typed_message(token_domain, primary_type, _AUTHORIZATION_FIELDS, fields)
        assert authorization_digest(token_domain, auth, primary_type) == _hash_eip191_message(
            wallet_message
        )


def test_signed_authorization_is_relayed_and_included(api, city, resident, merchant):
    before = city.token.functions.balanceOf(merchant.address).call()
    response = post(api, signed(city, resident, merchant, 12_000))
    assert response.status_code == 202
    assert response.json()["status"] == "accepted"
    payment = wait_for_status(api, response.json())
    assert payment["status"] == "included"
    assert payment["blockNumber"] > 0 and payment["transactionHash"].startswith("0x")
    # With no confirmations (the default, an instant-finality chain) included is final at once.
    assert payment["final"] is True
    assert city.token.functions.balanceOf(merchant.address).call() == before + 12_000


def test_a_pos_is_told_each_status_of_a_payment_to_its_merchant(
    api, backend, city, resident, merchant, keys
):
    events, failures = [], []

    def listen():
        path = f"{backend.url}/v1/cities/{CITY}/merchants/{merchant.address}/payments/events"
        try:
            with httpx.stream("GET", path, headers=bearer(keys["pos"]), timeout=30) as stream:
                for line in stream.iter_lines():
                    if line.startswith("data:"):
                        events.append(json.loads(line[5:]))
                        if events[-1]["status"] == "included" and events[-1]["id"] == mine[0]:
                            return
        except httpx.HTTPError as error:
            failures.append(error)

    mine: list[int] = [-1]
    listener = threading.Thread(target=listen, daemon=True)
    listener.start()
    time.sleep(0.5)  # the backlog of the merchant's earlier payments comes first
    response = post(api, signed(city, resident, merchant, 3_000))
    mine[0] = response.json()["id"]
    listener.join(timeout=30)
    assert not failures
    statuses = [e["status"] for e in events if e["id"] == mine[0]]
    assert statuses[-1] == "included" and statuses == sorted(set(statuses), key=statuses.index)
    assert set(statuses) <= {"accepted", "submitted", "included"}
    assert events[-1]["transactionHash"].startswith("0x")


def test_the_same_authorization_posted_twice_is_one_payment(api, city, resident, merchant):
    auth = signed(city, resident, merchant, 5_000)
    first, second = post(api, auth), post(api, auth)
    assert (first.status_code, second.status_code) == (202, 200)
    assert first.json()["id"] == second.json()["id"]
    wait_for_status(api, first.json())
    third = post(api, auth)
    assert third.status_code == 200 and third.json()["status"] == "included"
    assert city.token.functions.balanceOf(resident.address).call() == 110_000 - 5_000


def test_a_reused_nonce_with_other_terms_is_refused(api, city, resident, merchant):
    nonce = b"\x07" * 32
    assert post(api, signed(city, resident, merchant, 1_000, nonce=nonce)).status_code == 202
    refused = post(api, signed(city, resident, merchant, 2_000, nonce=nonce))
    assert refused.status_code == 409
    assert refused.json()["error"]["code"] == "nonce_reused"
    assert refused.json()["error"]["field"] == "nonce"


def test_a_signature_by_another_key_is_refused_naming_the_signature(api, city, resident, merchant):
    auth = signed(city, resident, merchant, 1_000)
    forged = body(auth) | {"value": 9_000}
    refused = api.post(f"/v1/cities/{CITY}/payments", json=forged)
    assert refused.status_code == 422
    error = refused.json()["error"]
    assert error["code"] == "invalid_signature" and error["field"] == "signature"
    assert resident.address in error["message"]


def test_an_authorization_signed_for_another_chain_is_refused(api, city, resident, merchant):
    refused = post(api, signed(city, resident, merchant, 1_000, domain=domain(city, chain_id=1)))
    assert refused.status_code == 422
    assert refused.json()["error"]["code"] == "invalid_signature"
    assert "chain id 58210" in refused.json()["error"]["accepted"]


def test_an_expired_authorization_is_refused_naming_valid_before(api, city, resident, merchant):
    stale = int(time.time()) - 5
    refused = post(api, signed(city, resident, merchant, 1_000, valid_before=stale))
    assert refused.status_code == 422
    assert refused.json()["error"] | {"message": None, "accepted": None} == {
        "code": "expired",
        "field": "validBefore",
        "value": stale,
        "message": None,
        "accepted": None,
    }


def test_an_authorization_not_yet_valid_is_refused(api, city, resident, merchant):
    later = int(time.time()) + 300
    refused = post(api, signed(city, resident, merchant, 1_000, valid_after=later))
    assert refused.status_code == 422
    assert refused.json()["error"]["code"] == "not_yet_valid"
    assert refused.json()["error"]["value"] == later


def test_a_payment_to_an_unregistered_wallet_is_refused(api, city, resident):
    from platform_harness import new_wallet

    refused = post(api, signed(city, resident, new_wallet("nobody"), 1_000))
    assert refused.status_code == 422
    assert refused.json()["error"]["code"] == "unknown_merchant"
    assert refused.json()["error"]["field"] == "to"


def test_a_payment_to_a_suspended_merchant_is_refused(api, city, resident, inactive_merchant):
    refused = post(api, signed(city, resident, inactive_merchant, 1_000))
    assert refused.status_code == 422
    assert refused.json()["error"]["code"] == "merchant_not_active"


def test_a_payment_over_the_balance_is_refused_counting_payments_in_flight(
    api, city, resident, merchant
):
    assert post(api, signed(city, resident, merchant, 100_000)).status_code == 202
    refused = post(api, signed(city, resident, merchant, 20_000))
    assert refused.status_code == 422
    error = refused.json()["error"]
    assert error["code"] == "insufficient_balance"
    assert error["accepted"] == "at most 10000"


def test_payments_posted_at_once_are_held_to_the_balance_together(api, city, resident, merchant):
    # 110,000 KRW held (100,000 charged and the incentive): three of five 30,000 go through.
    authorizations = [signed(city, resident, merchant, 30_000) for _ in range(5)]
    with ThreadPoolExecutor(max_workers=5) as pool:
        responses = list(pool.map(lambda a: post(api, a), authorizations))
    assert sorted(r.status_code for r in responses) == [202, 202, 202, 422, 422]
    refusals = [r.json()["error"] for r in responses if r.status_code == 422]
    assert {e["code"] for e in refusals} == {"insufficient_balance"}
    assert {e["accepted"] for e in refusals} == {"at most 20000"}
    finals = [wait_for_status(api, r.json()) for r in responses if r.status_code == 202]
    assert {p["status"] for p in finals} == {"included"}
    assert city.token.functions.balanceOf(resident.address).call() == 110_000 - 90_000


@pytest.mark.parametrize("point", ["after_batch_recorded", "after_batch_sent"])
def test_a_relayer_crash_between_recording_and_sending_pays_once(
    api, backend, chain, city, resident, merchant, point
):
    relayer = chain.deployment.account("relayer")
    relayer_nonce = chain.w3.eth.get_transaction_count(relayer)
    merchant_before = city.token.functions.balanceOf(merchant.address).call()
    backend.kill()
    backend.settings["CITYPAY_CRASH_AT"] = point
    try:
        backend.start()
        accepted = post(api, signed(city, resident, merchant, 4_000))
        assert accepted.status_code == 202
        assert backend.process.wait(timeout=30) == 86, "the backend did not crash at the point"
    finally:
        backend.settings.pop("CITYPAY_CRASH_AT")
        if backend.process.poll() is not None:
            backend.start()
    payment = wait_for_status(api, accepted.json(), timeout=30)
    assert payment["status"] == "included"
    assert city.token.functions.balanceOf(merchant.address).call() == merchant_before + 4_000
    # The batch recorded before the crash is the one mined, under the next nonce: none skipped.
    assert chain.w3.eth.get_transaction(payment["transactionHash"])["nonce"] == relayer_nonce
    assert chain.w3.eth.get_transaction_count(relayer) == relayer_nonce + 1


def test_an_authorization_paid_before_its_batch_is_included_not_failed(
    api, backend, chain, city, resident, merchant
):
    """Someone sends the published authorization directly before the relayer's batch: the batch
    reports it used, and the payment is the one that went through, not a failure."""
    merchant_before = city.token.functions.balanceOf(merchant.address).call()
    auth = signed(city, resident, merchant, 3_000)
    backend.kill()
    backend.settings["CITYPAY_CRASH_AT"] = "after_batch_recorded"
    try:
        backend.start()
        accepted = post(api, auth)
        assert accepted.status_code == 202
        assert backend.process.wait(timeout=30) == 86, "the backend did not crash at the point"
    finally:
        backend.settings.pop("CITYPAY_CRASH_AT")
    # The recorded batch is not sent yet: the authorization goes through another transaction.
    front_run = chain.send(
        chain.deployment.account("registrar"),
        city.token.functions.transferWithAuthorization(*auth.as_args()),
    )
    backend.start()
    payment = wait_for_status(api, accepted.json(), timeout=30)
    assert payment["status"] == "included"
    assert payment["transactionHash"] == "0x" + bytes(front_run["transactionHash"]).hex()
    assert city.token.functions.balanceOf(merchant.address).call() == merchant_before + 3_000


def test_a_nonce_used_on_chain_is_refused(api, city, resident, merchant, chain):
    auth = signed(city, resident, merchant, 1_000)
    relayer = chain.deployment.account("relayer")
    chain.send(relayer, city.token.functions.transferWithAuthorization(*auth.as_args()))
    refused = post(api, auth)
    assert refused.status_code == 409
    assert refused.json()["error"]["code"] == "nonce_used"


def test_malformed_json_gets_the_error_shape(api):
    refused = api.post(
        f"/v1/cities/{CITY}/payments",
        content=b"{not json",
        headers={"content-type": "application/json"},
    )
    assert refused.status_code == 422
    assert refused.json()["error"]["code"] == "malformed_json"


def test_a_missing_field_is_named(api, city, resident, merchant):
    incomplete = body(signed(city, resident, merchant, 1_000))
    del incomplete["validBefore"]
    refused = api.post(f"/v1/cities/{CITY}/payments", json=incomplete)
    assert refused.status_code == 422
    assert refused.json()["error"]["field"] == "validBefore"


def test_an_unknown_city_is_refused_listing_the_cities(api, city, resident, merchant):
    refused = api.post(
        "/v1/cities/seoul/payments", json=body(signed(city, resident, merchant, 1_000))
    )
    assert refused.status_code == 404
    assert refused.json()["error"]["code"] == "unknown_city"
    assert "gimpo" in refused.json()["error"]["accepted"]


def test_hundreds_of_payments_in_flight_are_each_included_once(api, city, chain, merchant):
    from platform_harness import new_wallet

    payers = []
    for index in range(20):
        wallet = new_wallet(f"crowd-{index}-{time.time_ns()}")
        chain.register_resident(CITY, wallet)
        chain.charge(CITY, wallet, 100_000)
        payers.append(wallet)
    authorizations = [signed(city, payer, merchant, 1_000) for payer in payers for _ in range(10)]
    merchant_before = city.token.functions.balanceOf(merchant.address).call()
    relayer = chain.deployment.account("relayer")
    relayer_nonce_before = chain.w3.eth.get_transaction_count(relayer)

    with ThreadPoolExecutor(max_workers=16) as pool:
        # Each authorization posted twice, concurrently: still one payment each.
        responses = list(pool.map(lambda a: post(api, a), authorizations + authorizations))
    assert all(r.status_code in (200, 202) for r in responses), [
        r.json() for r in responses if r.status_code >= 300
    ]
    accepted = {r.json()["id"]: r.json() for r in responses}
    assert len(accepted) == len(authorizations)
    finals = [wait_for_status(api, payment, timeout=60) for payment in accepted.values()]
    assert {p["status"] for p in finals} == {"included"}
    assert city.token.functions.balanceOf(merchant.address).call() == merchant_before + 1_000 * len(
        authorizations
    )
    # The relayer's transactions used consecutive nonces: no gap, none twice.
    batches = {p["transactionHash"] for p in finals}
    nonces = sorted(chain.w3.eth.get_transaction(h)["nonce"] for h in batches)
    assert nonces == list(range(nonces[0], nonces[0] + len(nonces)))
    assert nonces[0] >= relayer_nonce_before


def test_an_invoice_paid_by_one_payer_is_refused_to_another(api, city, chain, merchant, keys):
    from conftest import bearer
    from platform_harness import new_wallet

    invoice = api.post(
        f"/v1/cities/{CITY}/invoices",
        json={"merchant": merchant.address, "amount": 2_500},
        headers=bearer(keys["pos"]),
    ).json()
    first, second = (new_wallet(f"invoice-payer-{n}-{time.time_ns()}") for n in range(2))
    for payer in (first, second):
        chain.register_resident(CITY, payer)
        chain.charge(CITY, payer, 10_000)
    nonce = bytes.fromhex(invoice["invoiceId"][2:])
    assert post(api, signed(city, first, merchant, 2_500, nonce=nonce)).status_code == 202
    refused = post(api, signed(city, second, merchant, 2_500, nonce=nonce))
    assert refused.status_code == 409
    assert refused.json()["error"]["code"] == "invoice_paid"
    assert refused.json()["error"]["value"] == invoice["invoiceId"]


def test_an_authorization_the_database_cannot_hold_is_refused_alone_in_every_burst(
    api, city, chain, merchant
):
    # validBefore 2**64 is a legal uint256, correctly signed; it once reached the database's
    # 64-bit column inside the acceptor's group and failed every payment of that group with it.
    payers = []
    for index in range(5):
        wallet = new_wallet(f"burst-{index}-{time.time_ns()}")
        chain.register_resident(CITY, wallet)
        chain.charge(CITY, wallet, 100_000)
        payers.append(wallet)
    far = payers.pop()  # a resident with the balance: every check but the database's passes
    accepted = []
    for _ in range(5):
        valid = [signed(city, payer, merchant, 1_000) for payer in payers for _ in range(4)]
        bad = signed(city, far, merchant, 1_000, valid_before=2**64)
        with ThreadPoolExecutor(max_workers=len(valid) + 1) as pool:
            responses = list(pool.map(lambda a: post(api, a), [*valid[:8], bad, *valid[8:]]))
        refused = responses.pop(8)
        assert [r.status_code for r in responses] == [202] * len(valid), [
            r.text for r in responses if r.status_code != 202
        ]
        assert refused.status_code == 422, refused.text
        error = refused.json()["error"]
        assert (error["code"], error["field"], error["value"]) == (
            "validity_too_long",
            "validBefore",
            2**64,
        )
        assert "86,400 s from now" in error["accepted"]
        accepted += [r.json() for r in responses]
    finals = [wait_for_status(api, payment, timeout=60) for payment in accepted]
    assert {p["status"] for p in finals} == {"included"}


def test_a_group_member_that_fails_fails_alone():
    from citypay.payments.groups import GroupWorker

    def handle(group):
        for queued in group:
            if queued.item == "bad":
                raise OverflowError("Python int too large to convert to SQLite INTEGER")
        for queued in group:
            queued.future.set_result(queued.item.upper())

    worker = GroupWorker(handle, "test-group", largest=64)
    items = ["a", "b", "bad", "c", "d"]
    with ThreadPoolExecutor(max_workers=len(items)) as pool:
        futures = [pool.submit(worker.submit, item, 10) for item in items]
    outcomes = [f.exception() or f.result() for f in futures]
    assert outcomes[:2] + outcomes[3:] == ["A", "B", "C", "D"]
    assert isinstance(outcomes[2], OverflowError)
