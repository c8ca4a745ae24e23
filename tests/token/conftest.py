"""Fixtures for the token's unit tests: exact custom-error matching, pinned block times, invoice
ids, a replacement wallet and a second city whose signatures must not settle in the first."""

from __future__ import annotations

import dataclasses
import itertools
import re

import brownie
import pytest
from brownie import accounts, chain, web3
from citypay.authorization import TokenDomain
from eth_abi import decode, encode
from eth_utils import keccak, to_hex

from scripts.city_suite import GIMPO, deploy_city_suite, signed_application

GONGJU = dataclasses.replace(GIMPO, code="gongju", name="Gongju Pay", symbol="GONGJU")

_invoice_counter = itertools.count(1)


def _error_types(signature: str) -> list[str]:
    inner = signature[signature.index("(") + 1 : -1]
    return [t for t in inner.split(",") if t]


def _abi_value(arg):
    """Brownie accounts and contracts stand for their address."""
    return arg.address if hasattr(arg, "address") else arg


def error_data(signature: str, *args) -> str:
    """The revert data of a custom error: its 4-byte selector and its ABI-encoded arguments."""
    types = _error_types(signature)
    body = encode(types, [_abi_value(a) for a in args])
    return to_hex(selector(signature) + body)


def selector(signature: str) -> bytes:
    return bytes(web3.keccak(text=signature)[:4])


def reverts_with(signature: str, *args):
    """Expects a revert with exactly this custom error and these arguments, rendered as Brownie
    renders a decoded custom error ('Name: arg1, arg2')."""
    types = _error_types(signature)
    values = decode(types, encode(types, [_abi_value(a) for a in args]))
    name = signature[: signature.index("(")]
    message = f"{name}: {', '.join(str(v) for v in values)}"
    return brownie.reverts(revert_pattern=re.escape(message))


@pytest.fixture(scope="session")
def expect_revert():
    return reverts_with


@pytest.fixture(scope="session")
def revert_data():
    return error_data


@pytest.fixture(scope="session")
def error_selector():
    return selector


@pytest.fixture(scope="session")
def invoice_id():
    """A fresh invoice id, as a POS would make for each sale."""

    def make() -> bytes:
        return keccak(text=f"invoice:{next(_invoice_counter)}")

    return make


@pytest.fixture(scope="session")
def hex32():
    """bytes32 as Brownie shows them in events."""
    return to_hex


@pytest.fixture(scope="module")
def balances(token):
    """The token balances of some accounts, to check that a refused movement moved nothing."""

    def of(*holders) -> list[int]:
        return [token.balanceOf(h) for h in holders]

    return of


@pytest.fixture(scope="module")
def replacement():
    """A fresh wallet that a lost wallet is recovered to."""
    return accounts.add(keccak(text="city-token-test-wallet:token-replacement"))


@pytest.fixture(scope="module")
def other_city(city_admin, issuer_admin, issuer, registrar, resident, merchant):
    """Gongju Pay, a second city where the module's resident and merchant are also registered
    and the resident is charged."""
    suite = deploy_city_suite(GONGJU, city_admin)
    admin = {"from": city_admin}
    suite.registry.grantRole(suite.registry.REGISTRAR_ROLE(), registrar, admin)
    suite.treasury.grantRole(suite.treasury.ISSUER_ADMIN_ROLE(), issuer_admin, admin)
    suite.treasury.configureIssuer(issuer, 1_000_000, {"from": issuer_admin})
    suite.registry.registerResident(
        resident, keccak(text=f"gongju-identity:{resident.address}"), 44150, {"from": registrar}
    )
    application = (
        keccak(text=f"gongju-business:{merchant.address}"),
        keccak(text=f"gongju-account:{merchant.address}"),
        100_000_000,
        5611,
        44150,
    )
    suite.registry.registerMerchant(
        *signed_application(suite.registry, merchant, application), {"from": registrar}
    )
    suite.treasury.issue(resident, 50_000, keccak(text="gongju-deposit:1"), {"from": issuer})
    return suite


@pytest.fixture(scope="module")
def other_domain(other_city):
    token = other_city.token
    return TokenDomain(
        name=token.name(),
        version=token.version(),
        chain_id=chain.id,
        verifying_contract=token.address,
    )
