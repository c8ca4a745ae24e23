"""What operators see: Prometheus metrics that follow payments and the listener, JSON log lines.

A backend of this module's own (its own database, JSON logs, uvicorn's access log on) runs on the
session's chain, so that its figures move only with what these tests do.
"""

from __future__ import annotations

import json
import time

import httpx
import pytest
from citypay.authorization import TokenDomain, sign_authorization
from conftest import CITY, bearer, own_database_url, wait_for_status
from platform_harness import BackendUnderTest, SandboxBank, free_port, listener_process
from prometheus_client.parser import text_string_to_metric_families

METRICS_TOKEN = "test-metrics-token"
PAYMENTS_ROUTE = "/v1/cities/{city}/payments"


@pytest.fixture(scope="module")
def ops_backend(chain, tmp_path_factory):
    directory = tmp_path_factory.mktemp("ops")
    server = BackendUnderTest(chain, own_database_url(directory, "ops"), directory / "backend.log")
    server.settings |= {"LOG_FORMAT": "json", "METRICS_TOKEN": METRICS_TOKEN}
    # The harness keeps uvicorn at warnings; here its access log is part of what is tested.
    server.args[server.args.index("--log-level") + 1] = "info"
    server.start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def ops_api(ops_backend):
    with httpx.Client(base_url=ops_backend.url, timeout=30) as client:
        yield client


def scrape(url: str, token: str | None = METRICS_TOKEN) -> dict[tuple, float]:
    """The samples of a /metrics page, parsed by Prometheus' own parser: {(name, labels): value}."""
    response = httpx.get(url, headers=bearer(token) if token else {}, timeout=10)
    assert response.status_code == 200, response.text
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(response.text)
        for sample in family.samples
    }


def value(samples: dict, name: str, default: float = 0.0, **labels) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), default)


def wait_for_metric(url: str, check, timeout: float = 20) -> dict:
    deadline = time.monotonic() + timeout
    while True:
        samples = scrape(url)
        if check(samples) or time.monotonic() > deadline:
            return samples
        time.sleep(0.2)


def json_lines(path) -> list[dict]:
    lines = [line for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    assert lines, f"{path} is empty"
    return [json.loads(line) for line in lines]  # every line, or the test fails here


def test_metrics_ask_for_the_metrics_token_when_one_is_set(ops_backend):
    refused = httpx.get(f"{ops_backend.url}/metrics", timeout=10)
    assert refused.status_code == 401
    assert refused.json()["error"]["field"] == "Authorization"
    assert "METRICS_TOKEN" in refused.json()["error"]["accepted"]
    wrong = httpx.get(f"{ops_backend.url}/metrics", headers=bearer("guess"), timeout=10)
    assert wrong.status_code == 401
    assert "guess" not in wrong.text
    assert value(scrape(f"{ops_backend.url}/metrics"), "citypay_database_up") == 1


def test_metrics_move_with_a_payment_and_the_listener_catches_up(
    ops_backend, ops_api, chain, city, resident, merchant
):
    url = f"{ops_backend.url}/metrics"
    before = scrape(url)
    domain = TokenDomain(city.name, "1", chain.deployment.chain_id, city.token.address)
    authorization = sign_authorization(
        resident.key, domain, to=merchant.address, value=1_500, valid_before=int(time.time()) + 600
    )
    accepted = ops_api.post(f"/v1/cities/{CITY}/payments", json=authorization.as_json())
    assert accepted.status_code == 202, accepted.text
    included = wait_for_status(ops_api, accepted.json())
    assert included["status"] == "included"
    block = included["blockNumber"]

    after = wait_for_metric(
        url,
        lambda s: (
            value(s, "citypay_listener_indexed_block") >= block
            and value(s, "citypay_listener_lag_blocks") <= 1
        ),
    )
    assert value(after, "citypay_payments", status="included") == (
        value(before, "citypay_payments", status="included") + 1
    )
    assert value(after, "citypay_relay_queue", city=CITY, stage="accepted") == 0
    assert value(after, "citypay_relay_batch_size_count") == (
        value(before, "citypay_relay_batch_size_count") + 1
    )
    posted = {"method": "POST", "route": PAYMENTS_ROUTE}
    assert value(after, "citypay_http_requests_total", **posted, status="202") == (
        value(before, "citypay_http_requests_total", **posted, status="202") + 1
    )
    assert value(after, "citypay_http_request_duration_seconds_count", **posted) >= 1

    # The listener stored the payment's events and is caught up with the chain.
    assert value(after, "citypay_listener_indexed_block") >= block
    assert value(after, "citypay_listener_lag_blocks", default=99) <= 1
    assert value(after, "citypay_listener_lag_seconds", default=99) <= 2
    assert value(after, "citypay_listener_events_stored_total") >= (
        value(before, "citypay_listener_events_stored_total") + 2
    )
    for event in ("Transfer", "AuthorizationUsed"):
        labels = {"city": CITY, "contract": "token", "event": event}
        assert value(after, "citypay_chain_events_total", **labels) >= (
            value(before, "citypay_chain_events_total", **labels) + 1
        )
    assert value(after, "citypay_deposits_pending", city=CITY) == 0
    assert (
        "citypay_cashouts_pending",
        (("city", CITY), ("status", "paying")),
    ) in after


def test_the_backends_log_lines_are_json_with_their_context(ops_backend, ops_api):
    ops_api.get(f"/v1/cities/{CITY}")
    time.sleep(0.5)  # the access line is written after the response
    lines = json_lines(ops_backend.log_path)
    for line in lines:
        assert {"time", "level", "logger", "message", "service"} <= line.keys(), line
        assert line["service"] == "backend"
    started = next(line for line in lines if line["message"] == "backend started")
    assert started["level"] == "INFO"
    assert started["logger"] == "citypay.api.app"
    assert started["time"].endswith("Z")
    assert started["cities"] == ["gimpo", "gongju", "ulsan"]
    access = [line for line in lines if line["logger"] == "uvicorn.access"]
    payment = next(line for line in access if line.get("route") == PAYMENTS_ROUTE)
    assert (payment["method"], payment["status"], payment["city"]) == ("POST", 202, CITY)
    assert payment["path"] == f"/v1/cities/{CITY}/payments"


def test_the_listener_process_serves_its_lag_and_logs_json(chain, tmp_path):
    port, log_path = free_port(), tmp_path / "listener.log"
    settings = chain.service_settings(own_database_url(tmp_path, "listener_process"))
    process = listener_process(
        settings | {"LISTENER_METRICS_PORT": str(port), "LOG_FORMAT": "json"}, log_path
    )
    try:
        url = f"http://127.0.0.1:{port}/metrics"
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                samples = scrape(url, token=None)
            except httpx.HTTPError:
                samples = {}
            if samples and value(samples, "citypay_listener_lag_blocks", default=99) <= 1:
                break
            time.sleep(0.2)
        else:
            pytest.fail(f"the listener did not catch up: see {log_path}")
        assert value(samples, "citypay_listener_indexed_block") >= chain.w3.eth.block_number - 2
        assert value(samples, "citypay_listener_events_stored_total") > 0
    finally:
        process.terminate()
        process.wait(timeout=15)
    started = next(line for line in json_lines(log_path) if line["message"] == "listener started")
    assert started["service"] == "listener"
    assert started["metrics_port"] == port


def test_the_sandbox_banks_log_lines_are_json(tmp_path):
    bank = SandboxBank(free_port(), tmp_path / "bank.sqlite3", tmp_path / "bank.log")
    bank.settings["LOG_FORMAT"] = "json"
    bank.start()
    try:
        order = {"order_id": "ops-order-1", "account": "0xabc", "amount": 5_000}
        assert httpx.post(f"{bank.url}/transfers", json=order, timeout=10).status_code == 201
    finally:
        bank.stop()
    booked = next(line for line in json_lines(bank.log_path) if line.get("order_id"))
    assert booked["service"] == "bank"
    assert (booked["order_id"], booked["amount"], booked["status"]) == (
        "ops-order-1",
        5_000,
        "paid",
    )
    assert booked["bank_reference"].startswith("SBX-")
