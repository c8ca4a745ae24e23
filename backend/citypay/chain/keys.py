"""The backend's signing keys, per city and duty: from the keystore folder the deploy uses
(KEYSTORE_DIR, chain/keystore.py), or anvil's development keys on the embedded chain only.

Each city names its own accounts in the manifest (`roles`): its bank as issuer (the first of
`issuers`, which holds an allowance), its settler, registrar, compliance and relayer (cities may
share an account: one key then serves them all). Every key is unlocked
at start-up, so that a misconfigured backend refuses to start, naming every missing or wrong key
with its city and duty at once, instead of failing at the first deposit, card or cash-out of the
day. Off the embedded chain, an account of the public development mnemonic in any role of a
served city is refused too: anyone has its key, imported into a keystore or not.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass

from eth_account.signers.local import LocalAccount

from citypay.chain.deployment import Deployment
from citypay.chain.keystore import (
    DevKeys,
    KeyLoadError,
    KeySource,
    KeystoreKeys,
    development_accounts,
    development_index,
    public_key_warning,
)
from citypay.core.config import EMBEDDED_CHAIN_ID, Settings

# The duties the backend sends for, each an entry of a city's roles in the manifest: issuing on
# a bank's deposit, cash-outs and their settlement, the city office's registrations (and cards'),
# its compliance actions (freeze, recovery, confiscation), payment batches, policy programs'
# payouts, cashback settlements.
DUTIES = (
    "issuer",
    "settler",
    "registrar",
    "compliance",
    "relayer",
    "program_payer",
    "cashback_payer",
)


class SigningKeyError(RuntimeError):
    """A duty has no usable key."""


def development_account(address: str) -> LocalAccount:
    """The anvil development account with this address (tests, the day, the benchmarks)."""
    account = development_accounts().get(address)
    if account is None:
        raise SigningKeyError(f"{address} is not one of anvil's development accounts")
    return account


@dataclass(frozen=True)
class Duty:
    city: str
    duty: str
    address: str


def duty_addresses(deployment: Deployment) -> list[Duty]:
    """Every (city, duty, address) the backend signs for, in the served cities: one account a
    duty, but the relayer's pool (`relayers`, the relayer first)."""
    duties = []
    for code, city in sorted(deployment.cities.items()):
        for duty in DUTIES:
            holder = _holder(city.roles, duty)
            if holder:
                pool = city.roles.get("relayers") if duty == "relayer" else None
                duties += [Duty(code, duty, address) for address in pool or [holder]]
    return duties


def _missing_roles(deployment: Deployment) -> list[str]:
    return [
        f"{code} {duty}: the manifest {deployment.path} names no {duty} for {code} "
        f"(roles.{'issuers' if duty == 'issuer' else duty}); deploy again with this version"
        for code, city in sorted(deployment.cities.items())
        for duty in DUTIES
        if not _holder(city.roles, duty)
    ]


def _holder(roles: dict, duty: str) -> str | None:
    """The address of `duty` in a city's roles: the issuer is the first of `issuers`."""
    if duty == "issuer":
        return (roles.get("issuers") or [None])[0]
    return roles.get(duty)


def _public_role_holders(deployment: Deployment) -> list[str]:
    """Every role of a served city held by a development account (any role: an admin's key
    anyone has is worse than an issuer's)."""
    public = []
    for code, city in sorted(deployment.cities.items()):
        for role, holders in city.roles.items():
            for holder in holders if isinstance(holders, list) else [holders]:
                if development_index(holder) is not None:
                    public.append(f"{code} {role}: {public_key_warning(holder)}")
    return public


def _key_source(settings: Settings, chain_id: int) -> KeySource:
    if settings.KEYSTORE_DIR is not None:
        try:
            return KeystoreKeys(settings.KEYSTORE_DIR)
        except KeyLoadError as error:
            raise SigningKeyError(f"KEYSTORE_DIR: {error}") from None
    if chain_id != EMBEDDED_CHAIN_ID:
        raise SigningKeyError(
            f"KEYSTORE_DIR is not set: on chain id {chain_id} the duty keys come from the "
            "keystore folder the deploy used (anvil's development keys sign on the embedded "
            f"chain, {EMBEDDED_CHAIN_ID}, only)"
        )
    return DevKeys()


class DutyKeys:
    """The unlocked key of every duty of every served city."""

    def __init__(self, duties: list[Duty], accounts: dict[str, LocalAccount]) -> None:
        self._pools: dict[tuple[str, str], list[str]] = defaultdict(list)
        for d in duties:
            self._pools[(d.city, d.duty)].append(d.address)
        self._holders = {(d.duty, d.address) for d in duties}
        self._accounts = accounts

    @classmethod
    def unlock(cls, settings: Settings, deployment: Deployment) -> DutyKeys:
        """Every duty key, or SigningKeyError naming each missing or wrong one with its city."""
        chain_id = deployment.chain_id
        problems = _missing_roles(deployment)
        if chain_id != EMBEDDED_CHAIN_ID:
            problems += _public_role_holders(deployment)
        duties = duty_addresses(deployment)
        served: dict[str, list[Duty]] = defaultdict(list)
        for duty in duties:
            served[duty.address].append(duty)
        try:
            keys = _key_source(settings, chain_id)
        except SigningKeyError as no_keys:
            problems.append(str(no_keys))
            served.clear()
        accounts = {}
        for address, its_duties in served.items():
            name = deployment.name_of(address) or address
            where = ", ".join(f"{d.city} {d.duty}" for d in its_duties)
            try:
                account = keys.signer(address, name)
            except KeyLoadError as error:
                problems.append(f"{where}: {error}")
                continue
            if account is None:
                problems.append(f"{where}: no key for {name} ({address}) in {keys.description}")
                continue
            accounts[address] = account
        if problems:
            raise SigningKeyError(
                f"the backend cannot sign for its duties on chain id {chain_id} "
                f"({len(problems)} problem(s)):\n  " + "\n  ".join(problems)
            )
        return cls(duties, accounts)

    def of(self, city: str, duty: str) -> LocalAccount:
        """The key of `duty` in `city` (the first of a pool)."""
        return self.pool(city, duty)[0]

    def pool(self, city: str, duty: str) -> list[LocalAccount]:
        """Every key of `duty` in `city`: one, or the relayer's pool."""
        addresses = self._pools.get((city, duty))
        if not addresses:
            raise SigningKeyError(f"the backend holds no {duty} key for city {city}")
        return [self._accounts[address] for address in addresses]

    def account(self, duty: str, address: str) -> LocalAccount:
        """The key of `address`, which must hold `duty` in a served city."""
        if (duty, address) not in self._holders:
            raise SigningKeyError(
                f"{address} is not a {duty} of the cities this backend serves "
                f"({', '.join(sorted({c for c, _ in self._pools}))})"
            )
        return self._accounts[address]
