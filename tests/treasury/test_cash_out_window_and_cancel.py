"""A signed cash-out is not a standing order (issue 9, item 5): its window (validBefore -
validAfter) is at most MAX_CASH_OUT_VALIDITY, it is refused before validAfter, and the merchant
withdraws an unused one with its CancelCashOutAuthorization signature, which anyone may send."""

from brownie import web3
from citypay.cashout.authorization import MAX_CASH_OUT_VALIDITY
from eth_utils import keccak

UNUSED, USED, CANCELED = 0, 1, 2  # ICityTreasury.AuthorizationState
NONCE = 5  # the nonce's position in cashOutWithAuthorization's arguments
DAY = 86_400


def at(timestamp: int) -> int:
    """Makes `timestamp` the next block's time."""
    web3.provider.make_request("evm_setNextBlockTimestamp", [timestamp])
    return timestamp


# --- The window -------------------------------------------------------------------------------


def test_the_longest_window_is_one_day_in_the_contract_and_the_signing_helper(treasury):
    assert treasury.MAX_CASH_OUT_VALIDITY() == DAY == MAX_CASH_OUT_VALIDITY


def test_a_window_longer_than_a_day_is_refused(
    treasury, token, paid_merchant, settler, authorize_cash_out, pin_next_block_time, reverts_with
):
    now = pin_next_block_time()
    args = authorize_cash_out(
        paid_merchant, 1_000, valid_after=now - 60, valid_before=now - 60 + DAY + 1
    )
    with reverts_with(
        "CityTreasuryAuthorizationWindowTooLong", paid_merchant, now - 60, now - 60 + DAY + 1, DAY
    ):
        treasury.cashOutWithAuthorization(*args, {"from": settler})
    assert token.balanceOf(paid_merchant) == 60_000


def test_a_window_of_exactly_a_day_is_accepted(
    treasury, token, paid_merchant, settler, authorize_cash_out, pin_next_block_time
):
    now = pin_next_block_time()
    args = authorize_cash_out(
        paid_merchant, 1_000, valid_after=now - 60, valid_before=now - 60 + DAY
    )
    treasury.cashOutWithAuthorization(*args, {"from": settler})
    assert token.balanceOf(paid_merchant) == 59_000


def test_a_standing_signature_with_an_open_end_is_refused(
    treasury, paid_merchant, settler, authorize_cash_out, reverts_with
):
    args = authorize_cash_out(paid_merchant, 1_000, valid_after=0, valid_before=2**256 - 1)
    with reverts_with("CityTreasuryAuthorizationWindowTooLong", paid_merchant, 0, 2**256 - 1, DAY):
        treasury.cashOutWithAuthorization(*args, {"from": settler})


def test_a_cash_out_not_yet_valid_is_refused(
    treasury, paid_merchant, settler, authorize_cash_out, pin_next_block_time, reverts_with
):
    now = pin_next_block_time()
    args = authorize_cash_out(paid_merchant, 1_000, valid_after=now + 60, valid_before=now + 3_600)
    with reverts_with("CityTreasuryAuthorizationNotYetValid", paid_merchant, now + 60, now):
        treasury.cashOutWithAuthorization(*args, {"from": settler})
    assert treasury.cashOutAuthorizationState(paid_merchant, args[NONCE]) == UNUSED


def test_a_cash_out_is_refused_at_its_valid_after(
    treasury, paid_merchant, settler, authorize_cash_out, pin_next_block_time, reverts_with
):
    """validAfter is exclusive, as in EIP-3009."""
    now = pin_next_block_time()
    args = authorize_cash_out(paid_merchant, 1_000, valid_after=now, valid_before=now + 3_600)
    with reverts_with("CityTreasuryAuthorizationNotYetValid", paid_merchant, now, now):
        treasury.cashOutWithAuthorization(*args, {"from": settler})


def test_a_cash_out_signed_ahead_is_accepted_once_valid(
    treasury, token, paid_merchant, settler, authorize_cash_out, pin_next_block_time
):
    now = pin_next_block_time()
    args = authorize_cash_out(paid_merchant, 1_000, valid_after=now + 60, valid_before=now + 3_600)
    at(now + 61)
    treasury.cashOutWithAuthorization(*args, {"from": settler})
    assert token.balanceOf(paid_merchant) == 59_000


# --- Cancellation -----------------------------------------------------------------------------


def test_cancel_cash_out_authorization_emits_and_marks_it_cancelled(
    treasury, paid_merchant, outsider, authorize_cash_out, cash_out_cancellation, as_hex
):
    nonce = authorize_cash_out(paid_merchant, 1_000)[NONCE]
    tx = treasury.cancelCashOutAuthorization(
        *cash_out_cancellation(paid_merchant, nonce), {"from": outsider}
    )
    assert tx.events["CashOutAuthorizationCanceled"].values() == [
        paid_merchant.address,
        as_hex(nonce),
    ]
    assert treasury.cashOutAuthorizationState(paid_merchant, nonce) == CANCELED


def test_a_cancelled_cash_out_is_refused(
    treasury,
    token,
    paid_merchant,
    settler,
    outsider,
    authorize_cash_out,
    cash_out_cancellation,
    reverts_with,
):
    args = authorize_cash_out(paid_merchant, 1_000)
    treasury.cancelCashOutAuthorization(
        *cash_out_cancellation(paid_merchant, args[NONCE]), {"from": outsider}
    )
    with reverts_with("CityTreasuryAuthorizationCanceled", paid_merchant, args[NONCE]):
        treasury.cashOutWithAuthorization(*args, {"from": settler})
    assert token.balanceOf(paid_merchant) == 60_000


def test_cancelling_a_used_cash_out_is_refused(
    treasury,
    paid_merchant,
    settler,
    outsider,
    authorize_cash_out,
    cash_out_cancellation,
    reverts_with,
):
    args = authorize_cash_out(paid_merchant, 1_000)
    treasury.cashOutWithAuthorization(*args, {"from": settler})
    with reverts_with("CityTreasuryAuthorizationUsed", paid_merchant, args[NONCE]):
        treasury.cancelCashOutAuthorization(
            *cash_out_cancellation(paid_merchant, args[NONCE]), {"from": outsider}
        )
    assert treasury.cashOutAuthorizationState(paid_merchant, args[NONCE]) == USED


def test_cancelling_twice_is_refused(
    treasury, paid_merchant, outsider, cash_out_cancellation, reverts_with
):
    nonce = keccak(text="cash-out-cancel:twice")
    cancellation = cash_out_cancellation(paid_merchant, nonce)
    treasury.cancelCashOutAuthorization(*cancellation, {"from": outsider})
    with reverts_with("CityTreasuryAuthorizationCanceled", paid_merchant, nonce):
        treasury.cancelCashOutAuthorization(*cancellation, {"from": outsider})


def test_a_cancellation_signed_by_another_key_is_refused(
    treasury, paid_merchant, merchant2, outsider, cash_out_cancellation, reverts_with
):
    nonce = keccak(text="cash-out-cancel:forged")
    with reverts_with("CityTreasuryInvalidSignature", paid_merchant, nonce):
        treasury.cancelCashOutAuthorization(
            *cash_out_cancellation(paid_merchant, nonce, signer=merchant2), {"from": outsider}
        )
    assert treasury.cashOutAuthorizationState(paid_merchant, nonce) == UNUSED


def test_a_cancellation_signed_for_another_nonce_is_refused(
    treasury, paid_merchant, outsider, cash_out_cancellation, reverts_with
):
    signed = keccak(text="cash-out-cancel:signed")
    sent = keccak(text="cash-out-cancel:sent")
    merchant, _, signature = cash_out_cancellation(paid_merchant, signed)
    with reverts_with("CityTreasuryInvalidSignature", paid_merchant, sent):
        treasury.cancelCashOutAuthorization(merchant, sent, signature, {"from": outsider})
