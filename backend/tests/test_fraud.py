"""Fraud (깡) rules: each pattern staged for real on the test chain through the backend's API and
the alert that names its events and thresholds; a clean day that raises none; the alerts API with
its auth and errors; a restart and a reorg that raise nothing twice and keep no alert pointing at
orphaned events; edge cases of the rules on hand-made events.

Payments, charges and cash-outs go through the session's backend; a second backend (`watcher`)
with a fraud configuration of this module's own follows the same chain and raises the alerts.
"""

from __future__ import annotations

import logging
import time
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest
import yaml
from citypay.authorization import TokenDomain
from citypay.chain.events import ChainEvent, packaged_abi
from citypay.db.migrate import upgrade
from citypay.db.session import Database
from citypay.fraud.activity import CityActivity, kst_minute_of_day
from citypay.fraud.alerts import alerts_for
from citypay.fraud.config import FraudConfig, FraudConfigError, parse_fraud_config
from citypay.fraud.engine import FraudEngine
from citypay.fraud.judge import Judge
from citypay.fraud.rules import (
    EVIDENCE_CAP,
    FreshWalletFeed,
    GiftChain,
    IncentiveSpendAll,
    OutsideBusinessHours,
    RoundUnderLimit,
)
from citypay.ledger import Books
from citypay.listener.indexer import Listener
from citypay.listener.models import ListenerCheckpoint
from citypay.wallet.client import WalletClient
from citypay.wallet.sign_in import sign_in
from conftest import CITY, bearer, own_database_url
from platform_harness import BackendUnderTest, deployed_chain, new_wallet, serving
from sqlalchemy import select
from test_cashout import _path, _request, _send_as, _wait

RESTAURANT, CLOSED_CATEGORY = 5611, 7999
ALERTS = f"/v1/cities/{CITY}/alerts"


def _clock(minute: int) -> str:
    return f"{minute // 60:02d}:{minute % 60:02d}"


# Opening hours that start two hours from now (Korean time): the category is closed all test long.
_NOW = kst_minute_of_day(int(time.time()))
CLOSED_NOW = f"{_clock((_NOW + 120) % 1440)}-{_clock((_NOW + 240) % 1440)}"


# --- fixtures ---------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def watcher(chain, bank, tmp_path_factory):
    """A backend of this module's own: every merchant is open all day but those of category
    7999, which are closed now."""
    folder = tmp_path_factory.mktemp("fraud")
    config = folder / "fraud.yaml"
    hours = {"hours": "00:00-24:00", "categories": {CLOSED_CATEGORY: CLOSED_NOW}}
    config.write_text(yaml.safe_dump({"defaults": {"outside_business_hours": hours}}))
    server = BackendUnderTest(chain, own_database_url(folder, "fraud"), folder / "backend.log")
    server.settings |= {"FRAUD_CONFIG_PATH": str(config), "BANK_URL": bank.url}
    yield from serving(server)


@pytest.fixture(scope="module")
def watch(watcher):
    with httpx.Client(base_url=watcher.url, timeout=30) as client:
        yield client


@pytest.fixture(scope="module")
def auditor(watcher) -> dict:
    return bearer(watcher.api_key("fraud-auditor", "auditor", CITY))


def _resident(chain, label: str, charge: int):
    wallet = new_wallet(f"fraud-resident:{label}:{time.time_ns()}")
    chain.register_resident(CITY, wallet)
    chain.charge(CITY, wallet, charge)
    return wallet


def _merchant(chain, label: str, category: int = RESTAURANT):
    wallet = new_wallet(f"fraud-merchant:{label}:{time.time_ns()}")
    chain.register_merchant(CITY, wallet, category)
    return wallet


def _pay_all(backend, api, purchases: list[tuple]) -> list[dict]:
    """Each (payer, merchant, amount) paid by static QR through the relay, all at once."""

    def pay(purchase) -> dict:
        payer, merchant, amount = purchase
        uri = api.get(f"/v1/cities/{CITY}/merchants/{merchant.address}/qr").json()["uri"]
        with WalletClient(backend.url, payer, city=CITY) as wallet:
            payment = wallet.pay(uri, amount)
        assert payment["status"] == "included", payment
        return payment

    with ThreadPoolExecutor(len(purchases)) as pool:
        return list(pool.map(pay, purchases))


def _cash_out(chain, api, merchant, amount: int) -> dict:
    domain = TokenDomain.from_dict(api.get(f"/v1/cities/{CITY}/cashout-domain").json())
    session = bearer(sign_in(api, merchant))
    body = _request(chain, domain, merchant, amount)
    accepted = api.post(_path(merchant), json=body, headers=session)
    assert accepted.status_code == 202, accepted.text
    done = _wait(api, session, merchant, accepted.json()["id"])
    assert done["status"] == "settled", done
    return done


def _alert(watch, headers, rule: str, subject: str, timeout: float = 30) -> dict:
    deadline = time.monotonic() + timeout
    while True:
        alerts = watch.get(ALERTS, params={"rule": rule}, headers=headers).json()
        found = [a for a in alerts if a["subject"] == subject]
        if found:
            [alert] = found
            return alert
        if time.monotonic() > deadline:
            raise AssertionError(f"no {rule} alert for {subject} after {timeout} s: {alerts}")
        time.sleep(0.3)


def _evidence(watch, headers, alert: dict) -> list[tuple[str, dict]]:
    """(role, the indexed event) of each event the alert links to."""
    linked = []
    for event in alert["events"]:
        response = watch.get(event["href"], headers=headers)
        assert response.status_code == 200, response.text
        linked.append((event["role"], response.json()))
    return linked


def _transfers(evidence) -> list[tuple]:
    return sorted(
        (e["args"]["from"], e["args"]["to"], e["args"]["value"], e["txHash"])
        for role, e in evidence
        if role == "payment"
    )


def _paid(payments: list[dict]) -> list[tuple]:
    return sorted(
        (p["payer"], p["merchant"], p["value"], p["transactionHash"].lower()) for p in payments
    )


def _charges(evidence) -> list[tuple]:
    return sorted(
        (e["args"]["resident"], e["args"]["amount"], e["args"]["incentive"])
        for role, e in evidence
        if role == "charge"
    )


def _judged(watcher, block: int, timeout: float = 30) -> None:
    """Waits until the watcher's listener committed a chunk past `block`: its subscribers (the
    rules) have judged every event up to `block`, as they run before the next chunk."""
    db = Database(watcher.database_url)
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            with db.session() as session:
                done = session.execute(select(ListenerCheckpoint.block_number)).scalar()
            if done is not None and done > block:
                return
            time.sleep(0.2)
        raise AssertionError(f"the watcher has not indexed past block {block} in {timeout} s")
    finally:
        db.engine.dispose()


# --- each pattern, staged on the chain --------------------------------------------------------


def test_a_merchant_with_few_customers_cashing_out_what_it_just_received(
    chain, backend, api, watch, auditor
):
    shop = _merchant(chain, "quick-cash-out")
    accomplices = [_resident(chain, f"quick-cash-out-{i}", 100_000) for i in range(2)]
    payments = _pay_all(backend, api, [(a, shop, 110_000) for a in accomplices])
    _cash_out(chain, api, shop, 220_000)

    alert = _alert(watch, auditor, "quick_cash_out", shop.address)
    assert alert["subjectKind"] == "merchant"
    assert alert["thresholds"] == {
        "window_minutes": 30,
        "max_customers": 3,
        "customer_lookback_days": 30,
        "amount_tolerance_percent": 1.0,
        "min_amount": 100_000,
    }
    assert alert["observed"]["cashed_out"] == 220_000
    assert alert["observed"]["received_in_window"] == 220_000
    assert alert["observed"]["customers"] == 2
    evidence = _evidence(watch, auditor, alert)
    assert _transfers(evidence) == _paid(payments)
    [cash_out] = [e for role, e in evidence if role == "cash-out"]
    assert cash_out["event"] == "RedemptionRequested"
    assert (cash_out["args"]["account"], cash_out["args"]["burned"]) == (shop.address, 220_000)
    assert alert["blockNumber"] == cash_out["blockNumber"]


def test_a_merchant_fed_by_freshly_charged_wallets(chain, backend, api, watch, auditor):
    shop = _merchant(chain, "fresh-feed")
    wallets = [_resident(chain, f"fresh-feed-{i}", 100_000) for i in range(3)]
    payments = _pay_all(backend, api, [(w, shop, 80_000) for w in wallets])

    alert = _alert(watch, auditor, "fresh_wallet_feed", shop.address)
    assert alert["thresholds"]["fresh_minutes"] == 30
    assert alert["thresholds"]["min_wallets"] == 3
    assert alert["thresholds"]["min_share_percent"] == 80.0
    assert alert["observed"] == {
        "fresh_wallets": 3,
        "fresh_value": 240_000,
        "received_in_window": 240_000,
        "fresh_share_percent": 100.0,
    }
    evidence = _evidence(watch, auditor, alert)
    assert _transfers(evidence) == _paid(payments)
    assert _charges(evidence) == sorted((w.address, 100_000, 10_000) for w in wallets)


def test_repeated_round_payments_just_under_the_monthly_purchase_limit(
    chain, backend, api, city, watch, auditor
):
    limit = city.treasury.functions.policy().call()[1]  # the monthly purchase limit on chain
    shop = _merchant(chain, "under-limit")
    wallets = [_resident(chain, f"under-limit-{i}", limit - 10_000) for i in range(3)]
    payments = _pay_all(backend, api, [(w, shop, limit - 10_000) for w in wallets])

    alert = _alert(watch, auditor, "round_under_limit", shop.address)
    assert alert["thresholds"]["limit"] == limit
    assert alert["thresholds"]["limit_name"] == "monthly purchase limit"
    assert alert["thresholds"]["margin_percent"] == 5.0
    assert alert["thresholds"]["min_count"] == 3
    assert alert["observed"]["count"] == 3
    assert alert["observed"]["amounts"] == [limit - 10_000] * 3
    assert _transfers(_evidence(watch, auditor, alert)) == _paid(payments)


def test_a_payment_outside_the_merchants_business_hours(chain, backend, api, watch, auditor):
    shop = _merchant(chain, "closed", CLOSED_CATEGORY)
    payer = _resident(chain, "closed", 50_000)
    payments = _pay_all(backend, api, [(payer, shop, 20_000)])

    alert = _alert(watch, auditor, "outside_business_hours", shop.address)
    assert alert["thresholds"]["hours"] == CLOSED_NOW
    assert alert["thresholds"]["hours_from"] == f"category {CLOSED_CATEGORY}"
    assert alert["observed"]["count"] == 1
    evidence = _evidence(watch, auditor, alert)
    assert _transfers(evidence) == _paid(payments)
    [(_, paid)] = evidence
    assert alert["observed"]["times_kst"] == [_clock(kst_minute_of_day(paid["blockTime"]))]


def test_a_wallet_spending_its_charge_and_incentive_at_one_merchant(
    chain, backend, api, city, watch, auditor
):
    shop = _merchant(chain, "spend-all")
    wallet = _resident(chain, "spend-all", 100_000)
    payments = _pay_all(backend, api, [(wallet, shop, 60_000)])
    payments += _pay_all(backend, api, [(wallet, shop, 50_000)])

    alert = _alert(watch, auditor, "incentive_spend_all", wallet.address)
    assert alert["subjectKind"] == "wallet"
    assert alert["thresholds"] == {
        "window_minutes": 120,
        "min_share_percent": 95.0,
        "min_amount": 100_000,
    }
    assert alert["observed"] == {
        "charged": 100_000,
        "incentive": 10_000,
        "spent_at_merchant": 110_000,
        "merchant": shop.address,
        "share_percent": 100.0,
        "balance_after": 0,
    }
    assert city.token.functions.balanceOf(wallet.address).call() == 0
    evidence = _evidence(watch, auditor, alert)
    assert _transfers(evidence) == _paid(payments)
    assert _charges(evidence) == [(wallet.address, 100_000, 10_000)]


def test_gifts_gathered_from_several_residents_and_spent_at_one_shop(chain, city, watch, auditor):
    """A gives B, who passes it on to D; C and E give D directly; D spends it at one shop."""
    shop = _merchant(chain, "gift-chain")
    a, c, e = (_resident(chain, f"gift-chain-{n}", 100_000) for n in "ace")
    b, d = (new_wallet(f"fraud-resident:gift-chain-{n}:{time.time_ns()}") for n in "bd")
    for wallet in (b, d):
        chain.register_resident(CITY, wallet)
    gifts = chain.w3.eth.contract(
        address=city.programs.functions.gifts().call(), abi=packaged_abi("CityGifts")
    )
    for giver, receiver, value in ((a, b, 50_000), (b, d, 50_000), (c, d, 40_000), (e, d, 30_000)):
        _send_as(chain, giver, gifts.functions.gift(receiver.address, value))
    invoice = b"gift-chain".ljust(32, b"\0")
    _send_as(chain, d, city.token.functions.pay(shop.address, 110_000, invoice))

    alert = _alert(watch, auditor, "gift_chain", d.address)
    assert alert["subjectKind"] == "wallet"
    assert alert["observed"]["wallets"] == sorted(w.address for w in (a, b, c, e))
    assert alert["observed"]["given"] == 120_000
    assert alert["observed"]["spent_at_merchant"] == 110_000
    assert alert["observed"]["merchant"] == shop.address
    roles = [role for role, _ in _evidence(watch, auditor, alert)]
    assert roles == ["gift"] * 4 + ["payment"]


def test_an_ordinary_day_at_a_shop_raises_no_alert(chain, backend, api, watcher, watch, auditor):
    shop = _merchant(chain, "ordinary")
    customers = [_resident(chain, f"ordinary-{i}", 100_000) for i in range(4)]
    amounts = [12_000, 9_000, 30_000, 7_500]
    payments = _pay_all(backend, api, list(zip(customers, [shop] * 4, amounts, strict=True)))
    done = _cash_out(chain, api, shop, sum(amounts))  # the day's takings, fee-free

    closing = chain.w3.eth.get_transaction_receipt(done["redemptionTx"])["blockNumber"]
    _judged(watcher, max([closing, *(p["blockNumber"] for p in payments)]))
    people = {shop.address, *(c.address for c in customers)}
    alerts = watch.get(ALERTS, params={"limit": 1000}, headers=auditor).json()
    assert [a for a in alerts if a["subject"] in people] == []


# --- the API ----------------------------------------------------------------------------------


def test_alerts_and_events_need_an_operator_or_auditor_key_of_the_city(watcher, watch, auditor):
    refused_keys = [
        bearer(watcher.api_key(f"fraud-{role}-{city}", role, city))
        for role, city in (("pos", CITY), ("bank", CITY), ("operator", "gongju"))
    ]
    operator = bearer(watcher.api_key("fraud-operator", "operator", CITY))
    for path in (ALERTS, f"/v1/cities/{CITY}/events/0x{'ab' * 32}/0"):
        missing = watch.get(path)
        assert missing.status_code == 401, missing.text
        assert missing.json()["error"]["code"] == "missing_credentials"
        for headers in refused_keys:
            refused = watch.get(path, headers=headers)
            assert refused.status_code == 403, refused.text
            assert "auditor, operator for gimpo" in refused.json()["error"]["accepted"]
    assert watch.get(ALERTS, headers=operator).status_code == 200
    assert watch.get(ALERTS, headers=auditor).status_code == 200


@pytest.mark.parametrize(
    ("params", "field", "value"),
    [
        ({"rule": "kkang"}, "query.rule", "kkang"),
        ({"since": "yesterday"}, "query.since", "yesterday"),
        ({"limit": "0"}, "query.limit", "0"),
    ],
)
def test_a_bad_alert_filter_is_a_422_naming_it(watch, auditor, params, field, value):
    response = watch.get(ALERTS, params=params, headers=auditor)
    assert response.status_code == 422, response.text
    error = response.json()["error"]
    assert (error["field"], error["value"]) == (field, value)
    assert error["accepted"]


def test_the_rule_filter_lists_the_rules(watch, auditor):
    error = watch.get(ALERTS, params={"rule": "kkang"}, headers=auditor).json()["error"]
    for rule in ("quick_cash_out", "fresh_wallet_feed", "round_under_limit"):
        assert rule in error["accepted"]


def test_the_since_filter_keeps_alerts_raised_from_then_on(chain, backend, api, watch, auditor):
    shop = _merchant(chain, "since", CLOSED_CATEGORY)
    _pay_all(backend, api, [(_resident(chain, "since", 30_000), shop, 10_000)])
    alert = _alert(watch, auditor, "outside_business_hours", shop.address)
    raised = alert["createdAt"]
    listed = watch.get(ALERTS, params={"since": raised}, headers=auditor).json()
    assert alert["id"] in [a["id"] for a in listed]
    assert all(a["createdAt"] >= raised for a in listed)
    later = watch.get(ALERTS, params={"since": "2999-01-01T00:00:00Z"}, headers=auditor).json()
    assert later == []


def test_an_event_that_is_not_indexed_or_not_a_hash(watch, auditor):
    unknown = watch.get(f"/v1/cities/{CITY}/events/0x{'00' * 32}/3", headers=auditor)
    assert unknown.status_code == 404
    assert unknown.json()["error"]["code"] == "event_not_found"
    malformed = watch.get(f"/v1/cities/{CITY}/events/0x1234/3", headers=auditor)
    assert malformed.status_code == 422
    assert malformed.json()["error"]["field"] == "tx_hash"
    assert malformed.json()["error"]["value"] == "0x1234"
    negative = watch.get(f"/v1/cities/{CITY}/events/0x{'00' * 32}/-1", headers=auditor)
    assert negative.status_code == 422
    assert negative.json()["error"]["field"] == "path.log_index"


# --- raised once ------------------------------------------------------------------------------


def test_a_restart_raises_no_alert_again(chain, backend, api, watcher, watch, auditor):
    shop = _merchant(chain, "restart", CLOSED_CATEGORY)
    _pay_all(backend, api, [(_resident(chain, "restart", 30_000), shop, 10_000)])
    _alert(watch, auditor, "outside_business_hours", shop.address)
    before = watch.get(ALERTS, params={"limit": 1000}, headers=auditor).json()

    watcher.stop()
    watcher.start()  # catches up with every stored event, then rescans the listener's margin
    _judged(watcher, chain.w3.eth.block_number)
    after = watch.get(ALERTS, params={"limit": 1000}, headers=auditor).json()
    assert [(a["id"], a["key"]) for a in after] == [(a["id"], a["key"]) for a in before]


@pytest.fixture
def own_chain(tmp_path_factory):
    """A chain of this test's own: it is reverted, which the shared chain's users would not like."""
    yield from deployed_chain(tmp_path_factory.mktemp("fraud-reorg-chain"))


def test_a_reorg_drops_the_alert_whose_evidence_it_orphaned(own_chain, tmp_path):
    w3 = own_chain.w3
    db = Database(own_database_url(tmp_path, "fraud_reorg"))
    upgrade(db.engine)
    listener = Listener(
        db, own_chain.deployment.gateway.rpc, own_chain.deployment.watched_contracts()
    )
    engine = FraudEngine(db, own_chain.deployment, FraudConfig())
    engine.attach(listener)
    token = own_chain.deployment.city(CITY).token
    wallet, shop = new_wallet("fraud-reorg-resident"), new_wallet("fraud-reorg-shop")
    own_chain.register_resident(CITY, wallet)
    own_chain.register_merchant(CITY, shop)
    listener.step()

    snapshot = w3.provider.make_request("evm_snapshot", [])["result"]
    own_chain.charge(CITY, wallet, 100_000)  # the branch that will be orphaned: all spent
    _send_as(own_chain, wallet, token.functions.transfer(shop.address, 110_000))
    listener.step()
    with db.session() as session:
        [alert] = alerts_for(session, CITY, rule="incentive_spend_all")
        assert alert.subject == wallet.address

    assert w3.provider.make_request("evm_revert", [snapshot])["result"] is True
    own_chain.charge(CITY, wallet, 100_000)  # the branch the chain keeps: nothing spent
    while w3.eth.block_number < listener.indexed_to + 1:
        time.sleep(0.2)
    listener.step()

    assert listener.reorgs >= 1
    with db.session() as session:
        assert alerts_for(session, CITY) == []
    assert engine.alerts_dropped == 1
    db.engine.dispose()


# --- the rules on hand-made events --------------------------------------------------------------

T0 = 1_767_225_600  # 2026-01-01 09:00 KST
RESIDENT_A, RESIDENT_B = "0x" + "a" * 40, "0x" + "b" * 40
SHOP = "0x" + "5" * 40


class _Events:
    """Events of one city in chain order, one block each, `minute` minutes after T0."""

    def __init__(self) -> None:
        self.books = Books()
        self.activity = CityActivity(self.books.city(CITY), horizon=86_400)
        self.block = 0
        self.facts = []
        self.events: list[ChainEvent] = []  # for a Judge to fold as the engine does

    def add(self, contract: str, name: str, minute: float, **args):
        self.block += 1
        event = ChainEvent(
            CITY,
            contract,
            name,
            self.block,
            f"0x{self.block:064x}",
            int(T0 + minute * 60),
            f"0x{self.block:064x}",
            0,
            args,
        )
        self.events.append(event)
        self.books.apply(event)
        fact = self.activity.apply(event)
        self.facts.append(fact)
        return fact

    def registered(self, *residents: str) -> _Events:
        for resident in residents:
            self.add("token", "AccountStatusSet", 0, account=resident, kind=1, active=True)
        self.add("token", "AccountStatusSet", 0, account=SHOP, kind=2, active=True)
        return self

    def charge(self, wallet: str, minute: float, amount: int, incentive: int):
        reference = f"0x{self.block + 1:064x}"
        return self.add(
            "treasury",
            "Issued",
            minute,
            resident=wallet,
            depositReference=reference,
            issuer=SHOP,
            amount=amount,
            incentive=incentive,
        )

    def pay(self, wallet: str, minute: float, value: int):
        return self.add("token", "Transfer", minute, **{"from": wallet, "to": SHOP, "value": value})


def test_a_wallet_charged_longer_ago_than_fresh_minutes_is_not_fresh():
    rule = FreshWalletFeed(
        FraudConfig().defaults.fresh_wallet_feed.model_copy(
            update={"min_wallets": 2, "min_amount": 0}
        )
    )
    events = _Events().registered(RESIDENT_A, RESIDENT_B)
    events.charge(RESIDENT_A, 0, 100_000, 0)
    events.charge(RESIDENT_B, 0, 100_000, 0)
    events.pay(RESIDENT_A, 30, 50_000)  # 30 minutes after: fresh
    assert rule.judge(events.pay(RESIDENT_B, 31, 50_000), events.activity) is None
    late = events.pay(RESIDENT_A, 31, 50_000)
    assert rule.judge(late, events.activity) is None  # still one fresh wallet only


def test_round_under_limit_wants_round_amounts_within_the_margin_below_a_limit():
    rule = RoundUnderLimit(
        FraudConfig().defaults.round_under_limit.model_copy(update={"min_count": 1})
    )
    events = _Events().registered(RESIDENT_A)
    events.activity.limits = {"monthly purchase limit": 500_000}
    events.charge(RESIDENT_A, 0, 500_000, 0)
    for value, expected in ((500_000, False), (475_000, False), (480_000, True), (474_000, False)):
        finding = rule.judge(events.pay(RESIDENT_A, 1, value), events.activity)
        assert (finding is not None) is expected, value
    under_configured = RoundUnderLimit(rule.config.model_copy(update={"limits": [200_000]}))
    finding = under_configured.judge(events.pay(RESIDENT_A, 2, 190_000), events.activity)
    assert finding.thresholds["limit_name"] == "configured 200,000"


def test_a_charge_without_incentive_or_spread_over_merchants_is_no_spend_all():
    rule = IncentiveSpendAll(FraudConfig().defaults.incentive_spend_all)
    events = _Events().registered(RESIDENT_A)
    events.charge(RESIDENT_A, 0, 100_000, 0)
    assert rule.judge(events.pay(RESIDENT_A, 5, 100_000), events.activity) is None
    events.charge(RESIDENT_A, 10, 100_000, 10_000)
    assert rule.judge(events.pay(RESIDENT_A, 11, 100_000), events.activity) is None  # 91%
    finding = rule.judge(events.pay(RESIDENT_A, 12, 10_000), events.activity)
    assert finding.observed["share_percent"] == 100.0
    assert [e.role for e in finding.evidence] == ["charge", "payment", "payment"]
    assert rule.judge(events.pay(RESIDENT_A, 200, 1), events.activity) is None  # past the window


def _gift(events: _Events, giver: str, receiver: str, minute: float, value: int):
    return events.add(
        "gifts", "Gifted", minute, **{"from": giver, "to": receiver, "value": value},
        nonce="0x" + "00" * 32,
    )  # fmt: skip


def test_gifts_converging_on_a_wallet_need_enough_givers_amount_and_one_merchant():
    rule = GiftChain(FraudConfig().defaults.gift_chain)
    a, b, c, d = RESIDENT_A, RESIDENT_B, "0x" + "c" * 40, "0x" + "d" * 40
    events = _Events().registered(a, b, c, d)
    _gift(events, a, b, 0, 60_000)
    _gift(events, b, d, 1, 60_000)  # A's money, passed on by B
    _gift(events, c, d, 2, 50_000)
    # Under 80% of the 110,000 given is spent here yet.
    assert rule.judge(events.pay(d, 3, 50_000), events.activity) is None
    finding = rule.judge(events.pay(d, 4, 40_000), events.activity)  # 90,000: 82%
    assert finding.subject == d
    assert finding.observed["wallets"] == sorted([a, b, c])
    assert [e.role for e in finding.evidence] == ["gift"] * 3 + ["payment"] * 2
    # Two givers only, or too little given, or gifts older than the window: nothing.
    fewer = _Events().registered(a, b, d)
    _gift(fewer, a, d, 0, 60_000)
    _gift(fewer, b, d, 1, 60_000)
    assert rule.judge(fewer.pay(d, 2, 120_000), fewer.activity) is None
    small = _Events().registered(a, b, c, d)
    for giver in (a, b, c):
        _gift(small, giver, d, 0, 30_000)
    assert rule.judge(small.pay(d, 1, 90_000), small.activity) is None
    old = _Events().registered(a, b, c, d)
    for giver in (a, b, c):
        _gift(old, giver, d, 0, 50_000)
    assert rule.judge(old.pay(d, 24 * 60 + 1, 150_000), old.activity) is None


def _hours(hours: str, **more):
    return parse_fraud_config(
        {"defaults": {"outside_business_hours": {"hours": hours, **more}}}
    ).defaults.outside_business_hours


CLOSED_UNTIL_TEN = _hours("10:00-22:00")  # T0 is 09:00 KST: closed for the first hour


def _alerts(events: _Events, hours=CLOSED_UNTIL_TEN) -> list:
    """The findings a Judge raises (the engine stores them) folding the events in order."""
    config = FraudConfig(defaults={"outside_business_hours": hours})
    judge = Judge(config, [CITY], lambda code: {})
    return [finding for event in events.events for finding in judge.fold(event)]


def test_a_burst_of_payments_outside_business_hours_is_one_alert_of_bounded_evidence():
    """5,000 payments in ten minutes while the shop is closed: every one crosses the rule, the
    window holds thousands, and yet the evidence of a finding is the newest EVIDENCE_CAP events
    (the count is over all of them) and the burst is one alert."""
    rule = OutsideBusinessHours(CLOSED_UNTIL_TEN)
    events = _Events().registered(RESIDENT_A, RESIDENT_B)
    burst = [events.pay((RESIDENT_A, RESIDENT_B)[i % 2], i / 500, 1_000) for i in range(5_000)]
    last = rule.judge(burst[-1], events.activity)
    assert len(last.evidence) == EVIDENCE_CAP
    assert [e.event for e in last.evidence] == [p.event for p in burst[-EVIDENCE_CAP:]]
    assert last.observed["count"] == 5_000
    assert last.observed["events_attached"] == EVIDENCE_CAP
    assert last.observed["times_kst"] == ["09:09"] * EVIDENCE_CAP
    assert f"(the last {EVIDENCE_CAP} of 5000)" in last.message

    [alert] = _alerts(events)
    assert alert.rule == "outside_business_hours"
    assert alert.trigger == burst[0].event  # raised at the first; the rest continue its episode
    assert [e.event for e in alert.evidence] == [burst[0].event]


def test_an_alert_raised_past_a_large_min_count_carries_the_newest_evidence():
    events = _Events().registered(RESIDENT_A)
    burst = [events.pay(RESIDENT_A, i / 100, 1_000) for i in range(500)]
    [alert] = _alerts(events, _hours("10:00-22:00", min_count=200))
    assert alert.trigger == burst[199].event
    assert alert.observed["count"] == 200
    assert alert.observed["events_attached"] == EVIDENCE_CAP
    assert [e.event for e in alert.evidence] == [p.event for p in burst[150:200]]


def test_payments_outside_hours_an_hour_apart_are_two_episodes():
    events = _Events().registered(RESIDENT_A)
    first, _, later = (events.pay(RESIDENT_A, minute, 1_000) for minute in (0, 30, 95))
    alerts = _alerts(events, _hours("12:00-22:00"))  # 60 min windows: the third overlaps no other
    assert [a.trigger for a in alerts] == [first.event, later.event]
    assert [[e.event for e in a.evidence] for a in alerts] == [[first.event], [later.event]]


def test_business_hours_may_run_past_midnight_and_a_city_adds_to_the_defaults():
    config = parse_fraud_config(
        {
            "defaults": {"outside_business_hours": {"categories": {5611: "10:00-22:00"}}},
            "cities": {"gimpo": {"outside_business_hours": {"categories": {5621: "18:00-02:00"}}}},
        }
    )
    hours = config.for_city("gimpo").outside_business_hours
    bar, _ = hours.hours_of(SHOP, 5621)
    assert (23 * 60 in bar, 1 * 60 in bar, 3 * 60 in bar, 17 * 60 in bar) == (
        True,
        True,
        False,
        False,
    )
    assert str(hours.hours_of(SHOP, 5611)[0]) == "10:00-22:00"  # kept from the defaults
    assert hours.hours_of(SHOP, 1234)[1] == "default"
    assert config.for_city("ulsan").outside_business_hours.categories.keys() == {5611}


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        (
            {"cities": {"gimpo": {"quick_cash_out": {"window_minutes": 0}}}},
            "cities.gimpo.quick_cash_out.window_minutes = 0: must be greater than 0",
        ),
        (
            {"defaults": {"outside_business_hours": {"hours": "9-17"}}},
            "defaults.outside_business_hours.hours = '9-17': must be opening and closing time "
            "as 'HH:MM-HH:MM'",
        ),
        (
            {"defaults": {"quick_cash_out": {"max_customer": 2}}},
            "defaults.quick_cash_out: unknown key 'max_customer' (accepted keys: enabled, "
            "window_minutes, max_customers",
        ),
        (
            {"defaults": {"outside_business_hours": {"merchants": {0x12: "09:00-18:00"}}}},
            "must be quoted ('0x...')",
        ),
    ],
)
def test_a_bad_fraud_configuration_names_the_key_the_value_and_what_is_accepted(raw, message):
    with pytest.raises(FraudConfigError) as refused:
        parse_fraud_config(raw, source="config/fraud.yaml")
    assert message in str(refused.value)


def test_a_city_the_backend_does_not_serve_is_a_warning_and_an_unnamed_city_runs_on_defaults(
    caplog,
):
    config = parse_fraud_config(
        {
            "defaults": {"quick_cash_out": {"max_customers": 5}},
            "cities": {"gimpoo": {"quick_cash_out": {"max_customers": 2}}},
        }
    )
    with caplog.at_level(logging.WARNING, logger="citypay.fraud.config"):
        config.check_cities(["gimpo", "gongju"], "config/fraud.yaml")
    assert [record.getMessage() for record in caplog.records] == [
        "config/fraud.yaml: cities.gimpoo is not a city this backend serves (gimpo, gongju): "
        "its thresholds are unused"
    ]
    assert config.for_city("gongju").quick_cash_out.max_customers == 5
    assert config.for_city("gimpoo").quick_cash_out.max_customers == 2
