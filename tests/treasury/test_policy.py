"""The treasury's policy setters, its issuers (USDC master-minter style), and the Korean calendar
(KST months and fiscal years) as the treasury's views show it."""

import calendar
import dataclasses
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from brownie import CityTreasury, accounts

from scripts.city_suite import GIMPO

KST = ZoneInfo("Asia/Seoul")

# (setter, the bytes32 name PolicyChanged carries, index in policy(), a new value)
POLICY_SETTERS = [
    ("setAnnualIssuanceCap", "annualIssuanceCap", 0, 10_000_000_000),
    ("setMonthlyPurchaseLimit", "monthlyPurchaseLimit", 1, 700_000),
    ("setHoldingCap", "holdingCap", 2, 3_000_000),
    ("setIncentiveBps", "incentiveBps", 3, 600),
    ("setMonthlyIncentiveLimit", "monthlyIncentiveLimit", 4, 70_000),
]


def parameter_name(name: str) -> str:
    """The setter's parameter as the indexed bytes32 of PolicyChanged."""
    return "0x" + name.encode().ljust(32, b"\0").hex()


# --- Policy setters ---------------------------------------------------------------------------


@pytest.mark.parametrize(("setter", "name", "index", "value"), POLICY_SETTERS)
def test_policy_setter_emits_policy_changed_with_old_and_new_value(
    treasury, city_admin, setter, name, index, value
):
    old = treasury.policy()[index]
    tx = getattr(treasury, setter)(value, {"from": city_admin})
    assert tx.events["PolicyChanged"].values() == [parameter_name(name), old, value]


@pytest.mark.parametrize(("setter", "name", "index", "value"), POLICY_SETTERS)
def test_policy_setter_changes_only_its_own_value(treasury, city_admin, setter, name, index, value):
    expected = list(treasury.policy())
    expected[index] = value
    getattr(treasury, setter)(value, {"from": city_admin})
    assert treasury.policy() == expected


def test_policy_starts_as_the_city_s_deployment_policy(treasury):
    assert treasury.policy() == GIMPO.policy.treasury_policy()


def test_set_incentive_bps_reverts_over_ten_thousand(treasury, city_admin, reverts_with):
    with reverts_with("CityTreasuryRateTooHigh", 10_001, 10_000):
        treasury.setIncentiveBps(10_001, {"from": city_admin})


def test_set_incentive_bps_allows_ten_thousand(treasury, city_admin):
    treasury.setIncentiveBps(10_000, {"from": city_admin})
    assert treasury.policy()["incentiveBps"] == 10_000


def test_deployment_reverts_with_an_incentive_over_ten_thousand(token, city_admin, reverts_with):
    policy = dataclasses.replace(GIMPO.policy, incentive_bps=10_001).treasury_policy()
    with reverts_with("CityTreasuryRateTooHigh", 10_001, 10_000):
        CityTreasury.deploy(token, city_admin, policy, 1, {"from": city_admin})


def test_a_new_incentive_rate_applies_to_the_next_charge(
    treasury, fresh_resident, issuer, city_admin, new_reference
):
    treasury.setIncentiveBps(600, {"from": city_admin})
    tx = treasury.issue(fresh_resident, 100_000, new_reference(), {"from": issuer})
    assert tx.events["Issued"]["incentive"] == 6_000


def test_a_lower_monthly_purchase_limit_applies_to_the_next_charge(
    treasury, fresh_resident, issuer, city_admin, new_reference, reverts_with
):
    treasury.issue(fresh_resident, 200_000, new_reference(), {"from": issuer})
    treasury.setMonthlyPurchaseLimit(250_000, {"from": city_admin})
    with reverts_with("CityTreasuryMonthlyLimitExceeded", fresh_resident, 200_000, 50_001, 250_000):
        treasury.issue(fresh_resident, 50_001, new_reference(), {"from": issuer})


# --- Issuers ----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def new_issuer():
    return accounts[9]


def test_configure_issuer_emits_issuer_configured_with_old_and_new_allowance(
    treasury, issuer_admin, new_issuer
):
    tx = treasury.configureIssuer(new_issuer, 500_000, {"from": issuer_admin})
    assert tx.events["IssuerConfigured"].values() == [new_issuer.address, 0, 500_000]


def test_configure_issuer_grants_the_issuer_role(treasury, issuer_admin, new_issuer):
    tx = treasury.configureIssuer(new_issuer, 500_000, {"from": issuer_admin})
    assert treasury.hasRole(treasury.ISSUER_ROLE(), new_issuer)
    assert tx.events["RoleGranted"].values() == [
        treasury.ISSUER_ROLE(),
        new_issuer.address,
        issuer_admin.address,
    ]


def test_configure_issuer_sets_the_allowance_rather_than_adding_to_it(
    treasury, issuer_admin, new_issuer
):
    treasury.configureIssuer(new_issuer, 500_000, {"from": issuer_admin})
    tx = treasury.configureIssuer(new_issuer, 200_000, {"from": issuer_admin})
    assert tx.events["IssuerConfigured"].values() == [new_issuer.address, 500_000, 200_000]
    assert treasury.issuerAllowance(new_issuer) == 200_000


def test_remove_issuer_emits_issuer_removed(treasury, issuer_admin, issuer):
    tx = treasury.removeIssuer(issuer, {"from": issuer_admin})
    assert tx.events["IssuerRemoved"].values() == [issuer.address]


def test_remove_issuer_revokes_the_role_and_clears_the_allowance(treasury, issuer_admin, issuer):
    treasury.removeIssuer(issuer, {"from": issuer_admin})
    assert not treasury.hasRole(treasury.ISSUER_ROLE(), issuer)
    assert treasury.issuerAllowance(issuer) == 0


def test_a_removed_issuer_cannot_issue(
    treasury, fresh_resident, issuer_admin, issuer, new_reference, reverts_with
):
    treasury.removeIssuer(issuer, {"from": issuer_admin})
    with reverts_with("AccessControlUnauthorizedAccount", issuer, treasury.ISSUER_ROLE()):
        treasury.issue(fresh_resident, 1_000, new_reference(), {"from": issuer})


def test_issuer_role_is_administered_by_the_issuer_admin_role(treasury):
    assert treasury.getRoleAdmin(treasury.ISSUER_ROLE()) == treasury.ISSUER_ADMIN_ROLE()


def test_city_admin_cannot_grant_the_issuer_role_directly(
    treasury, city_admin, new_issuer, reverts_with
):
    with reverts_with("AccessControlUnauthorizedAccount", city_admin, treasury.ISSUER_ADMIN_ROLE()):
        treasury.grantRole(treasury.ISSUER_ROLE(), new_issuer, {"from": city_admin})


def test_city_admin_cannot_configure_an_issuer(treasury, city_admin, new_issuer, reverts_with):
    with reverts_with("AccessControlUnauthorizedAccount", city_admin, treasury.ISSUER_ADMIN_ROLE()):
        treasury.configureIssuer(new_issuer, 1_000, {"from": city_admin})


def test_city_admin_holding_issuer_admin_can_grant_the_issuer_role(
    treasury, city_admin, new_issuer
):
    treasury.grantRole(treasury.ISSUER_ADMIN_ROLE(), city_admin, {"from": city_admin})
    treasury.grantRole(treasury.ISSUER_ROLE(), new_issuer, {"from": city_admin})
    assert treasury.hasRole(treasury.ISSUER_ROLE(), new_issuer)


def test_an_issuer_granted_without_configure_has_no_allowance(
    treasury, fresh_resident, city_admin, new_issuer, new_reference, reverts_with
):
    treasury.grantRole(treasury.ISSUER_ADMIN_ROLE(), city_admin, {"from": city_admin})
    treasury.grantRole(treasury.ISSUER_ROLE(), new_issuer, {"from": city_admin})
    with reverts_with("CityTreasuryIssuerAllowanceExceeded", new_issuer, 0, 110_000):
        treasury.issue(fresh_resident, 100_000, new_reference(), {"from": new_issuer})


def test_issuer_admin_cannot_change_the_policy(treasury, issuer_admin, reverts_with):
    with reverts_with(
        "AccessControlUnauthorizedAccount", issuer_admin, treasury.DEFAULT_ADMIN_ROLE()
    ):
        treasury.setHoldingCap(1, {"from": issuer_admin})


# --- The Korean calendar ----------------------------------------------------------------------


def _upcoming_calendar_edges() -> list[datetime]:
    """Half an hour either side of KST midnights where the civil calendar is easy to get wrong:
    a leap day, a century year that is not a leap year, a 400th year that is, a year's end."""
    this_year = datetime.now(KST).year
    leap = next(y for y in range(this_year + 1, this_year + 9) if calendar.isleap(y))
    century = next(y for y in range(this_year + 1, this_year + 201) if y % 100 == 0 and y % 400)
    quad_century = next(y for y in range(this_year + 1, this_year + 401) if y % 400 == 0)
    edges = []
    for year in (leap, century, quad_century):
        march = datetime(year, 3, 1, tzinfo=KST)
        edges += [march - timedelta(minutes=30), march + timedelta(minutes=30)]
    new_year = datetime(century, 1, 1, tzinfo=KST)
    edges += [new_year - timedelta(minutes=30), new_year + timedelta(minutes=30)]
    return edges


@pytest.mark.parametrize("moment", _upcoming_calendar_edges(), ids=lambda m: m.isoformat())
def test_month_and_fiscal_year_follow_the_kst_calendar(treasury, stranger, kst, moment):
    kst.sleep_until(moment)
    assert treasury.residentTally(stranger)["month"] == kst.month_index(moment)
    assert treasury.currentFiscalYear() == moment.year


def test_fiscal_year_turns_at_kst_midnight_while_utc_is_still_in_december(treasury, kst):
    new_year = kst.next_year_start()
    kst.sleep_past(new_year, timedelta(minutes=30))
    assert datetime.fromtimestamp(new_year.timestamp() + 1800, UTC).year == new_year.year - 1
    assert treasury.currentFiscalYear() == new_year.year


def test_fiscal_year_still_the_old_one_half_an_hour_before_kst_midnight(treasury, kst):
    new_year = kst.next_year_start()
    kst.sleep_until(new_year - timedelta(minutes=30))
    assert treasury.currentFiscalYear() == new_year.year - 1


@pytest.fixture(scope="module")
def march_treasury(token, city_admin):
    """A treasury whose fiscal year starts on 1 March."""
    return CityTreasury.deploy(
        token, city_admin, GIMPO.policy.treasury_policy(), 3, {"from": city_admin}
    )


def test_fiscal_year_start_month_is_the_deployed_one(treasury, march_treasury):
    assert (treasury.fiscalYearStartMonth(), march_treasury.fiscalYearStartMonth()) == (1, 3)


def test_fiscal_year_starting_in_march_is_the_last_year_at_the_end_of_february(march_treasury, kst):
    march = datetime(kst.now().year + 1, 3, 1, tzinfo=KST)
    kst.sleep_until(march - timedelta(minutes=30))
    assert march_treasury.currentFiscalYear() == march.year - 1


def test_fiscal_year_starting_in_march_turns_at_kst_midnight_on_1_march(march_treasury, kst):
    march = datetime(kst.now().year + 1, 3, 1, tzinfo=KST)
    kst.sleep_until(march + timedelta(minutes=30))
    assert march_treasury.currentFiscalYear() == march.year


@pytest.mark.parametrize("month", [0, 13])
def test_deployment_reverts_with_a_fiscal_year_start_month_out_of_range(
    token, city_admin, reverts_with, month
):
    with reverts_with("CityTreasuryInvalidMonth", month):
        CityTreasury.deploy(
            token, city_admin, GIMPO.policy.treasury_policy(), month, {"from": city_admin}
        )
