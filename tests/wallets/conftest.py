"""Fixtures for contract wallets (ERC-1271): tests/contracts/OwnedWallet.sol, a minimal smart
wallet whose owner key signs for it, compiled as bench/gas.py compiles its references (with the
product's compiler settings, outside contracts/ and so outside the product), then registered as a
resident and as a merchant of the module's city.

A package, like tests/treasury, so this conftest does not replace the root one in sys.modules.
"""

from __future__ import annotations

import contextlib
import copy
import dataclasses
import itertools
from pathlib import Path

import pytest
from brownie import accounts
from brownie.project import get_loaded_projects
from brownie.project.main import TempProject
from citypay.authorization import (
    TRANSFER_WITH_AUTHORIZATION,
    SignedAuthorization,
    authorization_digest,
    typed_message,
)
from citypay.registry_authorization import sign_payout_account
from eth_account import Account
from eth_utils import keccak

# Fixtures shared with the treasury's tests.
from treasury.conftest import (  # noqa: F401
    as_hex,
    authorize_cash_out,
    cash_out_cancellation,
    helpers,
    revert_data_of,
    reverts_with,
    treasury_domain,
)

TEST_CONTRACTS = Path(__file__).resolve().parents[1] / "contracts"
# EIP-3009's CancelAuthorization, as a wallet signs it (the standard's type, not the token's).
_CANCEL_AUTHORIZATION_FIELDS = [
    {"name": "authorizer", "type": "address"},
    {"name": "nonce", "type": "bytes32"},
]
_nonces = itertools.count(1)


@pytest.fixture(scope="session")
def test_contracts():
    """tests/contracts/ compiled with brownie-config.yaml's compiler settings (solc version,
    optimizer, EVM version, remappings)."""
    product = get_loaded_projects()[0]
    config = copy.deepcopy(dict(product._compiler_config))
    sources = {
        path.relative_to(product._path).as_posix(): path.read_text()
        for path in sorted(TEST_CONTRACTS.glob("*.sol"))
    }
    # The remapped OpenZeppelin imports resolve from the project's directory.
    with contextlib.chdir(product._path):
        return TempProject("CityTestContracts", sources, config)


def _key_holder(name: str):
    return accounts.add(keccak(text=f"city-token-test-wallet:contract-wallet-owner:{name}"))


@pytest.fixture(scope="module")
def owner():
    """The key behind the contract wallets: it signs for them and sends their calls."""
    return _key_holder("owner")


@pytest.fixture(scope="module")
def intruder():
    """A key that owns no contract wallet: its signatures must never pass for one."""
    return _key_holder("intruder")


@pytest.fixture(scope="module")
def deploy_wallet(test_contracts, city_admin):
    def deploy(owner_):
        return test_contracts.OwnedWallet.deploy(owner_, {"from": city_admin})

    return deploy


@pytest.fixture(scope="module")
def resident_wallet(city, deploy_wallet, owner, register_resident, charge):
    """A contract wallet registered as a resident and charged 100,000 KRW (110,000 with the
    incentive)."""
    wallet = deploy_wallet(owner)
    register_resident(wallet)
    charge(wallet, 100_000)
    return wallet


@pytest.fixture(scope="module")
def register_wallet_merchant(registry, registrar, registry_domain, helpers):  # noqa: F811
    """Registers a contract wallet as a merchant: its owner signs the payout account for the
    contract's address."""

    def register(wallet, owner_, *, signer=None, deadline: int = 2**40):
        payout_account = helpers.account_hash(wallet.address)
        application = (
            helpers.business_hash(wallet.address),
            payout_account,
            300_000_000,
            5611,
            41570,
        )
        signature = sign_payout_account(
            (signer or owner_).private_key,
            registry_domain,
            payout_account_hash=payout_account,
            deadline=deadline,
            nonce=registry.payoutAccountNonce(wallet),
            merchant=wallet.address,
        )
        return registry.registerMerchant(
            wallet, application, deadline, signature, {"from": registrar}
        )

    return register


@pytest.fixture(scope="module")
def merchant_wallet(city, deploy_wallet, owner, register_wallet_merchant, token, resident):
    """A contract wallet registered as a merchant, paid 60,000 KRW by the resident."""
    wallet = deploy_wallet(owner)
    register_wallet_merchant(wallet, owner)
    token.transfer(wallet, 60_000, {"from": resident})
    return wallet


@pytest.fixture(scope="module")
def sign_for_wallet(domain):
    """An EIP-3009 authorization from a contract wallet, signed by `signer` (its owner, or a
    forger): the owner's ECDSA signature of the EIP-712 digest, which the wallet's
    isValidSignature accepts. Returns the authorization (its v, r, s for the fast path) and the
    65-byte signature (for the `bytes` variants)."""

    def sign(
        wallet,
        signer,
        to,
        value: int,
        *,
        primary_type: str = TRANSFER_WITH_AUTHORIZATION,
        valid_before: int = 2**40,
        nonce: bytes | None = None,
    ) -> tuple[SignedAuthorization, bytes]:
        unsigned = SignedAuthorization(
            from_=wallet.address,
            to=str(to),
            value=value,
            valid_after=0,
            valid_before=valid_before,
            nonce=keccak(text=f"contract-wallet-nonce:{next(_nonces)}") if nonce is None else nonce,
            v=0,
            r=b"",
            s=b"",
        )
        digest = authorization_digest(domain, unsigned, primary_type)
        signed = Account.unsafe_sign_hash(digest, signer.private_key)
        authorization = dataclasses.replace(
            unsigned, v=signed.v, r=signed.r.to_bytes(32, "big"), s=signed.s.to_bytes(32, "big")
        )
        return authorization, authorization.signature

    return sign


@pytest.fixture(scope="module")
def cancellation_for_wallet(domain):
    """The 65-byte CancelAuthorization(authorizer, nonce) signature `signer` makes for `wallet`."""

    def sign(wallet, signer, nonce: bytes) -> bytes:
        message = typed_message(
            domain,
            "CancelAuthorization",
            _CANCEL_AUTHORIZATION_FIELDS,
            {"authorizer": wallet.address, "nonce": nonce},
        )
        return bytes(Account.sign_message(message, signer.private_key).signature)

    return sign
