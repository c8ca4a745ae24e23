"""The half-yearly statutory report, from the chain alone, against a ledger this test keeps: a
city's second half of 2026 (charges, payments, a refund, a gift between residents, cash-outs paid
and pending, a merchant revoked for illegal exchange), then the chain's clock moved into 2027 and
more done there. Each period's figures must be what the test did in it, to the won. A chain of
this module's own, whose clock it moves."""

from __future__ import annotations

import csv
import io
import subprocess
import sys
from datetime import UTC, datetime, timedelta

import pytest
from citypay.audit.statutory import ITEMS, Period
from citypay.chain.events import packaged_abi
from eth_utils import keccak
from platform_harness import ROOT, deployed_chain, new_wallet
from test_audit_any_node import audit, directory_of, refused, run_audit
from test_cashout import _send_as

CITY = "gimpo"
KST = timedelta(hours=9)


def _expected(**figures: int) -> dict[str, int]:
    """Every item zero but those given."""
    return dict.fromkeys(ITEMS, 0) | figures


@pytest.fixture(scope="module")
def chain(tmp_path_factory):
    yield from deployed_chain(tmp_path_factory.mktemp("statutory-chain"))


def _block_time(chain) -> int:
    return chain.w3.eth.get_block("latest")["timestamp"]


@pytest.fixture(scope="module")
def history(chain):
    """What the test did in 2026H2 and 2027H1, by the chain's own clock."""
    city = chain.deployment.city(CITY)
    token, treasury, registry = city.token.functions, city.treasury.functions, city.registry
    now = datetime.fromtimestamp(_block_time(chain), UTC) + KST
    assert (now.year, now.month >= 7) == (2026, True), f"the chain's clock is at {now}"
    residents = [new_wallet(f"statutory-resident-{n}") for n in range(2)]
    merchants = [new_wallet(f"statutory-merchant-{n}") for n in range(3)]
    for wallet in residents:
        chain.register_resident(CITY, wallet)
    for wallet in merchants:
        chain.register_merchant(CITY, wallet)
    chain.charge(CITY, residents[0], 100_000)
    chain.charge(CITY, residents[1], 50_000)
    invoice = keccak(text="statutory:invoice-1")
    _send_as(chain, residents[0], token.pay(merchants[0].address, 30_000, invoice))
    _send_as(chain, residents[1], token.pay(merchants[1].address, 20_000, keccak(text="s:2")))
    _send_as(chain, residents[0], token.pay(merchants[1].address, 5_000, keccak(text="s:3")))
    _send_as(chain, merchants[0], token.refund(residents[0].address, invoice, 4_000))
    gifts = chain.w3.eth.contract(
        address=city.programs.functions.gifts().call(), abi=packaged_abi("CityGifts")
    )
    _send_as(chain, residents[0], gifts.functions.gift(residents[1].address, 10_000))
    settler = city.roles["settler"]
    _send_as(chain, merchants[0], treasury.cashOut(20_000))
    paid_id = treasury.redemptionCount().call() - 1
    chain.send(settler, treasury.settle(paid_id, merchants[0].address, 20_000, b"SBX-1".ljust(32)))
    _send_as(chain, merchants[1], treasury.cashOut(10_000))
    pending_id = treasury.redemptionCount().call() - 1
    chain.send(city.roles["registrar"], registry.functions.revoke(merchants[2].address, True))

    # Into 2027: the pending cash-out is paid, a charge and a payment.
    january = int((datetime(2027, 1, 10, tzinfo=UTC) - KST).timestamp())
    chain.w3.provider.make_request("evm_setNextBlockTimestamp", [january])
    chain.w3.provider.make_request("evm_mine", [])
    chain.send(
        settler, treasury.settle(pending_id, merchants[1].address, 10_000, b"SBX-2".ljust(32))
    )
    chain.charge(CITY, residents[1], 30_000)
    _send_as(chain, residents[1], token.pay(merchants[0].address, 1_000, keccak(text="s:4")))
    return residents, merchants


SECOND_HALF_2026 = _expected(
    general_issued=165_000,
    general_charges=2,
    sales=150_000,
    incentive=15_000,
    payments=3,
    paid=55_000,
    merchant_refunds=1,
    merchant_refunded=4_000,
    gifts=1,
    gifted=10_000,
    cash_outs=2,
    cashed_out=30_000,
    cash_outs_paid=20_000,
    outstanding_at_end=135_000,
    payouts_pending_at_end=10_000,
    merchants_registered=3,
    merchants_revoked=1,
    merchants_revoked_illegal=1,
    merchants_at_end=2,
    residents_registered=2,
    residents_at_end=2,
    active_payers=2,
    active_merchants=2,
)


def test_the_second_half_of_2026_is_what_the_city_did_in_it(chain, history):
    report = audit(chain, "report", "--period", "2026H2")
    assert report["period"] == {
        "label": "2026H2",
        "from": "2026-07-01",
        "to": "2026-12-31",
        "timezone": "KST",
    }
    assert report["complete"] is True
    city = report["cities"][CITY]
    assert city["figures"] == SECOND_HALF_2026
    assert city["programs"] == []
    # The other cities did nothing.
    assert report["cities"]["gongju"]["figures"] == _expected()


def test_the_first_half_of_2027_starts_where_2026_ended(chain, history):
    report = audit(chain, "report", "--period", "2027H1", "--city", CITY)
    assert report["complete"] is False  # the chain is in January 2027
    assert report["cities"][CITY]["figures"] == _expected(
        general_issued=33_000,
        general_charges=1,
        sales=30_000,
        incentive=3_000,
        payments=1,
        paid=1_000,
        cash_outs_paid=10_000,
        outstanding_at_start=135_000,
        outstanding_at_end=168_000,
        merchants_at_end=2,
        residents_at_end=2,
        active_payers=1,
        active_merchants=1,
    )
    assert report["cities"][CITY]["figures"]["outstanding_at_end"] == (
        chain.deployment.city(CITY).token.functions.totalSupply().call()
    )


def test_the_year_2026_is_its_two_halves(chain, history):
    first = audit(chain, "report", "--period", "2026H1", "--city", CITY)["cities"][CITY]
    assert first["figures"] == _expected()  # the chain began in December
    year = audit(chain, "report", "--period", "2026", "--city", CITY)["cities"][CITY]
    assert year["figures"] == SECOND_HALF_2026


def test_the_table_names_each_item_in_korean_and_english(chain, history):
    done = run_audit(
        chain.rpc_url, directory_of(chain), "report", "--period", "2026H2", "--city", CITY
    )
    assert done.returncode == 0, done.stderr
    # run_audit asks for JSON; the table is the default format.
    table = subprocess.run(
        [sys.executable, "-m", "citypay.audit", "report", "--rpc-url", chain.rpc_url,
         "--directory", directory_of(chain), "--period", "2026H2", "--city", CITY],
        cwd=ROOT, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert table.returncode == 0, table.stderr
    assert "일반발행액 (인센티브 포함) / General issue" in table.stdout
    assert "165,000" in table.stdout


def test_the_csv_opens_in_excel_with_hangul(chain, history):
    csv_run = _csv(chain)
    assert csv_run.startswith("\ufeff")  # UTF-8 with a byte-order mark: what Excel reads
    rows = list(csv.reader(io.StringIO(csv_run.removeprefix("\ufeff"))))
    assert rows[0][:3] == ["기간 period", "도시 city", "구분"]
    issued = next(row for row in rows if row[4].startswith("일반발행액"))
    assert issued[:2] == ["2026H2", CITY] and issued[6:] == ["165000", "원"]
    assert len(rows) == 1 + len(ITEMS)


def _csv(chain) -> str:
    done = subprocess.run(
        [sys.executable, "-m", "citypay.audit", "report", "--rpc-url", chain.rpc_url,
         "--directory", directory_of(chain), "--period", "2026H2", "--city", CITY,
         "--format", "csv"],
        cwd=ROOT, capture_output=True, timeout=120,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr.decode()
    return done.stdout.decode("utf-8")


@pytest.mark.parametrize("period", ["2026H3", "26H1", "2026-H1", "H1", "99999"])
def test_a_period_of_another_form_is_refused_naming_the_forms(chain, period):
    done = run_audit(chain.rpc_url, directory_of(chain), "report", "--period", period)
    refused(done, period, "2026H1", "2026")


def test_csv_without_a_period_is_refused(chain):
    done = run_audit(chain.rpc_url, directory_of(chain), "report")
    assert done.returncode == 0
    csv_done = run_audit(chain.rpc_url, directory_of(chain), "report", "--format", "csv")
    refused(csv_done, "--period")


def test_periods_are_korean_time_halves():
    first = Period.parse("2026H1")
    assert datetime.fromtimestamp(first.start, UTC) == datetime(2025, 12, 31, 15, tzinfo=UTC)
    assert first.end == Period.parse("2026H2").start
    assert Period.parse("2026").end == Period.parse("2026H2").end
