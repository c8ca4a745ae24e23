"""transferWithAuthorizationBatch: a relayer settles many authorizations in one transaction; an
invalid one is skipped with AuthorizationFailed carrying its exact revert data."""

import dataclasses

import brownie
from citypay.authorization import sign_authorization
from eth_utils import keccak

INVALID_SIGNATURE = "EIP3009InvalidSignature(address)"
EXPIRED = "EIP3009AuthorizationExpired(uint256,uint256)"
USED = "EIP3009AuthorizationUsed(address,bytes32)"
MERCHANT_NOT_ACTIVE = "CityTokenMerchantNotActive(address)"
INSUFFICIENT_BALANCE = "ERC20InsufficientBalance(address,uint256,uint256)"
NOT_ALLOWED = "CityTokenTransferNotAllowed(address,address)"
NOT_YET_VALID = "EIP3009AuthorizationNotYetValid(uint256,uint256)"
ZERO_PAYMENT_ID = "CityTokenZeroPaymentId()"


def settle(token, relayer, *auths):
    return token.transferWithAuthorizationBatch([a.as_args() for a in auths], {"from": relayer})


def test_batch_settles_every_valid_authorization(
    city, token, resident, resident2, merchant, merchant2, relayer, sign, balances
):
    tx = settle(
        token,
        relayer,
        sign(resident, merchant, 1_000),
        sign(resident2, merchant, 2_000),
        sign(resident, merchant2, 3_000),
    )
    assert tx.return_value == 3
    assert balances(resident, resident2, merchant, merchant2) == [
        110_000 - 4_000,
        110_000 - 2_000,
        3_000,
        3_000,
    ]
    assert "AuthorizationFailed" not in tx.events


def test_batch_marks_every_settled_nonce_used(
    city, token, resident, resident2, merchant, relayer, sign, hex32
):
    auths = [sign(resident, merchant, 1_000), sign(resident2, merchant, 2_000)]
    tx = settle(token, relayer, *auths)
    assert [e.values() for e in tx.events["AuthorizationUsed"]] == [
        [a.from_, hex32(a.nonce)] for a in auths
    ]
    assert all(token.authorizationState(a.from_, a.nonce) for a in auths)


def test_batch_payments_are_refundable_by_nonce(city, token, resident, merchant, relayer, sign):
    auth = sign(resident, merchant, 1_000)
    settle(token, relayer, auth)
    assert token.refundableAmount(resident, merchant, auth.nonce) == 1_000


def test_empty_batch_settles_nothing(city, token, relayer):
    tx = token.transferWithAuthorizationBatch([], {"from": relayer})
    assert tx.return_value == 0


def test_batch_skips_a_bad_signature_and_reports_invalid_signature(
    city, token, resident, resident2, merchant, relayer, sign, revert_data, hex32
):
    forged = dataclasses.replace(sign(resident2, merchant, 1_000), from_=resident.address)
    tx = settle(token, relayer, forged, sign(resident, merchant, 2_000))
    assert tx.return_value == 1
    assert tx.events["AuthorizationFailed"].values() == [
        resident.address,
        hex32(forged.nonce),
        revert_data(INVALID_SIGNATURE, resident),
    ]
    assert token.balanceOf(merchant) == 2_000


def test_batch_skips_an_expired_authorization_and_reports_expired(
    city, token, resident, merchant, relayer, sign, revert_data, hex32, pin_next_block_time
):
    # Against the settling block's own time: chain.time() is the host's clock, which a loaded
    # machine's node can lag, so "a second ago by the host" may not yet be past on chain.
    expired = sign(resident, merchant, 1_000, valid_before=pin_next_block_time() - 1)
    tx = settle(token, relayer, expired, sign(resident, merchant, 2_000))
    assert tx.return_value == 1
    assert tx.events["AuthorizationFailed"].values() == [
        resident.address,
        hex32(expired.nonce),
        revert_data(EXPIRED, expired.valid_before, tx.timestamp),
    ]
    assert token.balanceOf(merchant) == 2_000


def test_batch_skips_a_not_yet_valid_authorization_and_reports_not_yet_valid(
    city, token, resident, merchant, relayer, sign, revert_data, hex32, pin_next_block_time
):
    now = pin_next_block_time()
    early = sign(resident, merchant, 1_000, valid_after=now + 600, valid_before=now + 3600)
    tx = settle(token, relayer, early, sign(resident, merchant, 2_000))
    assert tx.return_value == 1
    assert tx.events["AuthorizationFailed"].values() == [
        resident.address,
        hex32(early.nonce),
        revert_data(NOT_YET_VALID, now + 600, tx.timestamp),
    ]
    # Signed by the payer and reported failed: it is voided, so nobody settles it once valid.
    assert token.authorizationState(resident, early.nonce) is True
    assert tx.events["AuthorizationVoided"].values() == [resident.address, hex32(early.nonce)]


def test_batch_skips_a_zero_nonce_and_reports_zero_payment_id(
    city, token, resident, merchant, relayer, sign, revert_data, hex32
):
    unrefundable = sign(resident, merchant, 1_000, nonce=bytes(32))
    tx = settle(token, relayer, unrefundable, sign(resident, merchant, 2_000))
    assert tx.return_value == 1
    assert tx.events["AuthorizationFailed"].values() == [
        resident.address,
        hex32(bytes(32)),
        revert_data(ZERO_PAYMENT_ID),
    ]
    assert token.balanceOf(merchant) == 2_000


def test_batch_with_an_entry_past_its_abi_types_reverts_whole(
    city, token, resident, merchant, relayer, sign, balances
):
    # The batch reads its entries from calldata itself; it keeps the ABI decoder's checks, so an
    # address with its upper bytes set reverts the call instead of being cut to 20 bytes.
    auth = sign(resident, merchant, 1_000)
    encoded = token.transferWithAuthorizationBatch.encode_input([auth.as_args()])
    data = bytearray(bytes.fromhex(encoded[2:]))
    # selector, array offset, array length, then the first entry's `from` word
    data[4 + 32 + 32] = 0x01
    before = balances(resident, merchant)
    with brownie.reverts():
        relayer.transfer(token, 0, data=bytes(data))
    assert balances(resident, merchant) == before
    assert token.authorizationState(resident, auth.nonce) is False
    # The same call data with that byte clean settles.
    data[4 + 32 + 32] = 0
    relayer.transfer(token, 0, data=bytes(data))
    assert token.authorizationState(resident, auth.nonce) is True


def test_batch_skips_a_payment_to_a_suspended_merchant_and_reports_merchant_not_active(
    city,
    token,
    registry,
    registrar,
    resident,
    merchant,
    merchant2,
    relayer,
    sign,
    revert_data,
    hex32,
):
    registry.suspend(merchant2, {"from": registrar})
    refused = sign(resident, merchant2, 1_000)
    tx = settle(token, relayer, refused, sign(resident, merchant, 2_000))
    assert tx.return_value == 1
    assert tx.events["AuthorizationFailed"].values() == [
        resident.address,
        hex32(refused.nonce),
        revert_data(MERCHANT_NOT_ACTIVE, merchant2),
    ]
    assert token.balanceOf(merchant2) == 0


def test_batch_skips_a_payment_over_balance_and_reports_insufficient_balance(
    city, token, resident, merchant, relayer, sign, revert_data, hex32
):
    first, second = sign(resident, merchant, 100_000), sign(resident, merchant, 20_000)
    tx = settle(token, relayer, first, second)
    assert tx.return_value == 1
    assert tx.events["AuthorizationFailed"].values() == [
        resident.address,
        hex32(second.nonce),
        revert_data(INSUFFICIENT_BALANCE, resident, 10_000, 20_000),
    ]
    assert token.balanceOf(resident) == 10_000


def test_batch_skips_a_reused_nonce_and_reports_used_or_canceled(
    city, token, resident, merchant, relayer, sign, revert_data, hex32
):
    used = sign(resident, merchant, 1_000)
    token.transferWithAuthorization(*used.as_args(), {"from": relayer})
    tx = settle(token, relayer, used, sign(resident, merchant, 2_000))
    assert tx.return_value == 1
    assert tx.events["AuthorizationFailed"].values() == [
        resident.address,
        hex32(used.nonce),
        revert_data(USED, resident, used.nonce),
    ]
    assert token.balanceOf(merchant) == 3_000


def test_batch_settles_the_same_authorization_only_once(
    city, token, resident, merchant, relayer, sign, revert_data
):
    auth = sign(resident, merchant, 1_000)
    tx = settle(token, relayer, auth, auth)
    assert tx.return_value == 1
    assert tx.events["AuthorizationFailed"]["reason"] == revert_data(USED, resident, auth.nonce)
    assert token.balanceOf(merchant) == 1_000


def test_batch_skips_a_payment_to_a_resident_and_reports_transfer_not_allowed(
    city, token, resident, resident2, relayer, sign, revert_data
):
    tx = settle(token, relayer, sign(resident, resident2, 1_000))
    assert tx.return_value == 0
    assert tx.events["AuthorizationFailed"]["reason"] == revert_data(
        NOT_ALLOWED, resident, resident2
    )


def test_batch_voids_an_authorization_its_payer_signed_and_a_rule_refused(
    city, token, registry, registrar, resident, merchant2, relayer, sign, hex32, expect_revert
):
    """The relayer tells the till it failed: nobody holding the public signature may settle it
    later, once the merchant is active again."""
    registry.suspend(merchant2, {"from": registrar})
    refused = sign(resident, merchant2, 1_000)
    tx = settle(token, relayer, refused)
    assert tx.events["AuthorizationVoided"].values() == [resident.address, hex32(refused.nonce)]
    registry.activate(merchant2, {"from": registrar})
    with expect_revert("EIP3009AuthorizationVoided(address,bytes32)", resident, refused.nonce):
        token.transferWithAuthorization(*refused.as_args(), {"from": relayer})
    assert token.balanceOf(merchant2) == 0


def test_batch_does_not_void_an_entry_whose_signature_is_not_the_payer_s(
    city, token, resident, merchant, relayer, domain
):
    forged = sign_authorization(
        keccak(text="someone else"), domain, to=merchant.address, value=1_000, valid_before=2**40
    )
    forged = dataclasses.replace(forged, from_=resident.address)
    tx = settle(token, relayer, forged)
    assert "AuthorizationVoided" not in tx.events
    assert token.authorizationState(resident, forged.nonce) is False


def test_batch_when_paused_settles_nothing_and_reports_enforced_pause(
    city, token, pauser, resident, merchant, relayer, sign, revert_data, balances
):
    token.pause({"from": pauser})
    before = balances(resident, merchant)
    tx = settle(token, relayer, sign(resident, merchant, 1_000), sign(resident, merchant, 2_000))
    assert tx.return_value == 0
    assert [e["reason"] for e in tx.events["AuthorizationFailed"]] == [
        revert_data("EnforcedPause()")
    ] * 2
    assert balances(resident, merchant) == before


def test_batch_mixing_valid_and_invalid_settles_only_the_valid_ones(
    city,
    token,
    registry,
    registrar,
    resident,
    resident2,
    merchant,
    merchant2,
    relayer,
    sign,
    error_selector,
    balances,
    hex32,
    pin_next_block_time,
):
    reused = sign(resident2, merchant, 500)
    token.transferWithAuthorization(*reused.as_args(), {"from": relayer})
    registry.suspend(merchant2, {"from": registrar})
    settled_at = pin_next_block_time()
    batch = [
        sign(resident, merchant, 10_000),  # settles
        dataclasses.replace(sign(resident2, merchant, 1_000), value=9_000),  # bad signature
        sign(resident2, merchant, 20_000),  # settles
        sign(resident, merchant, 1_000, valid_before=settled_at - 1),  # expired
        sign(resident, merchant2, 1_000),  # merchant suspended
        sign(resident, merchant, 100_001),  # over the 100,000 left
        reused,  # nonce already used
    ]
    tx = settle(token, relayer, *batch)
    assert tx.return_value == 2
    failures = tx.events["AuthorizationFailed"]
    assert [(e["authorizer"], e["nonce"]) for e in failures] == [
        (a.from_, hex32(a.nonce)) for a in batch[1:2] + batch[3:]
    ]
    assert [bytes(e["reason"])[:4] for e in failures] == [
        error_selector(INVALID_SIGNATURE),
        error_selector(EXPIRED),
        error_selector(MERCHANT_NOT_ACTIVE),
        error_selector(INSUFFICIENT_BALANCE),
        error_selector(USED),
    ]
    assert balances(resident, resident2, merchant, merchant2) == [
        100_000,
        110_000 - 500 - 20_000,
        500 + 10_000 + 20_000,
        0,
    ]
