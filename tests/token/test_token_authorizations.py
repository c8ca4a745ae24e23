"""EIP-3009 gasless payments: signed by the payer's wallet key, relayed by anyone (transfer) or
pulled by the merchant (receive), cancellable before use, each nonce usable once."""

import dataclasses

from brownie import chain
from citypay.authorization import (
    RECEIVE_WITH_AUTHORIZATION,
    sign_authorization,
    sign_cancellation,
)

TRANSFER_BYTES = "address,address,uint256,uint256,uint256,bytes32,bytes"
RECEIVE_BYTES = TRANSFER_BYTES
CANCEL_VRS = "address,bytes32,uint8,bytes32,bytes32"
CANCEL_BYTES = "address,bytes32,bytes"

INVALID_SIGNATURE = "EIP3009InvalidSignature(address)"
USED = "EIP3009AuthorizationUsed(address,bytes32)"
CANCELED = "EIP3009AuthorizationCanceled(address,bytes32)"
EXPIRED = "EIP3009AuthorizationExpired(uint256,uint256)"
NOT_YET_VALID = "EIP3009AuthorizationNotYetValid(uint256,uint256)"


def with_signature(auth) -> tuple:
    """The arguments of the bytes-signature variants."""
    return (*auth.as_args()[:6], auth.signature)


def split(signature: bytes) -> tuple:
    """(v, r, s) of a 65-byte r || s || v signature."""
    return signature[64], signature[:32], signature[32:64]


# --- Settling -----------------------------------------------------------------------------------


def test_transfer_with_authorization_pays_the_merchant(
    city, token, resident, merchant, relayer, sign, balances
):
    auth = sign(resident, merchant, 5_000)
    tx = token.transferWithAuthorization(*auth.as_args(), {"from": relayer})
    assert balances(resident, merchant) == [110_000 - 5_000, 5_000]
    assert tx.events["Transfer"].values() == [resident.address, merchant.address, 5_000]


def test_transfer_with_authorization_emits_authorization_used(
    city, token, resident, merchant, relayer, sign, hex32
):
    auth = sign(resident, merchant, 5_000)
    tx = token.transferWithAuthorization(*auth.as_args(), {"from": relayer})
    assert tx.events["AuthorizationUsed"].values() == [resident.address, hex32(auth.nonce)]


def test_transfer_with_authorization_marks_the_nonce_used(
    city, token, resident, merchant, relayer, sign
):
    auth = sign(resident, merchant, 5_000)
    token.transferWithAuthorization(*auth.as_args(), {"from": relayer})
    assert token.authorizationState(resident, auth.nonce) is True


def test_authorization_payment_is_announced_by_authorization_used_beside_its_transfer(
    city, token, resident, merchant, relayer, sign, hex32
):
    """A gasless payment's id is its nonce: AuthorizationUsed names it, Transfer moves the money.

    No Paid event on this path: it would repeat both at about 2,000 gas per payment.
    """
    auth = sign(resident, merchant, 5_000)
    tx = token.transferWithAuthorization(*auth.as_args(), {"from": relayer})
    assert "Paid" not in tx.events
    assert tx.events["AuthorizationUsed"].values() == [resident.address, hex32(auth.nonce)]
    assert tx.events["Transfer"].values() == [resident.address, merchant.address, 5_000]


def test_authorization_state_is_false_for_an_unused_nonce(city, token, resident, invoice_id):
    assert token.authorizationState(resident, invoice_id()) is False


def test_transfer_with_authorization_accepts_the_signature_as_bytes(
    city, token, resident, merchant, relayer, sign, balances
):
    auth = sign(resident, merchant, 5_000)
    token.transferWithAuthorization[TRANSFER_BYTES](*with_signature(auth), {"from": relayer})
    assert balances(resident, merchant) == [110_000 - 5_000, 5_000]
    assert token.authorizationState(resident, auth.nonce) is True


def test_receive_with_authorization_called_by_the_payee_pays_the_merchant(
    city, token, resident, merchant, sign, balances, hex32
):
    auth = sign(resident, merchant, 5_000, primary_type=RECEIVE_WITH_AUTHORIZATION)
    tx = token.receiveWithAuthorization(*auth.as_args(), {"from": merchant})
    assert balances(resident, merchant) == [110_000 - 5_000, 5_000]
    assert tx.events["AuthorizationUsed"].values() == [resident.address, hex32(auth.nonce)]


def test_receive_with_authorization_accepts_the_signature_as_bytes(
    city, token, resident, merchant, sign, balances
):
    auth = sign(resident, merchant, 5_000, primary_type=RECEIVE_WITH_AUTHORIZATION)
    token.receiveWithAuthorization[RECEIVE_BYTES](*with_signature(auth), {"from": merchant})
    assert balances(resident, merchant) == [110_000 - 5_000, 5_000]


def test_receive_with_authorization_reverts_when_caller_is_not_the_payee(
    city, token, resident, merchant, relayer, sign, balances, expect_revert
):
    auth = sign(resident, merchant, 5_000, primary_type=RECEIVE_WITH_AUTHORIZATION)
    before = balances(resident, merchant)
    with expect_revert("EIP3009CallerMustBePayee(address,address)", relayer, merchant):
        token.receiveWithAuthorization(*auth.as_args(), {"from": relayer})
    assert balances(resident, merchant) == before
    assert token.authorizationState(resident, auth.nonce) is False


def test_receive_with_bytes_signature_reverts_when_caller_is_not_the_payee(
    city, token, resident, merchant, merchant2, sign, balances, expect_revert
):
    auth = sign(resident, merchant, 5_000, primary_type=RECEIVE_WITH_AUTHORIZATION)
    before = balances(resident, merchant)
    with expect_revert("EIP3009CallerMustBePayee(address,address)", merchant2, merchant):
        token.receiveWithAuthorization[RECEIVE_BYTES](*with_signature(auth), {"from": merchant2})
    assert balances(resident, merchant) == before


def test_receive_with_authorization_refuses_a_transfer_signature(
    city, token, resident, merchant, sign, balances, expect_revert
):
    auth = sign(resident, merchant, 5_000)
    before = balances(resident, merchant)
    with expect_revert(INVALID_SIGNATURE, resident):
        token.receiveWithAuthorization(*auth.as_args(), {"from": merchant})
    assert balances(resident, merchant) == before


def test_transfer_with_authorization_refuses_a_receive_signature(
    city, token, resident, merchant, relayer, sign, balances, expect_revert
):
    auth = sign(resident, merchant, 5_000, primary_type=RECEIVE_WITH_AUTHORIZATION)
    before = balances(resident, merchant)
    with expect_revert(INVALID_SIGNATURE, resident):
        token.transferWithAuthorization(*auth.as_args(), {"from": relayer})
    assert balances(resident, merchant) == before


# --- Cancelling ---------------------------------------------------------------------------------


def test_cancel_authorization_marks_the_nonce_and_emits_authorization_canceled(
    city, token, resident, relayer, domain, invoice_id, hex32
):
    nonce = invoice_id()
    v, r, s = split(sign_cancellation(resident.private_key, domain, nonce))
    tx = token.cancelAuthorization[CANCEL_VRS](resident, nonce, v, r, s, {"from": relayer})
    assert tx.events["AuthorizationCanceled"].values() == [resident.address, hex32(nonce)]
    assert token.authorizationState(resident, nonce) is True


def test_cancel_authorization_accepts_the_signature_as_bytes(
    city, token, resident, relayer, domain, invoice_id, hex32
):
    nonce = invoice_id()
    signature = sign_cancellation(resident.private_key, domain, nonce)
    tx = token.cancelAuthorization[CANCEL_BYTES](resident, nonce, signature, {"from": relayer})
    assert tx.events["AuthorizationCanceled"].values() == [resident.address, hex32(nonce)]
    assert token.authorizationState(resident, nonce) is True


def test_cancelled_authorization_cannot_be_used(
    city, token, resident, merchant, relayer, sign, domain, balances, expect_revert
):
    auth = sign(resident, merchant, 5_000)
    signature = sign_cancellation(resident.private_key, domain, auth.nonce)
    token.cancelAuthorization[CANCEL_BYTES](resident, auth.nonce, signature, {"from": relayer})
    before = balances(resident, merchant)
    with expect_revert(CANCELED, resident, auth.nonce):
        token.transferWithAuthorization(*auth.as_args(), {"from": relayer})
    assert balances(resident, merchant) == before


def test_cancelled_authorization_cannot_be_received(
    city, token, resident, merchant, relayer, sign, domain, balances, expect_revert
):
    auth = sign(resident, merchant, 5_000, primary_type=RECEIVE_WITH_AUTHORIZATION)
    v, r, s = split(sign_cancellation(resident.private_key, domain, auth.nonce))
    token.cancelAuthorization[CANCEL_VRS](resident, auth.nonce, v, r, s, {"from": relayer})
    before = balances(resident, merchant)
    with expect_revert(CANCELED, resident, auth.nonce):
        token.receiveWithAuthorization(*auth.as_args(), {"from": merchant})
    assert balances(resident, merchant) == before


def test_cancel_authorization_twice_reverts(
    city, token, resident, relayer, domain, invoice_id, expect_revert
):
    nonce = invoice_id()
    signature = sign_cancellation(resident.private_key, domain, nonce)
    token.cancelAuthorization[CANCEL_BYTES](resident, nonce, signature, {"from": relayer})
    with expect_revert(CANCELED, resident, nonce):
        token.cancelAuthorization[CANCEL_BYTES](resident, nonce, signature, {"from": relayer})


def test_cancel_authorization_of_a_used_nonce_reverts(
    city, token, resident, merchant, relayer, sign, domain, expect_revert
):
    auth = sign(resident, merchant, 5_000)
    token.transferWithAuthorization(*auth.as_args(), {"from": relayer})
    signature = sign_cancellation(resident.private_key, domain, auth.nonce)
    with expect_revert(USED, resident, auth.nonce):
        token.cancelAuthorization[CANCEL_BYTES](resident, auth.nonce, signature, {"from": relayer})
    assert token.refundableAmount(resident, merchant, auth.nonce) == 5_000


def test_cancel_authorization_signed_by_another_key_reverts(
    city, token, resident, resident2, relayer, domain, invoice_id, expect_revert
):
    nonce = invoice_id()
    signature = sign_cancellation(resident2.private_key, domain, nonce)
    with expect_revert(INVALID_SIGNATURE, resident):
        token.cancelAuthorization[CANCEL_BYTES](resident, nonce, signature, {"from": relayer})
    assert token.authorizationState(resident, nonce) is False


def test_cancel_authorization_signed_for_another_nonce_reverts(
    city, token, resident, relayer, domain, invoice_id, expect_revert
):
    signed_nonce, submitted_nonce = invoice_id(), invoice_id()
    v, r, s = split(sign_cancellation(resident.private_key, domain, signed_nonce))
    with expect_revert(INVALID_SIGNATURE, resident):
        token.cancelAuthorization[CANCEL_VRS](resident, submitted_nonce, v, r, s, {"from": relayer})


# --- Refusals: signature ------------------------------------------------------------------------


def test_authorization_signed_by_another_key_is_refused(
    city, token, resident, resident2, merchant, relayer, sign, balances, expect_revert
):
    forged = dataclasses.replace(sign(resident2, merchant, 5_000), from_=resident.address)
    before = balances(resident, resident2, merchant)
    with expect_revert(INVALID_SIGNATURE, resident):
        token.transferWithAuthorization(*forged.as_args(), {"from": relayer})
    assert balances(resident, resident2, merchant) == before


def test_authorization_signed_by_another_key_is_refused_as_bytes(
    city, token, resident, resident2, merchant, relayer, sign, balances, expect_revert
):
    forged = dataclasses.replace(sign(resident2, merchant, 5_000), from_=resident.address)
    before = balances(resident, resident2, merchant)
    with expect_revert(INVALID_SIGNATURE, resident):
        token.transferWithAuthorization[TRANSFER_BYTES](*with_signature(forged), {"from": relayer})
    assert balances(resident, resident2, merchant) == before


def test_authorization_submitted_with_another_value_is_refused(
    city, token, resident, merchant, relayer, sign, balances, expect_revert
):
    altered = dataclasses.replace(sign(resident, merchant, 5_000), value=50_000)
    before = balances(resident, merchant)
    with expect_revert(INVALID_SIGNATURE, resident):
        token.transferWithAuthorization(*altered.as_args(), {"from": relayer})
    assert balances(resident, merchant) == before


def test_authorization_submitted_to_another_merchant_is_refused(
    city, token, resident, merchant, merchant2, relayer, sign, balances, expect_revert
):
    altered = dataclasses.replace(sign(resident, merchant, 5_000), to=merchant2.address)
    before = balances(resident, merchant, merchant2)
    with expect_revert(INVALID_SIGNATURE, resident):
        token.transferWithAuthorization(*altered.as_args(), {"from": relayer})
    assert balances(resident, merchant, merchant2) == before


def test_authorization_submitted_with_a_longer_window_is_refused(
    city, token, resident, merchant, relayer, sign, balances, expect_revert
):
    auth = sign(resident, merchant, 5_000)
    altered = dataclasses.replace(auth, valid_before=auth.valid_before + 86_400)
    before = balances(resident, merchant)
    with expect_revert(INVALID_SIGNATURE, resident):
        token.transferWithAuthorization(*altered.as_args(), {"from": relayer})
    assert balances(resident, merchant) == before


def test_authorization_signed_for_another_city_is_refused(
    city, token, other_city, other_domain, resident, merchant, relayer, balances, expect_revert
):
    auth = sign_authorization(
        resident.private_key,
        other_domain,
        to=merchant.address,
        value=5_000,
        valid_before=chain.time() + 3600,
    )
    before = balances(resident, merchant)
    with expect_revert(INVALID_SIGNATURE, resident):
        token.transferWithAuthorization(*auth.as_args(), {"from": relayer})
    assert balances(resident, merchant) == before


def test_authorization_signed_for_another_city_settles_in_that_city(
    city, other_city, other_domain, resident, merchant, relayer
):
    auth = sign_authorization(
        resident.private_key,
        other_domain,
        to=merchant.address,
        value=5_000,
        valid_before=chain.time() + 3600,
    )
    other_city.token.transferWithAuthorization(*auth.as_args(), {"from": relayer})
    assert other_city.token.balanceOf(merchant) == 5_000
    assert city.token.balanceOf(merchant) == 0


def test_authorization_signed_for_another_chain_is_refused(
    city, token, resident, merchant, relayer, domain, balances, expect_revert
):
    foreign = dataclasses.replace(domain, chain_id=domain.chain_id + 1)
    auth = sign_authorization(
        resident.private_key,
        foreign,
        to=merchant.address,
        value=5_000,
        valid_before=chain.time() + 3600,
    )
    before = balances(resident, merchant)
    with expect_revert(INVALID_SIGNATURE, resident):
        token.transferWithAuthorization(*auth.as_args(), {"from": relayer})
    assert balances(resident, merchant) == before


# --- Refusals: nonce ----------------------------------------------------------------------------


def test_reused_authorization_is_refused(
    city, token, resident, merchant, relayer, sign, balances, expect_revert
):
    auth = sign(resident, merchant, 5_000)
    token.transferWithAuthorization(*auth.as_args(), {"from": relayer})
    before = balances(resident, merchant)
    with expect_revert(USED, resident, auth.nonce):
        token.transferWithAuthorization(*auth.as_args(), {"from": relayer})
    assert balances(resident, merchant) == before


def test_authorization_reusing_a_nonce_with_another_signature_is_refused(
    city, token, resident, merchant, merchant2, relayer, sign, expect_revert
):
    first = sign(resident, merchant, 5_000)
    token.transferWithAuthorization(*first.as_args(), {"from": relayer})
    second = sign(resident, merchant2, 1_000, nonce=first.nonce)
    with expect_revert(USED, resident, first.nonce):
        token.transferWithAuthorization(*second.as_args(), {"from": relayer})


def test_authorization_with_a_paid_invoice_id_as_nonce_is_refused(
    city, token, resident, merchant, relayer, sign, invoice_id, expect_revert
):
    invoice = invoice_id()
    token.pay(merchant, 5_000, invoice, {"from": resident})
    auth = sign(resident, merchant, 5_000, nonce=invoice)
    with expect_revert(USED, resident, invoice):
        token.transferWithAuthorization(*auth.as_args(), {"from": relayer})


def test_authorization_with_a_zero_nonce_is_refused_as_unrefundable(
    city, token, resident, merchant, relayer, sign, balances, expect_revert
):
    # Zero is the payment id refunds use for plain transfers; a payment under it could not be
    # refunded, so the token refuses it as pay() refuses a zero invoice id.
    auth = sign(resident, merchant, 5_000, nonce=bytes(32))
    before = balances(resident, merchant)
    with expect_revert("CityTokenZeroPaymentId()"):
        token.transferWithAuthorization(*auth.as_args(), {"from": relayer})
    assert balances(resident, merchant) == before
    assert token.authorizationState(resident, bytes(32)) is False


def test_nonce_used_by_one_payer_is_free_for_another(
    city, token, resident, resident2, merchant, relayer, sign
):
    first = sign(resident, merchant, 5_000)
    token.transferWithAuthorization(*first.as_args(), {"from": relayer})
    second = sign(resident2, merchant, 1_000, nonce=first.nonce)
    token.transferWithAuthorization(*second.as_args(), {"from": relayer})
    assert token.balanceOf(merchant) == 6_000


# --- Refusals: validity window ------------------------------------------------------------------


def test_authorization_at_its_valid_before_is_refused_as_expired(
    city, token, resident, merchant, relayer, sign, pin_next_block_time, balances, expect_revert
):
    now = pin_next_block_time()
    auth = sign(resident, merchant, 5_000, valid_before=now)
    before = balances(resident, merchant)
    with expect_revert(EXPIRED, now, now):
        token.transferWithAuthorization(*auth.as_args(), {"from": relayer})
    assert balances(resident, merchant) == before


def test_authorization_past_its_valid_before_is_refused_as_expired(
    city, token, resident, merchant, relayer, sign, pin_next_block_time, expect_revert
):
    auth = sign(resident, merchant, 5_000, valid_before=chain.time() + 60)
    chain.sleep(3600)
    now = pin_next_block_time()
    with expect_revert(EXPIRED, auth.valid_before, now):
        token.transferWithAuthorization(*auth.as_args(), {"from": relayer})


def test_authorization_at_its_valid_after_is_refused_as_not_yet_valid(
    city, token, resident, merchant, relayer, sign, pin_next_block_time, balances, expect_revert
):
    now = pin_next_block_time()
    auth = sign(resident, merchant, 5_000, valid_after=now, valid_before=now + 3600)
    before = balances(resident, merchant)
    with expect_revert(NOT_YET_VALID, now, now):
        token.transferWithAuthorization(*auth.as_args(), {"from": relayer})
    assert balances(resident, merchant) == before


def test_authorization_before_its_valid_after_is_refused_as_not_yet_valid(
    city, token, resident, merchant, relayer, sign, pin_next_block_time, expect_revert
):
    now = pin_next_block_time()
    auth = sign(resident, merchant, 5_000, valid_after=now + 600, valid_before=now + 3600)
    with expect_revert(NOT_YET_VALID, now + 600, now):
        token.transferWithAuthorization(*auth.as_args(), {"from": relayer})


def test_receive_with_authorization_past_its_valid_before_is_refused_as_expired(
    city, token, resident, merchant, sign, pin_next_block_time, expect_revert
):
    now = pin_next_block_time()
    auth = sign(
        resident, merchant, 5_000, valid_before=now, primary_type=RECEIVE_WITH_AUTHORIZATION
    )
    with expect_revert(EXPIRED, now, now):
        token.receiveWithAuthorization(*auth.as_args(), {"from": merchant})


def test_authorization_one_second_inside_its_window_settles(
    city, token, resident, merchant, relayer, sign, pin_next_block_time
):
    now = pin_next_block_time()
    auth = sign(resident, merchant, 5_000, valid_after=now - 1, valid_before=now + 1)
    token.transferWithAuthorization(*auth.as_args(), {"from": relayer})
    assert token.balanceOf(merchant) == 5_000


def test_authorization_settles_once_its_valid_after_has_passed(
    city, token, resident, merchant, relayer, sign
):
    start = chain.time() + 600
    auth = sign(resident, merchant, 5_000, valid_after=start, valid_before=start + 3600)
    chain.sleep(1200)
    token.transferWithAuthorization(*auth.as_args(), {"from": relayer})
    assert token.balanceOf(merchant) == 5_000


def test_refused_authorization_is_not_marked_used(
    city, token, resident, merchant, relayer, sign, pin_next_block_time, expect_revert
):
    now = pin_next_block_time()
    auth = sign(resident, merchant, 5_000, valid_before=now)
    with expect_revert(EXPIRED, now, now):
        token.transferWithAuthorization(*auth.as_args(), {"from": relayer})
    assert token.authorizationState(resident, auth.nonce) is False


# --- Refusals: the city's transfer rules --------------------------------------------------------


def test_authorization_payment_to_a_resident_reverts(
    city, token, resident, resident2, relayer, sign, balances, expect_revert
):
    auth = sign(resident, resident2, 5_000)
    before = balances(resident, resident2)
    with expect_revert("CityTokenTransferNotAllowed(address,address)", resident, resident2):
        token.transferWithAuthorization(*auth.as_args(), {"from": relayer})
    assert balances(resident, resident2) == before


def test_authorization_payment_to_an_unregistered_wallet_reverts(
    city, token, resident, stranger, relayer, sign, balances, expect_revert
):
    auth = sign(resident, stranger, 5_000)
    before = balances(resident, stranger)
    with expect_revert("CityTokenNotRegistered(address)", stranger):
        token.transferWithAuthorization(*auth.as_args(), {"from": relayer})
    assert balances(resident, stranger) == before


def test_authorization_payment_reverts_when_merchant_suspended(
    city, token, registry, registrar, resident, merchant, relayer, sign, balances, expect_revert
):
    auth = sign(resident, merchant, 5_000)
    registry.suspend(merchant, {"from": registrar})
    before = balances(resident, merchant)
    with expect_revert("CityTokenMerchantNotActive(address)", merchant):
        token.transferWithAuthorization(*auth.as_args(), {"from": relayer})
    assert balances(resident, merchant) == before
    assert token.authorizationState(resident, auth.nonce) is False


def test_authorization_refused_while_merchant_suspended_settles_after_reactivation(
    city, token, registry, registrar, resident, merchant, relayer, sign, expect_revert
):
    auth = sign(resident, merchant, 5_000)
    registry.suspend(merchant, {"from": registrar})
    with expect_revert("CityTokenMerchantNotActive(address)", merchant):
        token.transferWithAuthorization(*auth.as_args(), {"from": relayer})
    registry.activate(merchant, {"from": registrar})
    token.transferWithAuthorization(*auth.as_args(), {"from": relayer})
    assert token.balanceOf(merchant) == 5_000


def test_authorization_payment_reverts_when_payer_frozen(
    city, token, compliance, resident, merchant, relayer, sign, balances, expect_revert
):
    auth = sign(resident, merchant, 5_000)
    token.freeze(resident, {"from": compliance})
    before = balances(resident, merchant)
    with expect_revert("CityTokenAccountFrozen(address)", resident):
        token.transferWithAuthorization(*auth.as_args(), {"from": relayer})
    assert balances(resident, merchant) == before


def test_authorization_payment_reverts_when_paused(
    city, token, pauser, resident, merchant, relayer, sign, balances, expect_revert
):
    auth = sign(resident, merchant, 5_000)
    token.pause({"from": pauser})
    before = balances(resident, merchant)
    with expect_revert("EnforcedPause()"):
        token.transferWithAuthorization(*auth.as_args(), {"from": relayer})
    assert balances(resident, merchant) == before


def test_authorization_payment_over_balance_reverts(
    city, token, resident, merchant, relayer, sign, balances, expect_revert
):
    auth = sign(resident, merchant, 110_001)
    before = balances(resident, merchant)
    with expect_revert(
        "ERC20InsufficientBalance(address,uint256,uint256)", resident, 110_000, 110_001
    ):
        token.transferWithAuthorization(*auth.as_args(), {"from": relayer})
    assert balances(resident, merchant) == before
