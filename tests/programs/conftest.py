"""Fixtures for the money classes: a program office, a funded youth allowance, shops of several
kinds and places, and residents holding general and policy money."""

from __future__ import annotations

import itertools

import pytest
from brownie import accounts, chain
from eth_utils import keccak

RESTAURANT = 5611
BAKERY = 4721
BOOKSTORE = 5942
GIMPO = 41570
GONGJU = 44150
MAX_REVENUE = 2**64 - 1
_codes = itertools.count(1)


def wallet(seed: str):
    return accounts.add(keccak(text=f"city-programs-test-wallet:{seed}"))


@pytest.fixture(scope="module")
def manager():
    return accounts[9]


@pytest.fixture(scope="module")
def funder():
    return accounts[10]


@pytest.fixture(scope="module")
def payer():
    return accounts[11]


@pytest.fixture(scope="module", autouse=True)
def program_roles(programs, city_admin, manager, funder, payer):
    admin = {"from": city_admin}
    programs.grantRole(programs.PROGRAM_MANAGER_ROLE(), manager, admin)
    programs.grantRole(programs.PROGRAM_FUNDER_ROLE(), funder, admin)
    programs.grantRole(programs.PROGRAM_PAYER_ROLE(), payer, admin)


def code(label: str) -> bytes:
    return keccak(text=f"program:{label}:{next(_codes)}")


def terms(
    *,
    budget=10_000_000,
    per_recipient=500_000,
    spend_from=None,
    days=180,
    revenue_cap=MAX_REVENUE,
    categories=(),
    regions=(),
    label="youth",
):
    now = chain.time()
    return (
        code(label),
        budget,
        per_recipient,
        0 if spend_from is None else spend_from,
        now + days * 86_400,
        revenue_cap,
        list(categories),
        list(regions),
    )


@pytest.fixture(scope="module")
def create_program(programs, manager, funder):
    """Creates and funds a program: returns its id."""

    def create(fund: int | None = None, **kwargs) -> int:
        t = terms(**kwargs)
        tx = programs.createProgram(t, {"from": manager})
        program_id = tx.return_value
        # Each funding is its own bank transfer: its reference once.
        programs.fundProgram(program_id, fund or t[1], t[0], {"from": funder})
        return program_id

    return create


@pytest.fixture(scope="module")
def pay_out(programs, payer):
    def pay(program_id: int, *payouts):
        return programs.payOut(program_id, list(payouts), {"from": payer})

    return pay


@pytest.fixture(scope="module")
def shops(register_merchant):
    """A restaurant and a bakery in Gimpo, a bookstore in Gongju's region code."""
    restaurant, bakery, bookstore = (wallet(f"shop-{n}") for n in ("restaurant", "bakery", "books"))
    register_merchant(restaurant, category=RESTAURANT)
    register_merchant(bakery, category=BAKERY)
    register_merchant(bookstore, category=BOOKSTORE, region=GONGJU)
    return restaurant, bakery, bookstore


@pytest.fixture(scope="module")
def holder(register_resident, charge):
    """A resident with 100,000 KRW of general money (charged 100,000 at no incentive)."""
    resident = wallet("class-holder")
    register_resident(resident)
    charge(resident, 100_000)
    return resident
