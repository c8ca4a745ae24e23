"""Nothing is believed that the chain has not kept: the node loses blocks that held payments, a
deposit and a cash-out the backend had recorded as done, and afterwards the chain and the
sandbox bank show every accepted payment included once, the deposit minted once, the cash-out
paid once to its own merchant and settled, and no nonce of any account left waiting.

Each test has a chain, a bank and a backend of its own: it kills or rolls back the node.
"""

from __future__ import annotations

import os
import time

import httpx
import pytest
from citypay.authorization import TokenDomain
from citypay.cashout.authorization import cash_out_body
from citypay.wallet.client import WalletClient
from citypay.wallet.sign_in import sign_in
from conftest import CITY, bearer, own_database_url, poll_status, wait_for_status
from eth_utils import keccak
from platform_harness import BackendUnderTest, BankUnderTest, ChainUnderTest, new_wallet
from test_cashout import _send_as
from test_charging import notice, signed_headers

PAYMENTS = 8
PAID = 3_000  # each payment, KRW
DEPOSIT = 70_000
CASH_OUT = 20_000
FINAL_CASH_OUT = ("settled", "returned", "refused", "held")


@pytest.fixture
def platform(tmp_path):
    """A chain, a bank and a backend of this test's own, and the people of the day."""
    chain = ChainUnderTest(tmp_path / "chain")
    chain.start_and_deploy()
    bank = BankUnderTest(tmp_path / "bank")
    bank.start()
    backend = BackendUnderTest(
        chain, own_database_url(tmp_path, "node_loss"), tmp_path / "backend.log"
    )
    backend.settings["BANK_URL"] = bank.url
    backend.start()
    people = {
        "payers": [new_wallet(f"node-loss-payer:{tmp_path}:{i}") for i in range(4)],
        "shop": new_wallet(f"node-loss-shop:{tmp_path}"),
        "other_shop": new_wallet(f"node-loss-other-shop:{tmp_path}"),
        "newcomer": new_wallet(f"node-loss-newcomer:{tmp_path}"),
    }
    for payer in people["payers"]:
        chain.register_resident(CITY, payer)
        chain.charge(CITY, payer, 100_000)
    chain.register_resident(CITY, people["newcomer"])
    for shop in (people["shop"], people["other_shop"]):
        chain.register_merchant(CITY, shop)
    # The shops hold takings from before: what they cash out is not lost with the blocks.
    _send_as(
        chain,
        people["payers"][0],
        chain.deployment.city(CITY).token.functions.transfer(people["shop"].address, 30_000),
    )
    _send_as(
        chain,
        people["payers"][1],
        chain.deployment.city(CITY).token.functions.transfer(people["other_shop"].address, 30_000),
    )
    with httpx.Client(base_url=backend.url, timeout=30) as api:
        yield {
            "chain": chain,
            "bank": bank,
            "backend": backend,
            "api": api,
            "bank_key": backend.api_key("node-loss-bank", "bank", CITY),
            **people,
        }
    backend.stop()
    bank.stop()
    chain.stop()


def _do_the_work(p: dict) -> dict:
    """Payments, a deposit and a cash-out, each taken to done by the backend; returns them."""
    api, chain = p["api"], p["chain"]
    qr = api.get(f"/v1/cities/{CITY}/merchants/{p['shop'].address}/qr").json()["uri"]
    payments = []
    for i in range(PAYMENTS):
        with WalletClient(api.base_url, p["payers"][i % len(p["payers"])], city=CITY) as wallet:
            payments.append(wallet.pay(qr, PAID))
    assert {payment["status"] for payment in payments} == {"included"}

    body = notice(p["newcomer"].address, DEPOSIT, deposit_id=f"node-loss-{time.time_ns()}")
    deposited = api.post(
        f"/v1/cities/{CITY}/deposits", content=body, headers=signed_headers(p["bank_key"], body)
    )
    assert deposited.status_code in (200, 201, 202), deposited.text
    deposit = _deposit(p, deposited.json()["depositId"], ("issued",))

    domain = TokenDomain.from_dict(api.get(f"/v1/cities/{CITY}/cashout-domain").json())
    cash_out = cash_out_body(
        p["shop"].key,
        domain,
        amount=CASH_OUT,
        payout_account_hash=keccak(text=f"bank-account:{p['shop'].address}"),
        valid_before=chain.w3.eth.get_block("latest")["timestamp"] + 3600,
        nonce=os.urandom(32),
    )
    session = bearer(sign_in(api, p["shop"]))
    path = f"/v1/cities/{CITY}/merchants/{p['shop'].address}/cashouts"
    accepted = api.post(path, json=cash_out, headers=session)
    assert accepted.status_code == 202, accepted.text
    settled = poll_status(
        api,
        f"{path}/{accepted.json()['id']}",
        ("settled",),
        what="the cash-out",
        headers=session,
        timeout=30,
    )
    return {"payments": payments, "deposit": deposit, "cash_out": settled, "session": session}


def _deposit(p: dict, deposit_id: str, statuses, timeout: float = 30) -> dict:
    """The bank's view of one of its deposits, once its status is one of `statuses`."""
    deadline = time.monotonic() + timeout
    while True:
        listed = p["api"].get(f"/v1/cities/{CITY}/deposits", headers=bearer(p["bank_key"]))
        found = [d for d in listed.json() if d["depositId"] == deposit_id]
        if found and found[0]["status"] in statuses:
            return found[0]
        assert time.monotonic() < deadline, f"deposit {deposit_id}: {found}"
        time.sleep(0.2)


def _assert_nothing_lost_or_doubled(p: dict, work: dict, started: dict) -> None:
    api, chain, bank = p["api"], p["chain"], p["bank"]
    city = chain.deployment.city(CITY)
    token, treasury = city.token.functions, city.treasury.functions
    # The shop gets every payment once, less its one cash-out, once what was lost is redone (a
    # status read right after a rollback may be the one before it: the backend hears of the
    # rollback at its next look, within a block or two).
    expected = started["shop"] + PAYMENTS * PAID - CASH_OUT
    deadline = time.monotonic() + 60
    while (shop := token.balanceOf(p["shop"].address).call()) != expected:
        assert time.monotonic() < deadline, f"the shop holds {shop}, not {expected}"
        time.sleep(0.25)
    for payment in work["payments"]:
        assert wait_for_status(api, payment, timeout=60)["status"] == "included"
    # The deposit minted once, with the incentive.
    _deposit(p, work["deposit"]["depositId"], ("issued",), timeout=60)
    incentive = DEPOSIT * treasury.policy().call()[3] // 10_000
    assert token.balanceOf(p["newcomer"].address).call() == DEPOSIT + incentive
    # The cash-out: paid once by the bank under the cash-out's own order, to its own merchant,
    # and its redemption (whatever its id now) settled with that payment's reference.
    path = f"/v1/cities/{CITY}/merchants/{p['shop'].address}/cashouts/{work['cash_out']['id']}"
    done = poll_status(
        api, path, FINAL_CASH_OUT, what="the cash-out", headers=work["session"], timeout=60
    )
    assert done["status"] == "settled", done
    [transfer] = bank.transfers(done["orderId"])
    assert (transfer["amount"], transfer["status"]) == (CASH_OUT, "paid")
    redemption = treasury.redemption(done["redemptionId"]).call()
    assert (redemption[0], redemption[2], redemption[5]) == (p["shop"].address, 2, CASH_OUT)
    # No account of the backend has a transaction waiting on a gap: the node has mined every
    # nonce it was given.
    for duty in ("relayer", "settler"):
        address = chain.deployment.account(duty) if duty == "relayer" else city.roles["settler"]
        latest = chain.w3.eth.get_transaction_count(address, "latest")
        assert chain.w3.eth.get_transaction_count(address, "pending") == latest, duty


def _balances(p: dict) -> dict:
    token = p["chain"].deployment.city(CITY).token.functions
    return {"shop": token.balanceOf(p["shop"].address).call()}


def test_a_node_restarted_from_an_older_state_loses_nothing_and_doubles_nothing(platform, tmp_path):
    p = platform
    chain, backend = p["chain"], p["backend"]
    kept = tmp_path / "kept-state.json"
    chain.keep_state(kept)
    started = _balances(p)
    head_before = chain.w3.eth.block_number
    work = _do_the_work(p)
    lost_blocks = chain.w3.eth.block_number - head_before

    # The node dies and comes back from the state kept before the work; the backend is down
    # meanwhile, and before it is back another merchant cashes out by its own transaction, so
    # the redemption ids the lost blocks gave are given to someone else.
    backend.kill()
    chain.restore_state(kept)
    assert chain.w3.eth.block_number < head_before + lost_blocks
    other = p["other_shop"]
    _send_as(chain, other, chain.deployment.city(CITY).treasury.functions.cashOut(10_000))
    recovering = time.monotonic()
    backend.start()

    _assert_nothing_lost_or_doubled(p, work, started)
    # The other merchant's redemption (id 0 now) was not settled with the shop's payment.
    treasury = chain.deployment.city(CITY).treasury.functions
    assert treasury.redemption(0).call()[:3] == (other.address, 0, 1)  # its own, pending
    print(
        f"\nnode restart: {lost_blocks} blocks lost, recovered in "
        f"{time.monotonic() - recovering:.1f} s"
    )


def test_a_rollback_under_a_running_backend_is_redone_once(platform):
    p = platform
    chain = p["chain"]
    started = _balances(p)
    snapshot = chain.w3.provider.make_request("evm_snapshot", [])["result"]
    head_before = chain.w3.eth.block_number
    work = _do_the_work(p)
    lost_blocks = chain.w3.eth.block_number - head_before
    assert chain.w3.provider.make_request("evm_revert", [snapshot])["result"] is True
    recovering = time.monotonic()
    _assert_nothing_lost_or_doubled(p, work, started)
    print(
        f"\nrollback: {lost_blocks} blocks lost, recovered in {time.monotonic() - recovering:.1f} s"
    )


def test_a_node_that_is_down_is_a_503_with_retry_after_and_nothing_fails(platform):
    p = platform
    api, chain = p["api"], p["chain"]
    payer, shop = p["payers"][2], p["shop"]
    qr = api.get(f"/v1/cities/{CITY}/merchants/{shop.address}/qr").json()["uri"]
    with WalletClient(api.base_url, payer, city=CITY) as wallet:
        body = wallet.sign(qr, PAID).as_json()
    chain.kill()
    try:
        for check in ("/health", "/ready"):  # a balancer takes the backend out of its pool
            health = api.get(check)
            assert health.status_code == 503
            assert health.json()["status"] == "chain_unavailable"
            assert health.headers["Retry-After"]
        refused = api.post(f"/v1/cities/{CITY}/payments", json=body)
        assert refused.status_code == 503, refused.text
        assert refused.headers["Retry-After"]
        assert refused.json()["error"]["code"] == "chain_unavailable"
    finally:
        chain.start()
    assert api.get("/ready").json()["status"] == "ready"
    accepted = api.post(f"/v1/cities/{CITY}/payments", json=body)
    assert accepted.status_code == 202, accepted.text
    assert wait_for_status(api, accepted.json(), timeout=30)["status"] == "included"


def test_a_status_is_final_only_once_its_block_is_below_the_confirmations(platform):
    p = platform
    api, backend, chain = p["api"], p["backend"], p["chain"]
    backend.stop()
    backend.settings["CHAIN_CONFIRMATIONS"] = "3"
    backend.start()
    qr = api.get(f"/v1/cities/{CITY}/merchants/{p['shop'].address}/qr").json()["uri"]
    with WalletClient(api.base_url, p["payers"][3], city=CITY) as wallet:
        payment = wallet.pay(qr, PAID)
    assert payment["status"] == "included"
    assert payment["final"] is False
    deadline = time.monotonic() + 30
    while chain.w3.eth.block_number < payment["blockNumber"] + 3:
        assert time.monotonic() < deadline
        time.sleep(0.2)
    time.sleep(0.6)  # the backend asks for the head at most twice a second
    assert wait_for_status(api, payment)["final"] is True
