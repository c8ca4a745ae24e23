"""Fixtures for the registry's tests: fresh wallets and merchant applications.

A package, like tests/treasury, so this conftest does not replace the root one in sys.modules.
"""

from __future__ import annotations

import pytest
from brownie import accounts
from eth_utils import keccak

# Fixtures shared with the treasury's tests.
from treasury.conftest import as_hex, helpers, kst, reverts_with  # noqa: F401

RESTAURANT = 5611
GIMPO_REGION = 41570


@pytest.fixture(scope="session")
def new_wallet():
    """A wallet no fixture registered, named for the test that uses it."""

    def new_wallet_(name: str):
        return accounts.add(keccak(text=f"city-token-test-wallet:registry:{name}"))

    return new_wallet_


@pytest.fixture(scope="session")
def application(helpers):  # noqa: F811  (the fixture imported above)
    """A merchant's application (ICityRegistry.MerchantApplication) for the business `name`."""

    def application_(
        name: str,
        *,
        category: int = RESTAURANT,
        revenue: int = 300_000_000,
        region: int = GIMPO_REGION,
        payout_account: bytes | None = None,
    ) -> tuple:
        return (
            helpers.business_hash(name),
            helpers.account_hash(name) if payout_account is None else payout_account,
            revenue,
            category,
            region,
        )

    return application_
