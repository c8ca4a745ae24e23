"""The city office's API over HTTP: registrations, the merchant's signed payout account, the
lifecycle, freezes, the two-step recovery and confiscation, each sent from the city's duty
account and refused, when the chain refuses it, with the rule it broke.

A chain of its own: the recovery tests move its clock past the recovery delay.
"""

from __future__ import annotations

import time

import httpx
import pytest
from citypay.authorization import TokenDomain
from citypay.registry_authorization import sign_payout_account, sign_recovery_objection
from conftest import CITY, bearer, own_database_url
from eth_utils import keccak
from platform_harness import BackendUnderTest, ChainUnderTest, new_wallet

RESTAURANT, LARGE_MART = 5611, 4711


@pytest.fixture(scope="module")
def office(tmp_path_factory):
    folder = tmp_path_factory.mktemp("office")
    chain = ChainUnderTest(folder / "chain")
    chain.start_and_deploy()
    backend = BackendUnderTest(chain, own_database_url(folder, "office"), folder / "backend.log")
    backend.start()
    with httpx.Client(base_url=backend.url, timeout=30) as api:
        yield {
            "api": api,
            "chain": chain,
            "registrar": bearer(backend.api_key("gimpo-desk", "registrar", CITY)),
            "compliance": bearer(backend.api_key("gimpo-compliance", "compliance", CITY)),
            "operator": bearer(backend.api_key("gimpo-office", "operator", CITY)),
            "gongju_registrar": bearer(backend.api_key("gongju-desk", "registrar", "gongju")),
        }
    backend.stop()
    chain.stop()


def _resident(office, seed: str):
    wallet = new_wallet(f"office-resident:{seed}:{time.time_ns()}")
    created = office["api"].post(
        f"/v1/cities/{CITY}/residents",
        json={
            "wallet": wallet.address,
            "identityHash": "0x" + keccak(text=f"identity:{wallet.address}").hex(),
            "region": 41570,
        },
        headers=office["registrar"],
    )
    assert created.status_code == 201, created.text
    return wallet, created.json()


def _merchant_body(office, wallet, *, category=RESTAURANT, signer=None, payout=None) -> dict:
    api = office["api"]
    domain = TokenDomain.from_dict(api.get(f"/v1/cities/{CITY}/registry-domain").json())
    payout = payout or keccak(text=f"bank-account:{wallet.address}")
    deadline = office["chain"].w3.eth.get_block("latest")["timestamp"] + 3600
    signature = sign_payout_account(
        (signer or wallet).key,
        domain,
        payout_account_hash=payout,
        deadline=deadline,
        merchant=wallet.address,
    )
    return {
        "wallet": wallet.address,
        "businessIdHash": "0x" + keccak(text=f"business:{wallet.address}").hex(),
        "payoutAccountHash": "0x" + payout.hex(),
        "annualRevenue": 300_000_000,
        "category": category,
        "region": 41570,
        "deadline": deadline,
        "signature": "0x" + signature.hex(),
    }


def _error(response, status: int) -> dict:
    assert response.status_code == status, response.text
    return response.json()["error"]


def test_a_registrar_key_registers_a_resident_as_the_chain_then_has_it(office):
    wallet, created = _resident(office, "registered")
    account = created["account"]
    assert (account["kind"], account["status"], account["active"]) == ("resident", "active", True)
    assert created["action"]["actor"] == "gimpo-desk"
    assert created["action"]["transactionHash"].startswith("0x")
    city = office["chain"].deployment.city(CITY)
    assert city.token.functions.accountKind(wallet.address).call() == 1


def test_the_same_identity_twice_is_refused_naming_the_rule(office):
    wallet, _ = _resident(office, "identity")
    other = new_wallet(f"office-identity-thief:{time.time_ns()}")
    refused = office["api"].post(
        f"/v1/cities/{CITY}/residents",
        json={
            "wallet": other.address,
            "identityHash": "0x" + keccak(text=f"identity:{wallet.address}").hex(),
            "region": 41570,
        },
        headers=office["registrar"],
    )
    error = _error(refused, 409)
    assert (error["code"], error["field"]) == ("identity_in_use", "identityHash")


def test_a_merchant_registers_with_its_own_signature_of_its_payout_account(office):
    shop = new_wallet(f"office-shop:{time.time_ns()}")
    created = office["api"].post(
        f"/v1/cities/{CITY}/merchants",
        json=_merchant_body(office, shop),
        headers=office["registrar"],
    )
    assert created.status_code == 201, created.text
    account = created.json()["account"]
    assert account["kind"] == "merchant"
    assert account["payoutAccountHash"] == "0x" + keccak(text=f"bank-account:{shop.address}").hex()


def test_a_payout_account_signed_by_another_key_is_refused(office):
    shop = new_wallet(f"office-forged-shop:{time.time_ns()}")
    body = _merchant_body(office, shop, signer=new_wallet("office-registrar-own-pick"))
    error = _error(
        office["api"].post(f"/v1/cities/{CITY}/merchants", json=body, headers=office["registrar"]),
        422,
    )
    assert (error["code"], error["field"]) == ("invalid_signature", "signature")


def test_an_excluded_category_is_refused_naming_it(office):
    shop = new_wallet(f"office-mart:{time.time_ns()}")
    body = _merchant_body(office, shop, category=LARGE_MART)
    error = _error(
        office["api"].post(f"/v1/cities/{CITY}/merchants", json=body, headers=office["registrar"]),
        422,
    )
    assert (error["code"], error["field"], error["value"]) == (
        "category_excluded",
        "category",
        LARGE_MART,
    )


def test_a_changed_payout_account_needs_the_merchant_s_signature_at_its_nonce(office):
    api = office["api"]
    shop = new_wallet(f"office-moving-shop:{time.time_ns()}")
    api.post(f"/v1/cities/{CITY}/merchants", json=_merchant_body(office, shop),
             headers=office["registrar"]).raise_for_status()  # fmt: skip
    new_account = keccak(text=f"new-bank-account:{shop.address}")
    nonce = api.get(f"/v1/cities/{CITY}/accounts/{shop.address}", headers=office["operator"])
    assert nonce.json()["payoutAccountNonce"] == 1
    domain = TokenDomain.from_dict(api.get(f"/v1/cities/{CITY}/registry-domain").json())
    deadline = office["chain"].w3.eth.get_block("latest")["timestamp"] + 600
    signature = sign_payout_account(
        shop.key, domain, payout_account_hash=new_account, deadline=deadline, nonce=1
    )
    changed = api.post(
        f"/v1/cities/{CITY}/merchants/{shop.address}/payout-account",
        json={
            "payoutAccountHash": "0x" + new_account.hex(),
            "deadline": deadline,
            "signature": "0x" + signature.hex(),
        },
        headers=office["registrar"],
    )
    assert changed.status_code == 200, changed.text
    assert changed.json()["account"]["payoutAccountHash"] == "0x" + new_account.hex()
    # The same signature again (the nonce has moved on) sets nothing.
    replayed = api.post(
        f"/v1/cities/{CITY}/merchants/{shop.address}/payout-account",
        json={
            "payoutAccountHash": "0x" + new_account.hex(),
            "deadline": deadline,
            "signature": "0x" + signature.hex(),
        },
        headers=office["registrar"],
    )
    assert _error(replayed, 422)["code"] == "invalid_signature"


def test_suspend_activate_and_revoke_follow_the_registry(office):
    api = office["api"]
    wallet, _ = _resident(office, "lifecycle")
    base = f"/v1/cities/{CITY}/accounts/{wallet.address}"
    suspended = api.post(f"{base}/suspend", headers=office["registrar"])
    assert suspended.json()["account"]["status"] == "suspended"
    error = _error(api.post(f"{base}/suspend", headers=office["registrar"]), 409)
    assert (error["code"], error["field"]) == ("invalid_status_change", "wallet")
    assert api.post(f"{base}/activate", headers=office["registrar"]).json()["account"]["active"]
    # A revocation for illegal exchange bans a business: only JSON true or false decides it.
    for unclear in (1, "true", "yes", None):
        refused = api.post(
            f"{base}/revoke", json={"illegalExchange": unclear}, headers=office["registrar"]
        )
        error = _error(refused, 422)
        assert (error["field"], error["value"]) == ("illegalExchange", unclear)
    revoked = api.post(
        f"{base}/revoke", json={"illegalExchange": False}, headers=office["registrar"]
    )
    assert revoked.json()["account"]["status"] == "revoked"


def test_each_duty_s_key_does_only_its_duty_and_only_in_its_city(office):
    api = office["api"]
    wallet, _ = _resident(office, "duties")
    base = f"/v1/cities/{CITY}/accounts/{wallet.address}"
    assert _error(api.post(f"{base}/freeze", headers=office["registrar"]), 403)["code"] == (
        "forbidden"
    )
    assert _error(api.post(f"{base}/suspend", headers=office["compliance"]), 403)
    assert _error(api.post(f"{base}/suspend", headers=office["gongju_registrar"]), 403)
    assert _error(api.post(f"{base}/suspend", headers=office["operator"]), 403)
    assert api.post(f"{base}/freeze", headers=office["compliance"]).json()["account"]["frozen"]
    unfrozen = api.post(f"{base}/unfreeze", headers=office["compliance"]).json()
    assert unfrozen["account"]["frozen"] is False


def test_confiscation_follows_a_revocation_for_illegal_exchange_only(office):
    api, chain = office["api"], office["chain"]
    wallet, _ = _resident(office, "broker")
    chain.charge(CITY, wallet, 50_000)
    base = f"/v1/cities/{CITY}/accounts/{wallet.address}"
    reason = {"reason": "0x" + keccak(text="case 2026-0042").hex()}
    error = _error(api.post(f"{base}/confiscate", json=reason, headers=office["compliance"]), 409)
    assert error["code"] == "not_revoked_for_illegal_exchange"
    api.post(f"{base}/revoke", json={"illegalExchange": True},
             headers=office["registrar"]).raise_for_status()  # fmt: skip
    confiscated = api.post(f"{base}/confiscate", json=reason, headers=office["compliance"])
    assert confiscated.status_code == 200, confiscated.text
    assert confiscated.json()["account"]["balance"] == 0


def test_a_recovery_is_proposed_held_objected_to_and_then_executed_after_its_delay(office):
    api, chain = office["api"], office["chain"]
    wallet, _ = _resident(office, "lost-phone")
    chain.charge(CITY, wallet, 40_000)
    replacement = new_wallet(f"office-new-phone:{time.time_ns()}")
    base = f"/v1/cities/{CITY}/accounts/{wallet.address}"
    proposed = api.post(
        f"{base}/recovery", json={"replacement": replacement.address}, headers=office["compliance"]
    )
    assert proposed.status_code == 201, proposed.text
    account = proposed.json()["account"]
    assert account["heldForRecovery"] is True
    assert account["pendingRecovery"]["replacement"] == replacement.address
    error = _error(api.post(f"{base}/recovery/execute", headers=office["registrar"]), 409)
    assert (error["code"], error["field"]) == ("recovery_not_due", "wallet")
    # The holder still has its key: its signed objection ends the recovery.
    domain = TokenDomain.from_dict(api.get(f"/v1/cities/{CITY}/registry-domain").json())
    signature = sign_recovery_objection(
        wallet.key,
        domain,
        replacement=replacement.address,
        proposed_at=account["pendingRecovery"]["proposedAt"],
    )
    objected = api.post(f"{base}/recovery/objection", json={"signature": "0x" + signature.hex()})
    assert objected.status_code == 200, objected.text
    assert objected.json()["account"]["heldForRecovery"] is False
    # Proposed again, and executed once the delay has passed.
    api.post(f"{base}/recovery", json={"replacement": replacement.address},
             headers=office["compliance"]).raise_for_status()  # fmt: skip
    registry = chain.deployment.city(CITY).registry.functions
    chain.w3.provider.make_request("evm_increaseTime", [registry.recoveryDelay().call() + 1])
    chain.w3.provider.make_request("evm_mine", [])
    executed = api.post(f"{base}/recovery/execute", headers=office["registrar"])
    assert executed.status_code == 200, executed.text
    assert executed.json()["account"]["retired"] is True
    moved = api.get(f"/v1/cities/{CITY}/accounts/{replacement.address}", headers=office["operator"])
    assert moved.json()["balance"] == 44_000
    actions = api.get(
        f"/v1/cities/{CITY}/office-actions", params={"wallet": wallet.address},
        headers=office["operator"],
    ).json()  # fmt: skip
    assert [a["action"] for a in actions] == [
        "execute_recovery",
        "propose_recovery",
        "object_to_recovery",
        "propose_recovery",
        "register_resident",
    ]


def test_a_replacement_already_registered_or_retired_is_refused_naming_the_replacement(office):
    api = office["api"]
    lost, _ = _resident(office, "lost-again")
    neighbour, _ = _resident(office, "neighbour")
    base = f"/v1/cities/{CITY}/accounts/{lost.address}"
    proposed = api.post(
        f"{base}/recovery", json={"replacement": neighbour.address}, headers=office["compliance"]
    )
    error = _error(proposed, 409)
    assert (error["code"], error["field"], error["value"]) == (
        "already_registered",
        "replacement",
        neighbour.address,
    )
    # The wallet acted on is still named as the wallet.
    stranger = new_wallet(f"office-stranger:{time.time_ns()}")
    error = _error(
        api.post(f"/v1/cities/{CITY}/accounts/{stranger.address}/recovery",
                 json={"replacement": lost.address}, headers=office["compliance"]),
        404,
    )  # fmt: skip
    assert (error["field"], error["value"]) == ("wallet", stranger.address)


def test_the_registries_lists_are_the_chain_s(office):
    api = office["api"]
    wallet, _ = _resident(office, "listed")
    listed = api.get(
        f"/v1/cities/{CITY}/residents", params={"limit": 500}, headers=office["operator"]
    )
    assert wallet.address in {r["wallet"] for r in listed.json()}
