"""Fixtures: one city suite (Gimpo Pay) with an account per role, residents and merchants."""

from __future__ import annotations

import itertools

import pytest
from brownie import accounts, chain, web3
from citypay.authorization import TokenDomain, sign_authorization
from citypay.registry_authorization import registry_domain_for, sign_payout_account
from eth_utils import keccak

from scripts.city_suite import GIMPO, deploy_city_suite
from scripts.receipts import await_receipts_brownie_calls_dropped

KRW = 1
RESTAURANT = 5611
BAKERY = 4721
_reference_counter = itertools.count(1)

await_receipts_brownie_calls_dropped()


@pytest.fixture(autouse=True)
def isolation(fn_isolation):
    """Every test starts from the module's deployed state."""


# --- Accounts by role (anvil's unlocked accounts) ---------------------------------------------


@pytest.fixture(scope="module")
def city_admin():
    return accounts[0]


@pytest.fixture(scope="module")
def issuer_admin():
    return accounts[1]


@pytest.fixture(scope="module")
def issuer():
    return accounts[2]


@pytest.fixture(scope="module")
def registrar():
    return accounts[3]


@pytest.fixture(scope="module")
def compliance():
    return accounts[4]


@pytest.fixture(scope="module")
def pauser():
    return accounts[5]


@pytest.fixture(scope="module")
def settler():
    return accounts[6]


@pytest.fixture(scope="module")
def relayer():
    return accounts[7]


@pytest.fixture(scope="module")
def outsider():
    """Holds no role anywhere: every role-gated call from it must revert."""
    return accounts[8]


# --- Wallets with keys that sign EIP-712 messages ---------------------------------------------


def wallet(seed: str):
    """A local account with a deterministic key, as a wallet app would hold."""
    return accounts.add(keccak(text=f"city-token-test-wallet:{seed}"))


@pytest.fixture(scope="module")
def resident():
    return wallet("resident-1")


@pytest.fixture(scope="module")
def resident2():
    return wallet("resident-2")


@pytest.fixture(scope="module")
def merchant():
    return wallet("merchant-1")


@pytest.fixture(scope="module")
def merchant2():
    return wallet("merchant-2")


@pytest.fixture(scope="module")
def stranger():
    """A wallet with a key that is not registered in any city."""
    return wallet("stranger")


# --- The deployed city ------------------------------------------------------------------------


@pytest.fixture(scope="module")
def city_terms():
    """The city a module deploys: Gimpo Pay, unless the module says otherwise."""
    return GIMPO


@pytest.fixture(scope="module")
def suite(
    city_terms, city_admin, issuer_admin, issuer, registrar, compliance, pauser, settler, relayer
):
    suite = deploy_city_suite(city_terms, city_admin)
    token, registry, treasury = suite.token, suite.registry, suite.treasury
    admin = {"from": city_admin}
    token.grantRole(token.PAUSER_ROLE(), pauser, admin)
    token.grantRole(token.COMPLIANCE_ROLE(), compliance, admin)
    token.grantRole(token.RELAYER_ROLE(), relayer, admin)
    registry.grantRole(registry.REGISTRAR_ROLE(), registrar, admin)
    registry.grantRole(registry.COMPLIANCE_ROLE(), compliance, admin)
    treasury.grantRole(treasury.ISSUER_ADMIN_ROLE(), issuer_admin, admin)
    treasury.grantRole(treasury.SETTLER_ROLE(), settler, admin)
    treasury.configureIssuer(issuer, 10_000_000_000, {"from": issuer_admin})
    return suite


@pytest.fixture(scope="module")
def token(suite):
    return suite.token


@pytest.fixture(scope="module")
def registry(suite):
    return suite.registry


@pytest.fixture(scope="module")
def programs(suite):
    return suite.programs


@pytest.fixture(scope="module")
def gifts(suite):
    return suite.gifts


@pytest.fixture(scope="module")
def treasury(suite):
    return suite.treasury


@pytest.fixture(scope="module")
def domain(token):
    return TokenDomain(
        name=token.name(),
        version=token.version(),
        chain_id=chain.id,
        verifying_contract=token.address,
    )


@pytest.fixture(scope="module")
def registry_domain(token, registry):
    """The registry's EIP-712 domain: merchants sign their payout account in it."""
    return registry_domain_for(token.name(), chain.id, registry.address)


# --- Helpers ----------------------------------------------------------------------------------


def identity_hash(name: str) -> bytes:
    return keccak(text=f"identity:{name}")


def business_hash(name: str) -> bytes:
    return keccak(text=f"business:{name}")


def account_hash(name: str) -> bytes:
    return keccak(text=f"bank-account:{name}")


def deposit_reference() -> bytes:
    """A fresh bank deposit reference."""
    return keccak(text=f"deposit:{next(_reference_counter)}")


@pytest.fixture(scope="module")
def register_resident(registry, registrar):
    def register(wallet_, region: int = 41570):
        return registry.registerResident(
            wallet_, identity_hash(wallet_.address), region, {"from": registrar}
        )

    return register


@pytest.fixture(scope="module")
def payout_signature(registry_domain):
    """The merchant's own signature of its payout account (nonce 0 at registration)."""

    def sign(wallet_, payout_account: bytes, *, nonce: int = 0, deadline: int | None = None):
        deadline = chain.time() + 3600 if deadline is None else deadline
        signature = sign_payout_account(
            wallet_.private_key,
            registry_domain,
            payout_account_hash=payout_account,
            nonce=nonce,
            deadline=deadline,
        )
        return deadline, signature

    return sign


@pytest.fixture(scope="module")
def register_merchant(registry, registrar, payout_signature):
    def register(
        wallet_, category: int = RESTAURANT, revenue: int = 300_000_000, region: int = 41570
    ):
        application = (
            business_hash(wallet_.address),
            account_hash(wallet_.address),
            revenue,
            category,
            region,
        )
        deadline, signature = payout_signature(wallet_, application[1])
        return registry.registerMerchant(
            wallet_, application, deadline, signature, {"from": registrar}
        )

    return register


@pytest.fixture(scope="module")
def recover_wallet(registry, compliance, registrar):
    """Both steps of a wallet recovery: compliance proposes, the registrar executes after the
    delay. Returns the executing transaction."""

    def recover(lost, replacement):
        registry.proposeRecovery(lost, replacement, {"from": compliance})
        chain.sleep(registry.recoveryDelay() + 1)
        return registry.executeRecovery(lost, {"from": registrar})

    return recover


@pytest.fixture
def pin_next_block_time():
    """Sets the next block's timestamp a little ahead of the chain and returns it, so a test can
    sign an authorization whose window ends exactly at the block that settles it, or name the
    block time a refusal reports."""

    def pin() -> int:
        timestamp = max(chain.time(), web3.eth.get_block("latest").timestamp) + 10
        web3.provider.make_request("evm_setNextBlockTimestamp", [timestamp])
        return timestamp

    return pin


@pytest.fixture(scope="module")
def charge(treasury, issuer):
    def charge_(wallet_, amount: int, reference: bytes | None = None):
        return treasury.issue(wallet_, amount, reference or deposit_reference(), {"from": issuer})

    return charge_


@pytest.fixture(scope="module")
def sign(domain):
    """Signs an EIP-3009 authorization with a wallet's key, as a wallet app would."""

    def sign_(payer, to, value: int, **kwargs):
        kwargs.setdefault("valid_before", chain.time() + 3600)
        return sign_authorization(payer.private_key, domain, to=str(to), value=value, **kwargs)

    return sign_


@pytest.fixture(scope="module")
def city(
    suite, register_resident, register_merchant, charge, resident, resident2, merchant, merchant2
):
    """Two charged residents and two merchants, registered in the module's city."""
    for r in (resident, resident2):
        register_resident(r)
    for m in (merchant, merchant2):
        register_merchant(m)
    charge(resident, 100_000)
    charge(resident2, 100_000)
    return suite
