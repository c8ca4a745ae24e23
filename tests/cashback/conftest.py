"""Fixtures for cashback on payments (결제 캐시백): a city in cashback mode, its cashback contract
with a backend holding the cashback payer's role, and residents and merchants made per test."""

from __future__ import annotations

import dataclasses
import itertools

import pytest
from brownie import accounts
from eth_utils import keccak
from treasury.conftest import error_data, kst, reverts_with  # noqa: F401

from scripts.city_suite import GIMPO

REGION = 41570  # Gimpo, where the root conftest registers everyone
DECLINE_REGION = 41800  # a population-decline area with a higher rate
SMALL = 300_000_000  # annual revenue of a merchant in the 10% band
MIDDLE = 800_000_000  # in the 5% band
LARGE = 1_100_000_000  # above every band (under the city's registration cap of 1.2 billion)
BANDS = ((SMALL, 1_000), (1_000_000_000, 500))
REGIONS = ((DECLINE_REGION, 1_500),)
BUDGET = 100_000_000
ZERO_ID = bytes(32)
_wallets = itertools.count(1)
_invoices = itertools.count(1)


@pytest.fixture(scope="module")
def city_terms():
    """Gimpo Pay paying its incentive as cashback: 10% at small merchants, 5% at middle ones,
    15% in the population-decline area, nothing above a billion KRW of revenue."""
    policy = dataclasses.replace(
        GIMPO.policy,
        incentive_bps=0,
        incentive_mode="cashback",
        cashback_bands=BANDS,
        cashback_regions=REGIONS,
        cashback_budget=BUDGET,
    )
    return dataclasses.replace(GIMPO, policy=policy)


@pytest.fixture(scope="module")
def cashback(suite, city_admin, cashback_payer):
    contract = suite.cashback
    contract.grantRole(contract.CASHBACK_PAYER_ROLE(), cashback_payer, {"from": city_admin})
    return contract


@pytest.fixture(scope="module")
def cashback_payer():
    """The backend that settles payments for cashback."""
    return accounts[12]


def wallet(label: str):
    return accounts.add(keccak(text=f"city-cashback-test-wallet:{label}:{next(_wallets)}"))


def invoice() -> bytes:
    return keccak(text=f"cashback-test-invoice:{next(_invoices)}")


@pytest.fixture(scope="module")
def new_resident(cashback, register_resident, charge):
    """A registered resident, charged `amount` KRW (no discount in cashback mode)."""

    def make(amount: int = 0):
        resident = wallet("resident")
        register_resident(resident)
        if amount:
            charge(resident, amount)
        return resident

    return make


@pytest.fixture(scope="module")
def new_merchant(cashback, register_merchant):
    def make(revenue: int = SMALL, region: int = REGION):
        merchant = wallet("merchant")
        register_merchant(merchant, revenue=revenue, region=region)
        return merchant

    return make


@pytest.fixture(scope="module")
def settle(cashback, cashback_payer):
    """The backend settles one payment (a refund's settlement needs no role: see the tests)."""

    def settle_(payer, merchant, payment_id: bytes = ZERO_ID, sender=None):
        return cashback.settle(payer, merchant, payment_id, {"from": sender or cashback_payer})

    return settle_
