"""The admin dashboard (관리자모드) after a scripted day in Ulsan: its API admits only the city's
operators, its JSON and CSV say what the chain says, its stream pushes a new payment, and the page,
in headless Chromium, shows the day's numbers, a new payment within seconds, both languages and a
CSV download. A screenshot is kept in backend/tests/artifacts/.

The expectations are worked out from what the test did (amounts charged, paid, refunded, cashed
out) and the policy on chain, then checked against the chain's own views where it has one. Ulsan
pays its incentive as cashback on payments (config/cities.yaml): the test settles each payment's
cashback as the backend's cashback payer does, so the day's figures are the same whether the
backend has settled it first or not."""

from __future__ import annotations

import csv
import io
import json
import os
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest
from citypay.admin.service import DashboardService
from citypay.authorization import TokenDomain
from citypay.cashout.authorization import cash_out_body
from citypay.chain.keys import development_account
from citypay.day.cashback import settled_cashback
from citypay.db.session import Database
from citypay.wallet.client import WalletClient
from citypay.wallet.sign_in import sign_in
from conftest import bearer
from eth_account import Account
from eth_account.messages import encode_defunct
from platform_harness import new_wallet

CITY = "ulsan"  # no other test touches Ulsan: its figures are this module's alone
RESTAURANT, BAKERY, BOOKSTORE = 5611, 4721, 4761
JUNG_GU, NAM_GU = 31110, 31140
MERCHANTS = {  # name: (category, region)
    "taehwa-noodles": (RESTAURANT, JUNG_GU),
    "samsan-bakery": (BAKERY, NAM_GU),
    "jung-books": (BOOKSTORE, JUNG_GU),
}
CHARGES = {"hana": 200_000, "minsu": 150_000, "jiwoo": 100_000, "yuna": 100_000}
PURCHASES = [
    ("hana", "taehwa-noodles", 12_000),
    ("minsu", "taehwa-noodles", 9_000),
    ("jiwoo", "samsan-bakery", 6_500),
    ("hana", "jung-books", 22_000),
    ("minsu", "samsan-bakery", 4_200),
    ("hana", "taehwa-noodles", 8_000),
    # yuna spends her whole charge at one shop, for its cashback: a fraud rule flags it (깡).
    ("yuna", "jung-books", 100_000),
]
REFUND = ("taehwa-noodles", 0, 3_000)  # merchant, index in PURCHASES, amount
CASH_OUT = "samsan-bakery"  # cashes out its whole balance
# Ulsan's cashback at merchants with an annual revenue up to 300 million won (the harness
# registers 300 million) outside Dong-gu; no resident reaches the monthly incentive limit.
CASHBACK_BPS = 1_000
ARTIFACTS = Path(__file__).parent / "artifacts"
CHROMIUM = "/usr/bin/chromium"


@dataclass
class Day:
    """What the test did, and so what the dashboard must show."""

    merchants: dict[str, Account]
    residents: dict[str, Account]
    incentive_bps: int
    payments: list[tuple[str, str, int]] = field(default_factory=list)  # payer, merchant, value
    refunds: list[tuple[str, str, int]] = field(default_factory=list)  # merchant, payer, value
    cash_outs: list[tuple[str, int, dict]] = field(default_factory=list)  # merchant, amount, API
    cashbacks: list[int] = field(default_factory=list)  # minted on each payment
    cashback_reversed: int = 0  # burned when a refund took a payment's cashback back

    def incentive(self, amount: int) -> int:
        return amount * self.incentive_bps // 10_000

    @property
    def issued(self) -> int:
        return sum(a + self.incentive(a) for a in CHARGES.values()) + sum(self.cashbacks)

    @property
    def incentives(self) -> int:
        return sum(self.incentive(a) for a in CHARGES.values()) + sum(self.cashbacks)

    @property
    def circulation(self) -> int:
        return self.issued - self.cashed_out - self.cashback_reversed

    @property
    def cashed_out(self) -> int:
        return sum(amount for _, amount, _ in self.cash_outs)

    def paid_by_category(self) -> dict[int, tuple[int, int]]:
        by: dict[int, tuple[int, int]] = {}
        for _, merchant, value in self.payments:
            category = MERCHANTS[self.name_of(merchant)][0]
            count, amount = by.get(category, (0, 0))
            by[category] = (count + 1, amount + value)
        return by

    def paid_to(self, merchant: str) -> int:
        return sum(v for _, m, v in self.payments if m == merchant)

    def name_of(self, address: str) -> str:
        return next(n for n, w in self.merchants.items() if w.address == address)


def _qr(api, merchant) -> str:
    return api.get(f"/v1/cities/{CITY}/merchants/{merchant.address}/qr").json()["uri"]


def pay(backend, api, day: Day, payer: str, merchant: str, amount: int) -> dict:
    with WalletClient(backend.url, day.residents[payer], city=CITY) as wallet:
        payment = wallet.pay(_qr(api, day.merchants[merchant]), amount)
    assert payment["status"] == "included", payment
    record_payment(api, day, payment, amount)
    return payment


def record_payment(api, day: Day, payment: dict, amount: int) -> None:
    """An included payment in the day, once the backend's worker has settled its cashback (the
    test does not send as the cashback payer: the worker sends from that account meanwhile)."""
    day.payments.append((payment["payer"], payment["merchant"], amount))
    settled_cashback(api, CITY, payment)
    day.cashbacks.append(amount * CASHBACK_BPS // 10_000)


def _cash_out(chain, api, city, merchant) -> dict:
    amount = city.token.functions.balanceOf(merchant.address).call()
    domain = TokenDomain.from_dict(api.get(f"/v1/cities/{CITY}/cashout-domain").json())
    payout = api.get(f"/v1/cities/{CITY}/merchants/{merchant.address}/payout-account").json()
    body = cash_out_body(
        merchant.key,
        domain,
        amount=amount,
        payout_account_hash=bytes.fromhex(payout["payoutAccountHash"][2:]),
        valid_before=chain.w3.eth.get_block("latest")["timestamp"] + 600,
        nonce=os.urandom(32),
    )
    session = bearer(sign_in(api, merchant))
    path = f"/v1/cities/{CITY}/merchants/{merchant.address}/cashouts"
    accepted = api.post(
        path,
        json=body,
        headers=session,
    )
    assert accepted.status_code == 202, accepted.text
    deadline = time.monotonic() + 30
    cash_out = accepted.json()
    while cash_out["status"] not in ("settled", "returned", "refused"):
        assert time.monotonic() < deadline, f"cash-out still {cash_out['status']}"
        time.sleep(0.2)
        cash_out = api.get(f"{path}/{cash_out['id']}", headers=session).json()
    assert cash_out["status"] == "settled", cash_out
    return cash_out


@pytest.fixture(scope="module")
def city(chain):
    return chain.deployment.city(CITY)


@pytest.fixture(scope="module")
def day(chain, backend, api, bank, city) -> Day:
    """Ulsan's day: merchants and residents registered, residents charged, QR payments, a
    merchant's relayed refund and a cash-out paid by the bank and settled on chain."""
    bank.faults()  # a healthy bank, whatever an earlier test asked of it
    merchants = {name: new_wallet(f"dashboard-merchant:{name}") for name in MERCHANTS}
    residents = {name: new_wallet(f"dashboard-resident:{name}") for name in CHARGES}
    for name, wallet in merchants.items():
        category, region = MERCHANTS[name]
        chain.register_merchant(CITY, wallet, category, region)
    for wallet in residents.values():
        chain.register_resident(CITY, wallet, JUNG_GU)
    for name, amount in CHARGES.items():
        chain.charge(CITY, residents[name], amount)
    day = Day(merchants, residents, incentive_bps=city.treasury.functions.policy().call()[3])
    receipts = [pay(backend, api, day, *purchase) for purchase in PURCHASES]

    merchant, index, amount = REFUND
    refunded = receipts[index]
    # Signed by the shop and relayed by the backend (POST /v1/cities/{city}/refunds).
    with WalletClient(backend.url, merchants[merchant], city=CITY) as shop:
        refund = shop.refund(refunded["payer"], refunded["nonce"], amount)
    assert refund["status"] == "included", refund
    day.refunds.append((merchants[merchant].address, refunded["payer"], amount))
    # Its share of the payment's cashback is taken back, rounded toward the city.
    settled_cashback(api, CITY, refunded)
    day.cashback_reversed += -(-day.cashbacks[index] * amount // PURCHASES[index][2])

    cash_out = _cash_out(chain, api, city, merchants[CASH_OUT])
    day.cash_outs.append((merchants[CASH_OUT].address, cash_out["amount"], cash_out))
    return day


@pytest.fixture(scope="module")
def operator(backend) -> str:
    return backend.api_key("test-ulsan-operator", "operator", CITY)


def summary_when(api, token: str, ready, timeout: float = 15) -> dict:
    """The summary once `ready(summary)` holds (the listener indexes within a block or two)."""
    deadline = time.monotonic() + timeout
    while True:
        response = api.get(f"/admin/api/cities/{CITY}/summary", headers=bearer(token))
        assert response.status_code == 200, response.text
        summary = response.json()
        if ready(summary):
            return summary
        if time.monotonic() > deadline:
            raise AssertionError(f"the dashboard never got there: {summary['kpis']}")
        time.sleep(0.2)


def _caught_up(day: Day):
    # A payment's cashback is settled in a block after the payment's.
    return lambda s: (
        s["kpis"]["paymentsThisYear"] == len(day.payments)
        and (s["kpis"]["cashOutsSettledThisYear"] == len(day.cash_outs))
        and (s["kpis"]["cashbackTotal"] == sum(day.cashbacks))
        and (s["kpis"]["cashbackReversedTotal"] == day.cashback_reversed)
    )


def _error(response, status: int) -> dict:
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert {"code", "message"} <= error.keys()
    return error


# --- who may look ----------------------------------------------------------------------------

SUMMARY = f"/admin/api/cities/{CITY}/summary"
CSV = f"/admin/api/cities/{CITY}/tables/categories.csv"
STREAM = f"/admin/api/cities/{CITY}/stream"


def test_the_dashboard_api_needs_credentials(api):
    for path in (SUMMARY, CSV, STREAM):
        error = _error(api.get(path), 401)
        assert (error["code"], error["field"]) == ("missing_credentials", "Authorization")


def test_only_the_citys_operators_are_admitted(api, backend, keys, operator):
    ulsan_bank = backend.api_key("test-ulsan-bank", "bank", CITY)
    ulsan_auditor = backend.api_key("test-ulsan-auditor", "auditor", CITY)
    for token in (ulsan_bank, ulsan_auditor, keys["gongju-operator"], keys["operator"]):
        for path in (SUMMARY, CSV, STREAM):
            error = _error(api.get(path, headers=bearer(token)), 403)
            assert error["code"] == "forbidden"
            assert f"operator for {CITY}" in error["accepted"]
    assert api.get(SUMMARY, headers=bearer(operator)).status_code == 200
    platform_operator = backend.api_key("test-platform-operator", "operator")  # every city
    assert api.get(SUMMARY, headers=bearer(platform_operator)).status_code == 200


def test_the_city_administrators_wallet_signs_in_and_no_other(api, chain, city):
    admin = development_account(city.roles["city_admin"])
    assert api.get(SUMMARY, headers=bearer(sign_in(api, admin))).status_code == 200
    stranger = bearer(sign_in(api, Account.create()))
    assert _error(api.get(SUMMARY, headers=stranger), 403)["accepted"].endswith(admin.address)
    gongju_admin = development_account(chain.deployment.city("gongju").roles["city_admin"])
    _error(api.get(SUMMARY, headers=bearer(sign_in(api, gongju_admin))), 403)


def test_unknown_cities_tables_and_languages_are_named(api, operator):
    error = _error(api.get("/admin/api/cities/atlantis/summary", headers=bearer(operator)), 404)
    assert (error["code"], error["field"], error["value"]) == ("unknown_city", "city", "atlantis")
    assert "ulsan" in error["accepted"]
    path = f"/admin/api/cities/{CITY}/tables/nonsense.csv"
    error = _error(api.get(path, headers=bearer(operator)), 404)
    assert (error["code"], error["field"], error["value"]) == ("unknown_table", "table", "nonsense")
    assert "categories" in error["accepted"]
    error = _error(api.get(CSV, params={"lang": "fr"}, headers=bearer(operator)), 422)
    assert (error["field"], error["value"]) == ("query.lang", "fr")
    assert _error(api.get("/admin/atlantis"), 404)["code"] == "unknown_city"
    # Public: the names the sign-in screen shows.
    assert api.get(f"/admin/api/cities/{CITY}").json() == {
        "code": CITY,
        "name": "Ulsan Pay",
        "localName": "울산페이",
    }


# --- what it says --------------------------------------------------------------------------------


def test_the_summary_is_the_chains(api, city, day, operator):
    summary = summary_when(api, operator, _caught_up(day))
    kpis = summary["kpis"]
    treasury, token = city.treasury.functions, city.token.functions
    policy = treasury.policy().call()
    paid = sum(v for _, _, v in day.payments)
    assert kpis["issuedThisYear"] == day.issued == treasury.issuedThisFiscalYear().call()
    assert kpis["annualCap"] == policy[0]
    assert kpis["incentiveThisYear"] == day.incentives
    assert kpis["circulation"] == day.circulation == token.totalSupply().call()
    # Ulsan pays its incentive as cashback on payments, within the budget it set.
    assert kpis["incentiveMode"] == {"ko": "결제 캐시백", "en": "Cashback on payments"}
    assert kpis["cashbackThisMonth"] == kpis["cashbackTotal"] == sum(day.cashbacks)
    assert (kpis["cashbackReversedTotal"], kpis["cashbackOwed"]) == (day.cashback_reversed, 0)
    cashback = city.chain.cashback
    assert kpis["cashbackBudget"] == cashback.call("budget")
    assert kpis["cashbackBudget"] == 6_000_000_000 - sum(day.cashbacks) + day.cashback_reversed
    assert (kpis["paymentsThisYear"], kpis["paymentsAmountThisYear"]) == (len(day.payments), paid)
    assert (kpis["paymentsToday"], kpis["paymentsAmountToday"]) == (len(day.payments), paid)
    assert (kpis["merchants"], kpis["merchantsActive"], kpis["merchantsPaidThisYear"]) == (3, 3, 3)
    assert kpis["participationPercent"] == 100.0
    assert kpis["residents"] == len(CHARGES)
    payers = {payer for payer, _, _ in day.payments}
    assert kpis["activeWalletsToday"] == kpis["activeWalletsThisMonth"] == len(payers)
    assert (kpis["cashOutsThisYear"], kpis["cashOutAmountThisYear"]) == (1, day.cashed_out)
    assert (kpis["cashOutsSettledThisYear"], kpis["redemptionsPending"]) == (1, 0)
    assert kpis["medianSecondsToSettle"] >= 0
    assert (kpis["refundsThisYear"], kpis["refundAmountThisYear"]) == (1, REFUND[2])

    tables = summary["tables"]
    categories = {r["code"]: (r["payments"], r["amount"]) for r in tables["categories"]["rows"]}
    assert categories == day.paid_by_category()
    labels = {r["code"]: r["category"] for r in tables["categories"]["rows"]}
    assert labels[RESTAURANT] == {"ko": "음식점", "en": "Restaurant"}
    regions = {r["code"]: r["amount"] for r in tables["regions"]["rows"]}
    assert regions == {
        JUNG_GU: day.paid_to(day.merchants["taehwa-noodles"].address)
        + day.paid_to(day.merchants["jung-books"].address),
        NAM_GU: day.paid_to(day.merchants["samsan-bakery"].address),
    }
    top = [(r["merchant"], r["amount"]) for r in tables["topMerchants"]["rows"]]
    assert top == sorted(((m.address, day.paid_to(m.address)) for m in day.merchants.values()),
                         key=lambda item: -item[1])  # fmt: skip
    assert sum(r["yearPayments"] for r in tables["hours"]["rows"]) == len(day.payments)
    assert tables["daily"]["rows"][-1] == {
        "date": summary["today"],
        "activeWallets": len(payers),
        "payments": len(day.payments),
        "amount": paid,
    }
    [redemption] = tables["redemptions"]["rows"]
    merchant, amount, cash_out = day.cash_outs[0]
    assert (redemption["id"], redemption["account"], redemption["burned"]) == (
        cash_out["redemptionId"],
        merchant,
        amount,
    )
    assert redemption["status"]["en"] == "Settled"
    assert redemption["secondsToSettle"] == redemption["closedAt"] - redemption["requestedAt"]
    [refund] = tables["refunds"]["rows"]
    assert (refund["merchant"], refund["payer"], refund["amount"]) == day.refunds[0]
    # The fraud rules' alerts, as their own API lists them; yuna's spending is one.
    listed = api.get(f"/v1/cities/{CITY}/alerts", headers=bearer(operator)).json()
    alerts = tables["alerts"]["rows"]
    assert [(a["subject"], a["block"], a["message"]) for a in alerts] == [
        (a["subject"], a["blockNumber"], a["message"]) for a in listed
    ]
    spent = [a["subject"] for a in alerts if a["rule"]["en"] == "Charge spent at once at one shop"]
    assert spent == [day.residents["yuna"].address]
    feed = [(p["payer"], p["merchant"], p["amount"]) for p in tables["payments"]["rows"]]
    assert feed == day.payments[::-1]  # newest first


def test_csv_is_utf8_with_bom_in_either_language(api, day, operator):
    summary_when(api, operator, _caught_up(day))
    response = api.get(CSV, headers=bearer(operator))
    assert response.status_code == 200
    assert response.headers["content-type"] == "text/csv; charset=utf-8"
    assert f'filename="{CITY}-categories-' in response.headers["content-disposition"]
    assert response.content.startswith("\ufeff".encode())
    rows = list(csv.reader(io.StringIO(response.content.decode("utf-8-sig"))))
    assert rows[0] == ["업종 코드", "업종", "결제 건수", "결제 금액", "비중"]
    by_category = day.paid_by_category()
    assert {int(r[0]): (int(r[2]), int(r[3])) for r in rows[1:]} == by_category
    assert {row[0]: row[1] for row in rows[1:]}[str(RESTAURANT)] == "음식점"

    english = api.get(CSV, params={"lang": "en"}, headers=bearer(operator))
    rows = list(csv.reader(io.StringIO(english.content.decode("utf-8-sig"))))
    assert rows[0] == ["KSIC code", "Category", "Payments", "Amount", "Share"]
    assert {row[0]: row[1] for row in rows[1:]}[str(RESTAURANT)] == "Restaurant"

    listed = api.get(f"/v1/cities/{CITY}/alerts", headers=bearer(operator)).json()
    alerts = api.get(f"/admin/api/cities/{CITY}/tables/alerts.csv", headers=bearer(operator))
    rows = list(csv.reader(io.StringIO(alerts.content.decode("utf-8-sig"))))
    assert rows[0] == ["시각", "유형", "대상", "지갑", "내용", "근거 이벤트", "블록"]
    assert [(r[3], r[4], int(r[6])) for r in rows[1:]] == [
        (a["subject"], a["message"], a["blockNumber"]) for a in listed
    ]

    redemptions = api.get(
        f"/admin/api/cities/{CITY}/tables/redemptions.csv", headers=bearer(operator)
    )
    rows = list(csv.reader(io.StringIO(redemptions.content.decode("utf-8-sig"))))
    assert rows[1][1:6] == ["환전", day.cash_outs[0][0], str(day.cashed_out), str(day.cashed_out),
                            "지급 완료"]  # fmt: skip
    assert len(rows[1][6]) == len("2026-01-01 09:00:00")  # KST wall clock


def _stream_until(backend, token: str, after: int, found, timeout: float = 20) -> list[tuple]:
    """(event, data) of the stream until `found(events)` holds."""
    events: list[tuple[str, dict]] = []
    deadline = time.monotonic() + timeout
    with (
        httpx.Client(base_url=backend.url, timeout=timeout) as client,
        client.stream("GET", STREAM, params={"after": after}, headers=bearer(token)) as response,
    ):
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        name = None
        for line in response.iter_lines():
            if line.startswith("event:"):
                name = line.split(":", 1)[1].strip()
            elif line.startswith("data:"):
                events.append((name, json.loads(line.split(":", 1)[1])))
                if found(events):
                    return events
            assert time.monotonic() < deadline, f"the stream sent only {[e for e, _ in events]}"
    raise AssertionError("the stream ended")


def test_the_stream_pushes_a_new_payment_and_the_new_summary(api, backend, day, operator):
    last = summary_when(api, operator, _caught_up(day))["lastPayment"]
    payments = len(day.payments) + 1
    paying = threading.Timer(1.0, pay, (backend, api, day, "jiwoo", "jung-books", 5_500))
    paying.start()
    try:
        events = _stream_until(
            backend,
            operator,
            last,
            lambda events: any(
                e == "summary" and d["kpis"]["paymentsThisYear"] == payments for e, d in events
            ),
        )
    finally:
        paying.join()
    names = [name for name, _ in events]
    assert names[:2] == ["summary", "block"]  # the dashboard as it is, then the indexed block
    [payment] = [data for name, data in events if name == "payment"]
    assert (payment["seq"], payment["amount"], payment["merchant"]) == (
        last + 1,
        5_500,
        day.merchants["jung-books"].address,
    )
    assert payment["category"] == {"ko": "서적·문구 소매", "en": "Books and stationery"}


def test_without_a_listener_of_its_own_the_dashboard_follows_the_table(
    api, backend, chain, city, day, operator
):
    """LISTENER_IN_API=false: the listener is another process, and the dashboard follows the
    checkpoint it writes to the shared database."""
    dashboard = DashboardService(Database(backend.database_url), chain.deployment)
    dashboard.follow_database(poll_interval=0.1)

    def follows(kpis: dict, timeout: float = 15) -> dict:
        deadline = time.monotonic() + timeout
        while (own := dashboard.summary(city)["kpis"]) != kpis:
            assert time.monotonic() < deadline, f"{own} != {kpis}"
            time.sleep(0.1)
        return own

    try:
        follows(summary_when(api, operator, _caught_up(day))["kpis"])
        pay(backend, api, day, "jiwoo", "jung-books", 3_300)
        kpis = follows(summary_when(api, operator, _caught_up(day))["kpis"])
        assert kpis["paymentsThisYear"] == len(day.payments)
    finally:
        dashboard.stop()


# --- the page, in a browser ----------------------------------------------------------------------


@pytest.fixture(scope="module")
def browser():
    if not Path(CHROMIUM).exists():
        pytest.fail(
            f"{CHROMIUM} is missing: scripts/toolchain/browser.sh installs Debian's chromium "
            "(make test and make backend-test run it)"
        )
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM,
            args=[
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--no-first-run",
            ],
        )
        yield browser
        browser.close()


def won(amount: int) -> str:
    return f"₩{amount:,}"


def wait_for_text(page, selector: str, text: str) -> None:
    page.wait_for_function(
        "([selector, text]) => document.querySelector(selector)?.textContent === text",
        arg=[selector, text],
    )


def test_the_page_shows_the_days_numbers_live_in_both_languages(
    api, backend, browser, city, day, operator, tmp_path
):
    summary_when(api, operator, _caught_up(day))
    context = browser.new_context(
        viewport={"width": 1440, "height": 1000}, locale="ko-KR", accept_downloads=True
    )
    page = context.new_page()
    # Script errors fail the test (the 401 of the wrong key below is logged by Chromium, not us).
    errors = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.on("console", lambda m: m.text.startswith("dashboard:") and errors.append(m.text))
    page.goto(f"{backend.url}/admin/{CITY}")

    # A wrong key is refused on the sign-in screen; the operator's key opens the dashboard.
    page.fill("#api-key", "cpk_not-a-key")
    page.click("#key-form button[type=submit]")
    page.wait_for_selector("#sign-in-error:has-text('unknown or revoked')")
    assert page.locator("#city-name").inner_text() == "울산페이"
    assert page.locator("#status").is_hidden()
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "admin-sign-in.png"))
    page.fill("#api-key", operator)
    page.click("#key-form button[type=submit]")
    kpi = lambda key: page.locator(f"[data-kpi={key}]")  # noqa: E731
    supply = city.token.functions.totalSupply().call()
    wait_for_text(page, "[data-kpi=circulation]", won(supply))
    paid = sum(v for _, _, v in day.payments)
    assert kpi("issuedThisYear").inner_text() == won(day.issued)
    assert kpi("annualCap").inner_text() == won(city.treasury.functions.policy().call()[0])
    assert kpi("incentiveThisYear").inner_text() == won(day.incentives)
    assert kpi("paymentsAmountThisYear").inner_text() == won(paid)
    assert kpi("paymentsThisYear").inner_text() == str(len(day.payments))
    assert kpi("participationPercent").inner_text() == "100.0%"
    assert kpi("cashOutAmountThisYear").inner_text() == won(day.cashed_out)
    assert kpi("refundAmountThisYear").inner_text() == won(REFUND[2])
    assert kpi("incentiveMode").inner_text() == "결제 캐시백"
    assert kpi("cashbackThisMonth").inner_text() == won(sum(day.cashbacks))
    assert kpi("cashbackReversedTotal").inner_text() == won(day.cashback_reversed)
    this_month = page.locator('[data-table-card="incentive"] tbody tr').first
    assert this_month.locator("[data-col=mode]").inner_text() == "결제 캐시백"
    assert this_month.locator("[data-col=cashbackPaid]").inner_text() == won(sum(day.cashbacks))
    assert page.locator("#city-name").inner_text() == "울산페이"
    restaurant = page.locator(
        '[data-table-card="categories"] tbody tr',
        has=page.locator("[data-col=code]", has_text=str(RESTAURANT)),
    )
    count, amount = day.paid_by_category()[RESTAURANT]
    assert restaurant.locator("[data-col=category]").inner_text() == "음식점"
    assert restaurant.locator("[data-col=amount]").inner_text() == won(amount)
    assert restaurant.locator("[data-col=payments]").inner_text() == str(count)
    listed = api.get(f"/v1/cities/{CITY}/alerts", headers=bearer(operator)).json()
    assert page.locator("#alerts-count").inner_text() == str(len(listed))
    assert page.locator("#alerts-body li", has_text="충전 즉시 전액 사용").count() == 1

    # A payment made now shows at the top of the live feed within two seconds of its block.
    top = page.locator('[data-table-card="payments"] tbody tr').first
    with WalletClient(backend.url, day.residents["minsu"], city=CITY) as wallet:
        posted = wallet.pay(_qr(api, day.merchants["taehwa-noodles"]), 7_700, wait=False)
        top.locator("[data-col=amount]", has_text=won(7_700)).wait_for(timeout=10_000)
        seen = time.time()
        payment = wallet.wait(posted)
    record_payment(api, day, payment, 7_700)
    mined = city.token.w3.eth.get_block(payment["blockNumber"])["timestamp"]
    print(f"\nthe payment of block {payment['blockNumber']} was on the page {seen - mined:.2f} s "
          "after the block's timestamp (whole seconds: up to 1 s of it is rounding)")  # fmt: skip
    assert seen - mined < 3
    assert top.get_attribute("class") == "fresh"
    wait_for_text(page, "[data-kpi=paymentsThisYear]", str(len(day.payments)))

    # English, then a CSV of the table in that language.
    page.click("#lang-toggle")
    assert page.locator("html").get_attribute("lang") == "en"
    assert page.locator("#city-name").inner_text() == "Ulsan Pay"
    assert page.locator("[data-i18n=kpiCirculation]").inner_text() == "In circulation"
    assert page.locator("#live-text").inner_text() == "Live"
    assert restaurant.locator("[data-col=category]").inner_text() == "Restaurant"
    page.screenshot(path=str(ARTIFACTS / f"admin-dashboard-{CITY}-en.png"))
    with page.expect_download() as download:
        page.click('[data-table-card="categories"] button.csv')
    saved = tmp_path / download.value.suggested_filename
    download.value.save_as(saved)
    assert saved.name.startswith(f"{CITY}-categories-")
    content = saved.read_bytes()
    assert content.startswith("\ufeff".encode())
    rows = list(csv.reader(io.StringIO(content.decode("utf-8-sig"))))
    assert rows[0] == ["KSIC code", "Category", "Payments", "Amount", "Share"]
    assert {int(r[0]): (int(r[2]), int(r[3])) for r in rows[1:]} == day.paid_by_category()

    page.click("#lang-toggle")
    page.evaluate("window.scrollTo(0, 0)")  # the header is sticky: show it at the top
    page.wait_for_timeout(500)  # the charts redraw
    screenshot = ARTIFACTS / f"admin-dashboard-{CITY}.png"
    page.screenshot(path=str(screenshot), full_page=True)
    print(f"screenshot: {screenshot}")
    assert errors == []
    context.close()


def test_the_city_administrator_signs_in_with_a_browser_wallet(
    api, backend, browser, city, day, operator
):
    """Sign-In with Ethereum from the page: a stand-in for the browser wallet answers
    eth_requestAccounts and personal_sign with the city administrator's development key."""
    summary_when(api, operator, _caught_up(day))
    admin = development_account(city.roles["city_admin"])
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    context.expose_function(
        "signAsCityAdmin",
        lambda hex_message: (
            "0x" + admin.sign_message(encode_defunct(hexstr=hex_message)).signature.hex()
        ),
    )
    wallet = """window.ethereum = {request: async ({method, params}) => {
        if (method === 'eth_requestAccounts') return [ADDRESS];
        if (method === 'personal_sign') return window.signAsCityAdmin(params[0]);
        throw new Error('unsupported ' + method);
    }};"""
    # Wallets give addresses in lower case: the page checksums it for the EIP-4361 message.
    context.add_init_script(wallet.replace("ADDRESS", json.dumps(admin.address.lower())))
    page = context.new_page()
    page.goto(f"{backend.url}/admin/{CITY}")
    page.click("#siwe-button")
    page.wait_for_selector("#dashboard:not([hidden])")
    page.wait_for_function("document.querySelector('[data-kpi=issuedThisYear]').textContent !== ''")
    assert page.locator("[data-kpi=issuedThisYear]").inner_text() == won(day.issued)
    context.close()
