"""The token's suite-only entry points: only its registry sets statuses and recovers wallets, only
its treasury mints and burns; the suite is linked once."""

import pytest
from brownie import ZERO_ADDRESS, CityToken, interface
from eth_utils import function_abi_to_4byte_selector

UNAUTHORIZED = "CityTokenUnauthorizedSuiteCall(address)"
REGISTRY_OUTSIDERS = ["city_admin", "registrar", "compliance", "outsider"]
TREASURY_OUTSIDERS = ["city_admin", "issuer", "settler", "outsider"]
IERC20 = [
    ("totalSupply", []),
    ("balanceOf", ["address"]),
    ("transfer", ["address", "uint256"]),
    ("allowance", ["address", "address"]),
    ("approve", ["address", "uint256"]),
    ("transferFrom", ["address", "address", "uint256"]),
]


@pytest.mark.parametrize("caller", REGISTRY_OUTSIDERS)
def test_set_account_status_reverts_unless_called_by_the_registry(
    token, stranger, request, caller, expect_revert
):
    sender = request.getfixturevalue(caller)
    with expect_revert(UNAUTHORIZED, sender):
        token.setAccountStatus(stranger, 1, True, {"from": sender})
    assert token.accountKind(stranger) == 0


@pytest.mark.parametrize("caller", REGISTRY_OUTSIDERS)
def test_recover_account_reverts_unless_called_by_the_registry(
    city, token, resident, stranger, request, caller, expect_revert
):
    sender = request.getfixturevalue(caller)
    with expect_revert(UNAUTHORIZED, sender):
        token.recoverAccount(resident, stranger, {"from": sender})
    assert token.balanceOf(resident) == 110_000


@pytest.mark.parametrize("caller", TREASURY_OUTSIDERS)
def test_issue_reverts_unless_called_by_the_treasury(
    city, token, resident, request, caller, expect_revert
):
    sender = request.getfixturevalue(caller)
    with expect_revert(UNAUTHORIZED, sender):
        token.issue(resident, 1_000, {"from": sender})
    assert token.balanceOf(resident) == 110_000


@pytest.mark.parametrize("caller", TREASURY_OUTSIDERS)
def test_redeem_reverts_unless_called_by_the_treasury(
    city, token, resident, request, caller, expect_revert
):
    sender = request.getfixturevalue(caller)
    with expect_revert(UNAUTHORIZED, sender):
        token.redeem(resident, 1_000, {"from": sender})
    assert token.balanceOf(resident) == 110_000


@pytest.mark.parametrize("caller", TREASURY_OUTSIDERS)
def test_restore_reverts_unless_called_by_the_treasury(
    city, token, resident, request, caller, expect_revert
):
    sender = request.getfixturevalue(caller)
    with expect_revert(UNAUTHORIZED, sender):
        token.restore(resident, 1_000, {"from": sender})
    assert token.balanceOf(resident) == 110_000


def test_suite_calls_from_the_account_itself_revert(city, token, resident, expect_revert):
    with expect_revert(UNAUTHORIZED, resident):
        token.issue(resident, 1_000, {"from": resident})


def test_link_suite_records_registry_and_treasury(token, registry, treasury):
    assert token.registry() == registry.address
    assert token.treasury() == treasury.address


def test_link_suite_twice_reverts(token, registry, treasury, city_admin, outsider, expect_revert):
    with expect_revert("CityTokenSuiteAlreadyLinked(address,address)", registry, treasury):
        token.linkSuite(outsider, outsider, outsider, {"from": city_admin})
    assert token.registry() == registry.address


def test_link_suite_emits_suite_linked(city_admin, registrar, settler):
    fresh = CityToken.deploy("Ulsan Pay", "ULSAN", city_admin, {"from": city_admin})
    tx = fresh.linkSuite(registrar, settler, city_admin, {"from": city_admin})
    assert tx.events["SuiteLinked"].values() == [
        registrar.address,
        settler.address,
        city_admin.address,
    ]


def test_link_suite_refuses_a_zero_address(city_admin, registrar, expect_revert):
    fresh = CityToken.deploy("Ulsan Pay", "ULSAN", city_admin, {"from": city_admin})
    with expect_revert("CityTokenZeroAddress()"):
        fresh.linkSuite(registrar, ZERO_ADDRESS, registrar, {"from": city_admin})
    with expect_revert("CityTokenZeroAddress()"):
        fresh.linkSuite(registrar, registrar, ZERO_ADDRESS, {"from": city_admin})
    assert fresh.registry() == ZERO_ADDRESS


def test_constructor_refuses_a_zero_city_admin(city_admin, expect_revert):
    with expect_revert("CityTokenZeroAddress()"):
        CityToken.deploy("Ulsan Pay", "ULSAN", ZERO_ADDRESS, {"from": city_admin})


def _selectors(abi) -> set[bytes]:
    return {function_abi_to_4byte_selector(f) for f in abi if f["type"] == "function"}


def test_token_advertises_the_city_token_interface(token):
    """type(ICityToken).interfaceId: the XOR of the selectors ICityToken itself declares."""
    inherited = _selectors(interface.IERC3009.abi) | _selectors(
        [{"type": "function", "name": n, "inputs": [{"type": t} for t in ts]} for n, ts in IERC20]
    )
    interface_id = 0
    for selector in _selectors(interface.ICityToken.abi) - inherited:
        interface_id ^= int.from_bytes(selector, "big")
    assert token.supportsInterface(interface_id.to_bytes(4, "big")) is True
    assert token.supportsInterface("0x01ffc9a7") is True  # ERC-165
    assert token.supportsInterface("0xffffffff") is False
