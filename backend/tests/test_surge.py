"""Surge control over real HTTP: a burst over a limit is refused alone with 429, Retry-After and
the error shape, nothing of it done; the others go through; the bank's deposit notifications and
the health check are never limited. A backend of this module's own, with low limits, on a chain
of its own (its relayer must not share nonces with the session's)."""

from __future__ import annotations

import time

import httpx
import pytest
from citypay.api.surge import PaymentIntake
from citypay.authorization import TokenDomain, sign_authorization
from conftest import bearer, own_database_url
from platform_harness import BackendUnderTest, deployed_chain, new_wallet, serving
from test_charging import notice, signed_headers

CITY = "gimpo"
LIMITS = {
    "RATE_LIMIT_PER_ADDRESS": "60/second",  # off by default; on here, above the tests' pace
    "RATE_LIMIT_PER_KEY": "5/second",
    "RATE_LIMIT_PER_WALLET": "3/minute",
}


@pytest.fixture(scope="module")
def chain(tmp_path_factory):
    yield from deployed_chain(tmp_path_factory.mktemp("surge-chain"))


@pytest.fixture(scope="module")
def backend(chain, tmp_path_factory):
    folder = tmp_path_factory.mktemp("surge-backend")
    server = BackendUnderTest(chain, own_database_url(folder, "surge"), folder / "backend.log")
    server.settings.update(LIMITS)
    yield from serving(server)


@pytest.fixture(scope="module")
def api(backend):
    with httpx.Client(base_url=backend.url, timeout=30) as client:
        yield client


def _refused_for_rate(response: httpx.Response, code: str = "rate_limited") -> int:
    assert response.status_code == 429, response.text
    error = response.json()["error"]
    assert error["code"] == code
    assert "Retry-After" in error["accepted"]
    retry_after = int(response.headers["Retry-After"])
    assert 1 <= retry_after <= 60
    return retry_after


def test_a_burst_over_a_keys_limit_is_refused_with_retry_after(api, backend):
    key = bearer(backend.api_key("surge-operator", "operator", CITY))
    answers = [api.get(f"/v1/cities/{CITY}/deposits", headers=key) for _ in range(12)]
    codes = [answer.status_code for answer in answers]
    assert codes[:5] == [200] * 5, codes
    refused = [answer for answer in answers if answer.status_code == 429]
    assert refused, codes
    retry_after = _refused_for_rate(refused[0])
    assert "the limit is 5 per second" in refused[0].json()["error"]["message"]
    # Another key is not slowed by this one.
    other = bearer(backend.api_key("surge-operator-2", "operator", CITY))
    assert api.get(f"/v1/cities/{CITY}/deposits", headers=other).status_code == 200
    time.sleep(retry_after)
    assert api.get(f"/v1/cities/{CITY}/deposits", headers=key).status_code == 200


def _domain(chain) -> TokenDomain:
    city = chain.deployment.city(CITY)
    return TokenDomain(city.name, "1", chain.chain_id, city.token.address)


def test_a_wallet_over_its_limit_is_refused_and_nothing_of_it_is_recorded(api, chain):
    payer, other = new_wallet("surge-payer"), new_wallet("surge-other-payer")
    merchant = new_wallet("surge-merchant")
    for wallet in (payer, other):
        chain.register_resident(CITY, wallet)
        chain.charge(CITY, wallet, 100_000)
    chain.register_merchant(CITY, merchant)
    signed = [
        sign_authorization(payer.key, _domain(chain), to=merchant.address, value=1_000 + n)
        for n in range(4)
    ]
    answers = [api.post(f"/v1/cities/{CITY}/payments", json=s.as_json()) for s in signed]
    assert [a.status_code for a in answers[:3]] == [202] * 3, [a.text for a in answers]
    _refused_for_rate(answers[3])
    assert "wallet " + payer.address in answers[3].json()["error"]["message"]
    fourth = signed[3]
    status = api.get(f"/v1/cities/{CITY}/payments/{payer.address}/0x{fourth.nonce.hex()}")
    assert status.status_code == 404, status.text  # refused up front: never recorded
    # Another payer's payment is not refused for this one's burst, nor for junk naming it: what
    # its key did not sign spends none of its allowance.
    for n in range(4):
        forged = sign_authorization(payer.key, _domain(chain), to=merchant.address, value=9 + n)
        junk = forged.as_json() | {"from": other.address}
        refused = api.post(f"/v1/cities/{CITY}/payments", json=junk)
        assert refused.json()["error"]["code"] == "invalid_signature", refused.text
    theirs = sign_authorization(other.key, _domain(chain), to=merchant.address, value=500)
    assert api.post(f"/v1/cities/{CITY}/payments", json=theirs.as_json()).status_code == 202


def test_the_banks_notifications_are_never_rate_limited(api, backend, chain):
    bank = backend.api_key("surge-bank", "bank", CITY)
    resident = new_wallet("surge-depositor")
    chain.register_resident(CITY, resident)
    bodies = [notice(resident.address, 1_000) for _ in range(8)]  # past the key's 5 a second
    answers = [
        api.post(f"/v1/cities/{CITY}/deposits", content=body, headers=signed_headers(bank, body))
        for body in bodies
    ]
    assert [a.status_code for a in answers] == [200] * 8, [a.text for a in answers]


def test_the_health_check_is_never_rate_limited(api):
    assert {api.get("/health").status_code for _ in range(80)} <= {200}


def test_the_openapi_documents_429_where_it_may_happen(api):
    paths = api.get("/openapi.json").json()["paths"]
    assert "429" in paths["/v1/cities/{city}/payments"]["post"]["responses"]
    assert (
        "Retry-After"
        in paths["/v1/cities/{city}/payments"]["post"]["responses"]["429"]["description"]
    )
    assert "429" not in paths["/v1/cities/{city}/deposits"]["post"]["responses"]
    assert "429" not in paths["/health"]["get"]["responses"]


def test_a_full_intake_refuses_new_payments_until_the_relayer_catches_up():
    waiting = [5]
    intake = PaymentIntake(lambda: waiting[0], 5, every=0)
    refused = intake.refusal()
    assert refused is not None and refused.status_code == 429
    assert refused.code == "intake_full" and refused.headers == {"Retry-After": "2"}
    assert "5 payments wait" in refused.message
    waiting[0] = 4
    assert intake.refusal() is None
    assert PaymentIntake(lambda: 10**6, 0).refusal() is None  # 0: no bound
