"""The auditor against a city that really worked: deposits, payments through the relay, a refund,
a cash-out settled, one returned by the bank and one left pending. The test keeps its own tally of
what it did; the auditor, knowing only the RPC URL and the directory's address, must find the
same figures to the won, no broken invariant, and every difference staged in the database."""

from __future__ import annotations

import subprocess
import sys
import time
from collections import defaultdict
from dataclasses import fields, replace

import httpx
import pytest
from citypay.audit.invariants import check_city
from citypay.audit.views import TOTALS, CityViews
from citypay.authorization import TokenDomain, sign_authorization
from citypay.db.session import Database
from citypay.ledger import Books, Figures, events_from_db
from citypay.listener.models import ListenerCheckpoint
from citypay.payments.models import Payment
from citypay.wallet.sign_in import sign_in
from conftest import CITY, bearer, wait_for_status
from platform_harness import ROOT, free_port, new_wallet
from sqlalchemy import select, update
from test_audit_any_node import audit, directory_of
from test_cashout import _account_hash, _path, _request, _send_as, _wait
from test_charging import notice
from test_charging import post as post_deposit
from test_ledger_books import _day

FIGURES = [f.name for f in fields(Figures)]


class Tally:
    """What the test did, in won, per account and for the city: its own ledger."""

    def __init__(self) -> None:
        self.accounts: dict[str, dict[str, int]] = defaultdict(lambda: dict.fromkeys(FIGURES, 0))
        self.city = dict.fromkeys(FIGURES, 0)
        self.balances: dict[str, int] = defaultdict(int)

    @staticmethod
    def _add(*figures: dict[str, int], **values: int) -> None:
        for each in figures:
            for name, value in values.items():
                each[name] += value

    def charge(self, resident: str, amount: int, incentive: int) -> None:
        self._add(self.accounts[resident], self.city, charged=amount, incentive=incentive,
                  issued=amount + incentive)  # fmt: skip
        self.balances[resident] += amount + incentive

    def pay(self, payer: str, merchant: str, value: int) -> None:
        self._add(self.accounts[payer], paid=value, payments=1)
        self._add(self.accounts[merchant], received=value, payments=1)
        self._add(self.city, paid=value, received=value, payments=1)
        self.balances[payer] -= value
        self.balances[merchant] += value

    def refund(self, merchant: str, payer: str, value: int) -> None:
        self._add(self.accounts[merchant], self.accounts[payer], self.city, refunded=value,
                  refunds=1)  # fmt: skip
        self.balances[merchant] -= value
        self.balances[payer] += value

    def cash_out(self, merchant: str, amount: int, outcome: str) -> None:
        closing = {"settled": "settled", "returned": "returned", "pending": "outstanding"}[outcome]
        self._add(self.accounts[merchant], self.city, cashed_out=amount, burned=amount,
                  **{closing: amount})  # fmt: skip
        if outcome != "returned":
            self.balances[merchant] -= amount


def _domain(city) -> TokenDomain:
    return TokenDomain(city.name, "1", 58210, city.token.address)


# --- the city's day, tallied ---------------------------------------------------------------


@pytest.fixture(scope="module")
def day(api, chain, city, bank, keys):
    """Runs the activity; returns (tally, the auditor's city report before it, wallets)."""
    stamp = time.time_ns()
    residents = [new_wallet(f"audit-resident-{n}:{stamp}") for n in range(2)]
    merchants = [new_wallet(f"audit-merchant-{n}:{stamp}") for n in range(2)]
    for wallet in residents:
        chain.register_resident(CITY, wallet)
    for wallet in merchants:
        chain.register_merchant(CITY, wallet)
    before = audit(chain, "report", "--city", CITY)["cities"][CITY]
    tally = Tally()

    for wallet, amount in zip(residents, (150_000, 80_000), strict=True):
        deposit = post_deposit(api, keys["bank"], notice(wallet.address, amount))
        assert deposit.status_code == 200 and deposit.json()["status"] == "issued", deposit.text
        tally.charge(wallet.address, amount, deposit.json()["incentive"])

    payments = [(0, 0, 12_000), (0, 1, 7_500), (1, 0, 30_000), (0, 0, 1), (1, 1, 45_678)]
    nonces = []
    for payer, merchant, value in payments:
        auth = sign_authorization(
            residents[payer].key, _domain(city), to=merchants[merchant].address, value=value
        )
        accepted = api.post(f"/v1/cities/{CITY}/payments", json=auth.as_json())
        assert accepted.status_code == 202, accepted.text
        assert wait_for_status(api, accepted.json())["status"] == "included"
        tally.pay(residents[payer].address, merchants[merchant].address, value)
        nonces.append(auth.nonce)

    # The first merchant gives back 2,345 won of the first payment, with its own transaction.
    _send_as(
        chain, merchants[0],
        city.token.functions.refund(residents[0].address, nonces[0], 2_345),
    )  # fmt: skip
    tally.refund(merchants[0].address, residents[0].address, 2_345)

    # Cash-outs through the backend: one the bank pays, one it refuses (returned on chain).
    session = bearer(sign_in(api, merchants[0]))
    domain = TokenDomain.from_dict(api.get(f"/v1/cities/{CITY}/cashout-domain").json())
    accepted = api.post(
        _path(merchants[0]), json=_request(chain, domain, merchants[0], 20_000), headers=session
    )
    assert _wait(api, session, merchants[0], accepted.json()["id"])["status"] == "settled"
    tally.cash_out(merchants[0].address, 20_000, "settled")

    bank.faults(fail_accounts=[_account_hash(merchants[1])], fail_reason="account_closed")
    try:
        session = bearer(sign_in(api, merchants[1]))
        accepted = api.post(
            _path(merchants[1]), json=_request(chain, domain, merchants[1], 5_000), headers=session
        )
        assert _wait(api, session, merchants[1], accepted.json()["id"])["status"] == "returned"
    finally:
        bank.faults()
    tally.cash_out(merchants[1].address, 5_000, "returned")

    # A cash-out the merchant sent itself, which nobody settles: outstanding.
    _send_as(chain, merchants[1], city.treasury.functions.cashOut(3_000))
    tally.cash_out(merchants[1].address, 3_000, "pending")
    return tally, before, residents, merchants


def test_the_report_equals_the_tests_own_ledger_to_the_won(chain, day):
    tally, before, residents, merchants = day
    report = audit(chain, "report", "--city", CITY)
    after = report["cities"][CITY]
    assert {name: after[name] - before[name] for name in FIGURES} == tally.city
    assert after["supply"] - before["supply"] == sum(tally.balances.values())
    assert not {wallet.address for wallet in residents} & set(after["merchants"])
    for wallet in merchants:
        figures = after["merchants"][wallet.address]
        assert {name: figures[name] for name in FIGURES} == tally.accounts[wallet.address]
        assert figures["balance"] == tally.balances[wallet.address]
        assert (figures["kind"], figures["category"], figures["status"]) == (
            "merchant", 5611, "active",
        )  # fmt: skip


def test_one_merchant_is_reported_with_its_cash_outs(chain, day):
    tally, _, _, merchants = day
    shop = merchants[1].address
    report = audit(chain, "report", "--city", CITY, "--merchant", shop.lower())
    [(address, figures)] = report["cities"][CITY]["merchants"].items()
    assert address == shop
    assert {name: figures[name] for name in FIGURES} == tally.accounts[shop]
    outcomes = sorted((c["status"], c["burned"]) for c in figures["cash_outs"])
    assert outcomes == [("pending", 3_000), ("returned", 5_000)]
    assert all(c["requested_at"] > 0 for c in figures["cash_outs"])


def test_the_books_from_the_listeners_table_agree_with_the_node(chain, backend, day):
    tally, _, residents, merchants = day
    block = audit(chain, "report", "--city", CITY)["block"]
    db = Database(backend.database_url)
    try:
        deadline = time.monotonic() + 30
        while True:
            with db.session() as session:
                checkpoint = session.get(ListenerCheckpoint, "events")
                if checkpoint is not None and checkpoint.block_number >= block:
                    books = Books().apply_all(events_from_db(session, CITY))
                    break
            assert time.monotonic() < deadline, "the listener did not reach the audited block"
            time.sleep(0.2)
    finally:
        db.engine.dispose()
    gimpo = books.cities[CITY]
    assert set(books.cities) == {CITY}
    for wallet in residents + merchants:
        account = gimpo.accounts[wallet.address]
        assert account.figures.as_dict() == tally.accounts[wallet.address]
        assert account.balance == tally.balances[wallet.address]


def test_every_invariant_holds_on_the_real_chain(chain, day):
    checked = audit(chain, "check")
    assert checked["violations"] == []


def test_reconcile_lists_a_payment_altered_by_one_won_with_both_values(chain, backend, day):
    _, _, residents, merchants = day
    ours = {w.address for w in residents + merchants}

    def differences() -> list[dict]:
        found = audit(
            chain, "reconcile", "--database-url", backend.database_url, "--city", CITY, expect=None
        )  # fmt: skip
        return [d for d in found["differences"] if d["account"] in ours]

    # The cash-out the merchant sent itself is on chain only; all else agrees.
    [pending] = differences()
    assert (pending["record"], pending["account"], pending["database"]) == (
        "cash_out", merchants[1].address, "absent",
    )  # fmt: skip
    assert pending["chain"].startswith("pending")

    db = Database(backend.database_url)
    try:
        with db.session() as session:
            payment = session.scalars(
                select(Payment).where(Payment.payer == residents[1].address).order_by(Payment.id)
            ).first()
            original = payment.value
            session.execute(
                update(Payment).where(Payment.id == payment.id).values(value=original + 1)
            )
        try:
            altered = [d for d in differences() if d["record"] == "payment"]
        finally:
            with db.session() as session:
                session.execute(
                    update(Payment).where(Payment.id == payment.id).values(value=original)
                )
    finally:
        db.engine.dispose()
    assert altered == [
        {
            "city": CITY, "record": "payment", "key": f"{payment.payer}/{payment.nonce}",
            "account": payment.payer, "field": "value", "database": original + 1, "chain": original,
        }
    ]  # fmt: skip


# --- the read-only API ---------------------------------------------------------------------


@pytest.fixture(scope="module")
def auditor_api(chain, day):
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "citypay.audit", "serve", "--rpc-url", chain.rpc_url,
         "--directory", directory_of(chain), "--port", str(port), "--no-progress"],
        cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=60) as client:
            deadline = time.monotonic() + 60
            while True:
                try:
                    client.get("/cities").raise_for_status()
                    break
                except httpx.TransportError:
                    assert process.poll() is None, "the auditor's API exited"
                    assert time.monotonic() < deadline, "the auditor's API did not start"
                    time.sleep(0.3)
            yield client
    finally:
        process.terminate()
        process.wait(timeout=10)


def test_the_api_serves_the_same_figures_and_check(auditor_api, day):
    tally, _, _, merchants = day
    cities = auditor_api.get("/cities").json()
    assert {c["city"] for c in cities["cities"]} >= {CITY}
    shop = merchants[0].address
    merchant = auditor_api.get(f"/cities/{CITY}/merchants/{shop}").json()
    assert {name: merchant[name] for name in FIGURES} == tally.accounts[shop]
    report = auditor_api.get(f"/cities/{CITY}/report").json()
    assert report["merchants"][shop]["received"] == tally.accounts[shop]["received"]
    assert auditor_api.get(f"/cities/{CITY}/check").json()["violations"] == []


def test_the_api_answers_bad_requests_in_the_backends_error_shape(auditor_api):
    unknown = auditor_api.get("/cities/seoul/report")
    assert unknown.status_code == 404
    assert unknown.json()["error"] | {"accepted": None} == {
        "code": "unknown_city", "message": "the directory lists no city 'seoul'",
        "field": "code", "value": "seoul", "accepted": None,
    }  # fmt: skip
    assert "gimpo" in unknown.json()["error"]["accepted"]
    bad = auditor_api.get(f"/cities/{CITY}/merchants/0x1234")
    assert (bad.status_code, bad.json()["error"]["field"]) == (422, "address")
    stranger = auditor_api.get(f"/cities/{CITY}/merchants/{new_wallet('nobody').address}")
    assert (stranger.status_code, stranger.json()["error"]["code"]) == (404, "unknown_merchant")
    assert auditor_api.post("/cities").status_code == 405


# --- a violation, staged on the books' other side -----------------------------------------


def _views(books, **changes) -> CityViews:
    figures = books.figures
    honest = CityViews(
        block=books.last_block, block_time=2_000_000_000, total_supply=books.supply,
        totals=dict(zip(TOTALS, (figures.issued, figures.incentive, figures.burned,
                                 figures.returned, figures.settled, figures.clawed_back),
                        strict=True)),
        annual_cap=10**12, issued_this_fiscal_year=0, current_fiscal_year=2033,
        fiscal_year_start_month=1, redemption_count=len(books.redemptions),
        redemption_status={n: r.status for n, r in books.redemptions.items()},
    )  # fmt: skip
    return replace(honest, **changes)


def test_a_supply_one_won_off_is_a_violation_with_its_numbers():
    books = Books().apply_all(_day().events)
    gimpo = books.cities["gimpo"]
    assert check_city(gimpo, _views(gimpo), books.anomalies) == []
    [violation] = [
        v
        for v in check_city(gimpo, _views(gimpo, total_supply=gimpo.supply + 1), [])
        if v.code == "supply_mismatch"
    ]
    assert violation.values["total_supply"] == gimpo.supply + 1
    assert violation.values["issued_minus_burned_plus_returned"] == gimpo.supply
    assert "difference +1" in violation.message


def test_a_charge_over_the_annual_cap_is_a_violation():
    books = Books().apply_all(_day().events)
    gimpo = books.cities["gimpo"]
    [violation] = check_city(gimpo, _views(gimpo, annual_cap=150_000), [])
    assert violation.code == "annual_cap_exceeded"
    assert (violation.values["issued"], violation.values["cap"]) == (165_000, 150_000)
