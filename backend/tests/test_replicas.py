"""Replicas of the backend on one PostgreSQL database: each serves any request, exactly one sends
and follows the chain, and when that one is killed with -9 under load another takes over from
the database with no payment lost, doubled or left without a status, and no relayer nonce
skipped or used twice. (On SQLite the backend is one process: test_leases.py.)"""

from __future__ import annotations

import os
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest
from citypay.chain.outbox import ChainTransaction
from citypay.db.session import Database
from conftest import CITY, own_database_url, wait_for_status
from platform_harness import BackendUnderTest, new_wallet
from sqlalchemy import select
from test_leases import duties
from test_relay import body, signed

pytestmark = pytest.mark.skipif(
    "postgresql" not in os.environ.get("DATABASE_URL", ""),
    reason="replicas share a PostgreSQL database; SQLite runs one process (test_leases.py)",
)


@pytest.fixture
def replicas(chain, bank, tmp_path, request):
    """Starts `count` backends on one fresh database, the first with the duties."""
    started: list[BackendUnderTest] = []

    def start(count: int, *, at_once: bool = False) -> list[BackendUnderTest]:
        database_url = own_database_url(tmp_path, "replicas")
        replicas = [
            BackendUnderTest(chain, database_url, tmp_path / f"replica-{index}.log")
            for index in range(count)
        ]
        for replica in replicas:
            replica.settings["BANK_URL"] = bank.url
        started.extend(replicas)  # stopped after, also if another one fails to start
        if at_once:  # on a new database: they migrate it together
            with ThreadPoolExecutor(max_workers=count) as starting:
                list(starting.map(lambda r: r.start(), replicas))
        else:
            for replica in replicas:
                replica.start()
        return replicas

    yield start
    for replica in started:
        replica.stop()


def _resident(chain, seed: str, amount: int = 100_000):
    wallet = new_wallet(f"replicas:{seed}:{time.time_ns()}")
    chain.register_resident(CITY, wallet)
    chain.charge(CITY, wallet, amount)
    return wallet


def _post(replica: BackendUnderTest, auth) -> httpx.Response:
    return httpx.post(f"{replica.url}/v1/cities/{CITY}/payments", json=body(auth), timeout=30)


def test_every_replica_serves_payments_and_one_relays_them(replicas, chain, city, merchant):
    first, second, third = replicas(3)
    assert [duties(r) for r in (first, second, third)] == ["active", "standby", "standby"]
    resident = _resident(chain, "serve")
    before = city.token.functions.balanceOf(merchant.address).call()
    accepted = [_post(r, signed(city, resident, merchant, 1_000)) for r in (second, third, first)]
    assert [r.status_code for r in accepted] == [202, 202, 202]
    for response, replica in zip(accepted, (third, first, second), strict=True):
        # Asked of a replica other than the one that took it.
        with httpx.Client(base_url=replica.url, timeout=30) as api:
            assert wait_for_status(api, response.json())["status"] == "included"
    assert city.token.functions.balanceOf(merchant.address).call() == before + 3_000


def test_replicas_started_together_on_a_new_database_all_serve_and_one_sends(replicas):
    started = replicas(3, at_once=True)
    assert sorted(duties(r) for r in started) == ["active", "standby", "standby"]


def test_payments_posted_to_two_replicas_at_once_are_held_to_one_balance(
    replicas, chain, city, merchant
):
    first, second = replicas(2)
    resident = _resident(chain, "balance")
    # 110,000 KRW held (100,000 charged and the incentive): three of five 30,000 go through,
    # whichever replica each reached.
    authorizations = [signed(city, resident, merchant, 30_000) for _ in range(5)]
    targets = [first, second, first, second, first]
    with ThreadPoolExecutor(max_workers=5) as pool:
        responses = list(pool.map(_post, targets, authorizations))
    assert sorted(r.status_code for r in responses) == [202, 202, 202, 422, 422]
    refusals = [r.json()["error"] for r in responses if r.status_code == 422]
    assert {e["code"] for e in refusals} == {"insufficient_balance"}
    with httpx.Client(base_url=second.url, timeout=30) as api:
        finals = [wait_for_status(api, r.json()) for r in responses if r.status_code == 202]
    assert {p["status"] for p in finals} == {"included"}
    assert city.token.functions.balanceOf(resident.address).call() == 110_000 - 90_000


def test_killing_the_active_replica_under_load_hands_the_duties_over(
    replicas, chain, city, merchant
):
    active, standby = replicas(2)
    relayers = [chain.deployment.account(name) for name in ("relayer", "relayer-2")]
    merchant_before = city.token.functions.balanceOf(merchant.address).call()
    payers = [_resident(chain, f"failover-{i}") for i in range(8)]
    accepted: list[dict] = []
    refused: list[httpx.Response] = []
    stop = threading.Event()

    def record(response: httpx.Response) -> None:
        # 200: the same payment posted before, to the replica killed before it could answer.
        if response.status_code in (200, 202):
            accepted.append(response.json())
        else:
            refused.append(response)

    def pay(payer) -> None:
        # Each payer pays 1,000 KRW at a time until told to stop, to both replicas in turn.
        target = 0
        unanswered = None
        while not stop.is_set():
            replica = (active, standby)[target % 2] if active.process.poll() is None else standby
            target += 1
            payment = unanswered or signed(city, payer, merchant, 1_000)
            try:
                response = _post(replica, payment)
            except httpx.TransportError:
                # The killed replica may have taken it before it died: the till sends the same
                # signed payment to another, as a till that lost its answer does.
                unanswered = payment
                continue
            unanswered = None
            record(response)
        if unanswered is not None:
            record(_post(standby, unanswered))

    threads = [threading.Thread(target=pay, args=(p,)) for p in payers]
    for thread in threads:
        thread.start()
    try:
        time.sleep(3)
        active.kill()  # kill -9 of the lease holder, payments in flight
        killed = time.monotonic()
        while duties(standby) != "active":
            assert time.monotonic() - killed < 5, "the standing-by replica did not take over"
            time.sleep(0.05)
        took_over = time.monotonic() - killed
        time.sleep(3)  # payments go on through the new holder
    finally:
        stop.set()
        for thread in threads:
            thread.join()
    assert [r.json() for r in refused] == []
    assert took_over < 5
    with httpx.Client(base_url=standby.url, timeout=30) as api:
        finals = [wait_for_status(api, payment, timeout=60) for payment in accepted]
    assert {p["status"] for p in finals} == {"included"}, "a payment failed or was lost"
    paid = sum(p["value"] for p in finals)
    # Each accepted payment moved its money once, and nothing else moved.
    assert city.token.functions.balanceOf(merchant.address).call() == merchant_before + paid
    # Each relayer's nonces (Gimpo sends from a pool of two): every one recorded once, none
    # skipped, all mined.
    db = Database(standby.database_url)
    try:
        with db.session() as session:
            sent = {
                relayer: sorted(
                    session.scalars(
                        select(ChainTransaction.nonce).where(ChainTransaction.sender == relayer)
                    )
                )
                for relayer in relayers
            }
    finally:
        db.engine.dispose()
    assert sent[relayers[0]], "the first relayer sent nothing"
    for relayer, nonces in sent.items():
        if nonces:
            assert nonces == list(range(nonces[0], nonces[0] + len(nonces))), relayer
            assert chain.w3.eth.get_transaction_count(relayer) == nonces[-1] + 1, relayer
    assert len(accepted) > 16  # payments went through before and after the kill
