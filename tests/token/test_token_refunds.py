"""Refunds: a merchant returns at most what a payer paid it, to that payer, by payment id."""

import pytest
from citypay.authorization import sign_cancellation

ZERO_ID = bytes(32)
EXCEEDS = "CityTokenRefundExceedsPayment(address,bytes32,uint256,uint256)"
NOT_FOUND = "CityTokenPaymentNotFound(address,address,bytes32)"


@pytest.fixture
def invoice_paid(city, token, resident, merchant, invoice_id):
    """An invoice of 10,000 that the resident paid the merchant."""
    invoice = invoice_id()
    token.pay(merchant, 10_000, invoice, {"from": resident})
    return invoice


@pytest.fixture
def authorization_paid(city, token, resident, merchant, relayer, sign):
    """The nonce of an authorization of 10,000 that the resident gave the merchant."""
    auth = sign(resident, merchant, 10_000)
    token.transferWithAuthorization(*auth.as_args(), {"from": relayer})
    return auth.nonce


# --- Invoice payments ---------------------------------------------------------------------------


def test_merchant_refunds_an_invoice_payment_in_full(
    token, resident, merchant, invoice_paid, balances
):
    token.refund(resident, invoice_paid, 10_000, {"from": merchant})
    assert balances(resident, merchant) == [110_000, 0]


def test_refund_emits_refunded_with_the_payment_id(token, resident, merchant, invoice_paid, hex32):
    tx = token.refund(resident, invoice_paid, 4_000, {"from": merchant})
    assert tx.events["Refunded"].values() == [
        merchant.address,
        resident.address,
        hex32(invoice_paid),
        4_000,
    ]
    assert tx.events["Transfer"].values() == [merchant.address, resident.address, 4_000]


def test_refund_lowers_the_refundable_amount(token, resident, merchant, invoice_paid):
    token.refund(resident, invoice_paid, 4_000, {"from": merchant})
    assert token.refundableAmount(resident, merchant, invoice_paid) == 6_000


def test_partial_refunds_add_up_to_the_payment(token, resident, merchant, invoice_paid, balances):
    for part in (4_000, 5_000, 1_000):
        token.refund(resident, invoice_paid, part, {"from": merchant})
    assert balances(resident, merchant) == [110_000, 0]
    assert token.refundableAmount(resident, merchant, invoice_paid) == 0


def test_refund_over_the_payment_reverts(
    token, resident, merchant, invoice_paid, balances, expect_revert
):
    before = balances(resident, merchant)
    with expect_revert(EXCEEDS, resident, invoice_paid, 10_000, 10_001):
        token.refund(resident, invoice_paid, 10_001, {"from": merchant})
    assert balances(resident, merchant) == before


def test_refund_over_what_is_left_after_partial_refunds_reverts(
    token, resident, merchant, invoice_paid, balances, expect_revert
):
    token.refund(resident, invoice_paid, 7_000, {"from": merchant})
    before = balances(resident, merchant)
    with expect_revert(EXCEEDS, resident, invoice_paid, 3_000, 3_001):
        token.refund(resident, invoice_paid, 3_001, {"from": merchant})
    assert balances(resident, merchant) == before


def test_refund_cannot_draw_on_merchant_income_from_other_payers(
    token, resident, resident2, merchant, invoice_paid, invoice_id, expect_revert
):
    token.pay(merchant, 50_000, invoice_id(), {"from": resident2})
    token.refund(resident, invoice_paid, 10_000, {"from": merchant})
    with expect_revert(EXCEEDS, resident, invoice_paid, 0, 1):
        token.refund(resident, invoice_paid, 1, {"from": merchant})


def test_refund_by_another_merchant_reverts(
    token, resident, merchant2, invoice_paid, balances, expect_revert
):
    before = balances(resident, merchant2)
    with expect_revert(NOT_FOUND, resident, merchant2, invoice_paid):
        token.refund(resident, invoice_paid, 1_000, {"from": merchant2})
    assert balances(resident, merchant2) == before


def test_refund_to_another_payer_reverts(
    token, resident2, merchant, invoice_paid, balances, expect_revert
):
    before = balances(resident2, merchant)
    with expect_revert(NOT_FOUND, resident2, merchant, invoice_paid):
        token.refund(resident2, invoice_paid, 1_000, {"from": merchant})
    assert balances(resident2, merchant) == before


def test_refund_of_an_unknown_payment_id_reverts(
    city, token, resident, merchant, invoice_id, expect_revert
):
    unknown = invoice_id()
    with expect_revert(NOT_FOUND, resident, merchant, unknown):
        token.refund(resident, unknown, 1, {"from": merchant})


def test_refundable_amount_is_zero_for_another_merchant(token, resident, merchant2, invoice_paid):
    assert token.refundableAmount(resident, merchant2, invoice_paid) == 0


def test_refund_reverts_when_payer_suspended(
    token, registry, registrar, resident, merchant, invoice_paid, balances, expect_revert
):
    registry.suspend(resident, {"from": registrar})
    before = balances(resident, merchant)
    with expect_revert("CityTokenResidentNotActive(address)", resident):
        token.refund(resident, invoice_paid, 1_000, {"from": merchant})
    assert balances(resident, merchant) == before
    assert token.refundableAmount(resident, merchant, invoice_paid) == 10_000


def test_refund_reverts_when_merchant_frozen(
    token, compliance, resident, merchant, invoice_paid, balances, expect_revert
):
    token.freeze(merchant, {"from": compliance})
    before = balances(resident, merchant)
    with expect_revert("CityTokenAccountFrozen(address)", merchant):
        token.refund(resident, invoice_paid, 1_000, {"from": merchant})
    assert balances(resident, merchant) == before


def test_refund_reverts_when_paused(
    token, pauser, resident, merchant, invoice_paid, balances, expect_revert
):
    token.pause({"from": pauser})
    before = balances(resident, merchant)
    with expect_revert("EnforcedPause()"):
        token.refund(resident, invoice_paid, 1_000, {"from": merchant})
    assert balances(resident, merchant) == before
    assert token.refundableAmount(resident, merchant, invoice_paid) == 10_000


# --- Authorization payments ---------------------------------------------------------------------


def test_merchant_refunds_an_authorization_payment_by_its_nonce(
    token, resident, merchant, authorization_paid, balances, hex32
):
    tx = token.refund(resident, authorization_paid, 10_000, {"from": merchant})
    assert balances(resident, merchant) == [110_000, 0]
    assert tx.events["Refunded"].values() == [
        merchant.address,
        resident.address,
        hex32(authorization_paid),
        10_000,
    ]


def test_authorization_payment_is_refundable_by_its_nonce(
    token, resident, merchant, authorization_paid
):
    assert token.refundableAmount(resident, merchant, authorization_paid) == 10_000


def test_partial_refunds_of_an_authorization_payment_add_up_to_it(
    token, resident, merchant, authorization_paid, expect_revert
):
    token.refund(resident, authorization_paid, 6_000, {"from": merchant})
    token.refund(resident, authorization_paid, 4_000, {"from": merchant})
    with expect_revert(EXCEEDS, resident, authorization_paid, 0, 1):
        token.refund(resident, authorization_paid, 1, {"from": merchant})


def test_refund_over_an_authorization_payment_reverts(
    token, resident, merchant, authorization_paid, balances, expect_revert
):
    before = balances(resident, merchant)
    with expect_revert(EXCEEDS, resident, authorization_paid, 10_000, 10_001):
        token.refund(resident, authorization_paid, 10_001, {"from": merchant})
    assert balances(resident, merchant) == before


def test_refund_of_an_authorization_payment_by_another_merchant_reverts(
    token, resident, merchant2, authorization_paid, expect_revert
):
    with expect_revert(NOT_FOUND, resident, merchant2, authorization_paid):
        token.refund(resident, authorization_paid, 1, {"from": merchant2})


def test_refund_of_a_cancelled_authorization_reverts(
    city, token, resident, merchant, relayer, domain, invoice_id, expect_revert
):
    nonce = invoice_id()
    signature = sign_cancellation(resident.private_key, domain, nonce)
    token.cancelAuthorization["address,bytes32,bytes"](
        resident, nonce, signature, {"from": relayer}
    )
    assert token.refundableAmount(resident, merchant, nonce) == 0
    with expect_revert(NOT_FOUND, resident, merchant, nonce):
        token.refund(resident, nonce, 0, {"from": merchant})


# --- Plain transfers (payment id 0) -------------------------------------------------------------


def test_refund_with_zero_id_returns_plain_transfers_up_to_their_total(
    city, token, resident, merchant, balances
):
    token.transfer(merchant, 3_000, {"from": resident})
    token.transfer(merchant, 2_000, {"from": resident})
    token.refund(resident, ZERO_ID, 5_000, {"from": merchant})
    assert balances(resident, merchant) == [110_000, 0]
    assert token.refundableAmount(resident, merchant, ZERO_ID) == 0


def test_refund_with_zero_id_emits_refunded(city, token, resident, merchant, hex32):
    token.transfer(merchant, 3_000, {"from": resident})
    tx = token.refund(resident, ZERO_ID, 1_000, {"from": merchant})
    assert tx.events["Refunded"].values() == [
        merchant.address,
        resident.address,
        hex32(ZERO_ID),
        1_000,
    ]


def test_refund_with_zero_id_over_plain_total_reverts(
    city, token, resident, merchant, balances, expect_revert
):
    token.transfer(merchant, 3_000, {"from": resident})
    token.transfer(merchant, 2_000, {"from": resident})
    token.refund(resident, ZERO_ID, 1_500, {"from": merchant})
    before = balances(resident, merchant)
    with expect_revert(EXCEEDS, resident, ZERO_ID, 3_500, 3_501):
        token.refund(resident, ZERO_ID, 3_501, {"from": merchant})
    assert balances(resident, merchant) == before


def test_refund_with_zero_id_does_not_draw_on_invoice_payments(
    token, resident, merchant, invoice_paid, expect_revert
):
    with expect_revert(EXCEEDS, resident, ZERO_ID, 0, 1):
        token.refund(resident, ZERO_ID, 1, {"from": merchant})


def test_refund_with_zero_id_is_bounded_per_merchant(
    city, token, resident, merchant, merchant2, invoice_id, expect_revert
):
    token.transfer(merchant, 3_000, {"from": resident})
    token.pay(merchant2, 3_000, invoice_id(), {"from": resident})
    with expect_revert(EXCEEDS, resident, ZERO_ID, 0, 1_000):
        token.refund(resident, ZERO_ID, 1_000, {"from": merchant2})


def test_refund_with_zero_id_is_bounded_per_payer(
    city, token, resident, resident2, merchant, expect_revert
):
    token.transfer(merchant, 3_000, {"from": resident})
    token.transfer(merchant, 3_000, {"from": resident2})
    token.refund(resident, ZERO_ID, 3_000, {"from": merchant})
    with expect_revert(EXCEEDS, resident, ZERO_ID, 0, 3_000):
        token.refund(resident, ZERO_ID, 3_000, {"from": merchant})
