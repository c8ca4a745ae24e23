"""Payments and refunds move a value above zero (issue 9, item 5): a zero-value transfer,
transferFrom, pay, authorization or refund is refused with CityTokenZeroValue, and a refused zero
`pay` leaves its invoice id free (it used to burn it for nothing)."""

import pytest
from citypay.authorization import RECEIVE_WITH_AUTHORIZATION, sign_refund

ZERO_VALUE = "CityTokenZeroValue()"
TRANSFER_BYTES = "address,address,uint256,uint256,uint256,bytes32,bytes"
TRANSFER_VRS = "address,address,uint256,uint256,uint256,bytes32,uint8,bytes32,bytes32"


@pytest.fixture
def invoice_paid(city, token, resident, merchant, invoice_id):
    """An invoice of 5,000 the resident paid."""
    invoice = invoice_id()
    token.pay(merchant, 5_000, invoice, {"from": resident})
    return invoice


def test_a_zero_transfer_is_refused(city, token, resident, merchant, expect_revert):
    with expect_revert(ZERO_VALUE):
        token.transfer(merchant, 0, {"from": resident})


def test_a_zero_transfer_from_is_refused(city, token, resident, merchant, relayer, expect_revert):
    token.approve(relayer, 1_000, {"from": resident})
    with expect_revert(ZERO_VALUE):
        token.transferFrom(resident, merchant, 0, {"from": relayer})
    assert token.allowance(resident, relayer) == 1_000


def test_a_zero_pay_is_refused(city, token, resident, merchant, invoice_id, expect_revert):
    with expect_revert(ZERO_VALUE):
        token.pay(merchant, 0, invoice_id(), {"from": resident})


def test_a_zero_pay_leaves_the_invoice_id_free_for_the_real_payment(
    city, token, resident, merchant, invoice_id, expect_revert
):
    invoice = invoice_id()
    with expect_revert(ZERO_VALUE):
        token.pay(merchant, 0, invoice, {"from": resident})
    assert token.authorizationState(resident, invoice) is False
    token.pay(merchant, 5_000, invoice, {"from": resident})
    assert token.refundableAmount(resident, merchant, invoice) == 5_000


def test_a_zero_transfer_with_authorization_is_refused_and_its_nonce_stays_unused(
    city, token, resident, merchant, relayer, sign, expect_revert
):
    auth = sign(resident, merchant, 0)
    with expect_revert(ZERO_VALUE):
        token.transferWithAuthorization[TRANSFER_VRS](*auth.as_args(), {"from": relayer})
    assert token.authorizationState(resident, auth.nonce) is False


def test_a_zero_transfer_with_authorization_as_bytes_is_refused(
    city, token, resident, merchant, relayer, sign, expect_revert
):
    auth = sign(resident, merchant, 0)
    with expect_revert(ZERO_VALUE):
        token.transferWithAuthorization[TRANSFER_BYTES](
            *auth.as_args()[:6], auth.signature, {"from": relayer}
        )


def test_a_zero_receive_with_authorization_is_refused(
    city, token, resident, merchant, sign, expect_revert
):
    auth = sign(resident, merchant, 0, primary_type=RECEIVE_WITH_AUTHORIZATION)
    with expect_revert(ZERO_VALUE):
        token.receiveWithAuthorization[TRANSFER_VRS](*auth.as_args(), {"from": merchant})


def test_a_zero_entry_in_a_batch_is_reported_zero_value(
    city, token, resident, merchant, relayer, sign, revert_data
):
    auth = sign(resident, merchant, 0)
    tx = token.transferWithAuthorizationBatch([auth.as_args()], {"from": relayer})
    assert tx.return_value == 0
    assert tx.events["AuthorizationFailed"]["reason"] == revert_data(ZERO_VALUE)


def test_a_zero_refund_of_an_invoice_is_refused(
    token, resident, merchant, invoice_paid, expect_revert
):
    with expect_revert(ZERO_VALUE):
        token.refund(resident, invoice_paid, 0, {"from": merchant})
    assert token.refundableAmount(resident, merchant, invoice_paid) == 5_000


def test_a_zero_refund_of_plain_transfers_is_refused(
    city, token, resident, merchant, expect_revert
):
    token.transfer(merchant, 5_000, {"from": resident})
    with expect_revert(ZERO_VALUE):
        token.refund(resident, bytes(32), 0, {"from": merchant})


def test_a_zero_refund_with_authorization_is_refused_and_its_nonce_stays_unused(
    token, domain, resident, merchant, relayer, invoice_paid, expect_revert
):
    refund = sign_refund(
        merchant.private_key,
        domain,
        payer=resident.address,
        payment_id=invoice_paid,
        value=0,
        valid_before=2**40,
    )
    with expect_revert(ZERO_VALUE):
        token.refundWithAuthorization(*refund.as_args(), {"from": relayer})
    assert token.authorizationState(merchant, refund.nonce) is False
