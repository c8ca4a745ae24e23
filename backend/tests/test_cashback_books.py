"""Cashback on payments (결제 캐시백) in the books, the audit, the statutory report and the
dashboard. Ulsan pays its incentive as cashback (config/cities.yaml): on a chain of this module's
own, residents charge, pay three shops of different revenue bands and regions, the cashback
payer settles each payment, a shop refunds two payments (one to a frozen resident, whose
cashback is then owed and set against its next one). The test keeps its own ledger of what the
city owes and paid, worked out from Ulsan's terms; the auditor, knowing only the RPC URL and the
directory, must find the same figures to the won, with every invariant holding; the statutory
report and the dashboard must count cashback as the incentive it is; and an event altered on
its way to the auditor must fail the check."""

from __future__ import annotations

import csv
import io
import json
import subprocess
import sys
import threading
import time
from collections import defaultdict
from dataclasses import dataclass, field, fields
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import requests
from citypay.admin.export import table_csv
from citypay.admin.service import DashboardService
from citypay.audit.source import ChainSource, connect
from citypay.audit.statutory import ITEMS
from citypay.chain.events import packaged_abi, topics_of
from citypay.day.processes import listener_process
from citypay.db.session import Database
from citypay.ledger import Figures
from citypay.listener.models import ListenerCheckpoint
from citypay.registry_authorization import merchant_registration, registry_domain_for
from conftest import own_database_url
from eth_utils import keccak
from platform_harness import ROOT, deployed_chain, new_wallet
from sqlalchemy.exc import SQLAlchemyError
from test_audit_any_node import audit, directory_of, run_audit
from test_cashout import _send_as

CITY = "ulsan"
KST = timedelta(hours=9)
FIGURES = [f.name for f in fields(Figures)]
JUNG_GU, NAM_GU, DONG_GU = 31110, 31140, 31170
# Ulsan's terms as config/cities.yaml ships them: 10% at merchants with revenue up to 300
# million won, 7% up to 3 billion, 12% in Dong-gu (a population-decline area), within a monthly
# incentive limit of 35,000 won a resident.
SHOPS = {  # name: (annual revenue, region, cashback in basis points)
    "noodles": (300_000_000, JUNG_GU, 1_000),
    "dong-bakery": (300_000_000, DONG_GU, 1_200),
    "mart": (1_500_000_000, NAM_GU, 700),
}
MONTHLY_INCENTIVE_LIMIT = 35_000
BUDGET = 6_000_000_000


@dataclass
class Ledger:
    """What the test did, in won, per wallet and for the city; and what the cashback contract
    must be left with."""

    accounts: dict[str, dict[str, int]] = field(
        default_factory=lambda: defaultdict(lambda: dict.fromkeys(FIGURES, 0))
    )
    city: dict[str, int] = field(default_factory=lambda: dict.fromkeys(FIGURES, 0))
    balances: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    budget: int = BUDGET
    incentive_this_month: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    # Each payment's general money counted and cashback paid, as the contract keeps its claim.
    claims: dict[bytes, tuple[int, int]] = field(default_factory=dict)

    def _add(self, *wallets: str, **values: int) -> None:
        for each in [*(self.accounts[w] for w in wallets), self.city]:
            for name, value in values.items():
                each[name] += value

    def charge(self, resident: str, amount: int) -> None:
        # In cashback mode the treasury gives no discount at charge.
        self._add(resident, charged=amount, issued=amount)
        self.balances[resident] += amount

    def pay(self, payer: str, merchant: str, value: int) -> None:
        self.accounts[payer]["paid"] += value
        self.accounts[payer]["payments"] += 1
        self.accounts[merchant]["received"] += value
        self.accounts[merchant]["payments"] += 1
        self._add(paid=value, received=value, payments=1)
        self.balances[payer] -= value
        self.balances[merchant] += value

    def cashback(self, payer: str, invoice: bytes, value: int, bps: int) -> int:
        """A payment's cashback: its rate, set against what the payer owes first, the rest minted
        within the month's incentive limit. Returns what was minted."""
        gross = value * bps // 10_000
        from_debt = min(gross, self.accounts[payer]["cashback_owed"])
        left = MONTHLY_INCENTIVE_LIMIT - self.incentive_this_month[payer]
        minted = min(gross - from_debt, left)
        self.incentive_this_month[payer] += minted
        self.claims[invoice] = (value, from_debt + minted)
        self.budget -= from_debt + minted
        self._add(payer, cashback_owed=-from_debt)
        if minted:
            self._add(payer, cashback=minted, cashbacks=1, incentive=minted, issued=minted)
        self.balances[payer] += minted
        return minted

    def refund(self, merchant: str, payer: str, invoice: bytes, value: int, *, burns: bool) -> int:
        """A merchant's refund of part of a payment, and its cashback taken back in proportion
        (rounded toward the city): burned, or owed when the resident's money cannot be touched
        (a frozen wallet). Returns what was taken back."""
        self.accounts[merchant]["refunded"] += value
        self.accounts[merchant]["refunds"] += 1
        self._add(payer, refunded=value, refunds=1)
        self.balances[merchant] -= value
        self.balances[payer] += value
        base, paid = self.claims[invoice]
        amount = -(-paid * value // base)
        self.claims[invoice] = (base - value, paid - amount)
        self.budget += amount
        self.incentive_this_month[payer] -= min(amount, self.incentive_this_month[payer])
        burned = amount if burns else 0
        self._add(payer, cashback_reversed=burned, burned=burned, clawed_back=burned,
                  cashback_owed=amount - burned)  # fmt: skip
        self.balances[payer] -= burned
        return amount


@dataclass
class Staged:
    ledger: Ledger
    residents: dict[str, object]
    shops: dict[str, object]
    before: dict
    moment: int  # the chain's time when the day began


@pytest.fixture(scope="module")
def chain(tmp_path_factory):
    """A chain of this module's own: its clock is moved to a quiet hour of a month of its own."""
    yield from deployed_chain(tmp_path_factory.mktemp("cashback-chain"))


def _cashback_contract(chain):
    city = chain.deployment.city(CITY)
    return chain.w3.eth.contract(
        address=city.chain.cashback.address, abi=packaged_abi("CityCashback")
    )


def _register_shop(chain, wallet, revenue: int, region: int) -> None:
    """As the harness registers a merchant, with the annual revenue the cashback band reads."""
    city = chain.deployment.city(CITY)
    application = (
        keccak(text=f"business:{wallet.address}"),
        keccak(text=f"bank-account:{wallet.address}"),
        revenue,
        5611,
        region,
    )
    domain = registry_domain_for(
        city.token.functions.name().call(), chain.deployment.chain_id, city.registry.address
    )
    deadline = chain.w3.eth.get_block("latest")["timestamp"] + 3600
    registration = merchant_registration(wallet.key, domain, application, deadline=deadline)
    chain.send(city.roles["registrar"], city.registry.functions.registerMerchant(*registration))


def _to_the_10th_of_next_month(chain) -> int:
    """Moves the chain's clock to 10:00 KST on the 10th of next month: every step of the day
    falls in one month and one half year, whatever the wall clock says."""
    now = datetime.fromtimestamp(chain.w3.eth.get_block("latest")["timestamp"], UTC) + KST
    year, month = (now.year + 1, 1) if now.month == 12 else (now.year, now.month + 1)
    moment = int((datetime(year, month, 10, 10, tzinfo=UTC) - KST).timestamp())
    chain.w3.provider.make_request("evm_setNextBlockTimestamp", [moment])
    chain.w3.provider.make_request("evm_mine", [])
    return moment


@pytest.fixture(scope="module")
def staged(chain) -> Staged:
    city = chain.deployment.city(CITY)
    token = city.token.functions
    cashback = _cashback_contract(chain).functions
    payer_role = city.roles["cashback_payer"]
    ledger = Ledger()
    moment = _to_the_10th_of_next_month(chain)
    residents = {name: new_wallet(f"cashback-resident:{name}") for name in ("hana", "minsu")}
    shops = {name: new_wallet(f"cashback-shop:{name}") for name in SHOPS}
    for wallet in residents.values():
        chain.register_resident(CITY, wallet, JUNG_GU)
    for name, (revenue, region, _) in SHOPS.items():
        _register_shop(chain, shops[name], revenue, region)
    before = audit(chain, "report", "--city", CITY)["cities"][CITY]

    def pay(resident: str, shop: str, value: int, invoice: bytes) -> int:
        payer, merchant = residents[resident], shops[shop]
        _send_as(chain, payer, token.pay(merchant.address, value, invoice))
        ledger.pay(payer.address, merchant.address, value)
        # The cashback payer (the backend's settler) settles each payment it sees.
        chain.send(payer_role, cashback.settle(payer.address, merchant.address, invoice))
        return ledger.cashback(payer.address, invoice, value, SHOPS[shop][2])

    def refund(shop: str, resident: str, invoice: bytes, value: int, *, burns=True) -> int:
        payer, merchant = residents[resident], shops[shop]
        _send_as(chain, merchant, token.refund(payer.address, invoice, value))
        if not burns:
            chain.send(city.roles["compliance"], token.freeze(payer.address))
        # Anyone may settle a refund: here the shop itself, not the backend.
        _send_as(chain, merchant, cashback.settle(payer.address, merchant.address, invoice))
        if not burns:
            chain.send(city.roles["compliance"], token.unfreeze(payer.address))
        return ledger.refund(merchant.address, payer.address, invoice, value, burns=burns)

    hana, minsu = residents["hana"].address, residents["minsu"].address
    for name, amount in (("hana", 500_000), ("minsu", 100_000)):
        chain.charge(CITY, residents[name], amount)
        ledger.charge(residents[name].address, amount)
    invoices = {
        n: keccak(text=f"cashback-invoice:{n}") for n in ("h1", "h2", "h3", "h4", "m1", "m2")
    }
    assert pay("hana", "noodles", 100_000, invoices["h1"]) == 10_000  # 10%
    assert pay("hana", "dong-bakery", 50_000, invoices["h2"]) == 6_000  # Dong-gu's 12%
    assert pay("minsu", "mart", 40_000, invoices["m1"]) == 2_800  # 7% above 300 million won
    assert pay("hana", "mart", 150_000, invoices["h3"]) == 10_500
    # 10,000 earned, 8,500 left of the month's 35,000: the limit cuts it.
    assert pay("hana", "noodles", 100_000, invoices["h4"]) == 8_500
    assert refund("noodles", "hana", invoices["h1"], 40_000) == 4_000  # burned
    # Refunded in full to a frozen wallet: its 2,800 is owed, then set against the next cashback.
    assert refund("mart", "minsu", invoices["m1"], 40_000, burns=False) == 2_800
    assert ledger.accounts[minsu]["cashback_owed"] == 2_800
    assert pay("minsu", "noodles", 20_000, invoices["m2"]) == 0  # 2,000 of the 2,800 repaid
    assert (ledger.accounts[hana]["cashback"], ledger.accounts[minsu]["cashback_owed"]) == (
        35_000,
        800,
    )
    return Staged(ledger, residents, shops, before, moment)


def _audited_books(chain):
    """The auditor's books, read in this process from the node and the directory alone."""
    source = ChainSource(connect(chain.rpc_url), directory_of(chain))
    source.catch_up()
    return source.books.city(CITY)


# --- the chain agrees with the test's ledger --------------------------------------------------


def test_the_chain_paid_and_took_back_what_ulsans_terms_say(chain, staged):
    city = chain.deployment.city(CITY)
    cashback = _cashback_contract(chain).functions
    ledger = staged.ledger
    for wallet in [*staged.residents.values(), *staged.shops.values()]:
        balance = city.token.functions.balanceOf(wallet.address).call()
        assert balance == ledger.balances[wallet.address], wallet.address
    assert cashback.budget().call() == ledger.budget == BUDGET - 33_000
    minsu = staged.residents["minsu"].address
    assert cashback.debtOf(minsu).call() == 800


# --- the auditor --------------------------------------------------------------------------------


def test_the_auditors_city_figures_are_the_ledgers_to_the_won(chain, staged):
    after = audit(chain, "report", "--city", CITY)["cities"][CITY]
    before, ledger = staged.before, staged.ledger
    assert {name: after[name] - before[name] for name in FIGURES} == ledger.city
    assert (after["incentive_mode"], after["cashback_budget"]) == ("cashback", ledger.budget)
    assert after["cashback_contract"] == chain.deployment.city(CITY).chain.cashback.address
    # Cashback is incentive: the city's incentive is its cashback, there being no discount.
    assert after["incentive"] == after["cashback"] == 37_800
    assert after["supply"] - before["supply"] == sum(ledger.balances.values())


def test_each_residents_cashback_taken_back_and_debt_are_the_ledgers(chain, staged):
    books = _audited_books(chain)
    for wallet in [*staged.residents.values(), *staged.shops.values()]:
        account = books.accounts[wallet.address]
        assert account.figures.as_dict() == staged.ledger.accounts[wallet.address]
        assert account.balance == staged.ledger.balances[wallet.address]
    assert books.cashback_debtors == {a.address for a in staged.residents.values()}


def test_every_invariant_holds_in_a_city_that_pays_cashback(chain, staged):
    checked = audit(chain, "check")
    assert checked["violations"] == []


def test_the_annual_cap_counts_cashback_as_the_treasury_does(chain, staged):
    city = chain.deployment.city(CITY)
    books = _audited_books(chain)
    year = city.treasury.functions.currentFiscalYear().call()
    issued = books.issued_by_fiscal_year(1)[year]
    assert issued == city.treasury.functions.issuedThisFiscalYear().call() == 600_000 + 37_800


class AlteringNode(BaseHTTPRequestHandler):
    """Passes every JSON-RPC request to the node, and alters the logs it answers with `alter`
    (a log in, a log or None out): an event source that lies to the auditor."""

    node_url = ""
    alter = staticmethod(lambda log: log)

    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        answer = requests.post(self.node_url, json=body, timeout=30).json()
        requests_ = body if isinstance(body, list) else [body]
        answers = answer if isinstance(answer, list) else [answer]
        methods = {request["id"]: request["method"] for request in requests_}
        for each in answers:
            if methods.get(each.get("id")) == "eth_getLogs" and "result" in each:
                each["result"] = [a for a in map(self.alter, each["result"]) if a is not None]
        encoded = json.dumps(answer).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(encoded)))
        self.end_headers()
        self.wfile.write(encoded)

    def log_message(self, *args) -> None:
        pass


def _one_more_won_minted(log: dict) -> dict:
    """A CashbackPaid that says one won more was minted (its fourth data word)."""
    if log["topics"][0].lower() not in topics_of("cashback", {"CashbackPaid"}):
        return log
    words = [log["data"][2 + 64 * n : 2 + 64 * (n + 1)] for n in range(5)]
    words[3] = f"{int(words[3], 16) + 1:064x}"
    return log | {"data": "0x" + "".join(words)}


def _no_reversal(log: dict) -> dict | None:
    return None if log["topics"][0].lower() in topics_of("cashback", {"CashbackReversed"}) else log


@pytest.mark.parametrize(
    ("alter", "codes"),
    [
        (
            _one_more_won_minted,
            {"supply_mismatch", "treasury_totals_mismatch", "cashback_budget_mismatch",
             "fiscal_year_issuance_mismatch"},
        ),
        (
            _no_reversal,
            {"supply_mismatch", "treasury_totals_mismatch", "cashback_budget_mismatch",
             "cashback_debt_mismatch", "cashback_debt_unknown"},
        ),
    ],
    ids=["minted-one-won-more", "reversal-left-out"],
)  # fmt: skip
def test_a_cashback_event_altered_on_its_way_to_the_auditor_fails_the_check(
    chain, staged, alter, codes
):
    handler = type(
        "Handler", (AlteringNode,), {"node_url": chain.rpc_url, "alter": staticmethod(alter)}
    )
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}"
        done = run_audit(url, directory_of(chain), "check", "--city", CITY)
    finally:
        server.shutdown()
        server.server_close()
    assert done.returncode == 1, done.stdout + done.stderr
    violations = json.loads(done.stdout)["violations"]
    assert {v["code"] for v in violations} == codes
    totals = {v["values"]["total"] for v in violations if v["code"] == "treasury_totals_mismatch"}
    if alter is _one_more_won_minted:
        # One won more in each of the six payments settled, in issued and in incentive.
        assert totals == {"issued", "incentive"}
        [budget] = [v for v in violations if v["code"] == "cashback_budget_mismatch"]
        assert budget["values"]["cashback"] - budget["values"]["events"] == 6
    else:
        assert totals == {"burned", "clawed_back"}
        # Without the reversal, the 2,000 won set against minsu's debt repays nothing owed.
        [debt] = [v for v in violations if v["code"] == "cashback_debt_mismatch"]
        assert debt["values"] == {
            "wallet": staged.residents["minsu"].address, "cashback": 800, "events": -2_000,
        }  # fmt: skip


# --- the statutory report -----------------------------------------------------------------------


def test_the_statutory_report_counts_cashback_as_incentive_given_and_taken_back(chain, staged):
    kst = datetime.fromtimestamp(staged.moment, UTC) + KST
    period = f"{kst.year}H{1 if kst.month <= 6 else 2}"
    report = audit(chain, "report", "--period", period, "--city", CITY)
    figures = report["cities"][CITY]["figures"]
    supply = chain.deployment.city(CITY).token.functions.totalSupply().call()
    assert figures == dict.fromkeys(ITEMS, 0) | {
        "general_issued": 600_000 + 37_800,
        "general_charges": 2,
        "sales": 600_000,
        "incentive": 37_800,
        "cashbacks": 5,
        "cashback_paid": 37_800,
        "payments": 6,
        "paid": 460_000,
        "merchant_refunds": 2,
        "merchant_refunded": 80_000,
        "cashback_reversed": 4_000,
        "outstanding_at_end": 600_000 + 37_800 - 4_000,
        "cashback_owed_at_end": 800,
        "merchants_registered": 3,
        "merchants_at_end": 3,
        "residents_registered": 2,
        "residents_at_end": 2,
        "active_payers": 2,
        "active_merchants": 3,
    }
    assert figures["outstanding_at_end"] == supply
    # The spreadsheet the city files names each row in Korean and English.
    done = subprocess.run(
        [sys.executable, "-m", "citypay.audit", "report", "--rpc-url", chain.rpc_url,
         "--directory", directory_of(chain), "--period", period, "--city", CITY,
         "--format", "csv"],
        cwd=ROOT, capture_output=True, timeout=120,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr.decode()
    rows = list(csv.reader(io.StringIO(done.stdout.decode("utf-8-sig"))))
    named = {(row[4], row[5]): row[6:] for row in rows[1:]}
    assert named["결제 캐시백 지급액", "of which cashback on payments"] == ["37800", "원"]
    assert named["결제 캐시백 환수액 (결제 환불)", "Cashback taken back"] == ["4000", "원"]


# --- the backend's database: the listener's index, the dashboard, reconcile -----------------


@pytest.fixture(scope="module")
def indexed(chain, staged, tmp_path_factory):
    """A backend database of this module's, into which the listener (its own process, as with
    LISTENER_IN_API=false) has indexed the chain up to the day's last block."""
    folder = tmp_path_factory.mktemp("cashback-index")
    database_url = own_database_url(folder, "cashback-index")
    listener = listener_process(chain.service_settings(database_url), folder / "listener.log")
    db = Database(database_url)
    try:
        head = chain.w3.eth.block_number
        deadline = time.monotonic() + 60
        while True:
            assert listener.poll() is None, (folder / "listener.log").read_text()[-3000:]
            try:
                with db.session() as session:
                    checkpoint = session.get(ListenerCheckpoint, "events")
                    if checkpoint is not None and checkpoint.block_number >= head:
                        break
            except SQLAlchemyError:  # the listener is still creating its tables
                pass
            assert time.monotonic() < deadline, "the listener did not reach the chain's head"
            time.sleep(0.2)
        yield database_url, db
    finally:
        listener.terminate()
        listener.wait(timeout=10)
        db.engine.dispose()


@pytest.fixture(scope="module")
def dashboard(chain, indexed):
    """The dashboard as the backend keeps it, folded from the listener's table; its clock the
    chain's."""
    clock = lambda: chain.w3.eth.get_block("latest")["timestamp"]  # noqa: E731
    return DashboardService(indexed[1], chain.deployment, clock=clock)


def test_reconcile_takes_no_cashback_for_a_deposit_a_payment_or_a_cash_out(chain, staged, indexed):
    found = audit(chain, "reconcile", "--database-url", indexed[0], "--city", CITY, expect=1)
    # The test charged through the bank's issuer, not the backend: the two deposits are the
    # chain's alone. Cashback minted and burned is none of the records the backend keeps.
    differences = sorted((d["record"], d["account"], d["database"]) for d in found["differences"])
    assert differences == sorted(
        ("deposit", wallet.address, "absent") for wallet in staged.residents.values()
    )


def test_the_dashboard_shows_the_mode_cashback_this_month_taken_back_and_budget_left(
    chain, staged, dashboard
):
    city = chain.deployment.city(CITY)
    summary = dashboard.summary(city)
    kpis = summary["kpis"]
    assert kpis["incentiveMode"] == {"ko": "결제 캐시백", "en": "Cashback on payments"}
    assert (kpis["cashbackThisMonth"], kpis["cashbackTotal"]) == (37_800, 37_800)
    assert (kpis["cashbackReversedTotal"], kpis["cashbackOwed"]) == (4_000, 800)
    assert kpis["cashbackBudget"] == _cashback_contract(chain).functions.budget().call()
    # Cashback is issuance the annual cap counts, and incentive paid.
    assert kpis["issuedThisYear"] == city.treasury.functions.issuedThisFiscalYear().call()
    assert (kpis["chargedThisYear"], kpis["incentiveThisYear"]) == (600_000, 37_800)
    assert kpis["incentiveTotal"] == 37_800
    assert kpis["circulation"] == city.token.functions.totalSupply().call()
    overview = {row["item"]["en"]: row["value"] for row in summary["tables"]["overview"]["rows"]}
    assert overview["Cashback paid this month"] == 37_800
    assert overview["Cashback budget left"] == BUDGET - 33_000
    table = summary["tables"]["incentive"]
    month = (datetime.fromtimestamp(staged.moment, UTC) + KST).strftime("%Y-%m")
    assert table["rows"][-1] == {
        "month": month,
        "mode": {"ko": "결제 캐시백", "en": "Cashback on payments"},
        "chargeIncentive": 0,
        "cashbacks": 5,
        "cashbackPaid": 37_800,
        "cashbackReversed": 4_000,
    }
    exported = table_csv(table, "ko").removeprefix("\ufeff").splitlines()
    assert exported[0] == "월,지급 방식,충전 인센티브,캐시백 건수,캐시백 지급액,캐시백 환수액"
    assert exported[-1] == f"{month},결제 캐시백,0,5,37800,4000"


def test_a_city_that_gives_its_incentive_at_charge_shows_no_cashback(chain, staged, dashboard):
    kpis = dashboard.summary(chain.deployment.city("gimpo"))["kpis"]
    assert kpis["incentiveMode"] == {"ko": "충전 할인", "en": "Discount at charge"}
    assert (kpis["cashbackThisMonth"], kpis["cashbackTotal"], kpis["cashbackOwed"]) == (0, 0, 0)
    # Gimpo links a cashback contract with no budget: it could switch, it pays nothing now.
    assert kpis["cashbackBudget"] == 0
