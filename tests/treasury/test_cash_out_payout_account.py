"""Every signed cash-out names the payout account it pays (issue 9, item 2), and the treasury
refuses it unless that is the account the registry holds for the merchant: a registrar key alone
cannot redirect cash-outs, including ones already signed."""

import pytest
from citypay.registry_authorization import sign_payout_account

UNUSED = 0
ACCOUNT, NONCE = 2, 5  # positions in cashOutWithAuthorization's arguments
FAR = 2**40


@pytest.fixture
def change_payout_account(registry, registrar, registry_domain):
    """The merchant's signed change of its payout account, relayed by the registrar."""

    def change(merchant, account: bytes):
        signature = sign_payout_account(
            merchant.private_key,
            registry_domain,
            payout_account_hash=account,
            nonce=registry.payoutAccountNonce(merchant),
            deadline=FAR,
        )
        return registry.changePayoutAccount(merchant, account, FAR, signature, {"from": registrar})

    return change


def test_a_cash_out_signed_for_the_old_account_fails_after_a_change(
    treasury,
    token,
    paid_merchant,
    settler,
    authorize_cash_out,
    change_payout_account,
    helpers,
    reverts_with,
):
    args = authorize_cash_out(paid_merchant, 10_000)
    new_account = helpers.account_hash("merchant-1 new bank")
    change_payout_account(paid_merchant, new_account)
    with reverts_with(
        "CityTreasuryPayoutAccountMismatch", paid_merchant, args[ACCOUNT], new_account
    ):
        treasury.cashOutWithAuthorization(*args, {"from": settler})
    assert token.balanceOf(paid_merchant) == 60_000


def test_a_cash_out_refused_for_its_account_leaves_its_nonce_unused(
    treasury,
    paid_merchant,
    settler,
    authorize_cash_out,
    change_payout_account,
    helpers,
    reverts_with,
):
    args = authorize_cash_out(paid_merchant, 10_000)
    change_payout_account(paid_merchant, helpers.account_hash("merchant-1 new bank"))
    with reverts_with(
        "CityTreasuryPayoutAccountMismatch",
        paid_merchant,
        args[ACCOUNT],
        helpers.account_hash("merchant-1 new bank"),
    ):
        treasury.cashOutWithAuthorization(*args, {"from": settler})
    assert treasury.cashOutAuthorizationState(paid_merchant, args[NONCE]) == UNUSED


def test_a_cash_out_signed_for_an_account_the_registry_does_not_hold_is_refused(
    treasury, paid_merchant, settler, authorize_cash_out, helpers, reverts_with
):
    elsewhere = helpers.account_hash("an account the merchant never registered")
    args = authorize_cash_out(paid_merchant, 10_000, payout_account=elsewhere)
    with reverts_with(
        "CityTreasuryPayoutAccountMismatch",
        paid_merchant,
        elsewhere,
        helpers.account_hash(paid_merchant.address),
    ):
        treasury.cashOutWithAuthorization(*args, {"from": settler})


def test_a_cash_out_signed_for_the_new_account_pays_it_once_the_change_is_made(
    treasury,
    paid_merchant,
    settler,
    authorize_cash_out,
    change_payout_account,
    helpers,
    as_hex,
    reverts_with,
):
    """The merchant may sign ahead: the cash-out waits until the registry holds that account."""
    new_account = helpers.account_hash("merchant-1 new bank")
    args = authorize_cash_out(paid_merchant, 10_000, payout_account=new_account)
    with reverts_with(
        "CityTreasuryPayoutAccountMismatch",
        paid_merchant,
        new_account,
        helpers.account_hash(paid_merchant.address),
    ):
        treasury.cashOutWithAuthorization(*args, {"from": settler})
    change_payout_account(paid_merchant, new_account)
    tx = treasury.cashOutWithAuthorization(*args, {"from": settler})
    assert tx.events["RedemptionRequested"]["payoutAccountHash"] == as_hex(new_account)


def test_the_payout_account_is_part_of_the_signed_terms(
    treasury, paid_merchant, settler, authorize_cash_out, helpers, reverts_with
):
    """Swapping the account of a signed cash-out breaks its signature."""
    args = authorize_cash_out(paid_merchant, 10_000)
    args[ACCOUNT] = helpers.account_hash("the settler's pick")
    with reverts_with("CityTreasuryInvalidSignature", paid_merchant, args[NONCE]):
        treasury.cashOutWithAuthorization(*args, {"from": settler})


def test_the_merchant_s_own_cash_out_after_a_change_pays_the_new_account(
    treasury, paid_merchant, change_payout_account, helpers, as_hex
):
    new_account = helpers.account_hash("merchant-1 new bank")
    change_payout_account(paid_merchant, new_account)
    tx = treasury.cashOut(10_000, {"from": paid_merchant})
    assert tx.events["RedemptionRequested"]["payoutAccountHash"] == as_hex(new_account)
