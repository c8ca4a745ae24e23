"""Relayed refunds: the merchant signs RefundWithAuthorization, anyone sends it; EIP-3009's window
and nonce rules, then the rules of a merchant's own refund."""

import pytest
from brownie import chain
from citypay.authorization import sign_cancellation, sign_refund

ZERO_ID = bytes(32)
EXCEEDS = "CityTokenRefundExceedsPayment(address,bytes32,uint256,uint256)"
NOT_FOUND = "CityTokenPaymentNotFound(address,address,bytes32)"
INVALID_SIGNATURE = "EIP3009InvalidSignature(address)"
USED = "EIP3009AuthorizationUsed(address,bytes32)"
CANCELED = "EIP3009AuthorizationCanceled(address,bytes32)"
EXPIRED = "EIP3009AuthorizationExpired(uint256,uint256)"
NOT_YET_VALID = "EIP3009AuthorizationNotYetValid(uint256,uint256)"


@pytest.fixture(scope="module")
def sign_refund_as(domain):
    """The merchant's wallet signs a refund of `value` of `payer`'s payment `payment_id`."""

    def sign_(merchant, payer, payment_id, value: int, **kwargs):
        kwargs.setdefault("valid_before", chain.time() + 3600)
        return sign_refund(
            merchant.private_key,
            domain,
            payer=payer.address,
            payment_id=payment_id,
            value=value,
            **kwargs,
        )

    return sign_


@pytest.fixture
def paid(city, token, resident, merchant, relayer, sign):
    """The payment id (nonce) of an authorization of 10,000 that the resident gave the merchant."""
    auth = sign(resident, merchant, 10_000)
    token.transferWithAuthorization(*auth.as_args(), {"from": relayer})
    return auth.nonce


@pytest.fixture(scope="module")
def refused(token, relayer, resident, merchant, balances, expect_revert):
    """Relays a refund that must revert with `error`, then checks that no balance moved and that
    the merchant's nonce is still unused. `args` replaces the refund's own arguments."""

    def send(refund, error: str, *error_args, args: tuple | None = None):
        before = balances(resident, merchant)
        with expect_revert(error, *error_args):
            token.refundWithAuthorization(*(args or refund.as_args()), {"from": relayer})
        assert balances(resident, merchant) == before
        assert token.authorizationState(refund.merchant, refund.nonce) is False

    return send


# --- Settling -----------------------------------------------------------------------------------


def test_relayed_refund_returns_part_of_the_payment_to_the_payer(
    token, resident, merchant, relayer, paid, sign_refund_as, balances
):
    refund = sign_refund_as(merchant, resident, paid, 4_000)
    token.refundWithAuthorization(*refund.as_args(), {"from": relayer})
    assert balances(resident, merchant) == [100_000 + 4_000, 10_000 - 4_000]
    assert token.refundableAmount(resident, merchant, paid) == 6_000


def test_relayed_refund_emits_authorization_used_transfer_and_refunded(
    token, resident, merchant, relayer, paid, sign_refund_as, hex32
):
    refund = sign_refund_as(merchant, resident, paid, 4_000)
    tx = token.refundWithAuthorization(*refund.as_args(), {"from": relayer})
    assert [e.name for e in tx.events] == ["AuthorizationUsed", "Transfer", "Refunded"]
    assert tx.events["AuthorizationUsed"].values() == [merchant.address, hex32(refund.nonce)]
    assert tx.events["Transfer"].values() == [merchant.address, resident.address, 4_000]
    assert tx.events["Refunded"].values() == [
        merchant.address,
        resident.address,
        hex32(paid),
        4_000,
    ]


def test_anyone_may_relay_a_refund(token, resident, merchant, outsider, paid, sign_refund_as):
    refund = sign_refund_as(merchant, resident, paid, 10_000)
    token.refundWithAuthorization(*refund.as_args(), {"from": outsider})
    assert token.refundableAmount(resident, merchant, paid) == 0


def test_relayed_refund_marks_the_merchants_nonce_used_and_refunds_nothing_back(
    token, resident, merchant, relayer, paid, sign_refund_as
):
    refund = sign_refund_as(merchant, resident, paid, 4_000)
    token.refundWithAuthorization(*refund.as_args(), {"from": relayer})
    assert token.authorizationState(merchant, refund.nonce) is True
    assert token.refundableAmount(merchant, resident, refund.nonce) == 0


def test_relayed_refunds_of_plain_transfers_draw_on_their_total(
    city, token, resident, merchant, relayer, sign_refund_as, balances
):
    token.transfer(merchant, 3_000, {"from": resident})
    refund = sign_refund_as(merchant, resident, ZERO_ID, 3_000)
    token.refundWithAuthorization(*refund.as_args(), {"from": relayer})
    assert balances(resident, merchant) == [110_000, 0]
    assert token.refundableAmount(resident, merchant, ZERO_ID) == 0


def test_relayed_refund_of_an_invoice_payment(
    city, token, resident, merchant, relayer, invoice_id, sign_refund_as
):
    invoice = invoice_id()
    token.pay(merchant, 8_000, invoice, {"from": resident})
    refund = sign_refund_as(merchant, resident, invoice, 8_000)
    token.refundWithAuthorization(*refund.as_args(), {"from": relayer})
    assert token.refundableAmount(resident, merchant, invoice) == 0


# --- The authorization's own checks -------------------------------------------------------------


def test_relayed_refund_signed_by_another_key_reverts(
    resident, merchant, merchant2, paid, domain, refused
):
    refund = sign_refund(
        merchant2.private_key,
        domain,
        payer=resident.address,
        payment_id=paid,
        value=1_000,
        valid_before=chain.time() + 3600,
        merchant=merchant.address,
    )
    refused(refund, INVALID_SIGNATURE, merchant)


def test_relayed_refund_with_a_changed_amount_reverts(
    resident, merchant, paid, sign_refund_as, refused
):
    refund = sign_refund_as(merchant, resident, paid, 1_000)
    args = list(refund.as_args())
    args[4] = 10_000  # value
    refused(refund, INVALID_SIGNATURE, merchant, args=tuple(args))


def test_relayed_refund_signed_for_another_city_reverts(
    resident, merchant, paid, other_domain, refused
):
    refund = sign_refund(
        merchant.private_key,
        other_domain,
        payer=resident.address,
        payment_id=paid,
        value=1_000,
        valid_before=chain.time() + 3600,
    )
    refused(refund, INVALID_SIGNATURE, merchant)


def test_expired_relayed_refund_reverts(
    resident, merchant, paid, sign_refund_as, pin_next_block_time, refused
):
    now = pin_next_block_time()
    refund = sign_refund_as(merchant, resident, paid, 1_000, valid_before=now)
    refused(refund, EXPIRED, now, now)


def test_relayed_refund_not_yet_valid_reverts(
    resident, merchant, paid, sign_refund_as, pin_next_block_time, refused
):
    now = pin_next_block_time()
    refund = sign_refund_as(
        merchant, resident, paid, 1_000, valid_after=now + 600, valid_before=now + 3600
    )
    refused(refund, NOT_YET_VALID, now + 600, now)


def test_relayed_refund_inside_its_window_settles(
    token, resident, merchant, relayer, paid, sign_refund_as, pin_next_block_time
):
    now = pin_next_block_time()
    refund = sign_refund_as(
        merchant, resident, paid, 1_000, valid_after=now - 1, valid_before=now + 1
    )
    token.refundWithAuthorization(*refund.as_args(), {"from": relayer})
    assert token.refundableAmount(resident, merchant, paid) == 9_000


def test_relayed_refund_sent_twice_reverts_the_second_time(
    token, resident, merchant, relayer, paid, sign_refund_as, balances, expect_revert
):
    refund = sign_refund_as(merchant, resident, paid, 1_000)
    token.refundWithAuthorization(*refund.as_args(), {"from": relayer})
    before = balances(resident, merchant)
    with expect_revert(USED, merchant, refund.nonce):
        token.refundWithAuthorization(*refund.as_args(), {"from": relayer})
    assert balances(resident, merchant) == before
    assert token.refundableAmount(resident, merchant, paid) == 9_000


def test_a_nonce_reused_for_another_refund_reverts(
    token, resident, merchant, relayer, paid, sign_refund_as, expect_revert
):
    first = sign_refund_as(merchant, resident, paid, 1_000)
    token.refundWithAuthorization(*first.as_args(), {"from": relayer})
    second = sign_refund_as(merchant, resident, paid, 2_000, nonce=first.nonce)
    with expect_revert(USED, merchant, first.nonce):
        token.refundWithAuthorization(*second.as_args(), {"from": relayer})


def test_relayed_refund_cancelled_by_the_merchant_reverts(
    token, resident, merchant, relayer, paid, domain, sign_refund_as, balances, expect_revert
):
    refund = sign_refund_as(merchant, resident, paid, 1_000)
    cancellation = sign_cancellation(merchant.private_key, domain, refund.nonce)
    token.cancelAuthorization["address,bytes32,bytes"](
        merchant, refund.nonce, cancellation, {"from": relayer}
    )
    before = balances(resident, merchant)
    with expect_revert(CANCELED, merchant, refund.nonce):
        token.refundWithAuthorization(*refund.as_args(), {"from": relayer})
    assert balances(resident, merchant) == before


def test_relayed_refund_with_a_zero_nonce_reverts(
    resident, merchant, paid, sign_refund_as, refused
):
    refund = sign_refund_as(merchant, resident, paid, 1_000, nonce=ZERO_ID)
    refused(refund, "CityTokenZeroNonce()")


# --- The refund rules -----------------------------------------------------------------------------


def test_relayed_refund_over_the_payment_reverts(resident, merchant, paid, sign_refund_as, refused):
    refund = sign_refund_as(merchant, resident, paid, 10_001)
    refused(refund, EXCEEDS, resident, paid, 10_000, 10_001)


def test_relayed_refund_over_what_is_left_after_an_own_refund_reverts(
    token, resident, merchant, relayer, paid, sign_refund_as, expect_revert
):
    token.refund(resident, paid, 7_000, {"from": merchant})
    refund = sign_refund_as(merchant, resident, paid, 3_001)
    with expect_revert(EXCEEDS, resident, paid, 3_000, 3_001):
        token.refundWithAuthorization(*refund.as_args(), {"from": relayer})


def test_relayed_refund_of_an_unknown_payment_reverts(
    city, resident, merchant, invoice_id, sign_refund_as, refused
):
    unknown = invoice_id()
    refund = sign_refund_as(merchant, resident, unknown, 1)
    refused(refund, NOT_FOUND, resident, merchant, unknown)


def test_relayed_refund_of_another_merchants_payment_reverts(
    token, resident, merchant2, relayer, paid, sign_refund_as, expect_revert
):
    refund = sign_refund_as(merchant2, resident, paid, 1_000)
    with expect_revert(NOT_FOUND, resident, merchant2, paid):
        token.refundWithAuthorization(*refund.as_args(), {"from": relayer})


def test_relayed_refund_reverts_when_paused(
    token, pauser, resident, merchant, paid, sign_refund_as, refused
):
    token.pause({"from": pauser})
    refund = sign_refund_as(merchant, resident, paid, 1_000)
    refused(refund, "EnforcedPause()")
    assert token.refundableAmount(resident, merchant, paid) == 10_000


def test_relayed_refund_reverts_when_merchant_frozen(
    token, compliance, resident, merchant, paid, sign_refund_as, refused
):
    token.freeze(merchant, {"from": compliance})
    refund = sign_refund_as(merchant, resident, paid, 1_000)
    refused(refund, "CityTokenAccountFrozen(address)", merchant)
