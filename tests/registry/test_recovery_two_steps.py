"""Wallet recovery in two steps by two roles (issue 9, item 4): compliance proposes and the lost
wallet is held at once; the registrar, never the proposer, executes after the recovery delay; the
holder, if it still has its key, objects (itself or relayed with its EIP-712 RecoveryObjection
signature) and the hold ends; compliance may withdraw its proposal."""

import pytest
from brownie import ZERO_ADDRESS, web3
from citypay.registry_authorization import sign_recovery_objection
from eth_utils import keccak
from hexbytes import HexBytes

HOUR, DAY = 3_600, 86_400
DEFAULT_DELAY = 3 * DAY
MIN_DELAY, MAX_DELAY = HOUR, 30 * DAY
PAYOUT_ACCOUNT = keccak(text="bank-account:resident-1")


@pytest.fixture(scope="module")
def replacement(new_wallet):
    return new_wallet("two-steps:replacement")


@pytest.fixture
def proposed(registry, compliance, city, resident, replacement):
    """Compliance proposed to recover the resident's wallet: the proposing transaction."""
    return registry.proposeRecovery(resident, replacement, {"from": compliance})


def due(registry, lost) -> int:
    """Makes the next block the first at which the pending recovery of `lost` may be executed."""
    executable_at = registry.pendingRecovery(lost)["executableAt"]
    web3.provider.make_request("evm_setNextBlockTimestamp", [executable_at])
    return executable_at


def objection(registry_domain, holder, recovery, *, signer=None) -> bytes:
    """The holder's RecoveryObjection signature of this pending recovery."""
    return sign_recovery_objection(
        (signer or holder).private_key,
        registry_domain,
        replacement=recovery["replacement"],
        proposed_at=recovery["proposedAt"],
    )


# --- Step one: compliance proposes, the lost wallet is held -----------------------------------


def test_propose_recovery_emits_recovery_proposed_with_the_moment_it_becomes_executable(
    resident, replacement, compliance, proposed
):
    assert proposed.events["RecoveryProposed"].values() == [
        resident.address,
        replacement.address,
        compliance.address,
        proposed.timestamp + DEFAULT_DELAY,
    ]


def test_propose_recovery_records_the_pending_recovery(
    registry, resident, replacement, compliance, proposed
):
    assert registry.pendingRecovery(resident) == (
        replacement.address,
        compliance.address,
        proposed.timestamp,
        proposed.timestamp + DEFAULT_DELAY,
    )


def test_propose_recovery_holds_the_lost_wallet(token, resident, proposed):
    assert proposed.events["RecoveryHoldSet"].values() == [resident.address, True]
    assert token.isHeld(resident) is True


def test_a_held_resident_cannot_pay(token, resident, merchant, proposed, reverts_with):
    with reverts_with("CityTokenAccountInRecovery", resident):
        token.transfer(merchant, 1_000, {"from": resident})
    assert token.balanceOf(resident) == 110_000


def test_a_held_resident_s_signed_payment_is_refused_and_stays_unused(
    token, resident, merchant, relayer, sign, proposed, reverts_with
):
    auth = sign(resident, merchant, 1_000)
    with reverts_with("CityTokenAccountInRecovery", resident):
        token.transferWithAuthorization(*auth.as_args(), {"from": relayer})
    assert token.authorizationState(resident, auth.nonce) is False


def test_a_held_resident_cannot_be_refunded(
    registry, token, compliance, city, resident, merchant, replacement, reverts_with
):
    token.transfer(merchant, 1_000, {"from": resident})
    registry.proposeRecovery(resident, replacement, {"from": compliance})
    with reverts_with("CityTokenAccountInRecovery", resident):
        token.refund(resident, bytes(32), 1_000, {"from": merchant})


def test_a_held_resident_cannot_be_charged(treasury, issuer, resident, proposed, reverts_with):
    with reverts_with("CityTokenAccountInRecovery", resident):
        treasury.issue(resident, 1_000, keccak(text="two-steps:deposit"), {"from": issuer})


def test_a_held_resident_cannot_ask_for_a_refund(
    treasury, token, city, resident, merchant, replacement, registry, compliance, reverts_with
):
    token.transfer(merchant, 66_000, {"from": resident})
    registry.proposeRecovery(resident, replacement, {"from": compliance})
    with reverts_with("CityTokenAccountInRecovery", resident):
        treasury.requestResidentRefund(PAYOUT_ACCOUNT, {"from": resident})


def test_a_held_merchant_cannot_be_paid(
    registry, token, compliance, city, resident, merchant, replacement, reverts_with
):
    registry.proposeRecovery(merchant, replacement, {"from": compliance})
    with reverts_with("CityTokenAccountInRecovery", merchant):
        token.transfer(merchant, 1_000, {"from": resident})


def test_a_held_merchant_cannot_cash_out(
    registry, token, treasury, compliance, city, resident, merchant, replacement, reverts_with
):
    token.transfer(merchant, 1_000, {"from": resident})
    registry.proposeRecovery(merchant, replacement, {"from": compliance})
    with reverts_with("CityTokenAccountInRecovery", merchant):
        treasury.cashOut(1_000, {"from": merchant})


def test_a_second_proposal_while_one_is_pending_is_refused(
    registry, compliance, resident, new_wallet, proposed, reverts_with
):
    with reverts_with("CityRegistryRecoveryPending", resident):
        registry.proposeRecovery(resident, new_wallet("two-steps:other"), {"from": compliance})


def test_the_registrar_cannot_propose_a_recovery(
    registry, registrar, city, resident, replacement, reverts_with
):
    with reverts_with(
        "AccessControlUnauthorizedAccount", registrar, HexBytes(registry.COMPLIANCE_ROLE())
    ):
        registry.proposeRecovery(resident, replacement, {"from": registrar})


# --- Step two: the registrar executes after the delay -----------------------------------------


def test_execute_before_the_delay_is_refused(
    registry, registrar, resident, proposed, pin_next_block_time, reverts_with
):
    now = pin_next_block_time()
    executable_at = proposed.timestamp + DEFAULT_DELAY
    with reverts_with("CityRegistryRecoveryNotDue", resident, executable_at, now):
        registry.executeRecovery(resident, {"from": registrar})


def test_execute_a_second_before_it_is_due_is_refused(
    registry, registrar, resident, proposed, reverts_with
):
    executable_at = proposed.timestamp + DEFAULT_DELAY
    web3.provider.make_request("evm_setNextBlockTimestamp", [executable_at - 1])
    with reverts_with("CityRegistryRecoveryNotDue", resident, executable_at, executable_at - 1):
        registry.executeRecovery(resident, {"from": registrar})


def test_execute_at_the_moment_it_is_due_moves_the_wallet(
    registry, token, registrar, resident, replacement, proposed
):
    due(registry, resident)
    tx = registry.executeRecovery(resident, {"from": registrar})
    assert tx.events["WalletRecovered"].values() == [resident.address, replacement.address]
    assert token.balanceOf(replacement) == 110_000


def test_execute_ends_the_pending_recovery_and_the_replacement_is_not_held(
    registry, token, registrar, resident, replacement, merchant, proposed
):
    due(registry, resident)
    registry.executeRecovery(resident, {"from": registrar})
    assert registry.pendingRecovery(resident)["replacement"] == ZERO_ADDRESS
    assert token.isHeld(replacement) is False
    token.transfer(merchant, 1_000, {"from": replacement})


def test_the_proposer_cannot_execute_even_with_the_registrar_role(
    registry, city_admin, compliance, resident, proposed, reverts_with
):
    registry.grantRole(registry.REGISTRAR_ROLE(), compliance, {"from": city_admin})
    due(registry, resident)
    with reverts_with("CityRegistryRecoveryNeedsSecondRole", compliance):
        registry.executeRecovery(resident, {"from": compliance})
    assert registry.pendingRecovery(resident)["proposer"] == compliance.address


def test_compliance_without_the_registrar_role_cannot_execute(
    registry, compliance, resident, proposed, reverts_with
):
    due(registry, resident)
    with reverts_with(
        "AccessControlUnauthorizedAccount", compliance, HexBytes(registry.REGISTRAR_ROLE())
    ):
        registry.executeRecovery(resident, {"from": compliance})


def test_execute_without_a_proposal_is_refused(registry, registrar, city, resident, reverts_with):
    with reverts_with("CityRegistryNoRecoveryPending", resident):
        registry.executeRecovery(resident, {"from": registrar})


def test_a_replacement_registered_meanwhile_stops_the_execution(
    registry, token, registrar, resident, replacement, proposed, helpers, reverts_with
):
    registry.registerResident(
        replacement, helpers.identity_hash("two-steps:someone"), 41570, {"from": registrar}
    )
    due(registry, resident)
    with reverts_with("CityRegistryAlreadyRegistered", replacement):
        registry.executeRecovery(resident, {"from": registrar})
    assert token.balanceOf(resident) == 110_000


# --- The holder objects -----------------------------------------------------------------------


def test_the_holder_objects_with_its_own_call(registry, token, resident, replacement, proposed):
    tx = registry.objectToRecovery(resident, b"", {"from": resident})
    assert tx.events["RecoveryObjected"].values() == [resident.address, replacement.address]
    assert tx.events["RecoveryHoldSet"].values() == [resident.address, False]
    assert token.isHeld(resident) is False


def test_after_an_objection_the_holder_pays_again(token, resident, merchant, proposed, registry):
    registry.objectToRecovery(resident, b"", {"from": resident})
    token.transfer(merchant, 1_000, {"from": resident})
    assert token.balanceOf(merchant) == 1_000


def test_after_an_objection_the_registrar_has_nothing_to_execute(
    registry, registrar, resident, proposed, reverts_with
):
    registry.objectToRecovery(resident, b"", {"from": resident})
    web3.provider.make_request("evm_setNextBlockTimestamp", [proposed.timestamp + DEFAULT_DELAY])
    with reverts_with("CityRegistryNoRecoveryPending", resident):
        registry.executeRecovery(resident, {"from": registrar})


def test_a_relayed_objection_with_the_holder_s_signature_ends_the_recovery(
    registry, token, registry_domain, resident, replacement, outsider, proposed
):
    signature = objection(registry_domain, resident, registry.pendingRecovery(resident))
    tx = registry.objectToRecovery(resident, signature, {"from": outsider})
    assert tx.events["RecoveryObjected"].values() == [resident.address, replacement.address]
    assert token.isHeld(resident) is False


def test_a_relayed_objection_signed_by_another_key_is_refused(
    registry, token, registry_domain, resident, replacement, outsider, proposed, reverts_with
):
    signature = objection(
        registry_domain, resident, registry.pendingRecovery(resident), signer=replacement
    )
    with reverts_with("CityRegistryInvalidSignature", resident):
        registry.objectToRecovery(resident, signature, {"from": outsider})
    assert token.isHeld(resident) is True


def test_the_replacement_cannot_object_for_the_holder_without_its_signature(
    registry, token, resident, replacement, proposed, reverts_with
):
    with reverts_with("CityRegistryInvalidSignature", resident):
        registry.objectToRecovery(resident, b"", {"from": replacement})
    assert token.isHeld(resident) is True


def test_an_objection_signed_for_an_earlier_proposal_cannot_end_a_later_one(
    registry, token, compliance, registry_domain, resident, replacement, outsider, reverts_with
):
    registry.proposeRecovery(resident, replacement, {"from": compliance})
    earlier = objection(registry_domain, resident, registry.pendingRecovery(resident))
    registry.cancelRecovery(resident, {"from": compliance})
    web3.provider.make_request("evm_increaseTime", [60])
    registry.proposeRecovery(resident, replacement, {"from": compliance})
    with reverts_with("CityRegistryInvalidSignature", resident):
        registry.objectToRecovery(resident, earlier, {"from": outsider})
    assert token.isHeld(resident) is True


def test_an_objection_without_a_pending_recovery_is_refused(registry, city, resident, reverts_with):
    with reverts_with("CityRegistryNoRecoveryPending", resident):
        registry.objectToRecovery(resident, b"", {"from": resident})


# --- Compliance withdraws ---------------------------------------------------------------------


def test_compliance_withdraws_a_recovery_and_the_hold_ends(
    registry, token, compliance, resident, replacement, proposed
):
    tx = registry.cancelRecovery(resident, {"from": compliance})
    assert tx.events["RecoveryCanceled"].values() == [
        resident.address,
        replacement.address,
        compliance.address,
    ]
    assert tx.events["RecoveryHoldSet"].values() == [resident.address, False]
    assert token.isHeld(resident) is False


def test_the_registrar_cannot_withdraw_a_recovery(
    registry, registrar, resident, proposed, reverts_with
):
    with reverts_with(
        "AccessControlUnauthorizedAccount", registrar, HexBytes(registry.COMPLIANCE_ROLE())
    ):
        registry.cancelRecovery(resident, {"from": registrar})


def test_withdraw_without_a_pending_recovery_is_refused(
    registry, compliance, city, resident, reverts_with
):
    with reverts_with("CityRegistryNoRecoveryPending", resident):
        registry.cancelRecovery(resident, {"from": compliance})


def test_revoke_is_refused_while_a_recovery_is_pending(
    registry, registrar, resident, proposed, reverts_with
):
    with reverts_with("CityRegistryRecoveryPending", resident):
        registry.revoke(resident, False, {"from": registrar})


# --- The recovery delay -----------------------------------------------------------------------


def test_the_recovery_delay_is_three_days_by_default(registry):
    assert registry.recoveryDelay() == DEFAULT_DELAY


@pytest.mark.parametrize("delay", [MIN_DELAY, MAX_DELAY], ids=["one-hour", "thirty-days"])
def test_set_recovery_delay_accepts_its_bounds_and_emits_old_and_new(registry, city_admin, delay):
    tx = registry.setRecoveryDelay(delay, {"from": city_admin})
    assert tx.events["RecoveryDelayChanged"].values() == [DEFAULT_DELAY, delay]
    assert registry.recoveryDelay() == delay


@pytest.mark.parametrize("delay", [0, MIN_DELAY - 1, MAX_DELAY + 1, 2**64 - 1])
def test_set_recovery_delay_refuses_a_delay_out_of_its_bounds(
    registry, city_admin, delay, reverts_with
):
    with reverts_with("CityRegistryRecoveryDelayOutOfRange", delay, MIN_DELAY, MAX_DELAY):
        registry.setRecoveryDelay(delay, {"from": city_admin})


def test_a_new_delay_does_not_move_a_pending_recovery(registry, city_admin, resident, proposed):
    registry.setRecoveryDelay(MAX_DELAY, {"from": city_admin})
    assert registry.pendingRecovery(resident)["executableAt"] == proposed.timestamp + DEFAULT_DELAY


def test_a_proposal_waits_the_delay_set_when_it_was_made(
    registry, city_admin, compliance, city, resident, replacement
):
    registry.setRecoveryDelay(MIN_DELAY, {"from": city_admin})
    tx = registry.proposeRecovery(resident, replacement, {"from": compliance})
    assert tx.events["RecoveryProposed"]["executableAt"] == tx.timestamp + MIN_DELAY
