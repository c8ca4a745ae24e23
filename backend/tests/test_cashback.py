"""Cashback on payments (결제 캐시백) end to end: residents pay on the real chain, the listener
indexes it, the backend's worker settles it with the city's CityCashback, and the API reads what
came of it. Ulsan pays cashback from its deployment (10% at merchants up to 300 million KRW of
revenue, 12% in Dong-gu, 31170); Gongju is switched to it and back here; Gimpo stays in discount
mode. Each kind of payment earns once however often it is settled, a crash between sending and
moving the cursor included; a refund takes its share back."""

from __future__ import annotations

import json
import subprocess
import sys
import time

import httpx
import pytest
from citypay.cashback.settler import GAS_A_BASELINE, GAS_A_BATCH, GAS_A_SETTLEMENT
from citypay.chain.enums import IncentiveMode
from citypay.chain.events import packaged_abi
from conftest import own_database_url, wait_for_status
from eth_utils import keccak
from platform_harness import ROOT, BackendUnderTest, deployed_chain, new_wallet, serving
from sqlalchemy import create_engine, text
from test_cashout import _send_as
from test_relay import body, signed

ULSAN, GONGJU, GIMPO = "ulsan", "gongju", "gimpo"
DONG_GU, JUNG_GU = 31170, 31110
# Where each city's residents live: Ulsan's Jung-gu, Gongju, Gimpo.
HOME = {ULSAN: JUNG_GU, GONGJU: 44150, GIMPO: 41570}
CHARGED = 100_000
PLAIN = bytes(32)
# Any addresses and the zero id, for the API's refusals.
PAYER, MERCHANT, ZERO_ID = "0x" + "11" * 20, "0x" + "22" * 20, "0x" + "00" * 32


# --- the platform of this module: its own chain, its database and a backend settling often ------


@pytest.fixture(scope="module")
def chain(tmp_path_factory):
    yield from deployed_chain(tmp_path_factory.mktemp("cashback-chain"))


@pytest.fixture(scope="module")
def database_url(tmp_path_factory):
    return own_database_url(tmp_path_factory.mktemp("cashback-db"), "cashback")


@pytest.fixture(scope="module")
def backend(chain, database_url, tmp_path_factory):
    folder = tmp_path_factory.mktemp("cashback-backend")
    server = BackendUnderTest(chain, database_url, folder / "backend.log")
    server.settings["CASHBACK_SETTLE_INTERVAL"] = "0.3"
    yield from serving(server)


@pytest.fixture(scope="module")
def http(backend):
    with httpx.Client(base_url=backend.url, timeout=30) as client:
        yield client


@pytest.fixture(scope="module")
def database(database_url):
    engine = create_engine(database_url)
    yield engine
    engine.dispose()


@pytest.fixture(scope="module")
def ulsan(chain):
    return chain.deployment.city(ULSAN)


@pytest.fixture(scope="module")
def shop(chain):
    """A small merchant (300 million KRW a year: 10%) in Jung-gu."""
    wallet = new_wallet(f"cashback-shop:{time.time_ns()}")
    chain.register_merchant(ULSAN, wallet, region=JUNG_GU)
    return wallet


@pytest.fixture(scope="module")
def dong_gu_shop(chain):
    """A small merchant in Dong-gu, a population-decline area: 12%."""
    wallet = new_wallet(f"cashback-dong-gu-shop:{time.time_ns()}")
    chain.register_merchant(ULSAN, wallet, region=DONG_GU)
    return wallet


def _resident(chain, city: str, label: str, charged: int = CHARGED):
    wallet = new_wallet(f"cashback-{label}:{time.time_ns()}")
    chain.register_resident(city, wallet, region=HOME[city])
    chain.charge(city, wallet, charged)
    return wallet


@pytest.fixture
def resident(chain, request):
    """An Ulsan resident who charged 100,000 KRW: no discount in cashback mode."""
    return _resident(chain, ULSAN, request.node.name)


# --- driving the chain as the residents, merchants and the city's admins do -------------------


def _pay(chain, city, payer, merchant, value: int) -> bytes:
    """`pay` with a fresh invoice id; the id."""
    invoice = keccak(text=f"invoice:{payer.address}:{time.time_ns()}")
    _send_as(chain, payer, city.token.functions.pay(merchant.address, value, invoice))
    return invoice


def _cashback_contract(chain, city):
    return chain.w3.eth.contract(
        address=city.chain.cashback.address, abi=packaged_abi("CityCashback")
    )


def _set_mode(chain, city, mode: IncentiveMode) -> int:
    """The block of the change."""
    call = city.treasury.functions.setIncentiveMode(mode)
    return chain.send(city.roles["city_admin"], call)["blockNumber"]


def _balance(city, wallet) -> int:
    return city.token.functions.balanceOf(wallet.address).call()


def _paid_events(city, payer, merchant=None, payment_id=None) -> list:
    return city.chain.cashback.logs(
        "CashbackPaid", payer.address, merchant and merchant.address, payment_id, from_block=0
    )


# --- what the API says, and waiting for the worker ---------------------------------------------


def _path(city: str, payer, merchant, payment_id: bytes) -> str:
    key = f"{payer.address}/{merchant.address}/0x{payment_id.hex()}"
    return f"/v1/cities/{city}/cashback/payments/{key}"


def _settled(http, city: str, payer, merchant, payment_id: bytes, *, timeout: float = 30) -> dict:
    """The payment's figures once the worker has settled what the chain counts of it now."""
    path = _path(city, payer, merchant, payment_id)
    deadline = time.monotonic() + timeout
    while True:
        found = http.get(path).json()
        if found["unsettled"] == 0 and found["settledBase"] > 0:
            return found
        if time.monotonic() > deadline:
            raise AssertionError(f"not settled within {timeout} s: {found}")
        time.sleep(0.2)


def _cursor(database, city: str) -> int:
    with database.connect() as connection:
        return (
            connection.scalar(
                text("SELECT block_number FROM cashback_cursors WHERE city = :city"), {"city": city}
            )
            or -1
        )


def _passed(database, city: str, block: int, timeout: float = 30) -> None:
    """Waits until the worker's cursor in `city` has passed `block`: its payments are settled or
    left, for good."""
    deadline = time.monotonic() + timeout
    while _cursor(database, city) < block:
        if time.monotonic() > deadline:
            raise AssertionError(f"the cashback cursor of {city} did not reach block {block}")
        time.sleep(0.2)


def _settlement_transactions(database) -> int:
    with database.connect() as connection:
        return connection.scalar(
            text("SELECT count(*) FROM outbox_transactions WHERE purpose = 'cashback_settlement'")
        )


# --- each kind of payment earns ---------------------------------------------------------------


def test_a_charge_in_a_cashback_city_mints_no_discount(ulsan, resident):
    assert _balance(ulsan, resident) == CHARGED


def test_an_invoice_payment_earns_its_merchants_rate(chain, http, ulsan, resident, shop):
    invoice = _pay(chain, ulsan, resident, shop, 30_000)
    found = _settled(http, ULSAN, resident, shop, invoice)
    assert (found["base"], found["cashback"], found["rateBps"], found["refusal"]) == (
        30_000,
        3_000,
        1_000,
        None,
    )
    assert _balance(ulsan, resident) == CHARGED - 30_000 + 3_000
    [paid] = _paid_events(ulsan, resident, shop, invoice)
    assert int(paid["data"][2 + 64 * 3 : 2 + 64 * 4], 16) == 3_000  # minted


def test_relayed_payments_each_earn_their_merchants_rate(http, ulsan, resident, shop, dong_gu_shop):
    accepted = [
        http.post(f"/v1/cities/{ULSAN}/payments", json=body(signed(ulsan, resident, to, value)))
        for to, value in ((shop, 10_000), (dong_gu_shop, 20_000))
    ]
    assert [a.status_code for a in accepted] == [202, 202], [a.text for a in accepted]
    done = [wait_for_status(http, a.json()) for a in accepted]
    assert {d["status"] for d in done} == {"included"}
    near = _settled(http, ULSAN, resident, shop, bytes.fromhex(done[0]["nonce"][2:]))
    dong_gu = _settled(http, ULSAN, resident, dong_gu_shop, bytes.fromhex(done[1]["nonce"][2:]))
    assert (near["cashback"], near["rateBps"]) == (1_000, 1_000)
    # Dong-gu's rate stands in for the band's where higher.
    assert (dong_gu["cashback"], dong_gu["rateBps"]) == (2_400, 1_200)
    assert _balance(ulsan, resident) == CHARGED - 30_000 + 1_000 + 2_400


def test_plain_transfers_earn_on_their_running_total(chain, http, ulsan, resident, shop):
    for value in (5_000, 7_000):
        _send_as(chain, resident, ulsan.token.functions.transfer(shop.address, value))
    found = _settled(http, ULSAN, resident, shop, PLAIN)
    assert (found["base"], found["cashback"]) == (12_000, 1_200)
    assert _balance(ulsan, resident) == CHARGED - 12_000 + 1_200


def test_cashback_stops_at_the_residents_monthly_incentive_limit(chain, http, ulsan, dong_gu_shop):
    big_spender = _resident(chain, ULSAN, "big-spender", charged=400_000)
    invoice = _pay(chain, ulsan, big_spender, dong_gu_shop, 400_000)
    found = _settled(http, ULSAN, big_spender, dong_gu_shop, invoice)
    # 12% of 400,000 is 48,000: Ulsan's treasury mints 35,000 of incentive a month at most.
    assert found["cashback"] == 35_000
    month = http.get(f"/v1/cities/{ULSAN}/accounts/{big_spender.address}/cashback").json()
    assert (month["incentiveThisMonth"], month["incentiveLeftThisMonth"]) == (35_000, 0)


def test_a_refused_settlement_leaves_the_rest_of_its_batch_paid(
    chain, http, backend, database, ulsan, shop
):
    frozen, other = (_resident(chain, ULSAN, f"batch-{name}") for name in ("frozen", "other"))
    backend.kill()  # both payments wait for one round, and the payer of one is frozen meanwhile
    try:
        refused = _pay(chain, ulsan, frozen, shop, 10_000)
        paid = _pay(chain, ulsan, other, shop, 10_000)
        chain.send(ulsan.roles["compliance"], ulsan.token.functions.freeze(frozen.address))
    finally:
        backend.start()
    assert _settled(http, ULSAN, other, shop, paid)["cashback"] == 1_000
    _passed(database, ULSAN, chain.w3.eth.block_number)
    found = http.get(_path(ULSAN, frozen, shop, refused)).json()
    assert (found["settledBase"], found["cashback"]) == (0, 0)
    assert found["refusal"] == f"CityCashbackAccountLocked(resident={frozen.address})"
    [refusal] = ulsan.chain.cashback.logs("CashbackRefused", frozen.address, from_block=0)
    assert refusal["transactionHash"] == _paid_events(ulsan, other)[0]["transactionHash"]


# --- once, however often it is settled ----------------------------------------------------------


def test_a_payment_settled_again_earns_nothing_more(
    chain, http, backend, database, ulsan, resident, shop
):
    invoice = _pay(chain, ulsan, resident, shop, 20_000)
    _settled(http, ULSAN, resident, shop, invoice)
    block = _paid_events(ulsan, resident, shop, invoice)[0]["blockNumber"]
    sent = _settlement_transactions(database)
    # The cursor put back before the payment: the next rounds settle its block again.
    backend.kill()
    with database.begin() as connection:
        connection.execute(
            text("UPDATE cashback_cursors SET block_number = :block WHERE city = :city"),
            {"block": int(block, 16) - 5, "city": ULSAN},
        )
    backend.start()
    _passed(database, ULSAN, int(block, 16))
    assert _settlement_transactions(database) > sent  # settled again, on chain
    assert len(_paid_events(ulsan, resident, shop, invoice)) == 1
    assert _balance(ulsan, resident) == CHARGED - 20_000 + 2_000


def test_a_crash_between_settling_and_moving_the_cursor_pays_once(
    chain, http, backend, database, ulsan, resident, shop
):
    sent = _settlement_transactions(database)
    backend.kill()
    backend.settings["CITYPAY_CRASH_AT"] = "after_cashback_sent"
    try:
        backend.start()
        invoice = _pay(chain, ulsan, resident, shop, 15_000)
        assert backend.process.wait(timeout=30) == 86, "the backend did not crash at the point"
    finally:
        backend.settings.pop("CITYPAY_CRASH_AT")
        if backend.process.poll() is not None:
            backend.start()
    found = _settled(http, ULSAN, resident, shop, invoice)
    block = int(_paid_events(ulsan, resident, shop, invoice)[0]["blockNumber"], 16)
    _passed(database, ULSAN, block)
    # Sent before the crash and again after it; paid by the first only.
    assert _settlement_transactions(database) >= sent + 2
    assert found["cashback"] == 1_500
    assert len(_paid_events(ulsan, resident, shop, invoice)) == 1
    assert _balance(ulsan, resident) == CHARGED - 15_000 + 1_500


def test_a_node_away_is_waited_for_and_nothing_is_lost(chain, http, backend, ulsan, resident, shop):
    chain.stop()
    time.sleep(2)  # a few rounds fail meanwhile
    chain.start()
    assert backend.process.poll() is None
    invoice = _pay(chain, ulsan, resident, shop, 8_000)
    assert _settled(http, ULSAN, resident, shop, invoice)["cashback"] == 800


# --- refunds ----------------------------------------------------------------------------------


def test_a_refund_takes_the_cashback_back_in_proportion(chain, http, ulsan, resident, shop):
    invoice = _pay(chain, ulsan, resident, shop, 40_000)
    assert _settled(http, ULSAN, resident, shop, invoice)["cashback"] == 4_000
    _send_as(chain, shop, ulsan.token.functions.refund(resident.address, invoice, 10_000))
    found = _settled(http, ULSAN, resident, shop, invoice)
    assert (found["base"], found["settledBase"], found["cashback"]) == (30_000, 30_000, 3_000)
    assert _balance(ulsan, resident) == CHARGED - 40_000 + 4_000 + 10_000 - 1_000
    month = http.get(f"/v1/cities/{ULSAN}/accounts/{resident.address}/cashback").json()
    assert (month["incentiveThisMonth"], month["debt"]) == (3_000, 0)


def test_a_refund_of_plain_transfers_takes_their_share_back(chain, http, ulsan, resident, shop):
    _send_as(chain, resident, ulsan.token.functions.transfer(shop.address, 20_000))
    assert _settled(http, ULSAN, resident, shop, PLAIN)["cashback"] == 2_000
    _send_as(chain, shop, ulsan.token.functions.refund(resident.address, PLAIN, 5_000))
    found = _settled(http, ULSAN, resident, shop, PLAIN)
    assert (found["base"], found["cashback"]) == (15_000, 1_500)


# --- the mode -------------------------------------------------------------------------------


def test_a_discount_city_gets_nothing(chain, http, database):
    gimpo = chain.deployment.city(GIMPO)
    payer = _resident(chain, GIMPO, "gimpo-payer")
    merchant = new_wallet(f"cashback-gimpo-shop:{time.time_ns()}")
    chain.register_merchant(GIMPO, merchant)
    assert _balance(gimpo, payer) == CHARGED + 10_000  # Gimpo's discount at charge
    invoice = _pay(chain, gimpo, payer, merchant, 10_000)
    _passed(database, GIMPO, chain.w3.eth.block_number)
    # Nothing was even sent: a settlement in discount mode would be refused, and evented.
    for event in ("CashbackPaid", "CashbackRefused"):
        assert gimpo.chain.cashback.logs(event, from_block=0) == []
    found = http.get(_path(GIMPO, payer, merchant, invoice)).json()
    assert (found["mode"], found["base"], found["cashback"]) == ("discount", 10_000, 0)
    assert found["refusal"] == "CityCashbackNotCashbackMode()"


@pytest.fixture(scope="module")
def gongju(chain):
    """Gongju with cashback terms (10% up to 3 billion KRW) and a budget, still in discount."""
    city = chain.deployment.city(GONGJU)
    cashback, admin = _cashback_contract(chain, city), city.roles["city_admin"]
    chain.send(admin, cashback.functions.setTerms([(3_000_000_000, 1_000)], []))
    chain.send(admin, cashback.functions.setBudget(10_000_000))
    return city


@pytest.fixture(scope="module")
def gongju_shop(chain, gongju):
    wallet = new_wallet(f"cashback-gongju-shop:{time.time_ns()}")
    chain.register_merchant(GONGJU, wallet, region=HOME[GONGJU])
    return wallet


def test_payments_before_the_switch_to_cashback_earn_nothing(
    chain, http, database, gongju, gongju_shop
):
    _set_mode(chain, gongju, IncentiveMode.DISCOUNT)
    payer = _resident(chain, GONGJU, "before-the-switch")
    charged = _balance(gongju, payer)  # with Gongju's discount
    before = _pay(chain, gongju, payer, gongju_shop, 10_000)
    _send_as(chain, payer, gongju.token.functions.transfer(gongju_shop.address, 4_000))
    switch = _set_mode(chain, gongju, IncentiveMode.CASHBACK)
    # Past the switch, the plain transfers before it are counted as settled, paying nothing.
    _passed(database, GONGJU, switch)
    [baselined] = gongju.chain.cashback.logs("CashbackBaselined", payer.address, from_block=0)
    assert int(baselined["data"], 16) == 4_000
    after = _pay(chain, gongju, payer, gongju_shop, 20_000)
    _send_as(chain, payer, gongju.token.functions.transfer(gongju_shop.address, 6_000))
    assert _settled(http, GONGJU, payer, gongju_shop, after)["cashback"] == 2_000
    plain = _settled(http, GONGJU, payer, gongju_shop, PLAIN)
    assert (plain["base"], plain["settledBase"], plain["cashback"]) == (10_000, 10_000, 600)
    _passed(database, GONGJU, chain.w3.eth.block_number)
    early = http.get(_path(GONGJU, payer, gongju_shop, before)).json()
    # It would be paid if settled now: the backend leaves it, as made in discount mode.
    assert (early["base"], early["settledBase"], early["cashback"]) == (10_000, 0, 0)
    assert early["refusal"] is None
    assert len(_paid_events(gongju, payer)) == 2
    assert _balance(gongju, payer) == charged - 40_000 + 2_000 + 600
    receipt = chain.w3.eth.get_transaction_receipt(baselined["transactionHash"])
    assert receipt["gasUsed"] < 0.8 * (GAS_A_BATCH + GAS_A_BASELINE)


def test_after_the_switch_back_to_discount_only_refunds_are_settled(
    chain, http, database, gongju, gongju_shop
):
    _set_mode(chain, gongju, IncentiveMode.CASHBACK)
    payer = _resident(chain, GONGJU, "switch-back")
    earned = _pay(chain, gongju, payer, gongju_shop, 30_000)
    assert _settled(http, GONGJU, payer, gongju_shop, earned)["cashback"] == 3_000
    _set_mode(chain, gongju, IncentiveMode.DISCOUNT)
    later = _pay(chain, gongju, payer, gongju_shop, 10_000)
    _send_as(chain, gongju_shop, gongju.token.functions.refund(payer.address, earned, 15_000))
    refunded = _settled(http, GONGJU, payer, gongju_shop, earned)
    assert (refunded["settledBase"], refunded["cashback"]) == (15_000, 1_500)
    _passed(database, GONGJU, chain.w3.eth.block_number)
    left = http.get(_path(GONGJU, payer, gongju_shop, later)).json()
    assert (left["settledBase"], left["cashback"], left["mode"]) == (0, 0, "discount")


# --- the API ----------------------------------------------------------------------------------


def test_the_terms_of_a_cashback_city(http):
    terms = http.get(f"/v1/cities/{ULSAN}/cashback").json()
    # config/cities.yaml's Ulsan.
    assert terms["mode"] == "cashback"
    assert terms["bands"] == [
        {"revenueUpTo": 300_000_000, "bps": 1_000},
        {"revenueUpTo": 3_000_000_000, "bps": 700},
    ]
    assert terms["regions"] == [{"region": DONG_GU, "bps": 1_200}]
    assert 0 < terms["budgetLeft"] <= 6_000_000_000
    assert terms["monthlyIncentiveLimit"] == 35_000


def test_a_discount_city_answers_its_mode(http):
    terms = http.get(f"/v1/cities/{GIMPO}/cashback").json()
    assert (terms["mode"], terms["bands"], terms["regions"], terms["budgetLeft"]) == (
        "discount",
        [],
        [],
        0,
    )
    assert terms["monthlyIncentiveLimit"] == 50_000


def test_an_accounts_month_before_any_payment(http, resident):
    month = http.get(f"/v1/cities/{ULSAN}/accounts/{resident.address}/cashback").json()
    assert month | {"block": 0} == {
        "city": ULSAN,
        "account": resident.address,
        "block": 0,
        "mode": "cashback",
        "incentiveThisMonth": 0,
        "monthlyIncentiveLimit": 35_000,
        "incentiveLeftThisMonth": 35_000,
        "debt": 0,
    }


@pytest.mark.parametrize(
    ("path", "field"),
    [
        ("/v1/cities/ulsan/accounts/0x123/cashback", "path.account"),
        (f"/v1/cities/ulsan/cashback/payments/0x12/{MERCHANT}/{ZERO_ID}", "path.payer"),
        (f"/v1/cities/ulsan/cashback/payments/{PAYER}/nobody/{ZERO_ID}", "path.merchant"),
        (f"/v1/cities/ulsan/cashback/payments/{PAYER}/{MERCHANT}/0x12", "path.payment_id"),
    ],
)
def test_a_bad_address_or_payment_id_is_a_422_naming_it(http, path, field):
    response = http.get(path)
    assert response.status_code == 422, response.text
    error = response.json()["error"]
    assert (error["code"], error["field"]) == ("invalid_field", field)
    assert error["accepted"]


@pytest.mark.parametrize(
    "path",
    [
        "/v1/cities/atlantis/cashback",
        f"/v1/cities/atlantis/accounts/{PAYER}/cashback",
        f"/v1/cities/atlantis/cashback/payments/{PAYER}/{MERCHANT}/{ZERO_ID}",
    ],
)
def test_an_unknown_city_is_a_404_naming_the_cities(http, path):
    response = http.get(path)
    assert response.status_code == 404
    error = response.json()["error"]
    assert (error["code"], error["field"], error["value"]) == ("unknown_city", "city", "atlantis")
    assert error["accepted"] == "gimpo, gongju, ulsan"


def test_the_openapi_document_names_every_answer_of_the_cashback_routes(http):
    paths = http.get("/openapi.json").json()["paths"]
    for path in (
        "/v1/cities/{city}/cashback",
        "/v1/cities/{city}/accounts/{account}/cashback",
        "/v1/cities/{city}/cashback/payments/{payer}/{merchant}/{payment_id}",
    ):
        responses = paths[path]["get"]["responses"]
        assert {"200", "404", "422", "429", "503"} <= set(responses), (path, sorted(responses))
        for status in ("404", "422"):
            schema = responses[status]["content"]["application/json"]["schema"]
            assert schema["$ref"] == "#/components/schemas/ErrorBody"


def test_the_wallet_prints_its_cashback_month(backend, tmp_path, resident):
    key_file = tmp_path / "resident.key"
    key_file.write_text("0x" + resident.key.hex() + "\n")
    done = subprocess.run(
        [sys.executable, "-m", "citypay.wallet", "cashback", "--key-file", str(key_file),
         "--api", backend.url, "--city", ULSAN],
        cwd=ROOT, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    month = json.loads(done.stdout)
    assert (month["account"], month["monthlyIncentiveLimit"]) == (resident.address, 35_000)


def test_a_settlement_batch_is_given_the_gas_it_uses(chain, ulsan):
    """The gas settleBatch is given (cashback/settler.py) against what this module's batches
    used, each settlement in them evented."""
    cashback = ulsan.chain.cashback.address
    batches = {
        paid["transactionHash"] for paid in ulsan.chain.cashback.logs("CashbackPaid", from_block=0)
    }
    for tx_hash in batches:
        receipt = chain.w3.eth.get_transaction_receipt(tx_hash)
        settled = [log for log in receipt["logs"] if log["address"] == cashback]
        assert receipt["gasUsed"] < 0.8 * (GAS_A_BATCH + GAS_A_SETTLEMENT * len(settled))
