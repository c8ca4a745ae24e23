"""A recovered wallet is retired for good (issue 9, item 1): it is never registered again nor named
as a replacement, so the replacements never form a cycle, and every wallet of a holder leads in
one look-up to its current one, however many recoveries happened: refunds to and from the holder
and returned redemptions still reach it."""

import pytest
from eth_utils import keccak

from scripts.city_suite import return_of, signed_application

CASH_OUT, RESIDENT_REFUND = 0, 1
REASON = keccak(text="bank-failure:account-closed")
PAYOUT_ACCOUNT = keccak(text="bank-account:resident-1")


@pytest.fixture(scope="module")
def second(new_wallet):
    """The holder's second wallet."""
    return new_wallet("retired:second")


@pytest.fixture(scope="module")
def third(new_wallet):
    """The holder's third wallet."""
    return new_wallet("retired:third")


@pytest.fixture
def recovered_twice(recover_wallet, second, third):
    """Recovers `lost` to `second`, then `second` to `third`."""

    def recover(lost):
        recover_wallet(lost, second)
        recover_wallet(second, third)

    return recover


# --- Never registered again -------------------------------------------------------------------


@pytest.mark.parametrize("holder", ["resident", "merchant"])
def test_a_recovered_wallet_cannot_be_registered_again_as_a_resident(
    recover_wallet, registry, registrar, city, request, second, helpers, reverts_with, holder
):
    lost = request.getfixturevalue(holder)
    recover_wallet(lost, second)
    with reverts_with("CityRegistryWalletRetired", lost):
        registry.registerResident(
            lost, helpers.identity_hash("another person"), 41570, {"from": registrar}
        )


@pytest.mark.parametrize("holder", ["resident", "merchant"])
def test_a_recovered_wallet_cannot_be_registered_again_as_a_merchant(
    recover_wallet, registry, registrar, city, request, second, application, reverts_with, holder
):
    lost = request.getfixturevalue(holder)
    recover_wallet(lost, second)
    app = application("another business")
    with reverts_with("CityRegistryWalletRetired", lost):
        registry.registerMerchant(*signed_application(registry, lost, app), {"from": registrar})


# --- Never a replacement: no cycle ------------------------------------------------------------


def test_recovering_the_replacement_back_to_the_lost_wallet_is_refused(
    recover_wallet, registry, compliance, city, resident, second, reverts_with
):
    """The old cycle attack: recover A to B, then B to A."""
    recover_wallet(resident, second)
    with reverts_with("CityRegistryWalletRetired", resident):
        registry.proposeRecovery(second, resident, {"from": compliance})


def test_a_recovered_wallet_cannot_become_another_holder_s_replacement(
    recover_wallet, registry, compliance, city, resident, resident2, second, reverts_with
):
    recover_wallet(resident, second)
    with reverts_with("CityRegistryWalletRetired", resident):
        registry.proposeRecovery(resident2, resident, {"from": compliance})


def test_a_refund_to_the_holder_still_works_after_the_cycle_was_refused(
    recover_wallet, registry, token, compliance, city, resident, merchant, second, reverts_with
):
    token.transfer(merchant, 5_000, {"from": resident})
    recover_wallet(resident, second)
    with reverts_with("CityRegistryWalletRetired", resident):
        registry.proposeRecovery(second, resident, {"from": compliance})
    token.refund(resident, bytes(32), 5_000, {"from": merchant})
    assert token.balanceOf(second) == 110_000


# --- One look-up from any wallet of the holder ------------------------------------------------


def test_every_wallet_of_a_holder_leads_to_its_current_wallet_after_two_recoveries(
    token, city, resident, second, third, recovered_twice
):
    recovered_twice(resident)
    assert [token.currentWallet(w) for w in (resident, second, third)] == [third.address] * 3


def test_every_wallet_of_a_holder_names_its_first_wallet_as_origin(
    token, city, resident, second, third, recovered_twice
):
    recovered_twice(resident)
    assert [token.originOf(w) for w in (resident, second, third)] == [resident.address] * 3


def test_both_lost_wallets_are_retired_and_the_current_one_is_not(
    token, city, resident, second, third, recovered_twice
):
    recovered_twice(resident)
    assert [token.isRetired(w) for w in (resident, second, third)] == [True, True, False]


def test_a_wallet_never_recovered_is_its_own_origin_and_current_wallet(token, city, resident2):
    assert (token.originOf(resident2), token.currentWallet(resident2)) == (
        resident2.address,
        resident2.address,
    )


# --- Refunds and returned redemptions after two recoveries -----------------------------------


def test_a_refund_of_a_payment_made_before_two_recoveries_reaches_the_payer_s_current_wallet(
    token, city, resident, merchant, third, relayer, sign, recovered_twice
):
    auth = sign(resident, merchant, 8_000)
    token.transferWithAuthorization(*auth.as_args(), {"from": relayer})
    recovered_twice(resident)
    tx = token.refund(resident, auth.nonce, 3_000, {"from": merchant})
    assert tx.events["Transfer"].values() == [merchant.address, third.address, 3_000]
    assert token.balanceOf(third) == 110_000 - 8_000 + 3_000


def test_the_current_wallet_of_a_merchant_recovered_twice_refunds_its_first_wallet_s_payment(
    token, city, resident, merchant, third, relayer, sign, recovered_twice
):
    auth = sign(resident, merchant, 8_000)
    token.transferWithAuthorization(*auth.as_args(), {"from": relayer})
    recovered_twice(merchant)
    token.refund(resident, auth.nonce, 8_000, {"from": third})
    assert token.balanceOf(resident) == 110_000


def test_a_retired_wallet_of_the_merchant_cannot_refund_its_payments(
    token, city, resident, merchant, second, relayer, sign, recovered_twice, reverts_with
):
    auth = sign(resident, merchant, 8_000)
    token.transferWithAuthorization(*auth.as_args(), {"from": relayer})
    recovered_twice(merchant)
    with reverts_with("CityTokenPaymentNotFound", resident, second, auth.nonce):
        token.refund(resident, auth.nonce, 8_000, {"from": second})


def test_plain_transfers_stay_refundable_after_both_sides_were_recovered_twice(
    recover_wallet, token, city, resident, merchant, new_wallet, recovered_twice, third
):
    token.transfer(merchant, 5_000, {"from": resident})
    recovered_twice(resident)
    merchant_second = new_wallet("retired:merchant-second")
    merchant_now = new_wallet("retired:merchant-third")
    recover_wallet(merchant, merchant_second)
    recover_wallet(merchant_second, merchant_now)
    assert token.refundableAmount(third, merchant_now, bytes(32)) == 5_000
    token.refund(third, bytes(32), 5_000, {"from": merchant_now})
    assert token.balanceOf(third) == 110_000


def test_a_cash_out_returned_after_two_recoveries_reaches_the_merchant_s_current_wallet(
    treasury, token, city, resident, merchant, third, settler, recovered_twice, as_hex
):
    token.transfer(merchant, 10_000, {"from": resident})
    treasury.cashOut(10_000, {"from": merchant})
    recovered_twice(merchant)
    tx = treasury.returnRedemption(*return_of(treasury, 0, REASON), {"from": settler})
    assert tx.events["RedemptionReturned"].values() == [0, third.address, 10_000, as_hex(REASON)]
    assert token.balanceOf(third) == 10_000


def test_a_resident_refund_returned_after_two_recoveries_reaches_the_current_wallet(
    treasury, token, city, resident, merchant, third, settler, recovered_twice
):
    token.transfer(merchant, 66_000, {"from": resident})
    treasury.requestResidentRefund(PAYOUT_ACCOUNT, {"from": resident})
    recovered_twice(resident)
    treasury.returnRedemption(*return_of(treasury, 0, REASON), {"from": settler})
    assert token.balanceOf(third) == 44_000
    assert treasury.residentTally(third)["chargedValue"] == 110_000
