"""Fixtures for gifts (선물하기): the city's gifts contract, its EIP-712 domain, and a signer."""

from __future__ import annotations

import dataclasses
import itertools

import pytest
from brownie import accounts, chain, web3
from citypay.authorization import GIFT_AUTHORIZATION, TokenDomain, sign_authorization
from eth_utils import keccak
from treasury.conftest import reverts_with  # noqa: F401

from scripts.city_suite import GIMPO

DAY = 86_400
# General money valid 8 weeks here, so a test can see gifted money expire.
VALIDITY = 56 * DAY
_wallets = itertools.count(1)


@pytest.fixture(scope="module")
def city_terms():
    return dataclasses.replace(
        GIMPO, policy=dataclasses.replace(GIMPO.policy, general_validity=VALIDITY)
    )


def wallet(label: str = "resident"):
    return accounts.add(keccak(text=f"city-gifts-test-wallet:{label}:{next(_wallets)}"))


@pytest.fixture(scope="module")
def gifts_domain(gifts):
    _, name, version, chain_id, contract, _, _ = gifts.eip712Domain()
    return TokenDomain(name, version, chain_id, contract)


@pytest.fixture(scope="module")
def sign_gift(gifts_domain):
    """The giver's signed GiftAuthorization, as its wallet app signs it."""

    def sign(giver, to, value: int, **kwargs):
        # A window of at most a day, as the contract asks, open by the chain's own clock (after
        # a snapshot's revert it may be behind the host's).
        kwargs.setdefault("valid_after", web3.eth.get_block("latest").timestamp - 60)
        kwargs.setdefault("valid_before", chain.time() + 3600)
        return sign_authorization(
            giver.private_key,
            gifts_domain,
            to=str(to),
            value=value,
            primary_type=GIFT_AUTHORIZATION,
            **kwargs,
        )

    return sign


@pytest.fixture(scope="module")
def relay_gift(gifts, outsider):
    """Sends a signed gift as any relayer would (no role needed: the signature is the authority)."""

    def relay(signed, sender=None):
        return gifts.giftWithAuthorization(
            signed.from_,
            signed.to,
            signed.value,
            signed.valid_after,
            signed.valid_before,
            signed.nonce,
            signed.signature,
            {"from": sender or outsider},
        )

    return relay


@pytest.fixture(scope="module")
def new_resident(register_resident, charge):
    """A registered resident, charged `amount` (KRW paid; the city's 10% incentive on top)."""

    def make(amount: int = 0, label: str = "resident"):
        resident = wallet(label)
        register_resident(resident)
        if amount:
            charge(resident, amount)
        return resident

    return make
