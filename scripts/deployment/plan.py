"""Brings a chain to what the configuration says, sending only what differs.

The run reads the manifest and the chain, checks that every recorded contract still has the
recorded code, then plans the transactions in seven steps (each step's transactions are
independent of each other and depend only on earlier steps):

1. create the directory and each new city's token
2. create the new cities' treasuries (they take the token's address)
3. create the new cities' registries (token and treasury)
4. create the new cities' money classes (CityPrograms), gifts (CityGifts) and cashback
   (CityCashback)
5. link new suites (the token to its registry, treasury and programs; the programs to the
   gifts and the treasury to the cashback, once); grant the roles the configuration names;
   apply changed policy values and the incentive mode
6. give new issuers their allowance; register new cities in the directory
7. set each city's custody account and bank key in the directory (the city admin, once the city
   is listed); remove issuers and revoke roles the configuration no longer names; the deployer
   renounces every role it does not keep

Nothing is sent until the whole plan is built and every key it needs is unlocked: an invalid
configuration, a wrong key or password, a chain that does not match the manifest send nothing.
Only the keys the plan's steps sign with are decrypted: a policy change needs the city admin's
key and password, not the deployer's, which only creating contracts (and its roles) needs.
A run with nothing to change sends nothing.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

from citypay.chain.keystore import KeySource
from citypay.reserve.statement import custody_account_hash
from eth_account.signers.local import LocalAccount
from eth_utils import keccak, to_checksum_address
from web3 import Web3

from scripts.city_suite import INCENTIVE_MODES, SUITE_ROLES
from scripts.deployment import DeploymentError
from scripts.deployment.artifacts import Artifacts
from scripts.deployment.config import CityConfig, PlatformConfig
from scripts.deployment.manifest import (
    SUITE,
    CityRecord,
    ContractRecord,
    Manifest,
    save_manifest,
)
from scripts.deployment.rpc import RevertDecoder, Sender, Transaction, code_hash, require_cancun

DEFAULT_ADMIN_ROLE = "DEFAULT_ADMIN_ROLE"
ISSUER_ADMIN_ROLE = "ISSUER_ADMIN_ROLE"
ISSUER_ROLE = "ISSUER_ROLE"
DIRECTORY_ADMIN_ROLE = "DIRECTORY_ADMIN_ROLE"
ARTIFACT_OF = {
    "directory": "CityDirectory",
    "token": "CityToken",
    "treasury": "CityTreasury",
    "registry": "CityRegistry",
    "programs": "CityPrograms",
    "gifts": "CityGifts",
    "cashback": "CityCashback",
}
STEPS = (
    "create the directory and tokens",
    "create treasuries",
    "create registries",
    "create money classes, gifts and cashback",
    "link suites, grant roles, apply policy",
    "configure issuers, register cities",
    "revoke roles, renounce the deployer's",
)


def role_id(role: str) -> bytes:
    return b"\0" * 32 if role == DEFAULT_ADMIN_ROLE else keccak(text=role)


ROLE_NAMES = {
    role_id(name): name
    for name in (
        DEFAULT_ADMIN_ROLE,
        ISSUER_ADMIN_ROLE,
        ISSUER_ROLE,
        DIRECTORY_ADMIN_ROLE,
        "REGISTRAR_ROLE",
        "COMPLIANCE_ROLE",
        "PAUSER_ROLE",
        "SETTLER_ROLE",
        "RELAYER_ROLE",
        "PROGRAM_MANAGER_ROLE",
        "PROGRAM_FUNDER_ROLE",
        "PROGRAM_PAYER_ROLE",
        "CASHBACK_PAYER_ROLE",
    )
}


@dataclass(frozen=True)
class Ref:
    """A contract of the platform: ('', 'directory') or (city code, 'token' | ...)."""

    city: str
    kind: str

    def __str__(self) -> str:
        return self.kind if not self.city else f"{self.city}.{self.kind}"


DIRECTORY = Ref("", "directory")


@dataclass
class Step:
    label: str
    sender: str
    target: Ref
    function: str | None  # None: create `target`
    args: tuple = ()


@dataclass
class Plan:
    steps: list[list[Step]] = field(default_factory=lambda: [[] for _ in STEPS])

    def add(self, step_number: int, step: Step) -> None:
        self.steps[step_number - 1].append(step)

    @property
    def size(self) -> int:
        return sum(len(steps) for steps in self.steps)

    def creates(self) -> bool:
        return any(step.function is None for steps in self.steps[:4] for step in steps)


def role_holders(w3: Web3, address: str, abi: list[dict], from_block: int) -> dict[str, set[str]]:
    """Who holds each role, from the contract's RoleGranted and RoleRevoked events."""
    contract = w3.eth.contract(address=address, abi=abi)
    events = [
        *contract.events.RoleGranted.get_logs(from_block=from_block),
        *contract.events.RoleRevoked.get_logs(from_block=from_block),
    ]
    holders: dict[str, set[str]] = {}
    for event in sorted(events, key=lambda e: (e["blockNumber"], e["logIndex"])):
        role = ROLE_NAMES.get(event["args"]["role"], "0x" + event["args"]["role"].hex())
        members = holders.setdefault(role, set())
        if event["event"] == "RoleGranted":
            members.add(event["args"]["account"])
        else:
            members.discard(event["args"]["account"])
    return holders


def excluded_categories(w3: Web3, address: str, abi: list[dict], from_block: int) -> set[int]:
    """The categories a registry excludes, from its CategoryExclusionChanged events."""
    contract = w3.eth.contract(address=address, abi=abi)
    events = contract.events.CategoryExclusionChanged.get_logs(from_block=from_block)
    excluded: set[int] = set()
    for event in sorted(events, key=lambda e: (e["blockNumber"], e["logIndex"])):
        category = event["args"]["category"]
        if event["args"]["excluded"]:
            excluded.add(category)
        else:
            excluded.discard(category)
    return excluded


class Deployment:
    """One run: verify the manifest, plan, unlock the keys, send the steps, write the manifest."""

    def __init__(
        self,
        *,
        config: PlatformConfig,
        w3: Web3,
        artifacts: Artifacts,
        keys: KeySource,
        manifest: Manifest | None,
        manifest_path: Path,
        network: str,
        gas_price: int,
        log: Callable[[str], None],
    ):
        self.config = config
        self.w3 = w3
        self.artifacts = artifacts
        self.keys = keys
        self.manifest_path = manifest_path
        self.log = log
        self.chain_id = w3.eth.chain_id
        self.deployer = config.address(config.deployer)
        self.manifest = manifest or Manifest(
            chain_id=self.chain_id, network=network, deployer=self.deployer
        )
        self.decoder = RevertDecoder(a.abi for a in artifacts.contracts.values())
        self.sender = Sender(w3, self.decoder, gas_price, log)
        # Planning state: addresses known so far, and role holders as they will be after step 5.
        self.address: dict[Ref, str] = {}
        self.new: set[Ref] = set()
        self.holders: dict[tuple[Ref, str], set[str]] = {}
        self.granted: dict[tuple[Ref, str], set[str]] = {}
        self._listed: list | None = None  # the directory's entries, read once
        # What stops the plan (a key nobody has): all reported at once, before anything is sent.
        self.problems: list[str] = []

    # --- The run ------------------------------------------------------------------------------

    def run(self) -> Manifest:
        self.verify_manifest()
        plan = self.plan()
        if self.problems:
            raise DeploymentError(
                "cannot deploy, nothing was sent:\n  " + "\n  ".join(self.problems)
            )
        if plan.size == 0:
            self.log("deploy: the chain matches the configuration; nothing to send")
        else:
            signers = self.unlock(plan)
            if plan.creates():
                require_cancun(self.w3)
            self.execute(plan, signers)
        self.record_configuration()
        save_manifest(self.manifest, self.manifest_path)
        self.log(
            f"deploy: {self.sender.sent} transaction(s) sent; manifest {self.manifest_path} "
            f"lists {len(self.manifest.cities)} cities"
        )
        return self.manifest

    def verify_manifest(self) -> None:
        """Every recorded contract must still have its recorded code on this chain."""
        if not self.manifest.contracts():
            self.log(f"deploy: no contracts recorded in {self.manifest_path} yet")
            return
        for label, record in self.manifest.contracts().items():
            found = code_hash(self.w3, record.address)
            if found == record.code_hash:
                continue
            if found is None:
                raise DeploymentError(
                    f"manifest {self.manifest_path} records {label} at {record.address}, but the "
                    f"chain (id {self.chain_id}) has no code there: it was reset or is another "
                    "chain. For the embedded chain, `python -m scripts.chain reset` starts over "
                    "(it deletes the state and this manifest); nothing was sent"
                )
            raise DeploymentError(
                f"the code of {label} at {record.address} has hash {found}, the manifest "
                f"{self.manifest_path} records {record.code_hash}; refusing to continue"
            )
        self.log(f"deploy: {len(self.manifest.contracts())} recorded contract(s) match the chain")

    # --- Planning -----------------------------------------------------------------------------

    def plan(self) -> Plan:
        plan = Plan()
        config = self.config
        for code in self.manifest.cities.keys() - {city.code for city in config.cities}:
            self.log(f"deploy: {code} is in the manifest but not in the configuration: left as is")

        # The directory, then each city's suite: what exists, what must be created.
        if self.manifest.directory is None:
            self._create(plan, 1, DIRECTORY, (self.deployer,))
            self._created_holders(DIRECTORY, DEFAULT_ADMIN_ROLE, DIRECTORY_ADMIN_ROLE)
        else:
            self._existing(DIRECTORY, self.manifest.directory)
        for city in config.cities:
            self._plan_suite(plan, city)

        # Roles the configuration names that their holders lack, and the issuers' allowances.
        directory_admins = self._desired_admins(config.directory_admin)
        for role in (DEFAULT_ADMIN_ROLE, DIRECTORY_ADMIN_ROLE):
            self._grant(plan, DIRECTORY, role, directory_admins)
        for city in config.cities:
            self._plan_roles(plan, city)
            self._plan_listing(plan, city)
            self._plan_custody(plan, city)

        # Last, what nobody should hold any more: the deployer's roles go at the very end.
        for (ref, role), members in sorted(self._after_grants().items(), key=lambda i: str(i[0])):
            desired = self._desired(ref, role)
            if desired is None:
                continue
            for holder in sorted(members - desired - {self.deployer}):
                self._revoke(plan, ref, role, holder)
        for (ref, role), members in sorted(self._after_grants().items(), key=lambda i: str(i[0])):
            desired = self._desired(ref, role)
            if self.deployer in members and desired is not None and self.deployer not in desired:
                plan.add(
                    7,
                    Step(
                        f"{ref}: the deployer renounces {role}",
                        self.deployer,
                        ref,
                        "renounceRole",
                        (role_id(role), self.deployer),
                    ),
                )
        # The admin role goes last so that the deployer's other renounces never lack it.
        plan.steps[6].sort(
            key=lambda s: s.function == "renounceRole" and DEFAULT_ADMIN_ROLE in s.label
        )
        return plan

    def _plan_suite(self, plan: Plan, city: CityConfig) -> None:
        record = self.manifest.cities.get(city.code)
        recorded = record.contracts if record else {}
        suite = city.to_city()
        token, treasury, registry, programs, gifts, cashback = (
            Ref(city.code, kind) for kind in SUITE
        )
        for ref in (token, treasury, registry, programs, gifts, cashback):
            if ref.kind in recorded:
                self._existing(ref, recorded[ref.kind])
        if token.kind not in recorded:
            self._create(plan, 1, token, suite.token_args(self.deployer))
            self._created_holders(token, DEFAULT_ADMIN_ROLE)
        if treasury.kind not in recorded:
            self._create(plan, 2, treasury, suite.treasury_args(token, self.deployer))
            self._created_holders(treasury, DEFAULT_ADMIN_ROLE)
        if registry.kind not in recorded:
            self._create(plan, 3, registry, suite.registry_args(token, treasury, self.deployer))
            self._created_holders(registry, DEFAULT_ADMIN_ROLE)
        if programs.kind not in recorded:
            self._create(plan, 4, programs, suite.programs_args(token, registry, self.deployer))
            self._created_holders(programs, DEFAULT_ADMIN_ROLE)
        if gifts.kind not in recorded:
            self._create(plan, 4, gifts, suite.gifts_args(token, self.deployer))
            self._created_holders(gifts, DEFAULT_ADMIN_ROLE)
        if cashback.kind not in recorded:
            self._create(plan, 4, cashback, suite.cashback_args(token, self.deployer))
            self._created_holders(cashback, DEFAULT_ADMIN_ROLE)
        linked_gifts = None if programs in self.new else self._read(programs, "gifts")
        if linked_gifts is None or int(linked_gifts, 16) == 0:
            self._call(plan, 5, programs, DEFAULT_ADMIN_ROLE, "linkGifts", (gifts,))
        elif linked_gifts != self.address.get(gifts):
            raise DeploymentError(
                f"{programs} at {self.address[programs]} is linked to gifts {linked_gifts}, not "
                "to the manifest's: refusing to continue; nothing was sent"
            )

        if token not in self.new:
            self._check_fixed(city, "name", self._read(token, "name"), city.name)
            self._check_fixed(city, "symbol", self._read(token, "symbol"), city.symbol)
        linked = None if token in self.new else self._read(token, "registry")
        if linked is None or int(linked, 16) == 0:
            self._call(
                plan, 5, token, DEFAULT_ADMIN_ROLE, "linkSuite", (registry, treasury, programs)
            )
        elif (linked, self._read(token, "treasury")) != (
            self.address.get(registry),
            self.address.get(treasury),
        ):
            raise DeploymentError(
                f"{token} at {self.address[token]} is linked to registry {linked}, not to the "
                "manifest's registry and treasury: refusing to continue; nothing was sent"
            )
        mode_changes = self._plan_cashback(plan, city, treasury, cashback)
        if treasury not in self.new:
            self._plan_treasury_policy(plan, city, treasury, mode_changes)
        if registry not in self.new:
            self._plan_registry_policy(plan, city, registry)
        if gifts not in self.new:
            self._plan_gift_caps(plan, city, gifts)
        self._plan_classes_policy(plan, city, treasury, registry)
        if programs not in self.new:
            self._check_fixed(
                city,
                "policy.general_validity_days",
                self._read(programs, "generalValidity"),
                suite.policy.general_validity,
            )

    def _plan_cashback(self, plan: Plan, city: CityConfig, treasury: Ref, cashback: Ref) -> bool:
        """Creates and links the city's CityCashback, sets its rates (its budget when new) and
        the treasury's incentive mode; says whether the mode changes."""
        policy = city.to_city().policy
        linked = None if treasury in self.new else self._read(treasury, "cashback")
        if linked is None or int(linked, 16) == 0:
            self._call(plan, 5, treasury, DEFAULT_ADMIN_ROLE, "linkCashback", (cashback,))
        elif linked != self.address.get(cashback):
            raise DeploymentError(
                f"{treasury} at {self.address[treasury]} is linked to cashback {linked}, not to "
                "the manifest's: refusing to continue; nothing was sent"
            )
        wanted_terms = (list(policy.cashback_bands), list(policy.cashback_regions))
        now_terms = (
            ([], [])
            if cashback in self.new
            else (
                [tuple(b) for b in self._read(cashback, "bands")],
                [tuple(r) for r in self._read(cashback, "regionRates")],
            )
        )
        if now_terms != wanted_terms:
            label = f"setTerms(bands {wanted_terms[0]}, regions {wanted_terms[1]})"
            self._call(plan, 5, cashback, DEFAULT_ADMIN_ROLE, "setTerms", wanted_terms, label)
        if cashback in self.new and policy.cashback_budget:
            label = f"setBudget({policy.cashback_budget:,} KRW)"
            args = (policy.cashback_budget,)
            self._call(plan, 5, cashback, DEFAULT_ADMIN_ROLE, "setBudget", args, label)
        now_mode = 0 if treasury in self.new else self._read(treasury, "incentiveMode")
        wanted_mode = INCENTIVE_MODES[policy.incentive_mode]
        if now_mode != wanted_mode:
            label = f"setIncentiveMode({policy.incentive_mode})"
            args = (wanted_mode,)
            # Cashback needs the link, which a new suite makes in step 5.
            step = 6 if linked is None or int(linked, 16) == 0 else 5
            self._call(plan, step, treasury, DEFAULT_ADMIN_ROLE, "setIncentiveMode", args, label)
        return now_mode != wanted_mode

    def _plan_classes_policy(self, plan: Plan, city: CityConfig, treasury: Ref, registry: Ref):
        """The general revenue cap and the refund ratio: a new contract starts from its
        constructor's (the registration cap; 6,000 bps), an existing one from what it holds."""
        policy = city.to_city().policy
        general_cap = policy.general_revenue_cap or policy.merchant_revenue_cap
        for ref, getter, setter, start, wanted in (
            (
                registry,
                "generalRevenueCap",
                "setGeneralRevenueCap",
                policy.merchant_revenue_cap,
                general_cap,
            ),
            (
                treasury,
                "refundMinUsedBps",
                "setRefundMinUsedBps",
                6_000,
                policy.refund_min_used_bps,
            ),
        ):
            now = start if ref in self.new else self._read(ref, getter)
            if now != wanted:
                label = f"{setter}({wanted}) (was {now})"
                self._call(plan, 5, ref, DEFAULT_ADMIN_ROLE, setter, (wanted,), label)

    def _plan_gift_caps(self, plan: Plan, city: CityConfig, gifts: Ref) -> None:
        policy = city.to_city().policy
        now = (self._read(gifts, "monthlySendCap"), self._read(gifts, "monthlyReceiveCap"))
        wanted = (policy.gift_monthly_send_cap, policy.gift_monthly_receive_cap)
        if now != wanted:
            label = f"setMonthlyCaps{wanted} (was {now})"
            self._call(plan, 5, gifts, DEFAULT_ADMIN_ROLE, "setMonthlyCaps", wanted, label)

    def _plan_treasury_policy(
        self, plan: Plan, city: CityConfig, treasury: Ref, mode_changes: bool
    ) -> None:
        """The policy setters, in step 5; back to discount, the discount rate waits for the
        mode's change (step 5) until step 6: the treasury refuses a rate in cashback mode."""
        policy = city.to_city().policy
        self._check_fixed(
            city,
            "policy.fiscal_year_start_month",
            self._read(treasury, "fiscalYearStartMonth"),
            policy.fiscal_year_start_month,
        )
        on_chain = self._read(treasury, "policy")
        setters = (
            "setAnnualIssuanceCap",
            "setMonthlyPurchaseLimit",
            "setHoldingCap",
            "setIncentiveBps",
            "setMonthlyIncentiveLimit",
        )
        for setter, now, wanted in zip(setters, on_chain, policy.treasury_policy(), strict=True):
            if now != wanted:
                label = f"{setter}({wanted}) (was {now})"
                step = 6 if setter == "setIncentiveBps" and mode_changes else 5
                self._call(plan, step, treasury, DEFAULT_ADMIN_ROLE, setter, (wanted,), label)

    def _plan_registry_policy(self, plan: Plan, city: CityConfig, registry: Ref) -> None:
        policy = city.to_city().policy
        for getter, setter, wanted in (
            ("merchantRevenueCap", "setMerchantRevenueCap", policy.merchant_revenue_cap),
            ("banPeriod", "setBanPeriod", policy.ban_period),
            ("recoveryDelay", "setRecoveryDelay", policy.recovery_delay),
        ):
            now = self._read(registry, getter)
            if now != wanted:
                label = f"{setter}({wanted}) (was {now})"
                self._call(plan, 5, registry, DEFAULT_ADMIN_ROLE, setter, (wanted,), label)
        excluded = self._excluded_categories(registry)
        wanted_set = set(policy.excluded_categories)
        for category in sorted(excluded ^ wanted_set):
            exclude = category in wanted_set
            label = f"setCategoryExcluded({category}, {exclude})"
            self._call(
                plan,
                5,
                registry,
                DEFAULT_ADMIN_ROLE,
                "setCategoryExcluded",
                (category, exclude),
                label,
            )

    def _plan_roles(self, plan: Plan, city: CityConfig) -> None:
        roles = city.roles
        treasury = Ref(city.code, "treasury")
        # Issuers first: if nobody with a key will hold the issuer admin role in step 6, the
        # deployer takes it for the step and renounces it in step 7.
        issuers = {self.config.address(i.account): i.allowance for i in roles.issuers}
        current_issuers = self.holders.get((treasury, ISSUER_ROLE), set())
        new_issuers = {a: allowance for a, allowance in issuers.items() if a not in current_issuers}
        gone_issuers = current_issuers - issuers.keys()
        issuer_admin = None
        if new_issuers or gone_issuers:
            after = self.holders.get((treasury, ISSUER_ADMIN_ROLE), set()) | {
                self.config.address(roles.issuer_admin)
            }
            issuer_admin = self._pick_signer(after)
            if issuer_admin is None:
                self._grant(plan, treasury, ISSUER_ADMIN_ROLE, {self.deployer})
                issuer_admin = self.deployer

        for duty, grants in SUITE_ROLES.items():
            holders = {self.config.address(name) for name in roles.holders(duty)}
            for kind, role in grants:
                wanted = (
                    self._desired_admins(roles.city_admin)
                    if role == DEFAULT_ADMIN_ROLE
                    else holders
                )
                self._grant(plan, Ref(city.code, kind), role, wanted)
        for address, allowance in new_issuers.items():
            name = self.config.name_of(address)
            plan.add(
                6,
                Step(
                    f"{treasury}: configureIssuer({name}, {allowance:,} KRW)",
                    issuer_admin,
                    treasury,
                    "configureIssuer",
                    (address, allowance),
                ),
            )
            self.granted.setdefault((treasury, ISSUER_ROLE), set()).add(address)
        for address in sorted(gone_issuers):
            name = self.config.name_of(address) or address
            plan.add(
                7,
                Step(
                    f"{treasury}: removeIssuer({name})",
                    issuer_admin,
                    treasury,
                    "removeIssuer",
                    (address,),
                ),
            )

    def _plan_listing(self, plan: Plan, city: CityConfig) -> None:
        token, treasury, registry = (Ref(city.code, kind) for kind in SUITE[:3])
        if DIRECTORY not in self.new:
            self._is_listed(city.code)
            listed = [entry for entry in self._listed if entry[0] == city.code]
            if listed:
                expected = [self.address.get(ref) for ref in (token, registry, treasury)]
                if [to_checksum_address(a) for a in listed[0][2:5]] != expected:
                    raise DeploymentError(
                        f"the directory lists {city.code} with token {listed[0][2]}, registry "
                        f"{listed[0][3]}, treasury {listed[0][4]}, not the manifest's contracts: "
                        "refusing to continue (a city code is listed once, for good)"
                    )
                return
        signer = self._pick_signer(
            self._after_grants().get((DIRECTORY, DIRECTORY_ADMIN_ROLE), set())
        )
        if signer is None:
            self._missing_key(DIRECTORY, DIRECTORY_ADMIN_ROLE, f"registerCity({city.code})")
            return
        plan.add(
            6,
            Step(
                f"directory: registerCity({city.code}, {city.name})",
                signer,
                DIRECTORY,
                "registerCity",
                (city.code, city.name, token, registry, treasury),
            ),
        )

    def _plan_custody(self, plan: Plan, city: CityConfig) -> None:
        """The city's custody account and bank key in the directory, set by the city's admin
        once the city is listed (step 6): a step-7 call when the chain differs."""
        if city.custody is None:
            return
        account = custody_account_hash(city.custody.account)
        signer = self.config.address(city.custody.signer)
        if DIRECTORY not in self.new and self._is_listed(city.code):
            on_chain = self._contract(DIRECTORY).functions.custody(city.code).call()
            if (bytes(on_chain[0]), on_chain[1]) == (account, signer):
                return
        token = Ref(city.code, "token")
        admin = self._pick_signer(self._after_grants().get((token, DEFAULT_ADMIN_ROLE), set()))
        label = f"directory: setCustody({city.code}, {city.custody.account}, {city.custody.signer})"
        if admin is None:
            self._missing_key(token, DEFAULT_ADMIN_ROLE, label)
            return
        plan.add(7, Step(label, admin, DIRECTORY, "setCustody", (city.code, account, signer)))

    def _is_listed(self, code: str) -> bool:
        if self._listed is None:
            self._listed = self._contract(DIRECTORY).functions.cities().call()
        return any(entry[0] == code for entry in self._listed)

    # --- Planning helpers ---------------------------------------------------------------------

    def _create(self, plan: Plan, step: int, ref: Ref, args: tuple) -> None:
        self.new.add(ref)
        plan.add(
            step, Step(f"{ref}: create {ARTIFACT_OF[ref.kind]}", self.deployer, ref, None, args)
        )

    def _created_holders(self, ref: Ref, *roles: str) -> None:
        for role in roles:
            self.holders[(ref, role)] = {self.deployer}

    def _existing(self, ref: Ref, record: ContractRecord) -> None:
        self.address[ref] = record.address
        abi = self.artifacts.contracts[ARTIFACT_OF[ref.kind]].abi
        for role, members in role_holders(self.w3, record.address, abi, record.block).items():
            self.holders[(ref, role)] = members

    def _desired_admins(self, admin_name: str) -> set[str]:
        admins = {self.config.address(admin_name)}
        return admins | {self.deployer} if self.config.deployer_keeps_admin else admins

    def _desired(self, ref: Ref, role: str) -> set[str] | None:
        """Who the configuration says holds `role` on `ref`; None for roles it does not manage."""
        if ref == DIRECTORY:
            return self._desired_admins(self.config.directory_admin)
        if ref.city not in {c.code for c in self.config.cities}:
            return None
        roles = self.config.city(ref.city).roles
        if role == DEFAULT_ADMIN_ROLE:
            return self._desired_admins(roles.city_admin)
        if role == ISSUER_ROLE:
            return {self.config.address(i.account) for i in roles.issuers}
        for duty, grants in SUITE_ROLES.items():
            if (ref.kind, role) in grants:
                return {self.config.address(name) for name in roles.holders(duty)}
        return None

    def _after_grants(self) -> dict[tuple[Ref, str], set[str]]:
        keys = self.holders.keys() | self.granted.keys()
        return {k: self.holders.get(k, set()) | self.granted.get(k, set()) for k in keys}

    def _grant(self, plan: Plan, ref: Ref, role: str, wanted: set[str]) -> None:
        current = self.holders.get((ref, role), set()) | self.granted.get((ref, role), set())
        for account in sorted(wanted - current):
            signer = self._pick_signer(self.holders.get((ref, DEFAULT_ADMIN_ROLE), set()))
            name = self.config.name_of(account) or account
            if signer is None:
                self._missing_key(ref, DEFAULT_ADMIN_ROLE, f"grant {role} to {name}")
                continue
            plan.add(
                5,
                Step(
                    f"{ref}: grant {role} to {name}",
                    signer,
                    ref,
                    "grantRole",
                    (role_id(role), account),
                ),
            )
            self.granted.setdefault((ref, role), set()).add(account)

    def _revoke(self, plan: Plan, ref: Ref, role: str, holder: str) -> None:
        name = self.config.name_of(holder) or holder
        if role == ISSUER_ROLE:
            return  # removeIssuer, planned with the issuers (its admin is the issuer admin)
        admins = self._after_grants().get((ref, DEFAULT_ADMIN_ROLE), set())
        signer = self._pick_signer(admins - {holder}) or self._pick_signer(admins)
        if signer is None:
            self._missing_key(ref, DEFAULT_ADMIN_ROLE, f"revoke {role} from {name}")
            return
        plan.add(
            7,
            Step(
                f"{ref}: revoke {role} from {name}",
                signer,
                ref,
                "revokeRole",
                (role_id(role), holder),
            ),
        )

    def _call(
        self,
        plan: Plan,
        step: int,
        ref: Ref,
        role: str,
        function: str,
        args: tuple,
        label: str = "",
    ) -> None:
        signer = self._pick_signer(self.holders.get((ref, role), set()))
        if signer is None:
            self._missing_key(ref, role, label or function)
            return
        plan.add(step, Step(f"{ref}: {label or function}", signer, ref, function, args))

    def _pick_signer(self, holders: set[str]) -> str | None:
        """The deployer if it holds the role, else the first holder whose key is at hand."""
        if self.deployer in holders:
            return self.deployer
        ordered = [a for a in self.config.accounts.values() if a in holders]
        return next((a for a in ordered if self.keys.has(a)), None)

    def _missing_key(self, ref: Ref, role: str, action: str) -> None:
        holders = self._after_grants().get((ref, role), set()) or self.holders.get(
            (ref, role), set()
        )
        names = (
            ", ".join(f"{self.config.name_of(h) or '?'} ({h})" for h in sorted(holders)) or "nobody"
        )
        self.problems.append(
            f"{ref}: {action} needs the key of an account holding {role} ({names}); "
            f"none is in {self.keys.description}: add one of theirs"
        )

    def _check_fixed(self, city: CityConfig, key: str, on_chain, configured) -> None:
        if on_chain != configured:
            raise DeploymentError(
                f"cities[{city.code}].{key} = {configured!r}, but the deployed contract has "
                f"{on_chain!r}, fixed at deployment; keep {on_chain!r} (a new value needs a new "
                "city code); nothing was sent"
            )

    def _excluded_categories(self, registry: Ref) -> set[int]:
        record = self.manifest.cities[registry.city].contracts["registry"]
        abi = self.artifacts.contracts["CityRegistry"].abi
        return excluded_categories(self.w3, record.address, abi, record.block)

    def _contract(self, ref: Ref):
        abi = self.artifacts.contracts[ARTIFACT_OF[ref.kind]].abi
        return self.w3.eth.contract(address=self.address[ref], abi=abi)

    def _read(self, ref: Ref, function: str):
        return self._contract(ref).functions[function]().call()

    # --- Keys and execution -------------------------------------------------------------------

    def unlock(self, plan: Plan) -> dict[str, LocalAccount]:
        """Every key the plan signs with, unlocked before anything is sent, and only those: a
        policy change needs the city admin's key and password, not the deployer's."""
        signers = {}
        needed = {s.sender for steps in plan.steps for s in steps}
        for address in sorted(needed):
            name = self.config.name_of(address) or address
            account = self.keys.signer(address, name)
            if account is None:
                raise DeploymentError(
                    f"no key for {name} ({address}) in {self.keys.description}; nothing was sent"
                )
            if account.address != address:
                raise DeploymentError(
                    f"the key for {name} unlocks {account.address}, not {address}"
                )
            signers[address] = account
        return signers

    def execute(self, plan: Plan, signers: dict[str, LocalAccount]) -> None:
        self.log(f"deploy: {plan.size} transaction(s) in {sum(1 for s in plan.steps if s)} step(s)")
        for number, (title, steps) in enumerate(zip(STEPS, plan.steps, strict=True), start=1):
            if not steps:
                continue
            for step in steps:
                self.log(f"    {step.label}")
            transactions = [self._transaction(step, signers) for step in steps]
            receipts = self.sender.send_wave(f"step {number} ({title})", transactions)
            created = [
                (step, receipt)
                for step, receipt in zip(steps, receipts, strict=True)
                if step.function is None
            ]
            for step, receipt in created:
                self._record_creation(step.target, receipt)
            if created:
                save_manifest(self.manifest, self.manifest_path)

    def _transaction(self, step: Step, signers: dict[str, LocalAccount]) -> Transaction:
        artifact = self.artifacts.contracts[ARTIFACT_OF[step.target.kind]]
        args = tuple(self.address[a] if isinstance(a, Ref) else a for a in step.args)
        if step.function is None:
            contract = self.w3.eth.contract(abi=artifact.abi, bytecode=artifact.bytecode)
            data = contract.constructor(*args).data_in_transaction
            return Transaction(step.label, signers[step.sender], None, data)
        contract = self.w3.eth.contract(address=self.address[step.target], abi=artifact.abi)
        data = contract.encode_abi(step.function, args)
        return Transaction(step.label, signers[step.sender], self.address[step.target], data)

    def _record_creation(self, ref: Ref, receipt: dict) -> None:
        address = receipt["contractAddress"]
        self.address[ref] = address
        record = ContractRecord(
            address=address,
            block=receipt["blockNumber"],
            transaction="0x" + receipt["transactionHash"].hex().removeprefix("0x"),
            code_hash=code_hash(self.w3, address),
        )
        if ref == DIRECTORY:
            self.manifest.directory = record
            return
        city = self.config.city(ref.city)
        entry = self.manifest.cities.setdefault(
            ref.city, CityRecord(name=city.name, local_name=city.local_name, symbol=city.symbol)
        )
        entry.contracts[ref.kind] = record

    def record_configuration(self) -> None:
        """What the configuration says, now that the chain matches it."""
        config = self.config
        self.manifest.deployer = self.deployer
        self.manifest.accounts = dict(config.accounts)
        self.manifest.compiler = self.artifacts.compiler
        folder = self.manifest_path.parent
        self.manifest.abi = self.artifacts.write_abis(folder / "abi", relative_to=folder)
        for city in config.cities:
            entry = self.manifest.cities[city.code]
            entry.name, entry.local_name, entry.symbol = city.name, city.local_name, city.symbol
            roles = {duty: config.address(getattr(city.roles, duty)) for duty in SUITE_ROLES}
            roles["issuers"] = [config.address(i.account) for i in city.roles.issuers]
            # Every account that sends the city's payment batches, `relayer` first.
            roles["relayers"] = [config.address(name) for name in city.roles.holders("relayer")]
            entry.roles = roles
            entry.custody = (
                {
                    "account": city.custody.account,
                    "signer": config.address(city.custody.signer),
                }
                if city.custody
                else {}
            )
            policy = asdict(city.to_city().policy)
            policy["excluded_categories"] = list(policy["excluded_categories"])
            for rates in ("cashback_bands", "cashback_regions"):
                policy[rates] = [list(rate) for rate in policy[rates]]
            entry.policy = policy
