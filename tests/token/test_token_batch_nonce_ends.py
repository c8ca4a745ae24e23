"""What becomes of a batch entry's nonce (issue 9, item 5): an entry its payer signed and a rule
refused (pause, balance, a frozen payer) is voided, so nobody holding the published signature can
settle it after the backend told the till it failed, even once the rule is lifted; an entry
front-run by a direct transferWithAuthorization is reported as used (it paid), distinct from a
cancelled and a voided one."""

import pytest
from citypay.authorization import sign_cancellation

USED = "EIP3009AuthorizationUsed(address,bytes32)"
CANCELED = "EIP3009AuthorizationCanceled(address,bytes32)"
VOIDED = "EIP3009AuthorizationVoided(address,bytes32)"
PAUSED = "EnforcedPause()"
INSUFFICIENT_BALANCE = "ERC20InsufficientBalance(address,uint256,uint256)"
FROZEN = "CityTokenAccountFrozen(address)"
CANCEL_BYTES = "address,bytes32,bytes"


def settle(token, relayer, *auths):
    return token.transferWithAuthorizationBatch([a.as_args() for a in auths], {"from": relayer})


@pytest.fixture
def refused_while_paused(city, token, pauser, resident, merchant, relayer, sign):
    """An authorization a batch refused while the city was paused; the city is running again."""
    auth = sign(resident, merchant, 1_000)
    token.pause({"from": pauser})
    tx = settle(token, relayer, auth)
    token.unpause({"from": pauser})
    return auth, tx


# --- Refused for a rule: voided ---------------------------------------------------------------


def test_a_batch_entry_refused_while_paused_is_reported_and_voided(
    resident, refused_while_paused, revert_data, hex32
):
    auth, tx = refused_while_paused
    assert tx.events["AuthorizationFailed"].values() == [
        resident.address,
        hex32(auth.nonce),
        revert_data(PAUSED),
    ]
    assert tx.events["AuthorizationVoided"].values() == [resident.address, hex32(auth.nonce)]


def test_a_batch_entry_refused_while_paused_cannot_be_settled_after_the_unpause(
    token, resident, merchant, relayer, refused_while_paused, balances, expect_revert
):
    auth, _ = refused_while_paused
    before = balances(resident, merchant)
    with expect_revert(VOIDED, resident, auth.nonce):
        token.transferWithAuthorization(*auth.as_args(), {"from": relayer})
    assert balances(resident, merchant) == before


def test_a_voided_entry_sent_in_a_later_batch_is_reported_voided(
    token, resident, relayer, refused_while_paused, revert_data
):
    auth, _ = refused_while_paused
    tx = settle(token, relayer, auth)
    assert tx.return_value == 0
    assert tx.events["AuthorizationFailed"]["reason"] == revert_data(VOIDED, resident, auth.nonce)
    assert "AuthorizationVoided" not in tx.events


def test_a_voided_authorization_cannot_be_cancelled(
    token, domain, resident, relayer, refused_while_paused, expect_revert
):
    auth, _ = refused_while_paused
    signature = sign_cancellation(resident.private_key, domain, auth.nonce)
    with expect_revert(VOIDED, resident, auth.nonce):
        token.cancelAuthorization[CANCEL_BYTES](resident, auth.nonce, signature, {"from": relayer})


def test_a_batch_entry_refused_for_the_balance_is_voided(
    city, token, resident, merchant, relayer, sign, revert_data, hex32
):
    auth = sign(resident, merchant, 200_000)
    tx = settle(token, relayer, auth)
    assert tx.events["AuthorizationFailed"]["reason"] == revert_data(
        INSUFFICIENT_BALANCE, resident, 110_000, 200_000
    )
    assert tx.events["AuthorizationVoided"].values() == [resident.address, hex32(auth.nonce)]


def test_a_batch_entry_refused_for_the_balance_cannot_be_settled_after_a_top_up(
    city, token, resident, merchant, relayer, sign, charge, expect_revert
):
    auth = sign(resident, merchant, 200_000)
    settle(token, relayer, auth)
    charge(resident, 100_000)
    with expect_revert(VOIDED, resident, auth.nonce):
        token.transferWithAuthorization(*auth.as_args(), {"from": relayer})
    assert token.balanceOf(merchant) == 0


def test_a_batch_entry_refused_for_a_frozen_payer_cannot_be_settled_after_the_unfreeze(
    city, token, compliance, resident, merchant, relayer, sign, revert_data, expect_revert
):
    auth = sign(resident, merchant, 1_000)
    token.freeze(resident, {"from": compliance})
    tx = settle(token, relayer, auth)
    assert tx.events["AuthorizationFailed"]["reason"] == revert_data(FROZEN, resident)
    token.unfreeze(resident, {"from": compliance})
    with expect_revert(VOIDED, resident, auth.nonce):
        token.transferWithAuthorization(*auth.as_args(), {"from": relayer})


def test_a_voided_nonce_is_not_refundable(city, token, resident, merchant, refused_while_paused):
    auth, _ = refused_while_paused
    assert token.refundableAmount(resident, merchant, auth.nonce) == 0


# --- Front-run, cancelled, voided: each its own error -----------------------------------------


def test_an_entry_front_run_by_a_direct_transfer_is_reported_used_and_not_voided(
    city, token, resident, merchant, relayer, outsider, sign, revert_data
):
    auth = sign(resident, merchant, 5_000)
    token.transferWithAuthorization(*auth.as_args(), {"from": outsider})
    tx = settle(token, relayer, auth)
    assert tx.return_value == 0
    assert tx.events["AuthorizationFailed"]["reason"] == revert_data(USED, resident, auth.nonce)
    assert "AuthorizationVoided" not in tx.events


def test_an_entry_front_run_by_a_direct_transfer_stays_paid_and_refundable(
    city, token, resident, merchant, relayer, outsider, sign
):
    auth = sign(resident, merchant, 5_000)
    token.transferWithAuthorization(*auth.as_args(), {"from": outsider})
    settle(token, relayer, auth)
    assert token.balanceOf(merchant) == 5_000
    assert token.refundableAmount(resident, merchant, auth.nonce) == 5_000


def test_used_cancelled_and_voided_entries_are_reported_with_their_own_errors(
    city, token, domain, resident, merchant, relayer, sign, refused_while_paused, revert_data
):
    used = sign(resident, merchant, 1_000)
    token.transferWithAuthorization(*used.as_args(), {"from": relayer})
    cancelled = sign(resident, merchant, 1_000)
    token.cancelAuthorization[CANCEL_BYTES](
        resident,
        cancelled.nonce,
        sign_cancellation(resident.private_key, domain, cancelled.nonce),
        {"from": relayer},
    )
    voided, _ = refused_while_paused
    tx = settle(token, relayer, used, cancelled, voided)
    assert [e["reason"] for e in tx.events["AuthorizationFailed"]] == [
        revert_data(USED, resident, used.nonce),
        revert_data(CANCELED, resident, cancelled.nonce),
        revert_data(VOIDED, resident, voided.nonce),
    ]
