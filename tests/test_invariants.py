"""A city's invariants under random sequences of everything its people and staff do.

A hypothesis state machine drives one city (token, registry, treasury) through registrations (with
the merchant's signed payout account), payout-account changes, charges, plain / invoice / gasless /
batched / permit-and-transferFrom payments, merchant refunds (sent by the merchant or signed and
relayed), cash-outs (the merchant's own or signed, relayed and cancelled), their settlement or
return, resident refunds, freezes, suspensions, revocations (with the closing cash-out or refund,
and confiscation after illegal exchange), two-step wallet recoveries (proposed, executed after the
delay, withdrawn or objected to), every policy setter, staff losing and regaining roles, pauses,
month and fiscal-year turns and forbidden moves, while the reference model (tests/city_model.py)
says what each step must do. A step the model calls illegal must revert with an error that names one
of the reasons it is illegal (checked with an eth_call: a refused transaction changes nothing); a
legal step must go through and move exactly the tokens the model moves. After every step the chain
must agree with the model and:

- the balances of all wallets sum to the supply, and supply == issued - burned + returned, with
  every confiscation in burned;
- no Transfer of any transaction (batches included) goes from a resident to another holder's
  resident wallet (a recovery moves a holder's own balance);
- no resident buys more than the monthly limit; the city issues no more than its annual cap (the
  highest in force that month or fiscal year, as policy changes during a run);
- every redemption ends at most once: Pending -> Settled or Pending -> Returned, a confiscation
  Settled from the start;
- each wallet's current wallet and origin are the model's, no retired wallet holds money or is
  registered, and recoveries never form a cycle;
- a held or frozen wallet's balance changes only by its recovery or confiscation;
- every balance, account flag, registry record, payout account and nonce, permit nonce and
  allowance, payment record, tally, authorization state and redemption is the model's.

The policy is small (an annual cap of 1.5 million KRW, a holding cap of 600,000) so that a few
dozen steps reach every limit.
"""

from __future__ import annotations

import ast
import dataclasses
import datetime as dt
import functools
import inspect
import itertools
import textwrap
import time
from calendar import monthrange
from enum import IntEnum

import brownie
import pytest
import requests
from brownie import CityDirectory, CityRegistry, CityToken, CityTreasury, accounts, chain, web3
from brownie.exceptions import VirtualMachineError, decode_typed_error
from brownie.test import strategy
from city_model import (
    KST,
    MAX_BPS,
    MAX_RECOVERY_DELAY,
    MIN_RECOVERY_DELAY,
    UINT64_MAX,
    UINT256_MAX,
    ZERO_ADDRESS,
    ZERO_ID,
    City,
    Kind,
    NonceState,
    Outcome,
    Policy,
    RedemptionKind,
    RedemptionStatus,
    Status,
    Wallet,
    fiscal_year,
    month_index,
)
from citypay.authorization import (
    RECEIVE_WITH_AUTHORIZATION,
    TRANSFER_WITH_AUTHORIZATION,
    sign_authorization,
    sign_cancellation,
    sign_permit,
    sign_refund,
)
from citypay.cashout.authorization import (
    MAX_CASH_OUT_VALIDITY,
    sign_cash_out,
    sign_cash_out_cancellation,
    treasury_domain_for,
)
from citypay.registry_authorization import (
    registry_domain_for,
    sign_payout_account,
    sign_recovery_objection,
)
from citypay.reserve.statement import Statement, custody_account_hash
from eth_account import Account
from eth_utils import keccak, to_checksum_address
from hexbytes import HexBytes
from hypothesis import event
from hypothesis import strategies as st

from scripts.city_suite import GIMPO

# --- The city's policy in this machine: small, so that limits are reached ---------------------

ANNUAL_CAP = 1_500_000
MONTHLY_LIMIT = 500_000
HOLDING_CAP = 600_000
INCENTIVE_BPS = 1_000
MONTHLY_INCENTIVE_LIMIT = 30_000
MERCHANT_REVENUE_CAP = 1_200_000_000  # GIMPO's
BAN_PERIOD = 365 * 86_400  # GIMPO's
RECOVERY_DELAY = 3 * 86_400  # the registry's default
RESTAURANT = 5611
BAKERY = 4721
LARGE_MART = 4711  # excluded in GIMPO's policy
EXCLUDED = {4711, 4712, 5621, 9124}  # GIMPO's
REGIONS = (41570, 11110)

# The values each policy setter is tried with (out-of-range ones included).
POLICY_VALUES = {
    "annual_cap": (0, 500_000, ANNUAL_CAP, 3_000_000),
    "monthly_limit": (0, 100_000, MONTHLY_LIMIT, 1_000_000),
    "holding_cap": (0, 200_000, HOLDING_CAP, 2_000_000),
    "incentive_bps": (0, 500, INCENTIVE_BPS, MAX_BPS, MAX_BPS + 1),
    "monthly_incentive_limit": (0, 10_000, MONTHLY_INCENTIVE_LIMIT, 10**9),
    "revenue_cap": (0, 300_000_000, MERCHANT_REVENUE_CAP, UINT256_MAX),
    "excluded": ((RESTAURANT, True), (RESTAURANT, False), (LARGE_MART, False), (LARGE_MART, True)),
    "ban_period": (0, 3_600, BAN_PERIOD, UINT64_MAX),
    "refund_ratio": (5_999, 6_000, 7_000, 8_000, 8_001),
    "recovery_delay": (
        MIN_RECOVERY_DELAY - 1,
        MIN_RECOVERY_DELAY,
        RECOVERY_DELAY,
        MAX_RECOVERY_DELAY,
        MAX_RECOVERY_DELAY + 1,
    ),
}
POLICY_SETTERS = tuple(POLICY_VALUES)

# (category, annual revenue) of a merchant's application or yearly re-check.
APPLICATIONS = (
    (RESTAURANT, 300_000_000),
    (BAKERY, 300_000_000),
    (LARGE_MART, 300_000_000),
    (RESTAURANT, MERCHANT_REVENUE_CAP + 1),
    (RESTAURANT, UINT64_MAX),
)

CHARGE_AMOUNTS = (0, 1, 9_999, 50_000, 100_000, 200_000, 300_000, 500_000, 600_000)
ISSUER_ALLOWANCES = (0, 300_000, 1_000_000, 10_000_000)
INITIAL_ALLOWANCE = 2_000_000
INITIAL_CHARGE = 100_000
# Each resident has paid a merchant once: merchants have something to refund and cash out.
INITIAL_PAYMENT = 30_000
INITIAL_PAYMENTS = ((0, 4), (1, 5), (2, 6), (3, 4))

# Wallets 0-3 are residents and 4-6 merchants from the start; the others are newcomers and the
# replacements of recovered wallets (a recovered wallet is retired for good).
RESIDENT_WALLETS = 4
MERCHANT_WALLETS = 3
WALLETS = 16
# Payment ids and nonces: 0 is bytes32(0) (the plain-transfer id of refunds), 1-5 a few that
# payers and merchants use again and again, the others one never used before.
PAYMENT_IDS = 16
REUSED_IDS = 6
DURATIONS = (1_200, 2 * 3_600, 86_400, 4 * 86_400, 31 * 86_400)

# Who holds which role at the end of every step (a rule that takes one away gives it back): each
# holder its own, and compliance never the registrar's it is lent to try executing a recovery.
STAFF_ROLES = {
    ("token", "PAUSER_ROLE", "pauser"): True,
    ("token", "COMPLIANCE_ROLE", "compliance"): True,
    ("token", "RELAYER_ROLE", "relayer"): True,
    ("registry", "REGISTRAR_ROLE", "registrar"): True,
    ("registry", "COMPLIANCE_ROLE", "compliance"): True,
    ("registry", "REGISTRAR_ROLE", "compliance"): False,
    ("treasury", "SETTLER_ROLE", "settler"): True,
}

# Decisions that depend on the clock (a month's turn, a recovery's due time, a ban's end) are made
# at least this far from the moment they turn, so the block's timestamp falls on the same side.
CLOCK_MARGIN = 600
# The city's custody account and its bank's two statement keys (a change of bank key is a rule).
CITY_CODE = "gimpo"
CUSTODY_ACCOUNT = custody_account_hash("invariants:custody")
BANK_KEYS = tuple("0x" + keccak(text=f"invariants:bank:{i}").hex() for i in range(2))
FORGER_KEY = "0x" + keccak(text="invariants:forger").hex()

# Every transaction gets its own gas limit, so its hash is new even when an example repeats an
# earlier one's sender, nonce and data: anvil can lose track of a hash it mined before a revert.
GAS_LIMITS = itertools.count(50_000_000)

# 150 examples of up to 80 steps (12,000 steps; before: 40 of 35, 1,400): 176-319 s on the
# 2-core CI machine while other test runs shared it; 200 x 80 took 283-417 s.
SETTINGS = {"max_examples": 150, "stateful_step_count": 80}


class Flaw(IntEnum):
    """What is wrong with a signed EIP-3009 authorization or refund (0-7: nothing; in a batch,
    3 repeats the previous entry word for word)."""

    EXPIRED = 8
    NOT_YET_VALID = 9
    WRONG_SIGNER = 10
    TAMPERED_VALUE = 11


WINDOW_ERRORS = {
    Flaw.EXPIRED: "EIP3009AuthorizationExpired",
    Flaw.NOT_YET_VALID: "EIP3009AuthorizationNotYetValid",
}
UNSIGNED = (Flaw.WRONG_SIGNER, Flaw.TAMPERED_VALUE)


class SignatureFlaw(IntEnum):
    """What is wrong with a merchant's PayoutAccount signature (0-3: nothing)."""

    WRONG_SIGNER = 4
    EXPIRED = 5
    OTHER_ACCOUNT = 6
    EMPTY_ACCOUNT = 7
    STALE_NONCE = 8


class CashOutFlaw(IntEnum):
    """What is wrong with a merchant's signed cash-out (0-7: nothing)."""

    EXPIRED = 8
    NOT_YET_VALID = 9
    WINDOW_TOO_LONG = 10
    WRONG_SIGNER = 11
    TAMPERED_AMOUNT = 12


CASH_OUT_WINDOW_ERRORS = {
    CashOutFlaw.EXPIRED: "CityTreasuryAuthorizationExpired",
    CashOutFlaw.NOT_YET_VALID: "CityTreasuryAuthorizationNotYetValid",
    CashOutFlaw.WINDOW_TOO_LONG: "CityTreasuryAuthorizationWindowTooLong",
}


class PermitFlaw(IntEnum):
    """How an allowance is given (0-2: a valid permit)."""

    APPROVE = 3
    EXPIRED = 4
    WRONG_SIGNER = 5
    STALE_NONCE = 6
    UNLIMITED = 7


# --- Pure helpers -----------------------------------------------------------------------------


@functools.cache
def identity_hash(address: str) -> bytes:
    return keccak(text=f"identity:{address}")


@functools.cache
def business_hash(address: str) -> bytes:
    return keccak(text=f"business:{address}")


@functools.cache
def account_hash(address: str) -> bytes:
    return keccak(text=f"bank-account:{address}")


def initial_deposit(index: int) -> bytes:
    return keccak(text=f"deposit:initial:{index}")


def payment_id(index: int) -> bytes:
    return ZERO_ID if index == 0 else keccak(text=f"payment-id:{index}")


def role_id(name: str) -> bytes:
    return ZERO_ID if name == "DEFAULT_ADMIN_ROLE" else keccak(text=name)


def next_month_landing(timestamp: int, landing: int) -> int:
    """A time in the next KST month: 00:30 on the 1st, noon on the 15th, or 23:30 on its last day.

    Each lands at least 30 minutes from a month boundary, so the next transactions' month is known.
    """
    local = dt.datetime.fromtimestamp(timestamp, KST)
    year, month = (local.year + 1, 1) if local.month == 12 else (local.year, local.month + 1)
    start = dt.datetime(year, month, 1, tzinfo=KST)
    offsets = (
        dt.timedelta(minutes=30),
        dt.timedelta(days=14, hours=12),
        dt.timedelta(days=monthrange(year, month)[1] - 1, hours=23, minutes=30),
    )
    return int((start + offsets[landing]).timestamp())


def month_starts_around(timestamp: int) -> tuple[int, int]:
    """The starts of the KST month `timestamp` falls in and of the next one."""
    local = dt.datetime.fromtimestamp(timestamp, KST)
    start = dt.datetime(local.year, local.month, 1, tzinfo=KST)
    year, month = (local.year + 1, 1) if local.month == 12 else (local.year, local.month + 1)
    return int(start.timestamp()), int(dt.datetime(year, month, 1, tzinfo=KST).timestamp())


def error_name(revert_msg: str | None) -> str:
    """Brownie renders a custom error as 'Name: arg1, arg2'."""
    return (revert_msg or "").split(":")[0]


def hex_bytes(value) -> bytes:
    return bytes(HexBytes(value))


@functools.cache
def _checksum(word: bytes) -> str:
    return to_checksum_address(word[12:])


def _leaf_decoder(abi_type: str):
    """A decoder of one 32-byte word of a static ABI type."""
    if abi_type == "address":
        return _checksum
    if abi_type == "bool":
        return lambda word: word[31] == 1
    if abi_type == "bytes32":
        return bytes
    assert abi_type.startswith("uint"), abi_type
    return lambda word: int.from_bytes(word, "big")


def _static_decoder(outputs: list[dict]):
    """A decoder of a function's result whose outputs are all static (words and structs of
    words), as every view the invariants read is: eth_abi's general decoder cost more than the
    chain's answer."""

    def part(output: dict):
        if output["type"] == "tuple":
            members = [part(component) for component in output["components"]]
            return lambda words: tuple(member(words) for member in members)
        leaf = _leaf_decoder(output["type"])
        return lambda words: leaf(next(words))

    parts = [part(output) for output in outputs]

    def decode(data: bytes):
        words = iter([data[i : i + 32] for i in range(0, len(data), 32)])
        values = tuple(p(words) for p in parts)
        return values[0] if len(values) == 1 else values

    return decode


class ChainReader:
    """Many eth_calls in one JSON-RPC batch, so every step can check every value.

    Call data is encoded once per (contract, function, arguments): a step reads a few hundred
    values."""

    def __init__(self):
        self._session = requests.Session()
        self._session.trust_env = False  # no proxy look-up for every batch
        self._url = web3.provider.endpoint_uri
        self._encoded: dict[tuple, tuple] = {}
        self._decoders: dict[tuple, object] = {}

    def _request(self, call: tuple) -> tuple:
        contract, name, *args = call
        key = (contract.address, name, *args)
        if key not in self._encoded:
            method = getattr(contract, name)
            if (contract.address, name) not in self._decoders:
                self._decoders[(contract.address, name)] = _static_decoder(method.abi["outputs"])
            decoder = self._decoders[(contract.address, name)]
            self._encoded[key] = (contract.address, method.encode_input(*args), decoder)
        return self._encoded[key]

    def refusal(self, method, args: tuple, sender) -> str | None:
        """What `method(*args)` sent by `sender` reverts with now (as Brownie renders a custom
        error), or None when it would go through: one eth_call, without web3's middlewares."""
        function = method._get_fn_from_args(args) if hasattr(method, "methods") else method
        call = {"from": str(sender), "to": function._address, "data": function.encode_input(*args)}
        response = self._session.post(
            self._url,
            json={"jsonrpc": "2.0", "id": 0, "method": "eth_call", "params": [call, "latest"]},
        ).json()
        if "error" not in response:
            return None
        return decode_typed_error(response["error"].get("data") or "0x")

    def read(self, calls: list[tuple]) -> tuple[list, int]:
        """`calls` are (contract, function name, *args): their results in order, and the
        timestamp of the block they were read at."""
        requests_ = [self._request(call) for call in calls]
        payload = [
            {
                "jsonrpc": "2.0",
                "id": i,
                "method": "eth_call",
                "params": [{"to": to, "data": data}, "latest"],
            }
            for i, (to, data, _) in enumerate(requests_)
        ]
        payload.append(
            {
                "jsonrpc": "2.0",
                "id": len(requests_),
                "method": "eth_getBlockByNumber",
                "params": ["latest", False],
            }
        )
        responses = {r["id"]: r for r in self._session.post(self._url, json=payload).json()}
        results = [
            decode(bytes.fromhex(responses[i]["result"][2:]))
            for i, (_, _, decode) in enumerate(requests_)
        ]
        return results, int(responses[len(requests_)]["result"]["timestamp"], 16)


# --- The state machine ------------------------------------------------------------------------


class CityMachine:
    st_any = strategy("uint8", max_value=WALLETS - 1)
    st_party = strategy("uint8")
    st_pct = strategy("uint8", max_value=120)
    st_size = strategy("uint8", max_value=len(CHARGE_AMOUNTS) - 1)
    st_reference = strategy("uint8", max_value=9)
    st_payment_id = strategy("uint8", max_value=PAYMENT_IDS - 1)
    st_flaw = strategy("uint8", max_value=max(Flaw))
    st_signature_flaw = strategy("uint8", max_value=8)
    st_cash_out_flaw = strategy("uint8", max_value=max(CashOutFlaw))
    st_permit_flaw = strategy("uint8", max_value=7)
    st_mode = strategy("uint8", max_value=4)
    st_way = strategy("uint8", max_value=4)
    st_choice = strategy("uint8")
    st_flag = strategy("uint8", max_value=7)
    st_variant = strategy("uint8", max_value=len(APPLICATIONS) - 1)
    st_landing = strategy("uint8", max_value=2)
    st_duration = strategy("uint8", max_value=len(DURATIONS) - 1)
    st_allowance = strategy("uint8", max_value=len(ISSUER_ALLOWANCES) - 1)
    st_setter = strategy("uint8", max_value=len(POLICY_SETTERS) - 1)
    st_role = strategy("uint8", max_value=7)
    st_forbidden = strategy("uint8")
    st_interlude = strategy("uint8", max_value=19)
    st_batch = st.lists(
        st.tuples(st_party, st_party, st_pct, st_payment_id, st_flaw), min_size=1, max_size=4
    )

    def __init__(cls, suite, roles: dict, domain):
        """Runs once: the city's policy, its residents (charged) and merchants, then a snapshot."""
        cls.token, cls.registry, cls.treasury = suite.token, suite.registry, suite.treasury
        cls.roles = roles
        cls.domain = domain
        name = suite.token.name()
        cls.registry_domain = registry_domain_for(name, chain.id, suite.registry.address)
        cls.treasury_domain = treasury_domain_for(name, chain.id, suite.treasury.address)
        cls.reader = ChainReader()
        cls.accounts = [
            accounts.add(keccak(text=f"city-token-invariants:{i}")) for i in range(WALLETS)
        ]
        cls.account_of = {account.address: account for account in cls.accounts}
        cls.addresses = [account.address for account in cls.accounts]
        # Start in the middle of a month: a run takes minutes of the wall clock, far from a turn.
        now = web3.eth.get_block("latest")["timestamp"]
        chain.sleep(next_month_landing(now, 1) - now)
        chain.mine()
        cls.start = web3.eth.get_block("latest")["timestamp"]
        admin = {"from": roles["city_admin"]}
        cls.treasury.setAnnualIssuanceCap(ANNUAL_CAP, admin)
        cls.treasury.setMonthlyPurchaseLimit(MONTHLY_LIMIT, admin)
        cls.treasury.setHoldingCap(HOLDING_CAP, admin)
        cls.treasury.setIncentiveBps(INCENTIVE_BPS, admin)
        cls.treasury.setMonthlyIncentiveLimit(MONTHLY_INCENTIVE_LIMIT, admin)
        # General money everywhere: merchants above a revenue cap are the classes machine's.
        cls.registry.setGeneralRevenueCap(UINT256_MAX, admin)
        cls.treasury.configureIssuer(
            roles["issuer"], INITIAL_ALLOWANCE, {"from": roles["issuer_admin"]}
        )
        registrar = {"from": roles["registrar"]}
        for index in range(RESIDENT_WALLETS):
            address = cls.addresses[index]
            cls.registry.registerResident(address, identity_hash(address), REGIONS[0], registrar)
            cls.treasury.issue(
                address, INITIAL_CHARGE, initial_deposit(index), {"from": roles["issuer"]}
            )
        for account in cls.accounts[RESIDENT_WALLETS : RESIDENT_WALLETS + MERCHANT_WALLETS]:
            deadline = cls.start + 3_600
            signature = sign_payout_account(
                account.private_key,
                cls.registry_domain,
                payout_account_hash=account_hash(account.address),
                deadline=deadline,
            )
            application = (
                business_hash(account.address),
                account_hash(account.address),
                *APPLICATIONS[0][::-1],
                REGIONS[0],
            )
            cls.registry.registerMerchant(
                account.address, application, deadline, signature, registrar
            )
        for payer, merchant in INITIAL_PAYMENTS:
            cls.token.transfer(
                cls.addresses[merchant], INITIAL_PAYMENT, {"from": cls.accounts[payer]}
            )
        # The directory lists the city; its admin names the custody account and the bank's key,
        # and the registrar is a directory admin (the role a rule churns).
        cls.directory = CityDirectory.deploy(roles["city_admin"], admin)
        cls.directory.registerCity(
            CITY_CODE, "Gimpo Pay", cls.token, cls.registry, cls.treasury, admin
        )
        cls.directory.setCustody(
            CITY_CODE, CUSTODY_ACCOUNT, Account.from_key(BANK_KEYS[0]).address, admin
        )
        cls.directory.grantRole(role_id("DIRECTORY_ADMIN_ROLE"), roles["registrar"], admin)

    def setup(self):
        """The model of the snapshot taken after __init__, built by the model's own operations."""
        policy = Policy(
            ANNUAL_CAP,
            MONTHLY_LIMIT,
            HOLDING_CAP,
            INCENTIVE_BPS,
            MONTHLY_INCENTIVE_LIMIT,
            MERCHANT_REVENUE_CAP,
            BAN_PERIOD,
            RECOVERY_DELAY,
            set(EXCLUDED),
        )
        model = self.model = City(self.addresses, policy, INITIAL_ALLOWANCE, self.start)
        steps = []
        for index, address in enumerate(self.addresses[:RESIDENT_WALLETS]):
            steps.append(model.register_resident(address, identity_hash(address), REGIONS[0]))
            steps[-1].effect(self.start)
            steps.append(model.charge(address, INITIAL_CHARGE, initial_deposit(index), self.start))
            steps[-1].effect(self.start)
        for address in self.addresses[RESIDENT_WALLETS : RESIDENT_WALLETS + MERCHANT_WALLETS]:
            category, revenue = APPLICATIONS[0]
            steps.append(
                model.register_merchant(
                    address,
                    business_hash(address),
                    account_hash(address),
                    revenue,
                    category,
                    REGIONS[0],
                    signed=True,
                    expired=False,
                    now=self.start,
                )
            )
            steps[-1].effect(self.start)
        for payer, merchant in INITIAL_PAYMENTS:
            steps.append(
                model.transfer(self.addresses[payer], self.addresses[merchant], INITIAL_PAYMENT)
            )
            steps[-1].effect(self.start)
        assert not any(step.reasons for step in steps)
        model.transfers.clear()
        self.known_accounts = [account_hash(a) for a in self.addresses[RESIDENT_WALLETS:]]
        self.bank_key, self.last_statement = BANK_KEYS[0], 0
        self.deposit_counter = itertools.count(1)
        self.reference_counter = itertools.count(1)
        self.last_deposit = initial_deposit(0)
        self._mine()
        self.observed: list[tuple] = []
        self.step_observed: list[tuple] = []
        self.step_expected: list[tuple] = []
        self.snapshot: dict | None = None
        self.before: dict | None = None
        self.stale = True
        self.seen_status: dict[int, RedemptionStatus] = {}
        self.cap_peaks = {fiscal_year(self.start): ANNUAL_CAP}
        self.limit_peaks = {month_index(self.start): (MONTHLY_LIMIT, MONTHLY_INCENTIVE_LIMIT)}

    # --- Picking ------------------------------------------------------------------------------

    def _account(self, wallet: Wallet):
        return self.account_of[wallet.address]

    def _pick(self, choice: int, candidates: list[Wallet]) -> Wallet:
        """Mostly one of `candidates`, sometimes any wallet (so refusals come up too)."""
        if candidates and choice % 8:
            return candidates[(choice // 8) % len(candidates)]
        return self.model.wallet(self.addresses[choice % WALLETS])

    def _party(self, choice: int, kind: Kind) -> Wallet:
        """A wallet of `kind` (any status) mostly: residents pay, merchants are paid."""
        return self._pick(choice, [w for w in self.model.wallets.values() if w.kind == kind])

    def _registered(self, choice: int) -> Wallet:
        return self._pick(
            choice, [w for w in self.model.wallets.values() if w.status != Status.NONE]
        )

    def _pending_recovery(self, choice: int) -> Wallet:
        return self._pick(choice, [self.model.wallet(a) for a in sorted(self.model.recoveries)])

    def _next_wallet(self, wallet: Wallet) -> Wallet:
        index = self.addresses.index(wallet.address)
        return self.model.wallet(self.addresses[(index + 1) % WALLETS])

    def _payment_id(self, index: int) -> bytes:
        """An invoice id or authorization nonce: zero, a reused one, or a fresh one."""
        if index < REUSED_IDS:
            return payment_id(index)
        return keccak(text=f"payment-id:fresh:{next(self.reference_counter)}")

    def _cash_out_nonce(self, index: int) -> bytes:
        if index < REUSED_IDS:
            return keccak(text=f"cash-out-nonce:{index}")
        return keccak(text=f"cash-out-nonce:fresh:{next(self.reference_counter)}")

    def _value(self, wallet: Wallet, pct: int) -> int:
        """An amount relative to what the wallet holds; over 100% asks for more than it has."""
        return wallet.balance * pct // 100 if wallet.balance else pct * 1_000

    def _signing_key(self, signer: Wallet, wrong: bool):
        """The wallet's key, or the next wallet's when the signature must not be the signer's."""
        return self._account(self._next_wallet(signer) if wrong else signer).private_key

    # --- Sending ------------------------------------------------------------------------------

    def _send(self, label: str, outcome: Outcome, method, *args, sender):
        """Sends a transaction that must revert with one of the outcome's reasons, or go through
        when there is none; then applies the outcome's effect.

        A step the model refuses is run as a call, not mined: a refused transaction changes
        nothing, and the call tells the same error in a fifth of the time, so a run tries more
        steps. One the call lets through is an error all the same."""
        reasons = outcome.reasons
        if reasons:
            message = self.reader.refusal(method, args, sender)
            assert message is not None, (
                f"{label} goes through; the model expected one of {sorted(reasons)}"
            )
            assert error_name(message) in reasons, (
                f"{label} reverts with {message!r}; expected one of {sorted(reasons)}"
            )
            event(f"{label} refused: {error_name(message)}")
            return None
        self.stale = True
        now = self._now()
        try:
            tx = method(*args, {"from": sender, "gas_limit": next(GAS_LIMITS)})
        except VirtualMachineError as exc:
            raise AssertionError(
                f"{label} reverted with {exc.revert_msg!r}; the model expected success"
            ) from exc
        event(f"{label} went through")
        timestamp = tx.timestamp
        assert abs(timestamp - now) < CLOCK_MARGIN // 2, f"the clock is {timestamp - now} s off"
        self._anchor(timestamp)
        self.observed.extend(
            (label, e["from"], e["to"], e["value"])
            for e in tx.events
            if e.name == "Transfer" and e.address == self.token.address
        )
        outcome.effect(timestamp)
        return tx

    def _staff(self, label: str, method, *args, sender, reasons=frozenset()):
        """A call whose effect the model does not keep: a role taken and given back within one
        rule, or a call that must be refused with one of `reasons`."""
        return self._send(label, Outcome(set(reasons)), method, *args, sender=sender)

    # --- Time ---------------------------------------------------------------------------------

    def _anchor(self, timestamp: int) -> None:
        """Sets the chain's clock: the timestamp of a block mined just now."""
        self.clock = (timestamp, time.monotonic())

    def _now(self) -> int:
        """The time the next block will carry, as near as the test can know it: the chain's own
        clock (anvil's, which a revert to the snapshot sets back), not Brownie's."""
        timestamp, at = self.clock
        return timestamp + int(time.monotonic() - at)

    def _mine(self) -> None:
        web3.provider.make_request("evm_mine", [])
        self._anchor(web3.eth.get_block("latest")["timestamp"])
        self.stale = True

    def _boundaries(self, now: int) -> list[int]:
        """The moments near which a decision could fall on either side."""
        model = self.model
        return [
            *month_starts_around(now),
            *(recovery.executable_at for recovery in model.recoveries.values()),
            *(until for until in model.banned_until.values() if until < UINT64_MAX),
        ]

    def _sleep(self, seconds: int) -> None:
        """Moves the chain's clock `seconds` on, then further if it lands near a boundary."""
        target = self._now() + seconds
        while any(abs(target - b) < CLOCK_MARGIN for b in self._boundaries(target)):
            target += CLOCK_MARGIN
        web3.provider.make_request("evm_increaseTime", [target - self._now()])
        self._mine()

    def rule_next_month(self, landing="st_landing"):
        self._sleep(next_month_landing(self._now(), landing) - self._now())

    def rule_time_passes(self, duration="st_duration"):
        self._sleep(DURATIONS[duration])

    def rule_fiscal_year_turn(self, cap="st_choice", before="st_flag"):
        """The fiscal year turns (1 January, KST) with a new annual cap set just before or after."""
        year = dt.datetime.fromtimestamp(self._now(), KST).year
        new_year = int(dt.datetime(year + 1, 1, 1, tzinfo=KST).timestamp())
        if before % 2:
            # 23:30 on 31 December: the cap changes in the old year, with its issuance counted.
            self._sleep(max(0, new_year - 1_800 - self._now()))
            self._set_policy("annual_cap", cap)
            self._sleep(3_600)
        else:
            self._sleep(new_year + (1_800 if before % 4 else 14 * 86_400) - self._now())
            self._set_policy("annual_cap", cap)

    # --- Registration -------------------------------------------------------------------------

    def rule_register_resident(self, who="st_any", identity="st_any", own="st_flag"):
        """`own` 0 applies with another wallet's identity (in use, or freed by a revocation)."""
        address = self.addresses[who]
        identity_hash_ = identity_hash(self.addresses[who if own else identity])
        self._register_resident(address, identity_hash_)

    def _register_resident(self, address: str, identity: bytes) -> None:
        self._send(
            "registerResident",
            self.model.register_resident(address, identity, REGIONS[0]),
            self.registry.registerResident,
            address,
            identity,
            REGIONS[0],
            sender=self.roles["registrar"],
        )

    def _payout_signature(self, wallet: Wallet, payout_account: bytes, flaw: int):
        """The merchant's PayoutAccount signature with `flaw`: (deadline, signature, signed,
        expired)."""
        now = self._now()
        deadline = now - 60 if flaw == SignatureFlaw.EXPIRED else now + 3_600
        nonce = wallet.payout_nonce
        if flaw == SignatureFlaw.STALE_NONCE:
            nonce = nonce - 1 if nonce else nonce + 1
        signed_account = payout_account
        if flaw == SignatureFlaw.OTHER_ACCOUNT:
            signed_account = keccak(text="bank-account:somebody-else")
        signature = sign_payout_account(
            self._signing_key(wallet, flaw == SignatureFlaw.WRONG_SIGNER),
            self.registry_domain,
            payout_account_hash=signed_account,
            deadline=deadline,
            nonce=nonce,
            merchant=wallet.address,
        )
        signed = flaw not in (
            SignatureFlaw.WRONG_SIGNER,
            SignatureFlaw.OTHER_ACCOUNT,
            SignatureFlaw.STALE_NONCE,
        )
        return deadline, signature, signed, flaw == SignatureFlaw.EXPIRED

    def rule_register_merchant(
        self,
        who="st_any",
        business="st_any",
        own="st_flag",
        variant="st_variant",
        flaw="st_signature_flaw",
    ):
        """`own` 0 applies with another wallet's business id (in use, freed, or banned)."""
        wallet = self.model.wallet(self.addresses[who])
        business_id = business_hash(self.addresses[who if own else business])
        category, revenue = APPLICATIONS[variant]
        empty = flaw == SignatureFlaw.EMPTY_ACCOUNT
        payout_account = ZERO_ID if empty else account_hash(wallet.address)
        deadline, signature, signed, expired = self._payout_signature(wallet, payout_account, flaw)
        outcome = self.model.register_merchant(
            wallet.address,
            business_id,
            payout_account,
            revenue,
            category,
            REGIONS[0],
            signed=signed,
            expired=expired,
            now=self._now(),
        )
        self._send(
            "registerMerchant",
            outcome,
            self.registry.registerMerchant,
            wallet.address,
            (business_id, payout_account, revenue, category, REGIONS[0]),
            deadline,
            signature,
            sender=self.roles["registrar"],
        )

    def rule_update_merchant(self, who="st_party", variant="st_variant", region="st_flag"):
        wallet = self._party(who, Kind.MERCHANT)
        category, revenue = APPLICATIONS[variant]
        self._send(
            "updateMerchant",
            self.model.update_merchant(wallet.address, category, REGIONS[region % 2], revenue),
            self.registry.updateMerchant,
            wallet.address,
            category,
            REGIONS[region % 2],
            revenue,
            sender=self.roles["registrar"],
        )

    def rule_change_payout_account(self, who="st_party", flaw="st_signature_flaw"):
        """The registrar relays the merchant's signed change; older cash-outs then mismatch."""
        wallet = self._party(who, Kind.MERCHANT)
        new_account = keccak(text=f"bank-account:{wallet.address}:{next(self.reference_counter)}")
        if flaw == SignatureFlaw.EMPTY_ACCOUNT:
            new_account = ZERO_ID
        deadline, signature, signed, expired = self._payout_signature(wallet, new_account, flaw)
        if self._send(
            "changePayoutAccount",
            self.model.change_payout_account(
                wallet.address, new_account, signed=signed, expired=expired
            ),
            self.registry.changePayoutAccount,
            wallet.address,
            new_account,
            deadline,
            signature,
            sender=self.roles["registrar"],
        ):
            self.known_accounts.append(new_account)

    # --- Charging (충전) -----------------------------------------------------------------------

    def _charge(self, wallet: Wallet, amount: int, reference_choice: int) -> None:
        """Reference choices: 0 reuses an issued deposit reference, 1 is empty, others fresh."""
        if reference_choice == 0:
            reference = self.last_deposit
        elif reference_choice == 1:
            reference = ZERO_ID
        else:
            reference = keccak(text=f"deposit:{next(self.deposit_counter)}")
        if self._send(
            "charge",
            self.model.charge(wallet.address, amount, reference, self._now()),
            self.treasury.issue,
            wallet.address,
            amount,
            reference,
            sender=self.roles["issuer"],
        ):
            self.last_deposit = reference

    def rule_charge(self, who="st_party", size="st_size", reference="st_reference"):
        self._charge(self._party(who, Kind.RESIDENT), CHARGE_AMOUNTS[size], reference)

    def rule_configure_issuer(self, allowance="st_allowance"):
        """Also gives back the issuer role removeIssuer took."""
        self._send(
            "configureIssuer",
            self.model.configure_issuer(ISSUER_ALLOWANCES[allowance]),
            self.treasury.configureIssuer,
            self.roles["issuer"],
            ISSUER_ALLOWANCES[allowance],
            sender=self.roles["issuer_admin"],
        )

    def rule_remove_issuer(self):
        self._send(
            "removeIssuer",
            self.model.remove_issuer(),
            self.treasury.removeIssuer,
            self.roles["issuer"],
            sender=self.roles["issuer_admin"],
        )

    # --- Payments -----------------------------------------------------------------------------

    def _plain_transfer(self, payer: Wallet, payee: Wallet, pct: int) -> None:
        value = self._value(payer, pct)
        self._send(
            "transfer",
            self.model.transfer(payer.address, payee.address, value),
            self.token.transfer,
            payee.address,
            value,
            sender=self._account(payer),
        )

    def _spender(self, choice: int, payee: Wallet):
        """Who pulls an allowance: the relayer, or the merchant paid."""
        return self.roles["relayer"] if choice % 2 == 0 else self._account(payee)

    def _transfer_from(self, payer: Wallet, payee: Wallet, pct: int, spender_choice: int):
        """An ERC-20 transferFrom by a spender the payer allowed: a payment like any other."""
        spender = self._spender(spender_choice, payee)
        value = self._value(payer, pct)
        self._send(
            "transferFrom",
            self.model.transfer(payer.address, payee.address, value, spender=spender.address),
            self.token.transferFrom,
            payer.address,
            payee.address,
            value,
            sender=spender,
        )

    def rule_transfer_from(
        self, payer="st_party", payee="st_party", pct="st_pct", spender="st_flag"
    ):
        """Mostly a spender that was allowed pulls a payment to itself or for a merchant."""
        model = self.model
        allowed = sorted(key for key, amount in model.allowances.items() if amount)
        if allowed and spender % 4:
            owner, pulling = allowed[payer % len(allowed)]
            merchant = model.wallets.get(pulling) or self._party(payee, Kind.MERCHANT)
            spender_account = self.account_of.get(pulling, self.roles["relayer"])
            value = self._value(model.wallet(owner), pct)
            self._send(
                "transferFrom",
                model.transfer(owner, merchant.address, value, spender=spender_account.address),
                self.token.transferFrom,
                owner,
                merchant.address,
                value,
                sender=spender_account,
            )
            return
        self._transfer_from(
            self._party(payer, Kind.RESIDENT), self._party(payee, Kind.MERCHANT), pct, spender
        )

    def rule_permit(
        self, owner="st_party", payee="st_party", pct="st_pct", flaw="st_permit_flaw", who="st_flag"
    ):
        """The payer allows a spender (relayer or merchant): an EIP-2612 permit relayed, with
        `flaw`, or its own approve."""
        wallet, merchant = self._party(owner, Kind.RESIDENT), self._party(payee, Kind.MERCHANT)
        spender = self._spender(who, merchant).address
        value = UINT256_MAX if flaw == PermitFlaw.UNLIMITED else self._value(wallet, pct)
        if flaw == PermitFlaw.APPROVE:
            self._send(
                "approve",
                self.model.approve(wallet.address, spender, value),
                self.token.approve,
                spender,
                value,
                sender=self._account(wallet),
            )
            return
        now = self._now()
        deadline = now - 60 if flaw == PermitFlaw.EXPIRED else now + 3_600
        nonce = wallet.permit_nonce
        if flaw == PermitFlaw.STALE_NONCE:
            nonce = nonce - 1 if nonce else nonce + 1
        v, r, s = sign_permit(
            self._signing_key(wallet, flaw == PermitFlaw.WRONG_SIGNER),
            self.domain,
            spender=spender,
            value=value,
            nonce=nonce,
            deadline=deadline,
        )
        refusal = set()
        if flaw == PermitFlaw.EXPIRED:
            refusal.add("ERC2612ExpiredSignature")
        if flaw in (PermitFlaw.WRONG_SIGNER, PermitFlaw.STALE_NONCE):
            refusal.add("ERC2612InvalidSigner")
        self._send(
            "permit",
            self.model.approve(wallet.address, spender, value, permit=refusal),
            self.token.permit,
            wallet.address,
            spender,
            value,
            deadline,
            v,
            r,
            s,
            sender=self.roles["relayer"],
        )

    def _invoice_pay(self, payer: Wallet, payee: Wallet, pct: int, id_index: int) -> None:
        value, invoice = self._value(payer, pct), self._payment_id(id_index)
        self._send(
            "pay",
            self.model.pay(payer.address, payee.address, value, invoice),
            self.token.pay,
            payee.address,
            value,
            invoice,
            sender=self._account(payer),
        )

    @staticmethod
    def _window(flaw: int, now: int) -> tuple[int, int]:
        """(validAfter, validBefore) of an authorization signed now with `flaw`."""
        if flaw == Flaw.EXPIRED:
            return 0, now - 60
        if flaw == Flaw.NOT_YET_VALID:
            return now + 3_600, now + 7_200
        return 0, now + 3_600

    def _sign(self, payer: Wallet, payee: Wallet, value: int, nonce: bytes, flaw: int, **kwargs):
        """An authorization from `payer` with `flaw`: its arguments (from .. nonce), its (v, r, s),
        and the model's outcome with whether a batch refusing it voids its nonce."""
        valid_after, valid_before = self._window(flaw, self._now())
        signed = sign_authorization(
            self._signing_key(payer, flaw == Flaw.WRONG_SIGNER),
            self.domain,
            to=payee.address,
            value=value,
            valid_after=valid_after,
            valid_before=valid_before,
            nonce=nonce,
            **kwargs,
        )
        submitted = value + 1 if flaw == Flaw.TAMPERED_VALUE else value
        arguments = (payer.address, payee.address, submitted, valid_after, valid_before, nonce)
        return arguments, (signed.v, signed.r, signed.s), (WINDOW_ERRORS.get(flaw), flaw)

    def _authorization_outcome(self, arguments: tuple, terms: tuple):
        window, flaw = terms
        payer, payee, value, _, _, nonce = arguments
        return self.model.authorized_payment(
            payer, payee, value, nonce, window=window, signed=flaw not in UNSIGNED
        )

    def _gasless_pay(self, payer, payee, pct: int, id_index: int, flaw: int, mode: int) -> None:
        """Modes: 0 transferWithAuthorization (v, r, s), 1 the same with a bytes signature,
        2 receiveWithAuthorization by the merchant, 3 the same by a relayer, 4 the merchant's
        receiveWithAuthorization with a bytes signature."""
        receive = mode >= 2
        arguments, (v, r, s), terms = self._sign(
            payer,
            payee,
            self._value(payer, pct),
            self._payment_id(id_index),
            flaw,
            primary_type=RECEIVE_WITH_AUTHORIZATION if receive else TRANSFER_WITH_AUTHORIZATION,
        )
        outcome, _ = self._authorization_outcome(arguments, terms)
        if mode == 3:
            outcome.reasons.add("EIP3009CallerMustBePayee")
        method = (
            self.token.receiveWithAuthorization if receive else self.token.transferWithAuthorization
        )
        signature = (r + s + bytes([v]),) if mode in (1, 4) else (v, r, s)
        label = ("transfer", "transfer", "receive", "receive", "receive")[mode]
        sender = self._account(payee) if mode in (2, 4) else self.roles["relayer"]
        self._send(
            f"{label}WithAuthorization", outcome, method, *arguments, *signature, sender=sender
        )

    def _relay_batch(self, items: list[tuple[Wallet, Wallet, int, int, int]]) -> None:
        """Relays a batch of (payer, payee, pct, payment id, flaw); flaw 3 repeats the previous
        authorization word for word. Entries settle in order, each seeing what the earlier ones
        left; a refused one is voided when its signature is its payer's."""
        batch, entries = [], []
        for payer, payee, pct, id_index, flaw in items:
            if flaw == 3 and batch:
                batch.append(batch[-1])
                terms = entries[-1][2]
            else:
                arguments, signature, terms = self._sign(
                    payer, payee, self._value(payer, pct), self._payment_id(id_index), flaw
                )
                batch.append(arguments + signature)
            outcome, voids = self._authorization_outcome(batch[-1][:6], terms)
            entries.append((outcome.reasons, voids, terms))
            if not outcome.reasons:
                outcome.effect(self._now())
            elif voids:
                self.model.void(batch[-1][0], batch[-1][5])
        tx = self._send(
            "transferWithAuthorizationBatch",
            Outcome(set()),
            self.token.transferWithAuthorizationBatch,
            batch,
            sender=self.roles["relayer"],
        )

        def logged(name: str) -> list[tuple]:
            return [(e["authorizer"], hex_bytes(e["nonce"])) for e in tx.events if e.name == name]

        expected_used = [(a[0], a[5]) for a, (r, _, _) in zip(batch, entries, strict=True) if not r]
        assert logged("AuthorizationUsed") == expected_used
        expected_voided = [
            (a[0], a[5]) for a, (r, v, _) in zip(batch, entries, strict=True) if r and v
        ]
        assert logged("AuthorizationVoided") == expected_voided
        failed = [e for e in tx.events if e.name == "AuthorizationFailed"]
        expected_failed = [(a, r) for a, (r, _, _) in zip(batch, entries, strict=True) if r]
        assert len(failed) == len(expected_failed), (
            f"batch failures {[f.values() for f in failed]}, expected {expected_failed}"
        )
        for failure, (authorization, reasons) in zip(failed, expected_failed, strict=True):
            assert (failure["authorizer"], hex_bytes(failure["nonce"])) == (
                authorization[0],
                authorization[5],
            )
            message = decode_typed_error("0x" + hex_bytes(failure["reason"]).hex())
            assert error_name(message) in reasons, (
                f"batch item failed with {message!r}; expected one of {sorted(reasons)}"
            )
            event(f"batch item refused: {error_name(message)}")

    def _pay(self, payer: Wallet, payee: Wallet, pct: int, way: int, id_index: int, flaw=0, mode=0):
        """Ways: 0 plain ERC-20 transfer, 1 invoice, 2 EIP-3009 authorization, 3 a batch of one,
        4 transferFrom by a spender the payer allowed."""
        if way == 0:
            self._plain_transfer(payer, payee, pct)
        elif way == 1:
            self._invoice_pay(payer, payee, pct, id_index)
        elif way == 2:
            self._gasless_pay(payer, payee, pct, id_index, flaw, mode)
        elif way == 3:
            self._relay_batch([(payer, payee, pct, id_index, flaw)])
        else:
            self._transfer_from(payer, payee, pct, mode)

    def rule_pay(
        self,
        payer="st_party",
        payee="st_party",
        pct="st_pct",
        way="st_way",
        payment="st_payment_id",
        flaw="st_flaw",
        mode="st_mode",
    ):
        self._pay(
            self._party(payer, Kind.RESIDENT),
            self._party(payee, Kind.MERCHANT),
            pct,
            way,
            payment,
            flaw,
            mode,
        )

    def rule_relay_batch(self, items="st_batch"):
        self._relay_batch(
            [
                (self._party(p, Kind.RESIDENT), self._party(q, Kind.MERCHANT), *rest)
                for p, q, *rest in items
            ]
        )

    def rule_resident_pays_resident(
        self,
        payer="st_party",
        other="st_party",
        pct="st_pct",
        way="st_way",
        payment="st_payment_id",
    ):
        """상품권깡's resale channel: refused between residents whatever the way."""
        payer_wallet = self._party(payer, Kind.RESIDENT)
        payee = self._party(other, Kind.RESIDENT)
        if payee is payer_wallet:
            payee = self._next_wallet(payer_wallet)
        self._pay(payer_wallet, payee, pct, way, payment)

    def rule_merchant_pays_resident(
        self,
        merchant="st_party",
        resident="st_party",
        pct="st_pct",
        way="st_way",
        payment="st_payment_id",
    ):
        """Money goes back to a resident only as the refund of a payment."""
        merchant_wallet = self._party(merchant, Kind.MERCHANT)
        self._pay(merchant_wallet, self._party(resident, Kind.RESIDENT), pct, way, payment)

    def _cancel_authorization(self, authorizer: Wallet, nonce: bytes, forged: bool, packed: bool):
        signature = sign_cancellation(self._signing_key(authorizer, forged), self.domain, nonce)
        arguments = (signature,) if packed else (signature[64], signature[:32], signature[32:64])
        self._send(
            "cancelAuthorization",
            self.model.cancel_authorization(authorizer.address, nonce, signed=not forged),
            self.token.cancelAuthorization,
            authorizer.address,
            nonce,
            *arguments,
            sender=self.roles["relayer"],
        )

    def rule_cancel_authorization(
        self, who="st_party", nonce="st_payment_id", forged="st_flag", packed="st_flag"
    ):
        """A payer withdraws an authorization, or a merchant a signed refund (the same nonces)."""
        authorizer = self._party(who, Kind.MERCHANT if who % 3 == 0 else Kind.RESIDENT)
        self._cancel_authorization(
            authorizer, self._payment_id(nonce), forged == 0, packed % 2 == 0
        )

    # --- Merchant refunds ---------------------------------------------------------------------

    def _refund_terms(self, choice: int, pct: int, variant: int):
        """One of the payments made so far (a made-up one when there is none), who refunds it,
        to whom and how much: (payer named, refunding merchant, payment id, value).

        Variants: 0 the wallet after the merchant refunds; 1 the merchant's first wallet refunds
        (retired if it was recovered); 2 the payer is named by its current wallet; others as the
        payment recorded them, refunded by the merchant's current wallet."""
        model = self.model
        made = sorted(
            [(payer, merchant, ZERO_ID) for payer, merchant in model.plain_payments]
            + [
                (payer, record.payee, pid)
                for (payer, pid), record in model.records.items()
                if record.state == NonceState.USED
            ]
        )
        outstanding = [m for m in made if model.refundable(m[0], model.current_wallet(m[1]), m[2])]
        if outstanding and choice % 4:
            payer, payee, pid = outstanding[(choice // 4) % len(outstanding)]
        elif made:
            payer, payee, pid = made[choice % len(made)]
        else:
            payer = self.addresses[choice % WALLETS]
            payee = self.addresses[(choice + RESIDENT_WALLETS) % WALLETS]
            pid = payment_id(choice % REUSED_IDS)
        merchant = model.wallet(model.current_wallet(payee))
        if variant == 0:
            merchant = self._next_wallet(merchant)
        elif variant == 1:
            merchant = model.wallet(payee)
        elif variant == 2:
            payer = model.current_wallet(payer)
        refundable = model.refundable(payer, merchant.address, pid)
        value = refundable * pct // 100 if refundable else pct
        return payer, merchant, pid, value

    def _refund(self, choice: int, pct: int, variant: int) -> None:
        payer, merchant, pid, value = self._refund_terms(choice, pct, variant)
        self._send(
            "refund",
            self.model.refund(merchant.address, payer, pid, value, self._now()),
            self.token.refund,
            payer,
            pid,
            value,
            sender=self._account(merchant),
        )

    def rule_refund(self, choice="st_choice", pct="st_pct", variant="st_flag"):
        self._refund(choice, pct, variant)

    def _relayed_refund(self, choice: int, pct: int, variant: int, nonce: bytes, flaw: int):
        """The same refund signed by the merchant (with `flaw`) and sent by the relayer; its
        nonce is one of the merchant's, in the space payers' nonces live in."""
        payer, merchant, pid, value = self._refund_terms(choice, pct, variant)
        now = self._now()
        valid_after, valid_before = self._window(flaw, now)
        signed = sign_refund(
            self._signing_key(merchant, flaw == Flaw.WRONG_SIGNER),
            self.domain,
            payer=payer,
            payment_id=pid,
            value=value,
            valid_after=valid_after,
            valid_before=valid_before,
            nonce=nonce,
            merchant=merchant.address,
        )
        arguments = signed.as_args()
        if flaw == Flaw.TAMPERED_VALUE:
            value += 1
            arguments = (*arguments[:4], value, *arguments[5:])
        outcome = self.model.signed_refund(
            merchant.address,
            payer,
            pid,
            value,
            nonce,
            window=WINDOW_ERRORS.get(flaw),
            signed=flaw not in UNSIGNED,
            now=now,
        )
        self._send(
            "refundWithAuthorization",
            outcome,
            self.token.refundWithAuthorization,
            *arguments,
            sender=self.roles["relayer"],
        )

    def rule_relayed_refund(
        self,
        choice="st_choice",
        pct="st_pct",
        variant="st_flag",
        nonce="st_payment_id",
        flaw="st_flaw",
    ):
        self._relayed_refund(choice, pct, variant, self._payment_id(nonce), flaw)

    # --- Cash-out (환전), resident refund (환불), settlement -------------------------------------

    def _cash_out(self, wallet: Wallet, pct: int) -> None:
        amount = self._value(wallet, pct)
        self._send(
            "cashOut",
            self.model.cash_out(wallet.address, amount),
            self.treasury.cashOut,
            amount,
            sender=self._account(wallet),
        )

    def rule_cash_out(self, who="st_party", pct="st_pct"):
        """A merchant's own cash-out: a revoked one's is its closing cash-out."""
        self._cash_out(self._party(who, Kind.MERCHANT), pct)

    def _signed_cash_out(self, wallet: Wallet, pct: int, nonce: bytes, flaw: int, account: int):
        """The settler relays the merchant's signed cash-out. `account` 0 signs another payout
        account than the registry's (an old one of the city's, or one never registered)."""
        amount = self._value(wallet, pct)
        signed_account = wallet.payout_account
        if account == 0:
            others = [a for a in self.known_accounts if a != signed_account]
            signed_account = others[pct % len(others)] if pct % 3 else keccak(text="elsewhere")
        now = self._now()
        valid_after, valid_before = {
            CashOutFlaw.EXPIRED: (now - 7_200, now - 60),
            CashOutFlaw.NOT_YET_VALID: (now + 3_600, now + 7_200),
            CashOutFlaw.WINDOW_TOO_LONG: (now - 60, now - 59 + MAX_CASH_OUT_VALIDITY),
        }.get(flaw, (now - 60, now + 3_600))
        signature = sign_cash_out(
            self._signing_key(wallet, flaw == CashOutFlaw.WRONG_SIGNER),
            self.treasury_domain,
            amount=amount,
            payout_account_hash=signed_account,
            valid_before=valid_before,
            valid_after=valid_after,
            nonce=nonce,
            merchant=wallet.address,
        )
        submitted = amount + 1 if flaw == CashOutFlaw.TAMPERED_AMOUNT else amount
        outcome = self.model.signed_cash_out(
            wallet.address,
            submitted,
            signed_account,
            nonce,
            window=CASH_OUT_WINDOW_ERRORS.get(flaw),
            signed=flaw not in (CashOutFlaw.WRONG_SIGNER, CashOutFlaw.TAMPERED_AMOUNT),
        )
        self._send(
            "cashOutWithAuthorization",
            outcome,
            self.treasury.cashOutWithAuthorization,
            wallet.address,
            submitted,
            signed_account,
            valid_after,
            valid_before,
            nonce,
            signature,
            sender=self.roles["settler"],
        )

    def rule_signed_cash_out(
        self,
        who="st_party",
        pct="st_pct",
        nonce="st_payment_id",
        flaw="st_cash_out_flaw",
        account="st_flag",
    ):
        self._signed_cash_out(
            self._party(who, Kind.MERCHANT), pct, self._cash_out_nonce(nonce), flaw, account
        )

    def rule_cancel_cash_out(self, who="st_party", nonce="st_payment_id", forged="st_flag"):
        """The merchant withdraws a signed cash-out; anyone may send its cancellation."""
        wallet, nonce_ = self._party(who, Kind.MERCHANT), self._cash_out_nonce(nonce)
        signature = sign_cash_out_cancellation(
            self._signing_key(wallet, forged == 0),
            self.treasury_domain,
            nonce=nonce_,
            merchant=wallet.address,
        )
        self._send(
            "cancelCashOutAuthorization",
            self.model.cancel_cash_out(wallet.address, nonce_, signed=forged != 0),
            self.treasury.cancelCashOutAuthorization,
            wallet.address,
            nonce_,
            signature,
            sender=self.roles["relayer"],
        )

    def _request_resident_refund(self, wallet: Wallet, empty: bool) -> None:
        payout_account = ZERO_ID if empty else account_hash(wallet.address)
        self._send(
            "requestResidentRefund",
            self.model.resident_refund(wallet.address, payout_account, self._now()),
            self.treasury.requestResidentRefund,
            payout_account,
            sender=self._account(wallet),
        )

    def rule_request_resident_refund(self, who="st_party", empty="st_flag"):
        """A resident's refund; a revoked one's is its closing refund, whatever it used."""
        self._request_resident_refund(self._party(who, Kind.RESIDENT), empty == 0)

    def _redemption_terms(self, choice: int, terms: int, amount: str) -> tuple[int, str, int]:
        """The redemption a settlement or return closes: its id, and the account and amount
        (`amount`: "payout" or "burned") the call names. Mostly a pending one, named rightly;
        else any, closed ones and one past the last included. `terms` 0 names the account's
        current wallet (another after a recovery), 1 an amount one won off."""
        redemptions = self.model.redemptions
        pending = [i for i, r in enumerate(redemptions) if r.status == RedemptionStatus.PENDING]
        if pending and choice % 4:
            redemption_id = pending[(choice // 4) % len(pending)]
        else:
            redemption_id = choice % (len(redemptions) + 1)
        if redemption_id == len(redemptions):
            return redemption_id, ZERO_ADDRESS, 0
        redemption = redemptions[redemption_id]
        account, value = redemption.account, getattr(redemption, amount)
        if terms == 0:
            account = self.model.current_wallet(account)
        elif terms == 1:
            value += 1
        return redemption_id, account, value

    def _settle(self, choice: int, reference_choice: int, terms: int = 7) -> None:
        """References: 0 empty, 1 one that settled another redemption, others fresh."""
        redemption_id, account, payout = self._redemption_terms(choice, terms, "payout")
        used = sorted(self.model.bank_references)
        if reference_choice == 0:
            reference = ZERO_ID
        elif reference_choice == 1 and used:
            reference = used[choice % len(used)]
        else:
            reference = keccak(text=f"bank:{next(self.reference_counter)}")
        self._send(
            "settle",
            self.model.settle(redemption_id, account, payout, reference),
            self.treasury.settle,
            redemption_id,
            account,
            payout,
            reference,
            sender=self.roles["settler"],
        )

    def rule_settle(self, choice="st_choice", reference="st_flag", terms="st_flag"):
        self._settle(choice, reference, terms)

    def _return(self, choice: int, terms: int = 7) -> None:
        """The bank transfer of a redemption failed: its tokens go back."""
        redemption_id, account, burned = self._redemption_terms(choice, terms, "burned")
        reason = keccak(text=f"bank-failure:{next(self.reference_counter)}")
        self._send(
            "returnRedemption",
            self.model.return_redemption(redemption_id, account, burned, reason, self._now()),
            self.treasury.returnRedemption,
            redemption_id,
            account,
            burned,
            reason,
            sender=self.roles["settler"],
        )

    def rule_return(self, choice="st_choice", terms="st_flag"):
        self._return(choice, terms)

    # --- Compliance and the registrar ---------------------------------------------------------

    def _toggle_freeze(self, wallet: Wallet) -> None:
        method = self.token.unfreeze if wallet.frozen else self.token.freeze
        self._send(
            method.abi["name"],
            self.model.set_frozen(wallet.address, not wallet.frozen),
            method,
            wallet.address,
            sender=self.roles["compliance"],
        )

    def rule_sweep(self, who="st_any", sender="st_any"):
        """Anyone sweeps an account's expired money: there is none in this city."""
        address = self.addresses[who]
        self._send(
            "sweep",
            self.model.sweep(address),
            self.token.sweep,
            address,
            sender=self.accounts[sender],
        )

    def rule_refresh_general_exclusion(self, who="st_any", sender="st_any"):
        address = self.addresses[who]
        self._send(
            "refresh general exclusion",
            self.model.refresh_general_exclusion(address),
            self.registry.refreshGeneralExclusion,
            address,
            sender=self.accounts[sender],
        )

    def rule_toggle_freeze(self, who="st_party", unfreeze="st_flag"):
        """Freezes or unfreezes any wallet; `unfreeze` odd lifts one of the freezes in place."""
        frozen = [w for w in self.model.wallets.values() if w.frozen]
        if frozen and unfreeze % 2:
            self._toggle_freeze(frozen[who % len(frozen)])
        else:
            self._toggle_freeze(self.model.wallet(self.addresses[who % WALLETS]))

    def _change_status(self, choice: int, method, expected: Status, next_status: Status):
        wallet = self._pick(
            choice, [w for w in self.model.wallets.values() if w.status == expected]
        )
        self._send(
            method.abi["name"],
            self.model.change_status(wallet.address, expected, next_status),
            method,
            wallet.address,
            sender=self.roles["registrar"],
        )

    def rule_suspend(self, who="st_party"):
        self._change_status(who, self.registry.suspend, Status.ACTIVE, Status.SUSPENDED)

    def rule_activate(self, who="st_party"):
        self._change_status(who, self.registry.activate, Status.SUSPENDED, Status.ACTIVE)

    def rule_revoke(self, who="st_party", illegal="st_flag"):
        """Revoked for good: with its balance kept for its closing redemption, or, after illegal
        exchange (상품권깡), for confiscation (a merchant's business id banned)."""
        wallet = self._registered(who)
        self._send(
            "revoke",
            self.model.revoke(wallet.address, illegal % 2 == 0),
            self.registry.revoke,
            wallet.address,
            illegal % 2 == 0,
            sender=self.roles["registrar"],
        )

    def _confiscate(self, choice: int) -> None:
        wallet = self._pick(choice, [w for w in self.model.wallets.values() if w.illegal_exchange])
        reason = keccak(text=f"confiscation:{next(self.reference_counter)}")
        self._send(
            "confiscate",
            self.model.confiscate(wallet.address, reason),
            self.registry.confiscate,
            wallet.address,
            reason,
            sender=self.roles["compliance"],
        )

    def rule_confiscate(self, who="st_party"):
        self._confiscate(who)

    # --- Wallet recovery ----------------------------------------------------------------------

    def _propose_recovery(self, lost_choice: int, replacement_choice: int, fresh: bool) -> None:
        """Compliance names a replacement: with `fresh`, a wallet nobody holds or was named for;
        else any wallet (registered, retired, frozen, or named in another recovery)."""
        model = self.model
        lost = self._registered(lost_choice)
        named = {recovery.replacement for recovery in model.recoveries.values()}
        candidates = [
            w
            for w in model.wallets.values()
            if w.status == Status.NONE and not (w.retired or w.frozen or w.address in named)
        ]
        if fresh and candidates:
            replacement = candidates[replacement_choice % len(candidates)].address
        else:
            replacement = self.addresses[replacement_choice % WALLETS]
        compliance = self.roles["compliance"]
        self._send(
            "proposeRecovery",
            model.propose_recovery(lost.address, replacement, compliance.address),
            self.registry.proposeRecovery,
            lost.address,
            replacement,
            sender=compliance,
        )

    def rule_propose_recovery(self, lost="st_party", replacement="st_choice", fresh="st_flag"):
        self._propose_recovery(lost, replacement, fresh != 0)

    def _execute_recovery(self, choice: int, wait: bool) -> None:
        """The registrar executes a pending recovery (`wait`: once it is due)."""
        lost = self._pending_recovery(choice)
        recovery = self.model.recoveries.get(lost.address)
        if wait and recovery and recovery.executable_at > self._now():
            self._sleep(recovery.executable_at - self._now() + CLOCK_MARGIN)
        registrar = self.roles["registrar"]
        self._send(
            "executeRecovery",
            self.model.execute_recovery(lost.address, registrar.address, self._now()),
            self.registry.executeRecovery,
            lost.address,
            sender=registrar,
        )

    def rule_execute_recovery(self, lost="st_party", wait="st_flag"):
        self._execute_recovery(lost, wait % 4 != 0)

    def rule_cancel_recovery(self, lost="st_party"):
        wallet = self._pending_recovery(lost)
        self._send(
            "cancelRecovery",
            self.model.end_recovery(wallet.address),
            self.registry.cancelRecovery,
            wallet.address,
            sender=self.roles["compliance"],
        )

    def _object_to_recovery(self, choice: int, way: int) -> None:
        """The holder refuses the recovery of its wallet. Ways: 0-1 sent by the wallet itself;
        2-3 relayed with its RecoveryObjection signature; 4 signed by another key; 5 signed for
        an older proposal; 6 signed for another replacement; 7 relayed without a signature."""
        lost = self._pending_recovery(choice)
        recovery = self.model.recoveries.get(lost.address)
        replacement = recovery.replacement if recovery else ZERO_ADDRESS
        proposed_at = recovery.proposed_at if recovery else 0
        if way == 5:
            proposed_at -= 1
        if way == 6 and recovery:
            replacement = self.addresses[(self.addresses.index(replacement) + 1) % WALLETS]
        signature = sign_recovery_objection(
            self._signing_key(lost, way == 4),
            self.registry_domain,
            replacement=replacement,
            proposed_at=max(proposed_at, 0),
            wallet=lost.address,
        )
        if way < 2:
            sender, signature = self._account(lost), b""
        else:
            sender = self.roles["relayer"]
        if way == 7:
            signature = b""
        self._send(
            "objectToRecovery",
            self.model.end_recovery(lost.address, objection=True, refused=way >= 4),
            self.registry.objectToRecovery,
            lost.address,
            signature,
            sender=sender,
        )

    def rule_object_to_recovery(self, lost="st_party", way="st_flag"):
        self._object_to_recovery(lost, way)

    def rule_proposer_tries_to_execute(self, lost="st_party", renounce="st_flag"):
        """Compliance, given the registrar's role too, still cannot execute what it proposed."""
        compliance, admin = self.roles["compliance"], self.roles["city_admin"]
        registrar_role = role_id("REGISTRAR_ROLE")
        self._staff("grantRole", self.registry.grantRole, registrar_role, compliance, sender=admin)
        wallet = self._pending_recovery(lost)
        if renounce % 2 == 0 and wallet.address in self.model.recoveries:
            self._sleep(
                max(0, self.model.recoveries[wallet.address].executable_at - self._now())
                + CLOCK_MARGIN
            )
        self._send(
            "executeRecovery by its proposer",
            self.model.execute_recovery(wallet.address, compliance.address, self._now()),
            self.registry.executeRecovery,
            wallet.address,
            sender=compliance,
        )
        if renounce < 4:
            self._staff(
                "renounceRole",
                self.registry.renounceRole,
                registrar_role,
                compliance,
                sender=compliance,
            )
        else:
            self._staff(
                "revokeRole", self.registry.revokeRole, registrar_role, compliance, sender=admin
            )

    # --- Staff and policy ---------------------------------------------------------------------

    def _set_paused(self, paused: bool) -> None:
        method = self.token.pause if paused else self.token.unpause
        self._send(
            method.abi["name"], self.model.set_paused(paused), method, sender=self.roles["pauser"]
        )

    def _set_policy(self, name: str, choice: int) -> None:
        value = POLICY_VALUES[name][choice % len(POLICY_VALUES[name])]
        setters = {
            "annual_cap": self.treasury.setAnnualIssuanceCap,
            "monthly_limit": self.treasury.setMonthlyPurchaseLimit,
            "holding_cap": self.treasury.setHoldingCap,
            "incentive_bps": self.treasury.setIncentiveBps,
            "monthly_incentive_limit": self.treasury.setMonthlyIncentiveLimit,
            "revenue_cap": self.registry.setMerchantRevenueCap,
            "excluded": self.registry.setCategoryExcluded,
            "ban_period": self.registry.setBanPeriod,
            "recovery_delay": self.registry.setRecoveryDelay,
            "refund_ratio": self.treasury.setRefundMinUsedBps,
        }
        policy, now = self.model.policy, self._now()
        before = (policy.annual_cap, policy.monthly_limit, policy.monthly_incentive_limit)
        arguments = value if name == "excluded" else (value,)
        if not self._send(
            f"set {name}",
            self.model.set_policy(name, value),
            setters[name],
            *arguments,
            sender=self.roles["city_admin"],
        ):
            return
        # The highest limits in force this fiscal year and this month, for the invariants.
        year, month = fiscal_year(now), month_index(now)
        self.cap_peaks[year] = max(self.cap_peaks.get(year, before[0]), policy.annual_cap)
        limit, incentive = self.limit_peaks.get(month, before[1:])
        self.limit_peaks[month] = (
            max(limit, policy.monthly_limit),
            max(incentive, policy.monthly_incentive_limit),
        )

    # --- Proof of reserve (the directory) -----------------------------------------------------

    def rule_attest_reserve(self, pct="st_pct", forged="st_flag", stale="st_flag", who="st_any"):
        """Anyone records the bank's statement of the custody account, short of the supply or
        not; one not signed by the city's bank key, or no newer than the last, is refused.
        Recording moves no token: the supply invariant checks it after the step."""
        as_of = self.last_statement if stale % 3 == 0 else self._now() - CLOCK_MARGIN
        supply = self.token.totalSupply()
        statement = Statement(CUSTODY_ACCOUNT, supply * pct // 100, as_of)
        reasons = set()
        if as_of <= self.last_statement:
            reasons.add("CityDirectoryStaleStatement")
        if forged % 2:
            reasons.add("CityDirectoryInvalidStatement")

        def effect(_timestamp: int) -> None:
            self.last_statement = as_of

        tx = self._send(
            "attestReserve",
            Outcome(reasons, effect),
            self.directory.attestReserve,
            CITY_CODE,
            statement.balance,
            as_of,
            statement.sign(FORGER_KEY if forged % 2 else self.bank_key),
            sender=self.accounts[who],
        )
        if tx is not None:
            recorded = tx.events["ReserveAttested"]
            assert (recorded["balance"], recorded["outstanding"]) == (statement.balance, supply)

    def rule_set_custody(self, key="st_flag", outsider="st_flag"):
        """The city admin changes the bank's statement key; anyone else is refused."""
        new_key = BANK_KEYS[key % 2]
        sender = self.accounts[0] if outsider % 4 == 0 else self.roles["city_admin"]
        reasons = {"CityDirectoryNotCityAdmin"} if sender != self.roles["city_admin"] else set()

        def effect(_timestamp: int) -> None:
            self.bank_key = new_key

        self._send(
            "setCustody",
            Outcome(reasons, effect),
            self.directory.setCustody,
            CITY_CODE,
            CUSTODY_ACCOUNT,
            Account.from_key(new_key).address,
            sender=sender,
        )

    def rule_set_policy(self, which="st_setter", value="st_choice"):
        """The city administrator changes one policy value during the run."""
        self._set_policy(POLICY_SETTERS[which], value)

    def rule_role_churn(self, which="st_role", renounce="st_flag"):
        """A holder loses its role (renounced, or revoked by the administrator), cannot act with
        it, and gets it back."""
        admin, roles = self.roles["city_admin"], self.roles
        wallet = self.addresses[renounce]
        contracts = {
            "token": (self.token.grantRole, self.token.revokeRole, self.token.renounceRole),
            "registry": (
                self.registry.grantRole,
                self.registry.revokeRole,
                self.registry.renounceRole,
            ),
            "treasury": (
                self.treasury.grantRole,
                self.treasury.revokeRole,
                self.treasury.renounceRole,
            ),
            "directory": (
                self.directory.grantRole,
                self.directory.revokeRole,
                self.directory.renounceRole,
            ),
        }
        rows = (
            ("token", "PAUSER_ROLE", "pauser", "city_admin", (self.token.pause,)),
            ("token", "COMPLIANCE_ROLE", "compliance", "city_admin", (self.token.freeze, wallet)),
            (
                "token",
                "RELAYER_ROLE",
                "relayer",
                "city_admin",
                (self.token.transferWithAuthorizationBatch, []),
            ),
            (
                "registry",
                "REGISTRAR_ROLE",
                "registrar",
                "city_admin",
                (self.registry.suspend, wallet),
            ),
            (
                "registry",
                "COMPLIANCE_ROLE",
                "compliance",
                "city_admin",
                (self.registry.cancelRecovery, wallet),
            ),
            (
                "treasury",
                "SETTLER_ROLE",
                "settler",
                "city_admin",
                (self.treasury.settle, 0, wallet, 1, keccak(text="bank:churn")),
            ),
            (
                "treasury",
                "ISSUER_ROLE",
                "issuer",
                "issuer_admin",
                (self.treasury.issue, wallet, 1, keccak(text="deposit:churn")),
            ),
            (
                "directory",
                "DIRECTORY_ADMIN_ROLE",
                "registrar",
                "city_admin",
                (self.directory.registerCity, "churn", "Churn", self.token, self.registry, wallet),
            ),
        )
        contract, role, holder, admin_of_role, attempt = rows[which]
        grant, revoke, renounce_role = contracts[contract]
        role, holder, granter = role_id(role), roles[holder], roles[admin_of_role]
        if renounce % 4 == 0:
            self._staff(
                "renounceRole for another",
                renounce_role,
                role,
                admin,
                sender=holder,
                reasons={"AccessControlBadConfirmation"},
            )
        if renounce % 2 == 0:
            self._staff("renounceRole", renounce_role, role, holder, sender=holder)
        else:
            self._staff("revokeRole", revoke, role, holder, sender=granter)
        method, *arguments = attempt
        self._staff(
            f"{method.abi['name']} without its role",
            method,
            *arguments,
            sender=holder,
            reasons={"AccessControlUnauthorizedAccount"},
        )
        self._send(
            "grantRole",
            self.model.grant_issuer_role() if holder == roles["issuer"] else Outcome(set()),
            grant,
            role,
            holder,
            sender=granter,
        )

    def rule_pause_interlude(
        self, action="st_interlude", payer="st_party", payee="st_party", pct="st_pct"
    ):
        """Pauses the city, tries one operation, and unpauses (each twice: the second refused).

        A pause that lasts until a later rule lifts it would leave most examples paused."""
        payer_wallet = self._party(payer, Kind.RESIDENT)
        payee_wallet = self._party(payee, Kind.MERCHANT)
        nonce = self._payment_id(pct % PAYMENT_IDS)
        actions = (
            lambda: self._plain_transfer(payer_wallet, payee_wallet, pct),
            lambda: self._invoice_pay(payer_wallet, payee_wallet, pct, pct % PAYMENT_IDS),
            lambda: self._gasless_pay(
                payer_wallet, payee_wallet, pct, pct % PAYMENT_IDS, 0, pct % 3
            ),
            lambda: self._relay_batch([(payer_wallet, payee_wallet, pct, pct % PAYMENT_IDS, 0)]),
            lambda: self._charge(payer_wallet, CHARGE_AMOUNTS[pct % len(CHARGE_AMOUNTS)], 9),
            lambda: self._cash_out(payee_wallet, pct),
            lambda: self._request_resident_refund(payer_wallet, False),
            lambda: self._settle(pct, 9),
            lambda: self._return(pct),
            lambda: self._refund(pct, pct, 7),
            lambda: self._toggle_freeze(payer_wallet),
            lambda: self._register_resident(
                payer_wallet.address, identity_hash(payer_wallet.address)
            ),
            lambda: self._cancel_authorization(payer_wallet, nonce, False, True),
            lambda: self._transfer_from(payer_wallet, payee_wallet, pct, pct),
            lambda: self._signed_cash_out(payee_wallet, pct, self._cash_out_nonce(pct), 0, 1),
            lambda: self._relayed_refund(pct, pct, 7, nonce, 0),
            lambda: self._execute_recovery(pct, True),
            lambda: self._confiscate(pct),
            lambda: self._propose_recovery(pct, pct, True),
            lambda: self._object_to_recovery(pct, pct % 4),
        )
        self._set_paused(True)
        self._set_paused(True)
        actions[action]()
        self._set_paused(False)
        self._set_paused(False)

    def rule_forbidden_call(self, which="st_forbidden", who="st_any"):
        """A wallet without any role tries what only the city's staff or contracts may do; the
        administrator tries to link the suite, or another cashback contract, again."""
        wallet = self.addresses[who]
        target = self.addresses[(who + 1) % WALLETS]
        reference = keccak(text="forged")
        unauthorized = {"AccessControlUnauthorizedAccount"}
        suite_only = {"CityTokenUnauthorizedSuiteCall"}
        registry_only = {"CityTreasuryOnlyRegistry"}
        calls = (
            (unauthorized, self.treasury.issue, target, 1_000, reference),
            (suite_only, self.token.issue, wallet, 1_000),
            (suite_only, self.token.redeem, target, 1),
            (suite_only, self.token.restore, wallet, 1_000),
            (suite_only, self.token.close, target, 1, True),
            (suite_only, self.token.setAccountStatus, wallet, Kind.MERCHANT, True),
            (suite_only, self.token.setRecoveryHold, target, False),
            (suite_only, self.token.recoverAccount, target, wallet),
            (registry_only, self.treasury.moveResidentTally, target, wallet),
            (registry_only, self.treasury.confiscate, target, reference),
            ({"CityTreasuryOnlyToken"}, self.treasury.recordMerchantRefund, wallet, 1_000),
            (unauthorized, self.treasury.settle, 0, target, 1, reference),
            (unauthorized, self.treasury.returnRedemption, 0, target, 1, reference),
            (unauthorized, self.treasury.configureIssuer, wallet, 10**9),
            (unauthorized, self.treasury.removeIssuer, self.roles["issuer"]),
            (unauthorized, self.treasury.setHoldingCap, 10**12),
            (unauthorized, self.treasury.grantRole, role_id("SETTLER_ROLE"), wallet),
            (unauthorized, self.token.freeze, target),
            (unauthorized, self.token.unpause),
            (unauthorized, self.token.linkSuite, wallet, wallet, wallet),
            (suite_only, self.token.setGeneralExcluded, target, True),
            (suite_only, self.token.issueProgram, target, 1),
            (suite_only, self.token.gift, target, wallet, 1, 0),
            ({"CityTreasuryOnlyPrograms"}, self.treasury.recordGift, target, 1_000, 1),
            ({"CityTreasuryOnlyPrograms"}, self.treasury.recordExpired, target, 1_000, 1),
            (unauthorized, self.registry.setGeneralRevenueCap, 1),
            (unauthorized, self.token.grantRole, role_id("PAUSER_ROLE"), wallet),
            (unauthorized, self.token.transferWithAuthorizationBatch, []),
            (unauthorized, self.registry.registerResident, wallet, keccak(text="id"), 1),
            (unauthorized, self.registry.revoke, target, True),
            (unauthorized, self.registry.proposeRecovery, target, wallet),
            (unauthorized, self.registry.executeRecovery, target),
            (unauthorized, self.registry.confiscate, target, reference),
            (unauthorized, self.registry.setRecoveryDelay, 3_600),
            (unauthorized, self.registry.revokeRole, role_id("REGISTRAR_ROLE"), target),
            (unauthorized, self.treasury.linkCashback, wallet),
            (unauthorized, self.treasury.setIncentiveMode, 1),
            ({"CityTreasuryOnlyCashback"}, self.treasury.issueCashback, target, 1_000),
            ({"CityTreasuryOnlyCashback"}, self.treasury.reverseCashback, target, 1),
        )
        # Every call and both links again, however many calls the table holds.
        which %= len(calls) + 2
        if which < len(calls):
            reasons, method, *args = calls[which]
            self._staff(
                f"forbidden {method.abi['name']}",
                method,
                *args,
                sender=self.account_of[wallet],
                reasons=reasons,
            )
            return
        admin = self.roles["city_admin"]
        if which == len(calls):
            self._staff(
                "linkSuite again",
                self.token.linkSuite,
                target,
                target,
                target,
                sender=admin,
                reasons={"CityTokenSuiteAlreadyLinked"},
            )
        else:
            self._staff(
                "linkCashback again",
                self.treasury.linkCashback,
                target,
                sender=admin,
                reasons={"CityTreasuryCashbackAlreadyLinked"},
            )

    # --- Invariants ---------------------------------------------------------------------------

    def _read(self) -> dict:
        """Every value the invariants compare, read from the chain in one batch."""
        model, token, registry, treasury = self.model, self.token, self.registry, self.treasury
        reads: dict[tuple, tuple] = {
            ("paused",): (token, "paused"),
            ("supply",): (token, "totalSupply"),
            ("totals",): (treasury, "totals"),
            ("confiscated",): (treasury, "totalConfiscated"),
            ("redemptions",): (treasury, "redemptionCount"),
            ("issued this year",): (treasury, "issuedThisFiscalYear"),
            ("policy",): (treasury, "policy"),
            ("revenue cap",): (registry, "merchantRevenueCap"),
            ("ban period",): (registry, "banPeriod"),
            ("recovery delay",): (registry, "recoveryDelay"),
            ("resident count",): (registry, "residentCount"),
            ("merchant count",): (registry, "merchantCount"),
            ("allowance",): (treasury, "issuerAllowance", self.roles["issuer"]),
            ("issuer",): (treasury, "hasRole", role_id("ISSUER_ROLE"), self.roles["issuer"]),
        }
        for category in (RESTAURANT, BAKERY, LARGE_MART):
            reads[("excluded", category)] = (registry, "isCategoryExcluded", category)
        contracts = {"token": token, "registry": registry, "treasury": treasury}
        for contract, role, holder in STAFF_ROLES:
            reads[("role", contract, role, holder)] = (
                contracts[contract],
                "hasRole",
                role_id(role),
                self.roles[holder],
            )
        per_wallet = {
            "balance": (token, "balanceOf"),
            "kind": (token, "accountKind"),
            "active": (token, "isActive"),
            "frozen": (token, "isFrozen"),
            "retired": (token, "isRetired"),
            "held": (token, "isHeld"),
            "current": (token, "currentWallet"),
            "origin": (token, "originOf"),
            "permit nonce": (token, "nonces"),
            "resident": (registry, "residentOf"),
            "merchant": (registry, "merchantOf"),
            "payout nonce": (registry, "payoutAccountNonce"),
            "illegal": (registry, "revokedForIllegalExchange"),
            "recovery": (registry, "pendingRecovery"),
            "tally": (treasury, "residentTally"),
        }
        for address in self.addresses:
            for name, (contract, function) in per_wallet.items():
                reads[(name, address)] = (contract, function, address)
            reads[("identity", address)] = (
                registry,
                "walletOfIdentity",
                identity_hash(address),
            )
            reads[("business", address)] = (registry, "walletOfBusiness", business_hash(address))
            reads[("banned", address)] = (registry, "bannedUntil", business_hash(address))
        for i in range(len(model.redemptions)):
            reads[("redemption", i)] = (treasury, "redemption", i)
        for payer, pid in model.records:
            payee = model.current_wallet(model.records[(payer, pid)].payee)
            reads[("record", payer, pid)] = (token, "authorizationState", payer, pid)
            reads[("refundable", payer, pid)] = (token, "refundableAmount", payer, payee, pid)
        for payer, merchant in model.plain_payments:
            current = (model.current_wallet(payer), model.current_wallet(merchant))
            reads[("plain", payer, merchant)] = (
                token,
                "refundableAmount",
                payer,
                merchant,
                ZERO_ID,
            )
            reads[("plain now", *current)] = (token, "refundableAmount", *current, ZERO_ID)
        for owner, spender in model.allowances:
            reads[("allowance", owner, spender)] = (token, "allowance", owner, spender)
        for merchant, nonce in model.cash_out_nonces:
            reads[("cash-out nonce", merchant, nonce)] = (
                treasury,
                "cashOutAuthorizationState",
                merchant,
                nonce,
            )
        for reference in model.bank_references:
            reads[("bank reference", reference)] = (treasury, "bankReferenceUsed", reference)
        for reference in model.deposits:
            reads[("deposit", reference)] = (treasury, "depositIssued", reference)
        values, timestamp = self.reader.read(list(reads.values()))
        snapshot = dict(zip(reads, values, strict=True))
        snapshot["timestamp"] = timestamp
        return snapshot

    def _chain(self) -> dict:
        """The chain as the step left it, read once per step; the step's transfers beside it."""
        if self.stale:
            self.before, self.snapshot = self.snapshot, self._read()
            self.step_observed, self.observed = self.observed, []
            self.step_expected = list(self.model.transfers)
            self.model.transfers.clear()
            self.stale = False
        return self.snapshot

    def invariant_supply_is_balances_and_issued_less_burned_plus_returned(self):
        chain_ = self._chain()
        balances = [chain_[("balance", address)] for address in self.addresses]
        issued, _, burned, returned, settled, _ = chain_[("totals",)]
        assert sum(balances) == chain_[("supply",)] == issued - burned + returned
        model = self.model
        assert chain_[("totals",)] == model.totals.as_tuple()
        redemptions = model.redemptions
        confiscated = [r for r in redemptions if r.kind == RedemptionKind.CONFISCATION]
        assert (
            chain_[("confiscated",)]
            == model.totals.confiscated
            == sum(r.burned for r in confiscated)
        )
        assert burned == sum(r.burned for r in redemptions)
        assert returned == sum(
            r.burned for r in redemptions if r.status == RedemptionStatus.RETURNED
        )
        assert settled == sum(r.payout for r in redemptions if r.status == RedemptionStatus.SETTLED)

    def invariant_no_transfer_from_a_resident_to_another_holders_resident_wallet(self):
        chain_ = self._chain()
        observed = [(source, target, value) for _, source, target, value in self.step_observed]
        assert observed == self.step_expected, (
            f"transfers {observed}, expected {self.step_expected}"
        )
        for label, source, target, value in self.step_observed:
            if ZERO_ADDRESS in (source, target):
                continue
            holders = chain_[("origin", source)], chain_[("origin", target)]
            kinds = [chain_[("kind", chain_[("current", a)])] for a in (source, target)]
            assert holders[0] == holders[1] or kinds != [Kind.RESIDENT, Kind.RESIDENT], (
                f"{label} moved {value} from resident {source} to resident {target}"
            )
            if holders[0] == holders[1]:
                assert label == "executeRecovery", f"{label} moved money within one holder"

    def invariant_purchases_within_monthly_limit_and_issuance_within_annual_cap(self):
        chain_ = self._chain()
        model, now = self.model, chain_["timestamp"]
        policy = model.policy
        limit, incentive_limit = self.limit_peaks.get(month_index(now), (0, 0))
        for address in self.addresses:
            tally = chain_[("tally", address)]
            assert tally == model.tally_at(address, now), address
            assert tally[1] <= max(limit, policy.monthly_limit)
            assert tally[2] <= max(incentive_limit, policy.monthly_incentive_limit)
        issued = chain_[("issued this year",)]
        assert issued <= max(self.cap_peaks.get(fiscal_year(now), 0), policy.annual_cap)
        assert issued == model.issued_this_year(now)

    def invariant_every_redemption_ends_at_most_once(self):
        chain_ = self._chain()
        assert chain_[("redemptions",)] == len(self.model.redemptions)
        for redemption_id, model in enumerate(self.model.redemptions):
            chained = chain_[("redemption", redemption_id)]
            status = RedemptionStatus(chained[2])
            before = self.seen_status.get(redemption_id, RedemptionStatus.PENDING)
            assert status == before or before == RedemptionStatus.PENDING, (
                f"redemption {redemption_id} went from {before.name} to {status.name}"
            )
            self.seen_status[redemption_id] = status
            if model.kind == RedemptionKind.CONFISCATION:
                assert (status, model.payout) == (RedemptionStatus.SETTLED, 0)
            assert chained == model.as_tuple(), f"redemption {redemption_id}"

    def invariant_current_wallets_are_the_models_and_retired_wallets_hold_nothing(self):
        chain_, model = self._chain(), self.model
        for address in self.addresses:
            wallet = model.wallet(address)
            assert chain_[("current", address)] == model.current_wallet(address), address
            assert chain_[("origin", address)] == wallet.origin, address
            if chain_[("retired", address)]:
                assert chain_[("balance", address)] == 0
                assert chain_[("kind", address)] == Kind.NONE
                assert chain_[("resident", address)][2] == chain_[("merchant", address)][5] == 0
                assert address not in (
                    chain_[(name, other)]
                    for name in ("identity", "business")
                    for other in self.addresses
                )

    def invariant_no_recovery_cycle(self):
        """A holder's current wallet is where the walk from any of its wallets ends, in one step,
        and the replacements never lead back to a wallet the holder had."""
        chain_ = self._chain()
        for address in self.addresses:
            current = chain_[("current", address)]
            assert chain_[("current", current)] == current
            assert not chain_[("retired", current)]
            assert chain_[("origin", current)] == chain_[("origin", address)]
        successor = dict(self.model.recovered)
        assert len(successor) == len(self.model.recovered), "a wallet was recovered twice"
        for start in successor:
            seen, wallet = {start}, successor[start]
            while wallet in successor:
                assert wallet not in seen, f"recovery cycle through {wallet}"
                seen.add(wallet)
                wallet = successor[wallet]

    def invariant_locked_wallets_move_only_by_recovery_or_confiscation(self):
        """A frozen or held wallet (before or after the step) keeps its balance, but for its
        recovery (the balance moves to the replacement) or its confiscation."""
        chain_, before = self._chain(), self.before
        if before is None:
            return
        for address in self.addresses:
            locked = any(
                snapshot[(flag, address)]
                for snapshot in (before, chain_)
                for flag in ("frozen", "held")
            )
            if not locked:
                continue
            moves = [m for m in self.step_observed if address in (m[1], m[2])]
            assert all(m[0] in ("executeRecovery", "confiscate") for m in moves), (
                f"locked wallet {address} moved: {moves}"
            )
            if not moves:
                assert chain_[("balance", address)] == before[("balance", address)], address

    def invariant_chain_agrees_with_the_model(self):
        chain_, model = self._chain(), self.model
        policy = model.policy
        assert chain_[("paused",)] == model.paused
        assert (chain_[("allowance",)], chain_[("issuer",)]) == (
            model.issuer_allowance,
            model.issuer_enabled,
        )
        assert chain_[("policy",)] == policy.treasury_policy()
        assert (
            chain_[("revenue cap",)],
            chain_[("ban period",)],
            chain_[("recovery delay",)],
        ) == (policy.revenue_cap, policy.ban_period, policy.recovery_delay)
        for category in (RESTAURANT, BAKERY, LARGE_MART):
            assert chain_[("excluded", category)] == (category in policy.excluded)
        assert (chain_[("resident count",)], chain_[("merchant count",)]) == (
            model.resident_count,
            model.merchant_count,
        )
        for (contract, role, holder), held in STAFF_ROLES.items():
            assert chain_[("role", contract, role, holder)] == held, (contract, role, holder)
        for address in self.addresses:
            w = model.wallet(address)
            recovery = model.recoveries.get(address)
            expected = {
                "balance": w.balance,
                "kind": w.kind,
                "active": w.status == Status.ACTIVE,
                "frozen": w.frozen,
                "retired": w.retired,
                "held": w.held,
                "permit nonce": w.permit_nonce,
                "resident": w.resident_record(),
                "merchant": w.merchant_record(),
                "payout nonce": w.payout_nonce,
                "illegal": w.illegal_exchange,
                "recovery": recovery.as_tuple() if recovery else (ZERO_ADDRESS, ZERO_ADDRESS, 0, 0),
                "identity": model.identities.get(identity_hash(address), ZERO_ADDRESS),
                "business": model.businesses.get(business_hash(address), ZERO_ADDRESS),
                "banned": model.banned_until.get(business_hash(address), 0),
            }
            actual = {name: chain_[(name, address)] for name in expected}
            assert actual == expected, f"wallet {self.addresses.index(address)} {address}"
        for (payer, pid), record in model.records.items():
            assert chain_[("record", payer, pid)]
            refundable = record.refundable if record.state == NonceState.USED else 0
            assert chain_[("refundable", payer, pid)] == refundable, (payer, pid, record)
        for (payer, merchant), amount in model.plain_payments.items():
            current = (model.current_wallet(payer), model.current_wallet(merchant))
            assert chain_[("plain", payer, merchant)] == chain_[("plain now", *current)] == amount
        for key, amount in model.allowances.items():
            assert chain_[("allowance", *key)] == amount, key
        for key, state in model.cash_out_nonces.items():
            assert chain_[("cash-out nonce", *key)] == state, key
        assert all(chain_[("bank reference", r)] for r in model.bank_references)
        assert all(chain_[("deposit", r)] for r in model.deposits)


@pytest.fixture(scope="module")
def city_terms():
    """Gimpo Pay whose general money outlives any run: this machine's model has no expiry and no
    programs (tests/programs/test_classes_machine.py runs those)."""
    policy = dataclasses.replace(GIMPO.policy, general_validity=50 * 365 * 86_400)
    return dataclasses.replace(GIMPO, policy=policy)


def test_city_invariants_hold_under_random_operations(
    state_machine,
    suite,
    city_admin,
    issuer_admin,
    issuer,
    registrar,
    compliance,
    pauser,
    settler,
    relayer,
    domain,
):
    roles = {
        "city_admin": city_admin,
        "issuer_admin": issuer_admin,
        "issuer": issuer,
        "registrar": registrar,
        "compliance": compliance,
        "pauser": pauser,
        "settler": settler,
        "relayer": relayer,
    }
    state_machine(CityMachine, suite, roles, domain, settings=SETTINGS)


# --- Counterexamples the machine found ------------------------------------------------------


def test_a_not_yet_valid_batch_entry_leaves_a_used_nonce_used(
    city, token, resident, merchant, relayer, sign
):
    """The machine's shrunk counterexample (fixed in 635139f): rule_relay_batch(items=[(78, 149,
    59, 2, 7)]) then rule_relay_batch(items=[(79, 180, 109, 2, 9)]). A payer's authorization under
    a nonce settles in a batch; a later batch carries the same payer's signed authorization under
    that nonce whose window has not opened. The batch voided the nonce: the payment was no longer
    refundable, and a relayer asking about it heard "voided" although it paid."""
    nonce = keccak(text="invariants:nonce-used-then-reused")
    paid = sign(resident, merchant, 10_000, nonce=nonce)
    token.transferWithAuthorizationBatch([paid.as_args()], {"from": relayer})
    now = chain.time()
    later = sign(
        resident, merchant, 5_000, nonce=nonce, valid_after=now + 3_600, valid_before=now + 7_200
    )
    tx = token.transferWithAuthorizationBatch([later.as_args()], {"from": relayer})
    assert "AuthorizationVoided" not in tx.events
    assert token.refundableAmount(resident, merchant, nonce) == 10_000
    with brownie.reverts(revert_pattern=r"EIP3009AuthorizationUsed.*"):
        token.transferWithAuthorization(*paid.as_args(), {"from": relayer})


# --- Every state-changing function has a rule -------------------------------------------------

CONTRACT_OF = {
    "token": CityToken,
    "registry": CityRegistry,
    "treasury": CityTreasury,
    "directory": CityDirectory,
}


def _is_self(node: ast.AST) -> bool:
    return isinstance(node, ast.Name) and node.id == "self"


def _sent_by_rules(machine: type) -> dict[str, set[str]]:
    """The functions of each suite contract a rule of `machine` refers to as
    self.<contract>.<function>, directly or through the helpers it calls."""
    tree = ast.parse(textwrap.dedent(inspect.getsource(machine)))
    methods = {
        node.name: node
        for node in tree.body[0].body
        if isinstance(node, ast.FunctionDef) and node.name != "__init__"
    }
    calls, functions = {}, {}
    for name, node in methods.items():
        calls[name], functions[name] = set(), set()
        for inner in ast.walk(node):
            if not isinstance(inner, ast.Attribute):
                continue
            owner = inner.value
            if _is_self(owner) and inner.attr in methods:
                calls[name].add(inner.attr)
            elif (
                isinstance(owner, ast.Attribute)
                and _is_self(owner.value)
                and owner.attr in CONTRACT_OF
            ):
                functions[name].add((owner.attr, inner.attr))
    reached, frontier = set(), [name for name in methods if name.startswith("rule_")]
    while frontier:
        name = frontier.pop()
        if name not in reached:
            reached.add(name)
            frontier.extend(calls[name])
    sent = {contract: set() for contract in CONTRACT_OF}
    for name in reached:
        for contract, function in functions[name]:
            sent[contract].add(function)
    return sent


def test_every_state_changing_function_of_the_suite_has_a_rule():
    sent = _sent_by_rules(CityMachine)
    for contract, container in CONTRACT_OF.items():
        changing = {
            item["name"]
            for item in container.abi
            if item["type"] == "function" and item["stateMutability"] in ("nonpayable", "payable")
        }
        assert changing - sent[contract] == set(), f"{container._name} functions without a rule"


def test_the_rule_finder_sees_rules_and_their_helpers():
    """Else the test above could pass on nothing: a helper's call counts through its rule."""
    sent = _sent_by_rules(CityMachine)
    assert {"transferWithAuthorizationBatch", "permit", "transferFrom"} <= sent["token"]
    assert {"executeRecovery", "objectToRecovery"} <= sent["registry"]
    assert "setHoldingCap" in sent["treasury"]
