"""EIP-2612 permit: a resident's signed approval lets a spender pull a payment to a merchant."""

import brownie
from brownie import chain
from citypay.authorization import sign_permit


def permit(token, domain, owner, spender, value, *, deadline=None, key=None):
    """Signs a permit with the owner's key (or `key`) and has the spender submit it."""
    deadline = chain.time() + 3600 if deadline is None else deadline
    v, r, s = sign_permit(
        key or owner.private_key,
        domain,
        spender=spender.address,
        value=value,
        nonce=token.nonces(owner),
        deadline=deadline,
    )
    return token.permit(owner, spender, value, deadline, v, r, s, {"from": spender})


def invalid_signer_for(owner):
    """ERC2612InvalidSigner(recovered, owner): the digest the token hashes is not the one signed,
    so the signature recovers to an arbitrary address."""
    return brownie.reverts(
        revert_pattern=rf"ERC2612InvalidSigner: 0x[0-9a-f]{{40}}, {owner.address.lower()}"
    )


def test_permit_sets_the_allowance_and_emits_approval(city, token, resident, relayer, domain):
    tx = permit(token, domain, resident, relayer, 20_000)
    assert token.allowance(resident, relayer) == 20_000
    assert tx.events["Approval"].values() == [resident.address, relayer.address, 20_000]


def test_permit_uses_up_the_owners_nonce(city, token, resident, relayer, domain):
    permit(token, domain, resident, relayer, 20_000)
    assert token.nonces(resident) == 1


def test_permit_then_transfer_from_by_the_spender_pays_a_merchant(
    city, token, resident, merchant, relayer, domain, balances
):
    permit(token, domain, resident, relayer, 20_000)
    token.transferFrom(resident, merchant, 15_000, {"from": relayer})
    assert balances(resident, merchant) == [110_000 - 15_000, 15_000]
    assert token.allowance(resident, relayer) == 5_000
    assert token.refundableAmount(resident, merchant, bytes(32)) == 15_000


def test_permit_then_transfer_from_to_a_resident_reverts(
    city, token, resident, resident2, relayer, domain, balances, expect_revert
):
    permit(token, domain, resident, relayer, 20_000)
    before = balances(resident, resident2)
    with expect_revert("CityTokenTransferNotAllowed(address,address)", resident, resident2):
        token.transferFrom(resident, resident2, 15_000, {"from": relayer})
    assert balances(resident, resident2) == before


def test_permit_signed_by_another_key_reverts(city, token, resident, resident2, relayer, domain):
    with invalid_signer_for(resident):
        permit(token, domain, resident, relayer, 20_000, key=resident2.private_key)
    assert token.allowance(resident, relayer) == 0


def test_expired_permit_reverts(city, token, resident, relayer, domain, expect_revert):
    deadline = chain.time() - 60
    with expect_revert("ERC2612ExpiredSignature(uint256)", deadline):
        permit(token, domain, resident, relayer, 20_000, deadline=deadline)
    assert token.allowance(resident, relayer) == 0


def test_permit_cannot_be_replayed(city, token, resident, merchant, relayer, domain):
    deadline = chain.time() + 3600
    v, r, s = sign_permit(
        resident.private_key,
        domain,
        spender=relayer.address,
        value=20_000,
        nonce=0,
        deadline=deadline,
    )
    token.permit(resident, relayer, 20_000, deadline, v, r, s, {"from": relayer})
    token.transferFrom(resident, merchant, 20_000, {"from": relayer})
    with invalid_signer_for(resident):
        token.permit(resident, relayer, 20_000, deadline, v, r, s, {"from": relayer})
    assert token.allowance(resident, relayer) == 0
