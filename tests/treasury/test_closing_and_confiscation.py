"""No won is stranded in a revoked account (issue 9, item 3): a revoked merchant keeps its closing
cash-out to the payout account it signed, a revoked resident its closing refund whatever it used,
less the unused incentive; a returned cash-out is restored into a revoked or suspended wallet and
can close out again. An account revoked for illegal exchange has no way out: compliance
confiscates its balance, burned as a Confiscation redemption settled for nothing.

The `paid_merchant` fixture: the resident paid the merchant 60,000 of its 110,000 (100,000
charged with a 10,000 incentive), 54.5% used, under the 60% a refund needs.
"""

import pytest
from brownie import ZERO_ADDRESS
from eth_utils import keccak
from hexbytes import HexBytes

from scripts.city_suite import return_of, settlement

CASH_OUT, RESIDENT_REFUND, CONFISCATION = 0, 1, 2
PENDING, SETTLED, RETURNED = 1, 2, 3
PAYOUT_ACCOUNT = keccak(text="bank-account:resident-1")
BANK_REFERENCE = keccak(text="bank-transfer:closing-1")
FAILURE = keccak(text="bank-failure:account-closed")
REASON = keccak(text="confiscation:case-2024-017")


@pytest.fixture
def confiscated(registry, registrar, compliance, paid_merchant):
    """The merchant, revoked for illegal exchange, its 60,000 confiscated: the confiscating tx."""
    registry.revoke(paid_merchant, True, {"from": registrar})
    return registry.confiscate(paid_merchant, REASON, {"from": compliance})


def supply_balances(token, treasury) -> bool:
    issued, _, burned, returned, _, _ = treasury.totals()
    return token.totalSupply() == issued - burned + returned


# --- A revoked merchant's closing cash-out ----------------------------------------------------


def test_a_revoked_merchant_cashes_out_its_balance_to_its_registered_account(
    treasury, token, registry, registrar, paid_merchant, helpers, as_hex
):
    registry.revoke(paid_merchant, False, {"from": registrar})
    tx = treasury.cashOut(60_000, {"from": paid_merchant})
    assert tx.events["RedemptionRequested"].values() == [
        0,
        paid_merchant.address,
        CASH_OUT,
        60_000,
        60_000,
        as_hex(helpers.account_hash(paid_merchant.address)),
    ]
    assert tx.events["Transfer"].values() == [paid_merchant.address, ZERO_ADDRESS, 60_000]
    assert token.balanceOf(paid_merchant) == 0


def test_a_revoked_merchant_s_closing_cash_out_can_be_relayed_with_its_signature(
    treasury, token, registry, registrar, settler, paid_merchant, authorize_cash_out, as_hex
):
    registry.revoke(paid_merchant, False, {"from": registrar})
    args = authorize_cash_out(paid_merchant, 60_000)
    tx = treasury.cashOutWithAuthorization(*args, {"from": settler})
    assert tx.events["CashOutAuthorized"].values() == [0, paid_merchant.address, as_hex(args[5])]
    assert token.balanceOf(paid_merchant) == 0


def test_a_revoked_merchant_s_closing_cash_out_is_settled_like_any_other(
    treasury, registry, registrar, settler, paid_merchant
):
    registry.revoke(paid_merchant, False, {"from": registrar})
    treasury.cashOut(60_000, {"from": paid_merchant})
    tx = treasury.settle(*settlement(treasury, 0, BANK_REFERENCE), {"from": settler})
    assert tx.events["RedemptionSettled"]["payout"] == 60_000
    assert treasury.redemption(0)["status"] == SETTLED


def test_a_frozen_revoked_merchant_does_not_close_out(
    treasury, token, registry, registrar, compliance, paid_merchant, reverts_with
):
    token.freeze(paid_merchant, {"from": compliance})
    registry.revoke(paid_merchant, False, {"from": registrar})
    with reverts_with("CityTokenAccountFrozen", paid_merchant):
        treasury.cashOut(60_000, {"from": paid_merchant})


# --- A revoked resident's closing refund ------------------------------------------------------


def test_a_revoked_resident_gets_its_closing_refund_whatever_it_used(
    treasury, registry, registrar, paid_merchant, resident, as_hex
):
    """50,000 left of 110,000: its unused incentive is 50,000 * 10,000 / 110,000 = 4,545."""
    registry.revoke(resident, False, {"from": registrar})
    tx = treasury.requestResidentRefund(PAYOUT_ACCOUNT, {"from": resident})
    assert tx.events["RedemptionRequested"].values() == [
        0,
        resident.address,
        RESIDENT_REFUND,
        50_000,
        45_455,
        as_hex(PAYOUT_ACCOUNT),
    ]


def test_a_revoked_resident_who_used_nothing_gets_its_charge_back_without_the_incentive(
    treasury, token, registry, registrar, city, resident2, as_hex
):
    clawed_back = treasury.totals()[5]
    registry.revoke(resident2, False, {"from": registrar})
    tx = treasury.requestResidentRefund(PAYOUT_ACCOUNT, {"from": resident2})
    assert tx.events["RedemptionRequested"]["payout"] == 100_000
    assert token.balanceOf(resident2) == 0
    assert treasury.totals()[5] == clawed_back + 10_000


def test_an_active_resident_under_sixty_percent_is_still_refused(
    treasury, paid_merchant, resident, reverts_with
):
    with reverts_with("CityTreasuryRefundBelowUsage", resident, 60_000, 110_000, 6_000):
        treasury.requestResidentRefund(PAYOUT_ACCOUNT, {"from": resident})


# --- A returned redemption goes back into a revoked or suspended wallet -----------------------


def test_a_returned_closing_cash_out_is_restored_into_the_revoked_wallet(
    treasury, token, registry, registrar, settler, paid_merchant, as_hex
):
    registry.revoke(paid_merchant, False, {"from": registrar})
    treasury.cashOut(60_000, {"from": paid_merchant})
    tx = treasury.returnRedemption(*return_of(treasury, 0, FAILURE), {"from": settler})
    assert tx.events["RedemptionReturned"].values() == [
        0,
        paid_merchant.address,
        60_000,
        as_hex(FAILURE),
    ]
    assert token.balanceOf(paid_merchant) == 60_000


def test_a_revoked_merchant_cashes_out_again_after_a_return(
    treasury, token, registry, registrar, settler, paid_merchant
):
    registry.revoke(paid_merchant, False, {"from": registrar})
    treasury.cashOut(60_000, {"from": paid_merchant})
    treasury.returnRedemption(*return_of(treasury, 0, FAILURE), {"from": settler})
    tx = treasury.cashOut(60_000, {"from": paid_merchant})
    assert tx.return_value == 1
    assert token.balanceOf(paid_merchant) == 0


def test_a_cash_out_returned_to_a_suspended_merchant_waits_for_its_reactivation(
    treasury, token, registry, registrar, settler, paid_merchant, reverts_with
):
    treasury.cashOut(60_000, {"from": paid_merchant})
    registry.suspend(paid_merchant, {"from": registrar})
    treasury.returnRedemption(*return_of(treasury, 0, FAILURE), {"from": settler})
    assert token.balanceOf(paid_merchant) == 60_000
    with reverts_with("CityTokenMerchantNotActive", paid_merchant):
        treasury.cashOut(60_000, {"from": paid_merchant})
    registry.activate(paid_merchant, {"from": registrar})
    treasury.cashOut(60_000, {"from": paid_merchant})
    assert token.balanceOf(paid_merchant) == 0


def test_a_returned_closing_refund_is_restored_and_can_be_asked_again(
    treasury, token, registry, registrar, settler, paid_merchant, resident
):
    registry.revoke(resident, False, {"from": registrar})
    treasury.requestResidentRefund(PAYOUT_ACCOUNT, {"from": resident})
    treasury.returnRedemption(*return_of(treasury, 0, FAILURE), {"from": settler})
    assert token.balanceOf(resident) == 50_000
    tx = treasury.requestResidentRefund(PAYOUT_ACCOUNT, {"from": resident})
    assert tx.events["RedemptionRequested"]["payout"] == 45_455


def test_a_cash_out_returned_after_a_revocation_for_illegal_exchange_waits_for_confiscation(
    treasury, token, registry, registrar, compliance, settler, paid_merchant
):
    treasury.cashOut(60_000, {"from": paid_merchant})
    registry.revoke(paid_merchant, True, {"from": registrar})
    treasury.returnRedemption(*return_of(treasury, 0, FAILURE), {"from": settler})
    tx = registry.confiscate(paid_merchant, REASON, {"from": compliance})
    assert tx.events["AccountConfiscated"]["amount"] == 60_000


# --- Revoked for illegal exchange: no way out but confiscation --------------------------------


def test_revoke_for_illegal_exchange_is_remembered(registry, registrar, paid_merchant, resident):
    registry.revoke(paid_merchant, True, {"from": registrar})
    registry.revoke(resident, False, {"from": registrar})
    assert registry.revokedForIllegalExchange(paid_merchant) is True
    assert registry.revokedForIllegalExchange(resident) is False


def test_a_merchant_revoked_for_illegal_exchange_cannot_cash_out(
    treasury, registry, registrar, paid_merchant, reverts_with
):
    registry.revoke(paid_merchant, True, {"from": registrar})
    with reverts_with("CityTreasuryAwaitingConfiscation", paid_merchant):
        treasury.cashOut(60_000, {"from": paid_merchant})


def test_a_resident_revoked_for_illegal_exchange_cannot_ask_for_a_refund(
    treasury, registry, registrar, paid_merchant, resident, reverts_with
):
    registry.revoke(resident, True, {"from": registrar})
    with reverts_with("CityTreasuryAwaitingConfiscation", resident):
        treasury.requestResidentRefund(PAYOUT_ACCOUNT, {"from": resident})


def test_confiscate_burns_the_balance_as_a_confiscation_redemption(
    token, paid_merchant, confiscated, as_hex
):
    assert confiscated.events["RedemptionRequested"].values() == [
        0,
        paid_merchant.address,
        CONFISCATION,
        60_000,
        0,
        as_hex(bytes(32)),
    ]
    assert confiscated.events["Transfer"].values() == [
        paid_merchant.address,
        ZERO_ADDRESS,
        60_000,
    ]
    assert token.balanceOf(paid_merchant) == 0


def test_confiscate_settles_the_redemption_at_once_for_nothing(paid_merchant, confiscated, as_hex):
    assert confiscated.events["RedemptionSettled"].values() == [
        0,
        paid_merchant.address,
        0,
        as_hex(REASON),
    ]


def test_confiscate_emits_account_confiscated(paid_merchant, confiscated, as_hex):
    assert confiscated.events["AccountConfiscated"].values() == [
        paid_merchant.address,
        0,
        60_000,
        as_hex(REASON),
    ]


def test_confiscate_records_a_settled_confiscation_with_its_reason(
    treasury, paid_merchant, confiscated, as_hex
):
    moment = confiscated.timestamp
    assert treasury.redemption(0) == (
        paid_merchant.address,
        CONFISCATION,
        SETTLED,
        moment,
        moment,
        60_000,
        0,
        0,
        0,
        as_hex(bytes(32)),
        as_hex(REASON),
    )


def test_confiscate_counts_in_total_confiscated_and_burned_but_not_settled(
    treasury, registry, registrar, compliance, paid_merchant
):
    _, _, burned, _, settled, _ = treasury.totals()
    registry.revoke(paid_merchant, True, {"from": registrar})
    registry.confiscate(paid_merchant, REASON, {"from": compliance})
    assert treasury.totalConfiscated() == 60_000
    assert treasury.totals()[2] == burned + 60_000
    assert treasury.totals()[4] == settled


def test_supply_still_equals_issued_less_burned_plus_returned_after_a_confiscation(
    token, treasury, confiscated
):
    assert supply_balances(token, treasury)


def test_compliance_confiscates_a_resident_revoked_for_illegal_exchange(
    token, treasury, registry, registrar, compliance, paid_merchant, resident
):
    registry.revoke(resident, True, {"from": registrar})
    tx = registry.confiscate(resident, REASON, {"from": compliance})
    assert tx.events["AccountConfiscated"]["amount"] == 50_000
    assert token.balanceOf(resident) == 0
    assert supply_balances(token, treasury)


def test_confiscate_takes_the_balance_of_a_frozen_account(
    token, registry, registrar, compliance, paid_merchant
):
    token.freeze(paid_merchant, {"from": compliance})
    registry.revoke(paid_merchant, True, {"from": registrar})
    tx = registry.confiscate(paid_merchant, REASON, {"from": compliance})
    assert tx.events["AccountConfiscated"]["amount"] == 60_000
    assert token.balanceOf(paid_merchant) == 0


def test_confiscate_is_refused_for_an_active_account(
    registry, compliance, paid_merchant, reverts_with
):
    with reverts_with("CityRegistryNotRevokedForIllegalExchange", paid_merchant):
        registry.confiscate(paid_merchant, REASON, {"from": compliance})


def test_confiscate_is_refused_for_an_account_revoked_without_illegal_exchange(
    token, registry, registrar, compliance, paid_merchant, reverts_with
):
    registry.revoke(paid_merchant, False, {"from": registrar})
    with reverts_with("CityRegistryNotRevokedForIllegalExchange", paid_merchant):
        registry.confiscate(paid_merchant, REASON, {"from": compliance})
    assert token.balanceOf(paid_merchant) == 60_000


def test_the_registrar_cannot_confiscate(registry, registrar, paid_merchant, reverts_with):
    registry.revoke(paid_merchant, True, {"from": registrar})
    with reverts_with(
        "AccessControlUnauthorizedAccount", registrar, HexBytes(registry.COMPLIANCE_ROLE())
    ):
        registry.confiscate(paid_merchant, REASON, {"from": registrar})


def test_the_treasury_confiscates_only_for_the_registry(
    treasury, registry, registrar, compliance, paid_merchant, reverts_with
):
    registry.revoke(paid_merchant, True, {"from": registrar})
    with reverts_with("CityTreasuryOnlyRegistry", compliance):
        treasury.confiscate(paid_merchant, REASON, {"from": compliance})


def test_a_second_confiscation_finds_nothing(
    registry, compliance, paid_merchant, confiscated, reverts_with
):
    with reverts_with("CityTreasuryZeroAmount"):
        registry.confiscate(paid_merchant, REASON, {"from": compliance})


@pytest.mark.parametrize("close", ["settle", "returnRedemption"])
def test_a_confiscation_is_never_returned_or_settled_again(
    treasury, settler, confiscated, reverts_with, close
):
    with reverts_with("CityTreasuryRedemptionNotPending", 0, SETTLED):
        getattr(treasury, close)(*settlement(treasury, 0, BANK_REFERENCE), {"from": settler})


def test_confiscate_is_refused_while_the_city_is_paused(
    token, registry, registrar, compliance, pauser, paid_merchant, reverts_with
):
    registry.revoke(paid_merchant, True, {"from": registrar})
    token.pause({"from": pauser})
    with reverts_with("EnforcedPause"):
        registry.confiscate(paid_merchant, REASON, {"from": compliance})
