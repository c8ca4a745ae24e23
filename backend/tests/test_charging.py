"""Charging (충전): a bank's signed deposit notification becomes tokens plus the city's incentive
on chain, once, whatever is retried, replayed or crashes."""

from __future__ import annotations

import json
import time
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest
from citypay.charging.notifications import sign
from citypay.charging.service import deposit_reference
from conftest import CITY, bearer
from platform_harness import BANK_WEBHOOK_SECRET, new_wallet

BANK = "test-bank"  # the name of keys["bank"]: the bank's identity in deposit references
DEPOSITS = f"/v1/cities/{CITY}/deposits"


def signed_headers(key: str, body: bytes, timestamp: int | None = None) -> dict:
    timestamp = int(time.time()) if timestamp is None else timestamp
    return bearer(key) | {
        "Content-Type": "application/json",
        "X-Citypay-Timestamp": str(timestamp),
        "X-Citypay-Signature": sign(BANK_WEBHOOK_SECRET, timestamp, body),
    }


def notice(resident: str, amount: int, deposit_id: str | None = None) -> bytes:
    deposit_id = deposit_id or f"dep-{time.time_ns()}"
    return json.dumps({"depositId": deposit_id, "resident": resident, "amount": amount}).encode()


def post(client, key: str, body: bytes, **headers) -> httpx.Response:
    return client.post(DEPOSITS, content=body, headers=signed_headers(key, body) | headers)


@pytest.fixture
def fresh_resident(chain, request):
    wallet = new_wallet(f"charging:{request.node.nodeid}:{time.time_ns()}")
    chain.register_resident(CITY, wallet)
    return wallet.address


@pytest.fixture(scope="module")
def idle_resident(chain):
    """A resident for requests that must mint nothing."""
    wallet = new_wallet(f"charging-idle:{time.time_ns()}")
    chain.register_resident(CITY, wallet)
    return wallet.address


def incentive_of(city, amount: int) -> int:
    return amount * city.treasury.functions.policy().call()[3] // 10_000


def test_a_deposit_mints_once_with_the_incentive(api, city, keys, fresh_resident):
    body = notice(fresh_resident, 50_000)
    headers = signed_headers(keys["bank"], body)
    first = api.post(DEPOSITS, content=body, headers=headers)
    assert first.status_code == 200, first.text
    deposit = first.json()
    incentive = incentive_of(city, 50_000)
    assert incentive > 0
    assert deposit["status"] == "issued"
    assert deposit["incentive"] == incentive
    reference = deposit_reference(BANK, json.loads(body)["depositId"])
    assert deposit["reference"] == "0x" + reference.hex()
    assert city.treasury.functions.depositIssued(reference).call()
    assert city.token.functions.balanceOf(fresh_resident).call() == 50_000 + incentive

    # The same signed notification again (a replay within the window), then the bank's retry
    # with a new timestamp and signature: the same deposit, nothing minted again.
    again = api.post(DEPOSITS, content=body, headers=headers)
    retried = post(api, keys["bank"], body)
    assert again.status_code == retried.status_code == 200
    assert again.json() == retried.json() == deposit
    assert city.token.functions.balanceOf(fresh_resident).call() == 50_000 + incentive


def test_another_body_under_a_used_deposit_id_is_a_conflict(api, city, keys, idle_resident):
    body = notice(idle_resident, 1_000)
    assert post(api, keys["bank"], body).json()["status"] == "issued"
    changed = json.loads(body) | {"amount": 2_000}
    response = post(api, keys["bank"], json.dumps(changed).encode())
    assert response.status_code == 409
    error = response.json()["error"]
    assert (error["code"], error["field"], error["value"]) == ("deposit_id_reused", "amount", 2_000)
    assert "1000" in error["accepted"]


@pytest.mark.parametrize(
    ("change", "status", "code", "field"),
    [
        ({"X-Citypay-Signature": "sha256=" + "0" * 64}, 401, "invalid_signature", None),
        ({"X-Citypay-Timestamp": "1000"}, 401, "stale_notification", None),
        ({"X-Citypay-Timestamp": None}, 401, "missing_signature_header", None),
        ({"X-Citypay-Signature": None}, 401, "missing_signature_header", None),
        ({"X-Citypay-Signature": "md5=abc"}, 400, "invalid_signature_format", None),
        ({"X-Citypay-Timestamp": "yesterday"}, 400, "invalid_timestamp", None),
    ],
)
def test_unsigned_or_stale_notifications_are_refused(
    api, keys, idle_resident, change, status, code, field
):
    body = notice(idle_resident, 1_000)
    headers = signed_headers(keys["bank"], body)
    header, value = next(iter(change.items()))
    if value is None:
        del headers[header]
    else:
        headers[header] = value
    response = api.post(DEPOSITS, content=body, headers=headers)
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert error["code"] == code
    assert error["field"] == header and error["accepted"]


def test_a_stale_but_correctly_signed_notification_is_refused(api, keys, idle_resident):
    body = notice(idle_resident, 1_000)
    headers = signed_headers(keys["bank"], body, timestamp=int(time.time()) - 301)
    error = api.post(DEPOSITS, content=body, headers=headers).json()["error"]
    assert error["code"] == "stale_notification"
    assert "300 s" in error["accepted"]


@pytest.mark.parametrize(
    ("body", "code", "field"),
    [
        (b'{"depositId": "d1", "resident": ', "malformed_json", None),
        (b'{"depositId": "d1", "amount": 5}', "invalid_field", "resident"),
        (b'{"depositId": "d1", "resident": "0x12", "amount": 5}', "invalid_field", "resident"),
        (b'{"depositId": "d 1", "resident": "RES", "amount": 5}', "invalid_field", "depositId"),
        (b'{"depositId": "d1", "resident": "RES", "amount": "5000"}', "invalid_field", "amount"),
        (b'{"depositId": "d1", "resident": "RES", "amount": 5000.5}', "invalid_field", "amount"),
        (b'{"depositId": "d1", "resident": "RES", "amount": 0}', "invalid_field", "amount"),
        (b'{"depositId": "d1", "resident": "RES", "amount": 5, "x": 1}', "invalid_field", "x"),
    ],
)
def test_bad_notices_name_the_field(api, keys, idle_resident, body, code, field):
    body = body.replace(b"RES", idle_resident.encode())
    response = post(api, keys["bank"], body)
    assert response.status_code == 422, response.text
    error = response.json()["error"]
    assert error["code"] == code
    assert error.get("field") == field and error["accepted"]


def test_an_unknown_resident_is_refused_before_recording(api, keys):
    stranger = new_wallet(f"charging-stranger:{time.time_ns()}").address
    body = notice(stranger, 1_000)
    response = post(api, keys["bank"], body)
    assert response.status_code == 422
    error = response.json()["error"]
    assert (error["code"], error["field"], error["value"]) == (
        "unknown_resident",
        "resident",
        stranger,
    )
    listed = api.get(DEPOSITS, headers=bearer(keys["operator"])).json()
    assert stranger not in {d["resident"] for d in listed}


def test_a_charge_over_the_monthly_limit_is_recorded_for_return(api, city, keys, idle_resident):
    limit = city.treasury.functions.policy().call()[1]
    before = city.token.functions.balanceOf(idle_resident).call()
    response = post(api, keys["bank"], notice(idle_resident, limit + 1))
    assert response.status_code == 200, response.text
    deposit = response.json()
    assert deposit["status"] == "refused"
    assert "CityTreasuryMonthlyLimitExceeded" in deposit["refusal"]
    assert deposit["txHash"] is None and deposit["incentive"] is None
    assert city.token.functions.balanceOf(idle_resident).call() == before
    assert not city.treasury.functions.depositIssued(deposit["reference"]).call()
    for role in ("bank", "operator"):
        refused = api.get(DEPOSITS, params={"status": "refused"}, headers=bearer(keys[role]))
        assert deposit in refused.json()
    for role in ("auditor", "pos", "gongju-operator"):
        assert api.get(DEPOSITS, headers=bearer(keys[role])).status_code == 403


def test_only_the_citys_bank_may_notify(api, backend, keys, idle_resident):
    body = notice(idle_resident, 1_000)
    anonymous = api.post(DEPOSITS, content=body, headers={"X-Citypay-Timestamp": "1"})
    assert anonymous.status_code == 401
    assert anonymous.json()["error"]["code"] == "missing_credentials"
    gongju_bank = backend.api_key("test-gongju-bank", "bank", "gongju")
    for key in (keys["operator"], keys["auditor"], gongju_bank):
        response = post(api, key, body)
        assert response.status_code == 403, response.text
        assert "bank" in response.json()["error"]["accepted"]
    assert api.get(DEPOSITS, headers=bearer(gongju_bank)).status_code == 403
    elsewhere = api.post("/v1/cities/nowhere/deposits", content=body, headers=bearer(keys["bank"]))
    assert elsewhere.status_code == 404


def test_deposit_ids_are_per_bank_and_banks_see_their_own(api, backend, keys, idle_resident):
    other_bank = backend.api_key("test-bank-2", "bank", CITY)
    body = notice(idle_resident, 1_000)
    ours, theirs = post(api, keys["bank"], body).json(), post(api, other_bank, body).json()
    assert ours["status"] == theirs["status"] == "issued"
    assert ours["reference"] != theirs["reference"]
    assert api.get(DEPOSITS, headers=bearer(other_bank)).json() == [theirs]
    listed = api.get(DEPOSITS, headers=bearer(keys["operator"])).json()
    assert ours in listed and theirs in listed


# --- crashes: the backend is killed while its issuance transaction waits for a block ----------


def _set_mining(chain, on: bool) -> None:
    chain.w3.provider.make_request("evm_setIntervalMining", [1 if on else 0])


def _kill_while_issuing(api, backend, chain, city, key, body) -> None:
    """Posts the deposit with block production stopped and kills the backend (kill -9) once the
    deposit is recorded and its issue transaction sits unmined in the node's pool."""
    issuer = city.roles["issuers"][0]
    _set_mining(chain, False)
    try:
        with ThreadPoolExecutor(1) as pool, httpx.Client(base_url=backend.url) as client:
            pool.submit(post, client, key, body)  # answers only with an error: it gets killed
            deadline = time.monotonic() + 15
            while chain.w3.eth.get_transaction_count(
                issuer, "pending"
            ) == chain.w3.eth.get_transaction_count(issuer, "latest"):
                assert time.monotonic() < deadline, "the issue transaction was never sent"
                time.sleep(0.05)
            pending = api.get(DEPOSITS, params={"status": "pending"}, headers=bearer(key)).json()
            assert json.loads(body)["depositId"] in {d["depositId"] for d in pending}
            backend.kill()
    except BaseException:
        _set_mining(chain, True)
        raise


def _wait_issued(api, key, deposit_id: str, timeout: float = 20) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for deposit in api.get(DEPOSITS, params={"status": "issued"}, headers=bearer(key)).json():
            if deposit["depositId"] == deposit_id:
                return deposit
        time.sleep(0.2)
    raise AssertionError(f"deposit {deposit_id} not issued after {timeout} s")


@pytest.mark.parametrize("transaction", ["mined while down", "lost with the process"])
def test_a_crash_mid_issuance_mints_once(
    api, backend, chain, city, keys, fresh_resident, transaction
):
    body = notice(fresh_resident, 20_000)
    deposit_id = json.loads(body)["depositId"]
    reference = deposit_reference(BANK, deposit_id)
    _kill_while_issuing(api, backend, chain, city, keys["bank"], body)
    try:
        if transaction == "lost with the process":
            chain.w3.provider.make_request("anvil_dropAllTransactions", [])
        _set_mining(chain, True)
        if transaction == "mined while down":
            deadline = time.monotonic() + 10
            while not city.treasury.functions.depositIssued(reference).call():
                assert time.monotonic() < deadline
                time.sleep(0.1)
        assert city.treasury.functions.depositIssued(reference).call() == (
            transaction == "mined while down"
        )
    finally:
        _set_mining(chain, True)
        backend.start()
    deposit = _wait_issued(api, keys["bank"], deposit_id)
    total = 20_000 + incentive_of(city, 20_000)
    assert deposit["incentive"] == total - 20_000 and deposit["txHash"]
    assert city.token.functions.balanceOf(fresh_resident).call() == total
    # The bank, unaware of the crash, retries: still one deposit.
    assert post(api, keys["bank"], body).json() == deposit
    assert city.token.functions.balanceOf(fresh_resident).call() == total
