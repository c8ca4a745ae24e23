"""A merchant whose wallet is a contract (ERC-1271): its owner signs the payout account at
registration and on change, its refunds (refundWithAuthorization takes v, r, s and checks them
with SignatureChecker, so the owner's 65-byte signature passes for the contract) and its
cash-outs and their cancellation, each for the contract's address."""

import pytest
from citypay.authorization import sign_refund
from citypay.registry_authorization import sign_payout_account
from eth_utils import keccak

CASH_OUT = 0
UNUSED, USED, CANCELED = 0, 1, 2  # ICityTreasury.AuthorizationState
NONCE = 5  # the nonce's position in cashOutWithAuthorization's arguments


@pytest.fixture
def paid_by_authorization(token, merchant_wallet, resident, relayer, sign):
    """The resident's gasless payment of 8,000 KRW to the contract wallet merchant."""
    auth = sign(resident, merchant_wallet, 8_000)
    token.transferWithAuthorization(*auth.as_args(), {"from": relayer})
    return auth


# --- Registration and the payout account ------------------------------------------------------


def test_a_contract_wallet_registers_as_a_merchant_with_its_owner_s_payout_signature(
    registry, token, deploy_wallet, owner, register_wallet_merchant, helpers, as_hex
):
    wallet = deploy_wallet(owner)
    tx = register_wallet_merchant(wallet, owner)
    assert tx.events["MerchantRegistered"]["payoutAccountHash"] == as_hex(
        helpers.account_hash(wallet.address)
    )
    assert token.accountKind(wallet) == 2
    assert registry.payoutAccountNonce(wallet) == 1


def test_a_contract_wallet_s_registration_signed_by_another_key_is_refused(
    city, deploy_wallet, owner, intruder, register_wallet_merchant, reverts_with
):
    wallet = deploy_wallet(owner)
    with reverts_with("CityRegistryInvalidSignature", wallet):
        register_wallet_merchant(wallet, owner, signer=intruder)


def test_a_contract_wallet_changes_its_payout_account_with_its_owner_s_signature(
    registry, registrar, registry_domain, merchant_wallet, owner, helpers, as_hex
):
    new_account = helpers.account_hash("contract wallet's new bank")
    signature = sign_payout_account(
        owner.private_key,
        registry_domain,
        payout_account_hash=new_account,
        deadline=2**40,
        nonce=1,
        merchant=merchant_wallet.address,
    )
    tx = registry.changePayoutAccount(
        merchant_wallet, new_account, 2**40, signature, {"from": registrar}
    )
    assert tx.events["PayoutAccountChanged"].values() == [
        merchant_wallet.address,
        as_hex(helpers.account_hash(merchant_wallet.address)),
        as_hex(new_account),
    ]


def test_a_contract_wallet_s_payout_change_signed_by_another_key_is_refused(
    registry, registrar, registry_domain, merchant_wallet, intruder, helpers, reverts_with
):
    new_account = helpers.account_hash("intruder's bank")
    signature = sign_payout_account(
        intruder.private_key,
        registry_domain,
        payout_account_hash=new_account,
        deadline=2**40,
        nonce=1,
        merchant=merchant_wallet.address,
    )
    with reverts_with("CityRegistryInvalidSignature", merchant_wallet):
        registry.changePayoutAccount(
            merchant_wallet, new_account, 2**40, signature, {"from": registrar}
        )


# --- refundWithAuthorization ------------------------------------------------------------------


def test_a_contract_wallet_merchant_refunds_with_its_owner_s_v_r_s_signature(
    token, domain, merchant_wallet, owner, resident, relayer, paid_by_authorization, as_hex
):
    refund = sign_refund(
        owner.private_key,
        domain,
        payer=resident.address,
        payment_id=paid_by_authorization.nonce,
        value=3_000,
        valid_before=2**40,
        merchant=merchant_wallet.address,
    )
    tx = token.refundWithAuthorization(*refund.as_args(), {"from": relayer})
    assert tx.events["AuthorizationUsed"].values() == [
        merchant_wallet.address,
        as_hex(refund.nonce),
    ]
    assert tx.events["Refunded"].values() == [
        merchant_wallet.address,
        resident.address,
        as_hex(paid_by_authorization.nonce),
        3_000,
    ]
    assert token.refundableAmount(resident, merchant_wallet, paid_by_authorization.nonce) == 5_000


def test_a_contract_wallet_merchant_s_refund_signed_by_another_key_is_refused(
    token, domain, merchant_wallet, intruder, resident, relayer, paid_by_authorization, reverts_with
):
    refund = sign_refund(
        intruder.private_key,
        domain,
        payer=resident.address,
        payment_id=paid_by_authorization.nonce,
        value=3_000,
        valid_before=2**40,
        merchant=merchant_wallet.address,
    )
    with reverts_with("EIP3009InvalidSignature", merchant_wallet):
        token.refundWithAuthorization(*refund.as_args(), {"from": relayer})


def test_a_contract_wallet_merchant_cancels_a_signed_refund(
    token,
    domain,
    merchant_wallet,
    owner,
    resident,
    relayer,
    paid_by_authorization,
    cancellation_for_wallet,
    reverts_with,
):
    refund = sign_refund(
        owner.private_key,
        domain,
        payer=resident.address,
        payment_id=paid_by_authorization.nonce,
        value=3_000,
        valid_before=2**40,
        merchant=merchant_wallet.address,
    )
    cancellation = cancellation_for_wallet(merchant_wallet, owner, refund.nonce)
    token.cancelAuthorization["address,bytes32,bytes"](
        merchant_wallet, refund.nonce, cancellation, {"from": relayer}
    )
    with reverts_with("EIP3009AuthorizationCanceled", merchant_wallet, refund.nonce):
        token.refundWithAuthorization(*refund.as_args(), {"from": relayer})


def test_a_contract_wallet_merchant_refunds_with_its_own_call(
    token, merchant_wallet, owner, resident
):
    merchant_wallet.execute(
        token, token.refund.encode_input(resident, bytes(32), 10_000), {"from": owner}
    )
    assert (token.balanceOf(merchant_wallet), token.balanceOf(resident)) == (50_000, 60_000)


# --- Cash-out ---------------------------------------------------------------------------------


def test_a_contract_wallet_merchant_cashes_out_with_its_owner_s_signature(
    treasury, token, merchant_wallet, owner, settler, authorize_cash_out, helpers, as_hex
):
    args = authorize_cash_out(merchant_wallet, 25_000, signer=owner)
    tx = treasury.cashOutWithAuthorization(*args, {"from": settler})
    assert tx.events["RedemptionRequested"].values() == [
        0,
        merchant_wallet.address,
        CASH_OUT,
        25_000,
        25_000,
        as_hex(helpers.account_hash(merchant_wallet.address)),
    ]
    assert tx.events["CashOutAuthorized"].values() == [
        0,
        merchant_wallet.address,
        as_hex(args[NONCE]),
    ]
    assert token.balanceOf(merchant_wallet) == 35_000


def test_a_contract_wallet_merchant_s_cash_out_signed_by_another_key_is_refused(
    treasury, merchant_wallet, intruder, settler, authorize_cash_out, reverts_with
):
    args = authorize_cash_out(merchant_wallet, 25_000, signer=intruder)
    with reverts_with("CityTreasuryInvalidSignature", merchant_wallet, args[NONCE]):
        treasury.cashOutWithAuthorization(*args, {"from": settler})


def test_a_contract_wallet_merchant_cancels_a_signed_cash_out(
    treasury,
    merchant_wallet,
    owner,
    outsider,
    settler,
    authorize_cash_out,
    cash_out_cancellation,
    as_hex,
    reverts_with,
):
    args = authorize_cash_out(merchant_wallet, 25_000, signer=owner)
    tx = treasury.cancelCashOutAuthorization(
        *cash_out_cancellation(merchant_wallet, args[NONCE], signer=owner), {"from": outsider}
    )
    assert tx.events["CashOutAuthorizationCanceled"].values() == [
        merchant_wallet.address,
        as_hex(args[NONCE]),
    ]
    with reverts_with("CityTreasuryAuthorizationCanceled", merchant_wallet, args[NONCE]):
        treasury.cashOutWithAuthorization(*args, {"from": settler})


def test_a_contract_wallet_merchant_s_cancellation_signed_by_another_key_is_refused(
    treasury, merchant_wallet, intruder, outsider, cash_out_cancellation, reverts_with
):
    nonce = keccak(text="contract-wallet-cash-out:intruder-cancel")
    with reverts_with("CityTreasuryInvalidSignature", merchant_wallet, nonce):
        treasury.cancelCashOutAuthorization(
            *cash_out_cancellation(merchant_wallet, nonce, signer=intruder), {"from": outsider}
        )
    assert treasury.cashOutAuthorizationState(merchant_wallet, nonce) == UNUSED


def test_a_contract_wallet_merchant_cashes_out_with_its_own_call(
    treasury, token, merchant_wallet, owner, helpers, as_hex
):
    merchant_wallet.execute(treasury, treasury.cashOut.encode_input(60_000), {"from": owner})
    assert token.balanceOf(merchant_wallet) == 0
    assert treasury.redemption(0)["payoutAccountHash"] == as_hex(
        helpers.account_hash(merchant_wallet.address)
    )
