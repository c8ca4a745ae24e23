"""The holder of a contract wallet objects to a recovery of it: by the wallet's own call, or
relayed with its owner's RecoveryObjection signature for the contract's address (ERC-1271)."""

import pytest
from brownie import accounts
from citypay.registry_authorization import sign_recovery_objection
from eth_utils import keccak


@pytest.fixture(scope="module")
def replacement():
    return accounts.add(keccak(text="city-token-test-wallet:contract-wallet-replacement"))


@pytest.fixture
def proposed(registry, compliance, resident_wallet, replacement):
    """Compliance proposed to recover the contract wallet to `replacement`: it is held."""
    registry.proposeRecovery(resident_wallet, replacement, {"from": compliance})
    return registry.pendingRecovery(resident_wallet)


def objection(registry_domain, wallet, signer, recovery) -> bytes:
    return sign_recovery_objection(
        signer.private_key,
        registry_domain,
        replacement=recovery["replacement"],
        proposed_at=recovery["proposedAt"],
        wallet=wallet.address,
    )


def test_a_relayed_objection_signed_by_the_owner_ends_the_contract_wallet_s_recovery(
    registry, token, registry_domain, resident_wallet, owner, outsider, replacement, proposed
):
    signature = objection(registry_domain, resident_wallet, owner, proposed)
    tx = registry.objectToRecovery(resident_wallet, signature, {"from": outsider})
    assert tx.events["RecoveryObjected"].values() == [
        resident_wallet.address,
        replacement.address,
    ]
    assert token.isHeld(resident_wallet) is False


def test_a_relayed_objection_signed_by_another_key_is_refused(
    registry, token, registry_domain, resident_wallet, intruder, outsider, proposed, reverts_with
):
    signature = objection(registry_domain, resident_wallet, intruder, proposed)
    with reverts_with("CityRegistryInvalidSignature", resident_wallet):
        registry.objectToRecovery(resident_wallet, signature, {"from": outsider})
    assert token.isHeld(resident_wallet) is True


def test_a_contract_wallet_objects_with_its_own_call(
    registry, token, resident_wallet, owner, replacement, proposed
):
    tx = resident_wallet.execute(
        registry, registry.objectToRecovery.encode_input(resident_wallet, b""), {"from": owner}
    )
    assert tx.events["RecoveryObjected"].values() == [
        resident_wallet.address,
        replacement.address,
    ]
    assert token.isHeld(resident_wallet) is False
