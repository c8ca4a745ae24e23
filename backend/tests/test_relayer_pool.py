"""A city's pool of relayer accounts (Gimpo's `relayer` and `more_relayers: [relayer-2]`): a
round's batches go out from the pool's accounts in turn, each under its own nonces, and every
payment is included once."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest
from conftest import CITY, own_database_url, wait_for_status
from platform_harness import BackendUnderTest, serving
from test_relay import body, signed


@pytest.fixture(scope="module")
def small_batches(chain, tmp_path_factory):
    """A backend whose batches hold two payments, sent once a second: a burst makes several
    batches in one round."""
    folder = tmp_path_factory.mktemp("pool")
    backend = BackendUnderTest(chain, own_database_url(folder, "pool"), folder / "backend.log")
    backend.settings.update(RELAY_BATCH_SIZE="2", RELAY_INTERVAL="1.0")
    yield from serving(backend)


def test_a_rounds_batches_go_out_from_each_relayer_in_turn(
    small_batches, chain, city, resident, merchant
):
    pool = [chain.deployment.account(name) for name in ("relayer", "relayer-2")]
    counts = {address: chain.w3.eth.get_transaction_count(address) for address in pool}
    before = city.token.functions.balanceOf(merchant.address).call()
    authorizations = [signed(city, resident, merchant, 1_000) for _ in range(12)]
    with httpx.Client(base_url=small_batches.url, timeout=30) as api:
        with ThreadPoolExecutor(max_workers=12) as clients:
            responses = list(
                clients.map(
                    lambda a: api.post(f"/v1/cities/{CITY}/payments", json=body(a)),
                    authorizations,
                )
            )
        assert [r.status_code for r in responses] == [202] * 12
        payments = [wait_for_status(api, r.json()) for r in responses]
    assert {p["status"] for p in payments} == {"included"}
    senders = {chain.w3.eth.get_transaction(p["transactionHash"])["from"] for p in payments}
    assert senders == set(pool)
    assert city.token.functions.balanceOf(merchant.address).call() == before + 12_000
    # Each account's batches under its own consecutive nonces, every one mined.
    batches = {p["transactionHash"] for p in payments}
    for address in pool:
        sent = chain.w3.eth.get_transaction_count(address) - counts[address]
        mine = [h for h in batches if chain.w3.eth.get_transaction(h)["from"] == address]
        assert sent == len(mine), address
