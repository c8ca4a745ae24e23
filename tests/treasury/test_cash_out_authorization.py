"""Relayed cash-out (환전): merchants cannot send transactions on the permissioned network, so the
settler relays the merchant's EIP-712 CashOutAuthorization; the treasury checks it, then cashes
out exactly as cashOut does."""

import os

import pytest
from brownie import chain, web3
from citypay.cashout.authorization import sign_cash_out, treasury_domain_for
from eth_utils import keccak
from hexbytes import HexBytes

from scripts.city_suite import return_of

CASH_OUT, PENDING = 0, 1
UNUSED, USED, CANCELED = 0, 1, 2  # ICityTreasury.AuthorizationState
NONCE, SIGNATURE = 5, 6  # positions in cashOutWithAuthorization's arguments


@pytest.fixture(scope="module")
def treasury_domain(treasury, token):
    return treasury_domain_for(token.name(), chain.id, treasury.address)


@pytest.fixture(scope="module")
def authorize(treasury_domain, registry):
    """The merchant's signed request, as cashOutWithAuthorization takes it: (merchant, amount,
    payoutAccountHash, validAfter, validBefore, nonce, signature). The payout account is the one
    the registry holds unless given."""

    def authorize_(
        merchant,
        amount,
        *,
        signer=None,
        valid_before=None,
        valid_after=None,
        nonce=None,
        payout_account=None,
    ):
        valid_before = chain.time() + 3600 if valid_before is None else valid_before
        valid_after = chain.time() - 60 if valid_after is None else valid_after
        nonce = os.urandom(32) if nonce is None else nonce
        if payout_account is None:
            payout_account = bytes(HexBytes(registry.merchantOf(merchant)["payoutAccountHash"]))
        key = (signer or merchant).private_key
        signature = sign_cash_out(
            key,
            treasury_domain,
            amount=amount,
            payout_account_hash=payout_account,
            valid_after=valid_after,
            valid_before=valid_before,
            nonce=nonce,
            merchant=merchant.address,
        )
        return [merchant, amount, payout_account, valid_after, valid_before, nonce, signature]

    return authorize_


def test_domain_is_the_token_name_and_treasury(treasury, token, treasury_domain):
    fields = treasury.eip712Domain()
    assert (fields[1], fields[2], fields[3], fields[4]) == (
        "Gimpo Pay Treasury",
        "1",
        chain.id,
        treasury.address,
    )
    assert treasury_domain.name == f"{token.name()} Treasury"


def test_relayed_cash_out_burns_and_records_the_redemption(
    treasury, token, paid_merchant, settler, authorize, helpers, as_hex
):
    supply = token.totalSupply()
    args = authorize(paid_merchant, 25_000)
    tx = treasury.cashOutWithAuthorization(*args, {"from": settler})
    assert tx.return_value == 0
    assert token.balanceOf(paid_merchant) == 35_000
    assert token.totalSupply() == supply - 25_000
    assert tx.events["RedemptionRequested"].values() == [
        0,
        paid_merchant.address,
        CASH_OUT,
        25_000,
        25_000,
        as_hex(helpers.account_hash(paid_merchant.address)),
    ]
    assert tx.events["CashOutAuthorized"].values() == [
        0,
        paid_merchant.address,
        as_hex(args[NONCE]),
    ]
    assert treasury.redemption(0)[:3] == (paid_merchant.address, CASH_OUT, PENDING)


def test_relayed_cash_out_marks_the_nonce_used(treasury, paid_merchant, settler, authorize):
    args = authorize(paid_merchant, 1_000)
    assert treasury.cashOutAuthorizationState(paid_merchant, args[NONCE]) == UNUSED
    treasury.cashOutWithAuthorization(*args, {"from": settler})
    assert treasury.cashOutAuthorizationState(paid_merchant, args[NONCE]) == USED


def test_relayed_cash_out_refuses_another_signer(
    treasury, token, paid_merchant, merchant2, settler, authorize, reverts_with
):
    args = authorize(paid_merchant, 1_000, signer=merchant2)
    with reverts_with("CityTreasuryInvalidSignature", paid_merchant, args[NONCE]):
        treasury.cashOutWithAuthorization(*args, {"from": settler})
    assert token.balanceOf(paid_merchant) == 60_000


def test_relayed_cash_out_refuses_a_changed_amount(
    treasury, paid_merchant, settler, authorize, reverts_with
):
    args = authorize(paid_merchant, 1_000)
    args[1] = 60_000
    with reverts_with("CityTreasuryInvalidSignature", paid_merchant, args[NONCE]):
        treasury.cashOutWithAuthorization(*args, {"from": settler})


def test_relayed_cash_out_refuses_a_garbage_signature(
    treasury, paid_merchant, settler, authorize, reverts_with
):
    args = authorize(paid_merchant, 1_000)
    args[SIGNATURE] = b"\x01" * 65
    with reverts_with("CityTreasuryInvalidSignature", paid_merchant, args[NONCE]):
        treasury.cashOutWithAuthorization(*args, {"from": settler})


@pytest.mark.parametrize("margin", [0, 1], ids=["at-valid-before", "after"])
def test_relayed_cash_out_refuses_an_expired_authorization(
    treasury, token, paid_merchant, settler, authorize, reverts_with, margin
):
    """validBefore is exclusive, as in EIP-3009."""
    moment = chain.time() + 60
    web3.provider.make_request("evm_setNextBlockTimestamp", [moment])
    args = authorize(paid_merchant, 1_000, valid_before=moment - margin)
    with reverts_with("CityTreasuryAuthorizationExpired", paid_merchant, moment - margin, moment):
        treasury.cashOutWithAuthorization(*args, {"from": settler})
    assert token.balanceOf(paid_merchant) == 60_000


def test_relayed_cash_out_refuses_a_reused_nonce(
    treasury, token, paid_merchant, settler, authorize, reverts_with
):
    nonce = keccak(text="cash-out-nonce:1")
    treasury.cashOutWithAuthorization(
        *authorize(paid_merchant, 1_000, nonce=nonce), {"from": settler}
    )
    with reverts_with("CityTreasuryAuthorizationUsed", paid_merchant, nonce):
        treasury.cashOutWithAuthorization(
            *authorize(paid_merchant, 2_000, nonce=nonce), {"from": settler}
        )
    assert token.balanceOf(paid_merchant) == 59_000


def test_the_same_nonce_is_free_for_another_merchant(
    treasury, token, paid_merchant, merchant2, resident, settler, authorize
):
    token.transfer(merchant2, 5_000, {"from": resident})
    nonce = keccak(text="cash-out-nonce:shared")
    treasury.cashOutWithAuthorization(
        *authorize(paid_merchant, 1_000, nonce=nonce), {"from": settler}
    )
    treasury.cashOutWithAuthorization(*authorize(merchant2, 1_000, nonce=nonce), {"from": settler})
    assert token.balanceOf(merchant2) == 4_000


def test_relayed_cash_out_refuses_a_caller_without_the_settler_role(
    treasury, token, paid_merchant, outsider, authorize, reverts_with
):
    args = authorize(paid_merchant, 1_000)
    with reverts_with(
        "AccessControlUnauthorizedAccount", outsider, HexBytes(treasury.SETTLER_ROLE())
    ):
        treasury.cashOutWithAuthorization(*args, {"from": outsider})
    assert treasury.cashOutAuthorizationState(paid_merchant, args[NONCE]) == UNUSED


def test_the_merchant_cannot_relay_its_own_authorization(
    treasury, paid_merchant, authorize, reverts_with
):
    args = authorize(paid_merchant, 1_000)
    with reverts_with(
        "AccessControlUnauthorizedAccount", paid_merchant, HexBytes(treasury.SETTLER_ROLE())
    ):
        treasury.cashOutWithAuthorization(*args, {"from": paid_merchant})


def test_relayed_cash_out_refuses_more_than_the_balance(
    treasury, paid_merchant, settler, authorize, reverts_with
):
    args = authorize(paid_merchant, 60_001)
    with reverts_with("ERC20InsufficientBalance", paid_merchant, 60_000, 60_001):
        treasury.cashOutWithAuthorization(*args, {"from": settler})
    # A refused cash-out leaves the nonce free for a corrected retry of the same request.
    assert treasury.cashOutAuthorizationState(paid_merchant, args[NONCE]) == UNUSED


def test_relayed_cash_out_refuses_a_zero_amount(
    treasury, paid_merchant, settler, authorize, reverts_with
):
    with reverts_with("CityTreasuryZeroAmount"):
        treasury.cashOutWithAuthorization(*authorize(paid_merchant, 0), {"from": settler})


def test_relayed_cash_out_refuses_a_suspended_merchant(
    treasury, registry, paid_merchant, registrar, settler, authorize, reverts_with
):
    registry.suspend(paid_merchant, {"from": registrar})
    with reverts_with("CityTokenMerchantNotActive", paid_merchant):
        treasury.cashOutWithAuthorization(*authorize(paid_merchant, 1_000), {"from": settler})


def test_relayed_cash_out_refuses_a_frozen_merchant(
    treasury, token, paid_merchant, compliance, settler, authorize, reverts_with
):
    token.freeze(paid_merchant, {"from": compliance})
    with reverts_with("CityTokenAccountFrozen", paid_merchant):
        treasury.cashOutWithAuthorization(*authorize(paid_merchant, 1_000), {"from": settler})


def test_a_revoked_merchant_s_closing_cash_out_goes_to_its_registered_account(
    treasury, token, registry, paid_merchant, registrar, settler, authorize, helpers, as_hex
):
    registry.revoke(paid_merchant, False, {"from": registrar})
    tx = treasury.cashOutWithAuthorization(*authorize(paid_merchant, 60_000), {"from": settler})
    assert token.balanceOf(paid_merchant) == 0
    assert tx.events["RedemptionRequested"]["payoutAccountHash"] == as_hex(
        helpers.account_hash(paid_merchant.address)
    )


def test_a_merchant_revoked_for_illegal_exchange_has_no_cash_out(
    treasury, registry, paid_merchant, registrar, settler, authorize, reverts_with
):
    registry.revoke(paid_merchant, True, {"from": registrar})
    with reverts_with("CityTreasuryAwaitingConfiscation", paid_merchant):
        treasury.cashOutWithAuthorization(*authorize(paid_merchant, 1_000), {"from": settler})


def test_relayed_cash_out_refuses_a_resident(
    treasury, city, resident, settler, authorize, reverts_with
):
    with reverts_with("CityTreasuryNotMerchant", resident):
        treasury.cashOutWithAuthorization(*authorize(resident, 1_000), {"from": settler})


def test_relayed_cash_out_settles_like_a_merchant_s_own(
    treasury, token, paid_merchant, settler, authorize
):
    treasury.cashOutWithAuthorization(*authorize(paid_merchant, 25_000), {"from": settler})
    treasury.returnRedemption(
        *return_of(treasury, 0, keccak(text="bank-failure")), {"from": settler}
    )
    assert token.balanceOf(paid_merchant) == 60_000
