"""Every role-gated function of the seven contracts refuses a caller without the role.

GATES is the table: each row names a function, arguments that would change state if the gate let
the call through, what it requires (an AccessControl role, or the suite-only error of a function
only the registry, the treasury, the token, the programs or the cashback contract may call) and,
where meaningful, the state that must stay as it was.
`test_gates_cover_every_gated_function_of_the_sources` parses the contracts so a new gated
function without a row fails the suite.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace

import brownie
import pytest
from brownie import CityCashback, CityDirectory, CityGifts, CityPrograms
from citypay.cashout.authorization import sign_cash_out, treasury_domain_for
from eth_utils import keccak
from hexbytes import HexBytes
from treasury.conftest import error_message

CONTRACTS = Path(__file__).resolve().parents[1] / "contracts"
FIXTURE_OF = {
    "CityToken": "token",
    "CityRegistry": "registry",
    "CityTreasury": "treasury",
    "CityDirectory": "directory",
    "CityPrograms": "programs",
    "CityGifts": "gifts",
    "CityCashback": "cashback",
}
# Gates other than an AccessControl role: the error each raises with the caller.
SUITE_ONLY_ERRORS = {
    "CityTokenUnauthorizedSuiteCall",
    "CityTreasuryOnlyRegistry",
    "CityTreasuryOnlyToken",
    "CityProgramsUnauthorized",
    "CityTreasuryOnlyPrograms",
    "CityTreasuryOnlyCashback",
}
REFERENCE = keccak(text="access-control:reference")


@dataclass(frozen=True)
class Gate:
    contract: str
    function: str
    args: Callable[[SimpleNamespace], list]
    # A role constant's name (..._ROLE), or one of SUITE_ONLY_ERRORS.
    requires: str
    # What the call would change were it let through; it must read the same after the refusal.
    state: Callable[[SimpleNamespace], object] | None = None
    # Brings the city to where the call would matter (a pending redemption, a paused token, ...).
    setup: Callable[[SimpleNamespace], object] | None = None
    # Tells rows of one function apart in test ids (the role a grantRole row grants).
    label: str = ""
    # A gate with an error of its own: the refusal the outsider gets (else the role's).
    refusal: Callable[[SimpleNamespace], str] | None = None

    @property
    def id(self) -> str:
        return f"{self.contract}.{self.function}{f'({self.label})' if self.label else ''}"


def _role(f, contract: str, name: str):
    return getattr(getattr(f, FIXTURE_OF[contract]), name)()


def _grant(contract: str, role: str, admin_role: str) -> Gate:
    """grantRole(role, outsider): requires the role's admin role."""
    return Gate(
        contract,
        "grantRole",
        lambda f: [_role(f, contract, role), f.outsider],
        admin_role,
        state=lambda f: getattr(f, FIXTURE_OF[contract]).hasRole(
            _role(f, contract, role), f.outsider
        ),
        label=role,
    )


def _revoke(contract: str, role: str, holder: str, admin_role: str) -> Gate:
    """revokeRole(role, holder): requires the role's admin role."""
    return Gate(
        contract,
        "revokeRole",
        lambda f: [_role(f, contract, role), getattr(f, holder)],
        admin_role,
        state=lambda f: getattr(f, FIXTURE_OF[contract]).hasRole(
            _role(f, contract, role), getattr(f, holder)
        ),
        label=role,
    )


def _cash_out(f):
    f.token.transfer(f.merchant, 10_000, {"from": f.resident})
    f.treasury.cashOut(10_000, {"from": f.merchant})


def _signed_cash_out(f):
    """A merchant's valid cash-out authorization: only the caller's role can refuse it."""
    domain = treasury_domain_for(f.token.name(), brownie.chain.id, f.treasury.address)
    valid_before = brownie.chain.time() + 3600
    payout_account = bytes(HexBytes(f.registry.merchantOf(f.merchant)["payoutAccountHash"]))
    signature = sign_cash_out(
        f.merchant.private_key,
        domain,
        amount=1_000,
        payout_account_hash=payout_account,
        valid_before=valid_before,
        nonce=REFERENCE,
    )
    return [
        f.merchant,
        1_000,
        payout_account,
        valid_before - 3600,
        valid_before,
        REFERENCE,
        signature,
    ]


def _revoked_for_illegal_exchange(f):
    f.token.transfer(f.merchant, 10_000, {"from": f.resident})
    f.registry.revoke(f.merchant, True, {"from": f.registrar})


def _recovery_proposed(f):
    f.registry.proposeRecovery(f.resident, f.outsider, {"from": f.compliance})


def _recovery_due(f):
    _recovery_proposed(f)
    brownie.chain.sleep(f.registry.recoveryDelay() + 1)


def _recovery_state(f):
    return (
        f.registry.pendingRecovery(f.resident),
        f.token.isHeld(f.resident),
        f.token.balanceOf(f.resident),
    )


def _program_terms() -> tuple:
    expiry = brownie.chain.time() + 30 * 86_400
    return (keccak(text="access-control:program"), 10**6, 10**5, 0, expiry, 2**64 - 1, [], [])


def _program_created(f):
    role = f.programs.PROGRAM_MANAGER_ROLE()
    f.programs.grantRole(role, f.city_admin, {"from": f.city_admin})
    f.programs.createProgram(_program_terms(), {"from": f.city_admin})


def _program_funded(f):
    _program_created(f)
    role = f.programs.PROGRAM_FUNDER_ROLE()
    f.programs.grantRole(role, f.city_admin, {"from": f.city_admin})
    f.programs.fundProgram(1, 10**6, REFERENCE, {"from": f.city_admin})


def _classes_of_resident(f):
    return (f.programs.breakdownOf(f.resident), f.programs.generalBalanceOf(f.resident))


def _invoice_paid(f):
    """A payment that would earn cashback: only the cashback payer's role may settle it."""
    f.token.pay(f.merchant, 10_000, REFERENCE, {"from": f.resident})


def _settlement(f):
    return f.cashback.settlementOf(f.resident, f.merchant, REFERENCE)


def _treasury_setter(function: str, index: int) -> Gate:
    return Gate(
        "CityTreasury",
        function,
        lambda f: [1],
        "DEFAULT_ADMIN_ROLE",
        state=lambda f: f.treasury.policy()[index],
    )


GATES = [
    # --- CityToken ---
    Gate(
        "CityToken",
        "linkSuite",
        lambda f: [f.outsider, f.outsider, f.outsider],
        "DEFAULT_ADMIN_ROLE",
        state=lambda f: (f.token.registry(), f.token.treasury(), f.token.programs()),
    ),
    Gate(
        "CityToken",
        "setGeneralExcluded",
        lambda f: [f.merchant, True],
        "CityTokenUnauthorizedSuiteCall",
        state=lambda f: f.token.canTransfer(f.resident, f.merchant, 1),
    ),
    Gate(
        "CityToken",
        "issueProgram",
        lambda f: [f.resident, 1_000],
        "CityTokenUnauthorizedSuiteCall",
        state=lambda f: f.token.balanceOf(f.resident),
    ),
    Gate(
        "CityToken",
        "gift",
        lambda f: [f.resident, f.resident2, 1_000, 0],
        "CityTokenUnauthorizedSuiteCall",
        state=lambda f: (f.token.balanceOf(f.resident), f.token.balanceOf(f.resident2)),
    ),
    Gate("CityToken", "pause", lambda f: [], "PAUSER_ROLE", state=lambda f: f.token.paused()),
    Gate(
        "CityToken",
        "unpause",
        lambda f: [],
        "PAUSER_ROLE",
        state=lambda f: f.token.paused(),
        setup=lambda f: f.token.pause({"from": f.pauser}),
    ),
    Gate(
        "CityToken",
        "freeze",
        lambda f: [f.resident],
        "COMPLIANCE_ROLE",
        state=lambda f: f.token.isFrozen(f.resident),
    ),
    Gate(
        "CityToken",
        "unfreeze",
        lambda f: [f.resident],
        "COMPLIANCE_ROLE",
        state=lambda f: f.token.isFrozen(f.resident),
        setup=lambda f: f.token.freeze(f.resident, {"from": f.compliance}),
    ),
    Gate(
        "CityToken",
        "setAccountStatus",
        lambda f: [f.outsider, 1, True],
        "CityTokenUnauthorizedSuiteCall",
        state=lambda f: (f.token.accountKind(f.outsider), f.token.isActive(f.outsider)),
    ),
    Gate(
        "CityToken",
        "recoverAccount",
        lambda f: [f.resident, f.outsider],
        "CityTokenUnauthorizedSuiteCall",
        state=lambda f: (f.token.balanceOf(f.resident), f.token.accountKind(f.outsider)),
    ),
    Gate(
        "CityToken",
        "issue",
        lambda f: [f.resident, 1_000],
        "CityTokenUnauthorizedSuiteCall",
        state=lambda f: f.token.balanceOf(f.resident),
    ),
    Gate(
        "CityToken",
        "redeem",
        lambda f: [f.resident, 1_000],
        "CityTokenUnauthorizedSuiteCall",
        state=lambda f: f.token.balanceOf(f.resident),
    ),
    Gate(
        "CityToken",
        "restore",
        lambda f: [f.resident, 1_000],
        "CityTokenUnauthorizedSuiteCall",
        state=lambda f: f.token.balanceOf(f.resident),
    ),
    Gate(
        "CityToken",
        "transferWithAuthorizationBatch",
        lambda f: [[]],
        "RELAYER_ROLE",
    ),
    Gate(
        "CityToken",
        "close",
        lambda f: [f.resident, 1_000, True],
        "CityTokenUnauthorizedSuiteCall",
        state=lambda f: f.token.balanceOf(f.resident),
    ),
    Gate(
        "CityToken",
        "setRecoveryHold",
        lambda f: [f.resident, True],
        "CityTokenUnauthorizedSuiteCall",
        state=lambda f: f.token.isHeld(f.resident),
    ),
    _grant("CityToken", "PAUSER_ROLE", "DEFAULT_ADMIN_ROLE"),
    _revoke("CityToken", "PAUSER_ROLE", "pauser", "DEFAULT_ADMIN_ROLE"),
    # --- CityRegistry ---
    Gate(
        "CityRegistry",
        "registerResident",
        lambda f: [f.outsider, keccak(text="identity:outsider"), 41570],
        "REGISTRAR_ROLE",
        state=lambda f: (f.registry.residentCount(), f.token.accountKind(f.outsider)),
    ),
    Gate(
        "CityRegistry",
        "registerMerchant",
        lambda f: [
            f.outsider,
            (keccak(text="business:x"), keccak(text="bank-account:x"), 1, 5611, 41570),
            2**40,
            b"",
        ],
        "REGISTRAR_ROLE",
        state=lambda f: (f.registry.merchantCount(), f.token.accountKind(f.outsider)),
    ),
    Gate(
        "CityRegistry",
        "updateMerchant",
        lambda f: [f.merchant, 4721, 1, 1],
        "REGISTRAR_ROLE",
        state=lambda f: f.registry.merchantOf(f.merchant),
    ),
    Gate(
        "CityRegistry",
        "changePayoutAccount",
        lambda f: [f.merchant, keccak(text="bank-account:x"), 2**40, b""],
        "REGISTRAR_ROLE",
        state=lambda f: f.registry.merchantOf(f.merchant),
    ),
    Gate(
        "CityRegistry",
        "activate",
        lambda f: [f.resident],
        "REGISTRAR_ROLE",
        state=lambda f: f.registry.residentOf(f.resident),
        setup=lambda f: f.registry.suspend(f.resident, {"from": f.registrar}),
    ),
    Gate(
        "CityRegistry",
        "suspend",
        lambda f: [f.resident],
        "REGISTRAR_ROLE",
        state=lambda f: f.registry.residentOf(f.resident),
    ),
    Gate(
        "CityRegistry",
        "revoke",
        lambda f: [f.merchant, True],
        "REGISTRAR_ROLE",
        state=lambda f: (f.registry.merchantOf(f.merchant), f.registry.merchantCount()),
    ),
    Gate(
        "CityRegistry",
        "confiscate",
        lambda f: [f.merchant, REFERENCE],
        "COMPLIANCE_ROLE",
        state=lambda f: (f.token.balanceOf(f.merchant), f.treasury.redemptionCount()),
        setup=_revoked_for_illegal_exchange,
    ),
    Gate(
        "CityRegistry",
        "proposeRecovery",
        lambda f: [f.resident, f.outsider],
        "COMPLIANCE_ROLE",
        state=_recovery_state,
    ),
    Gate(
        "CityRegistry",
        "executeRecovery",
        lambda f: [f.resident],
        "REGISTRAR_ROLE",
        state=_recovery_state,
        setup=_recovery_due,
    ),
    Gate(
        "CityRegistry",
        "cancelRecovery",
        lambda f: [f.resident],
        "COMPLIANCE_ROLE",
        state=_recovery_state,
        setup=_recovery_proposed,
    ),
    Gate(
        "CityRegistry",
        "setRecoveryDelay",
        lambda f: [7_200],
        "DEFAULT_ADMIN_ROLE",
        state=lambda f: f.registry.recoveryDelay(),
    ),
    Gate(
        "CityRegistry",
        "setGeneralRevenueCap",
        lambda f: [1],
        "DEFAULT_ADMIN_ROLE",
        state=lambda f: f.registry.generalRevenueCap(),
    ),
    Gate(
        "CityRegistry",
        "setMerchantRevenueCap",
        lambda f: [1],
        "DEFAULT_ADMIN_ROLE",
        state=lambda f: f.registry.merchantRevenueCap(),
    ),
    Gate(
        "CityRegistry",
        "setCategoryExcluded",
        lambda f: [5611, True],
        "DEFAULT_ADMIN_ROLE",
        state=lambda f: f.registry.isCategoryExcluded(5611),
    ),
    Gate(
        "CityRegistry",
        "setBanPeriod",
        lambda f: [1],
        "DEFAULT_ADMIN_ROLE",
        state=lambda f: f.registry.banPeriod(),
    ),
    _grant("CityRegistry", "REGISTRAR_ROLE", "DEFAULT_ADMIN_ROLE"),
    _revoke("CityRegistry", "REGISTRAR_ROLE", "registrar", "DEFAULT_ADMIN_ROLE"),
    # --- CityTreasury ---
    Gate(
        "CityTreasury",
        "issue",
        lambda f: [f.resident, 1_000, REFERENCE],
        "ISSUER_ROLE",
        state=lambda f: (f.token.balanceOf(f.resident), f.treasury.depositIssued(REFERENCE)),
    ),
    Gate(
        "CityTreasury",
        "cashOutWithAuthorization",
        _signed_cash_out,
        "SETTLER_ROLE",
        state=lambda f: (
            f.token.balanceOf(f.merchant),
            f.treasury.cashOutAuthorizationState(f.merchant, REFERENCE),
        ),
        setup=lambda f: f.token.transfer(f.merchant, 10_000, {"from": f.resident}),
    ),
    Gate(
        "CityTreasury",
        "settle",
        lambda f: [0, f.merchant, 10_000, REFERENCE],
        "SETTLER_ROLE",
        state=lambda f: f.treasury.redemption(0),
        setup=_cash_out,
    ),
    Gate(
        "CityTreasury",
        "returnRedemption",
        lambda f: [0, f.merchant, 10_000, REFERENCE],
        "SETTLER_ROLE",
        state=lambda f: (f.treasury.redemption(0), f.token.balanceOf(f.merchant)),
        setup=_cash_out,
    ),
    Gate(
        "CityTreasury",
        "configureIssuer",
        lambda f: [f.outsider, 10**9],
        "ISSUER_ADMIN_ROLE",
        state=lambda f: (
            f.treasury.issuerAllowance(f.outsider),
            f.treasury.hasRole(f.treasury.ISSUER_ROLE(), f.outsider),
        ),
    ),
    Gate(
        "CityTreasury",
        "removeIssuer",
        lambda f: [f.issuer],
        "ISSUER_ADMIN_ROLE",
        state=lambda f: (
            f.treasury.issuerAllowance(f.issuer),
            f.treasury.hasRole(f.treasury.ISSUER_ROLE(), f.issuer),
        ),
    ),
    _treasury_setter("setAnnualIssuanceCap", 0),
    _treasury_setter("setMonthlyPurchaseLimit", 1),
    _treasury_setter("setHoldingCap", 2),
    _treasury_setter("setIncentiveBps", 3),
    _treasury_setter("setMonthlyIncentiveLimit", 4),
    Gate(
        "CityTreasury",
        "moveResidentTally",
        lambda f: [f.resident, f.outsider],
        "CityTreasuryOnlyRegistry",
        state=lambda f: (
            f.treasury.residentTally(f.resident),
            f.treasury.residentTally(f.outsider),
        ),
    ),
    Gate(
        "CityTreasury",
        "recordMerchantRefund",
        lambda f: [f.resident, 1_000],
        "CityTreasuryOnlyToken",
        state=lambda f: f.treasury.residentTally(f.resident),
    ),
    Gate(
        "CityTreasury",
        "confiscate",
        lambda f: [f.merchant, REFERENCE],
        "CityTreasuryOnlyRegistry",
        state=lambda f: (f.token.balanceOf(f.merchant), f.treasury.redemptionCount()),
        setup=_revoked_for_illegal_exchange,
    ),
    Gate(
        "CityTreasury",
        "setRefundMinUsedBps",
        lambda f: [8_000],
        "DEFAULT_ADMIN_ROLE",
        state=lambda f: f.treasury.refundMinUsedBps(),
    ),
    Gate(
        "CityTreasury",
        "linkCashback",
        lambda f: [f.cashback],
        "DEFAULT_ADMIN_ROLE",
        state=lambda f: f.treasury.cashback(),
    ),
    Gate(
        "CityTreasury",
        "setIncentiveMode",
        lambda f: [1],
        "DEFAULT_ADMIN_ROLE",
        state=lambda f: (f.treasury.incentiveMode(), f.treasury.policy()),
    ),
    *(
        Gate(
            "CityTreasury",
            name,
            lambda f: [f.resident, 1_000],
            "CityTreasuryOnlyCashback",
            state=lambda f: (f.token.balanceOf(f.resident), f.treasury.residentTally(f.resident)),
        )
        for name in ("issueCashback", "reverseCashback")
    ),
    _grant("CityTreasury", "ISSUER_ROLE", "ISSUER_ADMIN_ROLE"),
    _grant("CityTreasury", "SETTLER_ROLE", "DEFAULT_ADMIN_ROLE"),
    _revoke("CityTreasury", "ISSUER_ROLE", "issuer", "ISSUER_ADMIN_ROLE"),
    _revoke("CityTreasury", "SETTLER_ROLE", "settler", "DEFAULT_ADMIN_ROLE"),
    # --- CityPrograms ---
    Gate(
        "CityPrograms",
        "createProgram",
        lambda f: [_program_terms()],
        "PROGRAM_MANAGER_ROLE",
        state=lambda f: f.programs.programCount(),
    ),
    Gate(
        "CityPrograms",
        "fundProgram",
        lambda f: [1, 1_000, REFERENCE],
        "PROGRAM_FUNDER_ROLE",
        state=lambda f: f.programs.program(1)["funded"],
        setup=_program_created,
    ),
    Gate(
        "CityPrograms",
        "payOut",
        lambda f: [1, [(f.resident, 1_000)]],
        "PROGRAM_PAYER_ROLE",
        state=lambda f: f.token.balanceOf(f.resident),
        setup=_program_funded,
    ),
    Gate(
        "CityPrograms",
        "closeProgram",
        lambda f: [1],
        "PROGRAM_MANAGER_ROLE",
        state=lambda f: f.programs.program(1)["closed"],
        setup=_program_created,
    ),
    *(
        Gate("CityPrograms", name, args, "CityProgramsUnauthorized", state=state)
        for name, args, state in (
            ("creditGeneral", lambda f: [f.resident, 1_000, 1_000], _classes_of_resident),
            (
                "draw",
                lambda f: [f.resident, f.resident, f.merchant, True, 1_000, 1_000, REFERENCE],
                _classes_of_resident,
            ),
            (
                "creditRefund",
                lambda f: [f.resident, f.resident, REFERENCE, 1_000, 1_000],
                _classes_of_resident,
            ),
            ("clear", lambda f: [f.resident, f.resident, 1_000], _classes_of_resident),
            ("moveGeneral", lambda f: [f.resident, f.resident2, 1_000], _classes_of_resident),
        )
    ),
    Gate(
        "CityPrograms",
        "linkGifts",
        lambda f: [f.outsider],
        "DEFAULT_ADMIN_ROLE",
        state=lambda f: f.programs.gifts(),
    ),
    *(
        Gate(
            "CityTreasury",
            name,
            lambda f: [f.resident, 10_000, 1_000],
            "CityTreasuryOnlyPrograms",
            state=lambda f: f.treasury.residentTally(f.resident),
        )
        for name in ("recordGift", "recordExpired")
    ),
    # --- CityGifts ---
    Gate(
        "CityGifts",
        "setMonthlyCaps",
        lambda f: [10**9, 10**9],
        "DEFAULT_ADMIN_ROLE",
        state=lambda f: (f.gifts.monthlySendCap(), f.gifts.monthlyReceiveCap()),
    ),
    _grant("CityGifts", "DEFAULT_ADMIN_ROLE", "DEFAULT_ADMIN_ROLE"),
    _revoke("CityGifts", "DEFAULT_ADMIN_ROLE", "city_admin", "DEFAULT_ADMIN_ROLE"),
    _grant("CityPrograms", "PROGRAM_PAYER_ROLE", "DEFAULT_ADMIN_ROLE"),
    _revoke("CityPrograms", "PROGRAM_MANAGER_ROLE", "city_admin", "DEFAULT_ADMIN_ROLE"),
    # --- CityCashback ---
    # Settling a refund takes cashback back and needs no role; paying needs the payer's.
    Gate(
        "CityCashback",
        "settle",
        lambda f: [f.resident, f.merchant, REFERENCE],
        "CASHBACK_PAYER_ROLE",
        state=_settlement,
        setup=_invoice_paid,
        label="pay",
    ),
    Gate(
        "CityCashback",
        "settleBatch",
        lambda f: [[(f.resident, f.merchant, REFERENCE)]],
        "CASHBACK_PAYER_ROLE",
        state=_settlement,
        setup=_invoice_paid,
    ),
    Gate(
        "CityCashback",
        "baseline",
        lambda f: [[(f.resident, f.merchant, REFERENCE)]],
        "CASHBACK_PAYER_ROLE",
        state=_settlement,
        setup=_invoice_paid,
    ),
    Gate(
        "CityCashback",
        "setTerms",
        lambda f: [[(2**64 - 1, 3_000)], []],
        "DEFAULT_ADMIN_ROLE",
        state=lambda f: (f.cashback.bands(), f.cashback.regionRates()),
    ),
    Gate(
        "CityCashback",
        "setBudget",
        lambda f: [10**12],
        "DEFAULT_ADMIN_ROLE",
        state=lambda f: f.cashback.budget(),
    ),
    _grant("CityCashback", "CASHBACK_PAYER_ROLE", "DEFAULT_ADMIN_ROLE"),
    _revoke("CityCashback", "DEFAULT_ADMIN_ROLE", "city_admin", "DEFAULT_ADMIN_ROLE"),
    # --- CityDirectory ---
    Gate(
        "CityDirectory",
        "registerCity",
        lambda f: ["gimpo", "Gimpo Pay", f.token, f.registry, f.treasury],
        "DIRECTORY_ADMIN_ROLE",
        state=lambda f: f.directory.cityCount(),
    ),
    _grant("CityDirectory", "DIRECTORY_ADMIN_ROLE", "DEFAULT_ADMIN_ROLE"),
    _revoke("CityDirectory", "DIRECTORY_ADMIN_ROLE", "city_admin", "DEFAULT_ADMIN_ROLE"),
    # The city's own admin (its token's DEFAULT_ADMIN_ROLE), not the directory's.
    Gate(
        "CityDirectory",
        "setCustody",
        lambda f: ["gimpo", REFERENCE, f.outsider],
        "DEFAULT_ADMIN_ROLE",
        state=lambda f: f.directory.custody("gimpo"),
        setup=lambda f: f.directory.registerCity(
            "gimpo", "Gimpo Pay", f.token, f.registry, f.treasury, {"from": f.city_admin}
        ),
        refusal=lambda f: error_message("CityDirectoryNotCityAdmin", "gimpo", f.outsider),
    ),
]


@pytest.fixture(scope="module")
def directory(city_admin):
    return CityDirectory.deploy(city_admin, {"from": city_admin})


@pytest.fixture
def f(city, token, registry, treasury, directory, request):
    programs = token.programs()
    """The contracts and accounts the table's lambdas use."""
    names = [
        "resident",
        "resident2",
        "merchant",
        "outsider",
        "issuer",
        "settler",
        "pauser",
        "registrar",
        "compliance",
        "city_admin",
    ]
    return SimpleNamespace(
        token=token,
        registry=registry,
        treasury=treasury,
        directory=directory,
        programs=CityPrograms.at(programs),
        gifts=CityGifts.at(CityPrograms.at(programs).gifts()),
        cashback=CityCashback.at(treasury.cashback()),
        **{name: request.getfixturevalue(name) for name in names},
    )


def _expected_refusal(f, gate: Gate) -> str:
    if gate.refusal:
        return gate.refusal(f)
    if gate.requires in SUITE_ONLY_ERRORS:
        return error_message(gate.requires, f.outsider)
    role = bytes(HexBytes(_role(f, gate.contract, gate.requires)))
    return error_message("AccessControlUnauthorizedAccount", f.outsider, role)


@pytest.mark.parametrize("gate", GATES, ids=lambda gate: gate.id)
def test_gated_function_refuses_a_caller_without_the_role(f, gate):
    if gate.setup:
        gate.setup(f)
    contract = getattr(f, FIXTURE_OF[gate.contract])
    before = gate.state(f) if gate.state else None
    with brownie.reverts(_expected_refusal(f, gate)):
        getattr(contract, gate.function)(*gate.args(f), {"from": f.outsider})
    if gate.state:
        assert gate.state(f) == before


ROLES = sorted({(g.contract, g.requires) for g in GATES if g.requires not in SUITE_ONLY_ERRORS})


@pytest.mark.parametrize(("contract", "role"), ROLES, ids=[f"{c}.{r}" for c, r in ROLES])
def test_outsider_holds_none_of_the_roles(f, contract, role):
    """Else a refusal above would test nothing."""
    assert not getattr(f, FIXTURE_OF[contract]).hasRole(_role(f, contract, role), f.outsider)


# --- The table against the sources ------------------------------------------------------------

_FUNCTION = re.compile(r"\bfunction\s+(\w+)\s*\(")
_GATE_MODIFIER = re.compile(r"\bonly(Role|Registry|Treasury|Token|Programs|Cashback)\b")
# A check of the caller against a linked contract counts too (the gifts contract, the programs).
_SELF_CALL_GATE = re.compile(
    r"msg\.sender\s*!=\s*(?:address\(this\)|gifts\b)"
    r"|hasRole\(DEFAULT_ADMIN_ROLE,\s*msg\.sender\)"
)
_CONTRACT = re.compile(r"^(?:abstract\s+)?contract\s+(\w+)", re.M)
_COMMENT = re.compile(r"//[^\n]*|/\*.*?\*/", re.S)


def _gated_functions() -> set[tuple[str, str]]:
    """(contract, function) for every function of contracts/ guarded by a role modifier,
    onlyRegistry, onlyTreasury, onlyToken, onlyPrograms, onlyCashback, a msg.sender ==
    address(this) check, or a check of the caller's admin role on another contract. A role checked
    only on one path, in a private function (CityCashback.settle's payments), has a row without
    the parser seeing it."""
    gated = set()
    for source in CONTRACTS.rglob("*.sol"):
        text = _COMMENT.sub("", source.read_text())
        for contract_match in _CONTRACT.finditer(text):
            contract = contract_match.group(1)
            end = _matching_brace(text, text.index("{", contract_match.end()))
            body = text[contract_match.end() : end]
            for match in _FUNCTION.finditer(body):
                open_brace = body.find("{", match.end())
                header = body[match.end() : open_brace]
                if ";" in header:  # declared without a body
                    continue
                code = body[open_brace : _matching_brace(body, open_brace)]
                if _GATE_MODIFIER.search(header) or _SELF_CALL_GATE.search(code):
                    gated.add((contract, match.group(1)))
    return gated


def _matching_brace(text: str, open_index: int) -> int:
    depth = 0
    for index in range(open_index, len(text)):
        depth += {"{": 1, "}": -1}.get(text[index], 0)
        if depth == 0:
            return index
    raise ValueError("unbalanced braces")


def test_gates_cover_every_gated_function_of_the_sources():
    in_table = {(gate.contract, gate.function) for gate in GATES}
    missing = _gated_functions() - in_table
    assert not missing, f"gated functions without a row in GATES: {sorted(missing)}"


def test_source_parser_finds_the_known_gates():
    """The parser itself must see gates, or the coverage test above would pass on nothing."""
    found = _gated_functions()
    assert {
        ("CityToken", "pause"),
        ("CityToken", "setAccountStatus"),
        ("CityToken", "issue"),
        ("CityToken", "close"),
        ("CityRegistry", "executeRecovery"),
        ("CityTreasury", "recordMerchantRefund"),
        ("CityTreasury", "moveResidentTally"),
        ("CityTreasury", "recordGift"),
        ("CityTreasury", "recordExpired"),
        ("CityTreasury", "issueCashback"),
        ("CityCashback", "settleBatch"),
        ("CityPrograms", "moveGeneral"),
        ("CityDirectory", "registerCity"),
        ("CityDirectory", "setCustody"),
    } <= found
    assert ("CityToken", "transfer") not in found
    assert ("CityTreasury", "cashOut") not in found
