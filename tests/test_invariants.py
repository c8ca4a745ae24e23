"""A city's invariants under random sequences of everything its people and staff do.

A hypothesis state machine drives one city (token, registry, treasury) through registrations,
charges, plain / invoice / gasless / batched payments, merchant refunds (sent by the merchant or
signed and relayed), cash-outs and their settlement or return, resident refunds, freezes,
suspensions, pauses, month turns and forbidden moves, while a Python model says what each step
must do. A step the model calls illegal must revert with an error that names one of the reasons it
is illegal; a legal step must go through and move exactly the tokens the model moves. After every
step the chain must agree with the model and:

- the balances of all wallets sum to the supply, and supply == issued - burned + returned;
- no Transfer of any transaction (batches included) goes from a resident to a resident;
- no resident buys more than the monthly limit; the city issues no more than its annual cap;
- every redemption ends at most once: Pending -> Settled or Pending -> Returned;
- every balance, account flag, payment record, tally and redemption is the model's.

The policy is small (an annual cap of 1.5 million KRW, a holding cap of 600,000) so that a few
dozen steps reach every limit.
"""

from __future__ import annotations

import datetime as dt
import itertools
from calendar import monthrange
from dataclasses import dataclass
from enum import IntEnum

import requests
from brownie import accounts, chain, web3
from brownie.exceptions import VirtualMachineError, decode_typed_error
from brownie.test import strategy
from citypay.authorization import (
    RECEIVE_WITH_AUTHORIZATION,
    TRANSFER_WITH_AUTHORIZATION,
    sign_authorization,
    sign_cancellation,
    sign_refund,
)
from eth_utils import keccak
from hexbytes import HexBytes
from hypothesis import event
from hypothesis import strategies as st

ZERO_ADDRESS = "0x" + "00" * 20
ZERO_ID = bytes(32)
KST = dt.timezone(dt.timedelta(hours=9))

# --- The city's policy in this machine: small, so that limits are reached ---------------------

ANNUAL_CAP = 1_500_000
MONTHLY_LIMIT = 500_000
HOLDING_CAP = 600_000
INCENTIVE_BPS = 1_000
MONTHLY_INCENTIVE_LIMIT = 30_000
MAX_BPS = 10_000
REFUND_MIN_USED_BPS = 6_000
MERCHANT_REVENUE_CAP = 1_200_000_000
RESTAURANT = 5611
LARGE_MART = 4711  # excluded in GIMPO's policy

CHARGE_AMOUNTS = (0, 1, 9_999, 50_000, 100_000, 200_000, 300_000, 500_000, 600_000)
ISSUER_ALLOWANCES = (0, 300_000, 1_000_000, 10_000_000)
INITIAL_ALLOWANCE = 2_000_000

INITIAL_CHARGE = 100_000

# Wallets 0-3 are residents and 4-6 merchants from the start; 7 and 8 are newcomers.
RESIDENT_WALLETS = 4
MERCHANT_WALLETS = 3
WALLETS = RESIDENT_WALLETS + MERCHANT_WALLETS + 2
# Who pays and who is paid, mostly as the rules intend, sometimes not.
PAYERS = (0, 1, 2, 3, 0, 1, 2, 3, 7, 4)
PAYEES = (4, 5, 6, 4, 5, 6, 4, 5, 8, 0)
PAYMENT_IDS = 6  # id 0 is bytes32(0): the plain-transfer id of refunds

# Every transaction gets its own gas limit, so its hash is new even when an example repeats an
# earlier one's sender, nonce and data: anvil can lose track of a hash it mined before a revert.
GAS_LIMITS = itertools.count(50_000_000)

SETTINGS = {"max_examples": 40, "stateful_step_count": 35}


class Kind(IntEnum):
    NONE = 0
    RESIDENT = 1
    MERCHANT = 2


class Status(IntEnum):
    NONE = 0
    ACTIVE = 1
    SUSPENDED = 2


class RedemptionKind(IntEnum):
    CASH_OUT = 0
    RESIDENT_REFUND = 1


class RedemptionStatus(IntEnum):
    NONE = 0
    PENDING = 1
    SETTLED = 2
    RETURNED = 3


class Flaw(IntEnum):
    """What is wrong with a signed authorization (0-3: nothing)."""

    EXPIRED = 4
    NOT_YET_VALID = 5
    WRONG_SIGNER = 6
    TAMPERED_VALUE = 7


# The error each flaw is refused with, whatever the state.
FLAW_REASONS = {
    Flaw.EXPIRED: {"EIP3009AuthorizationExpired"},
    Flaw.NOT_YET_VALID: {"EIP3009AuthorizationNotYetValid"},
    Flaw.WRONG_SIGNER: {"EIP3009InvalidSignature"},
    Flaw.TAMPERED_VALUE: {"EIP3009InvalidSignature"},
}


# --- Pure helpers -----------------------------------------------------------------------------


def identity_hash(address: str) -> bytes:
    return keccak(text=f"identity:{address}")


def business_hash(address: str) -> bytes:
    return keccak(text=f"business:{address}")


def account_hash(address: str) -> bytes:
    return keccak(text=f"bank-account:{address}")


def initial_deposit(index: int) -> bytes:
    return keccak(text=f"deposit:initial:{index}")


def application(address: str, *, business: bytes | None = None, variant: int = 0) -> tuple:
    """A merchant's application; variant 2 is an excluded category, 3 a revenue over the cap."""
    return (
        business or business_hash(address),
        account_hash(address),
        MERCHANT_REVENUE_CAP + 1 if variant == 3 else 300_000_000,
        LARGE_MART if variant == 2 else RESTAURANT,
        41570,
    )


def payment_id(index: int) -> bytes:
    return ZERO_ID if index == 0 else keccak(text=f"payment-id:{index}")


def month_index(timestamp: int) -> int:
    """KoreanCalendar.monthIndex: months since year 0 in Korea Standard Time."""
    local = dt.datetime.fromtimestamp(timestamp, KST)
    return local.year * 12 + local.month - 1


def fiscal_year(timestamp: int) -> int:
    """The fiscal year (starting in January) as the calendar year in KST."""
    return dt.datetime.fromtimestamp(timestamp, KST).year


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


def error_name(revert_msg: str | None) -> str:
    """Brownie renders a custom error as 'Name: arg1, arg2'."""
    return (revert_msg or "").split(":")[0]


def hex_bytes(value) -> bytes:
    return bytes(HexBytes(value))


class ChainReader:
    """Many eth_calls in one JSON-RPC batch, so every step can check every value."""

    def __init__(self):
        self._session = requests.Session()
        self._url = web3.provider.endpoint_uri

    def read(self, calls: list[tuple]) -> list:
        """`calls` are (contract, method name, *args); returns the decoded results in order."""
        methods = [getattr(contract, name) for contract, name, *_ in calls]
        payload = [
            {
                "jsonrpc": "2.0",
                "id": i,
                "method": "eth_call",
                "params": [
                    {"to": call[0].address, "data": method.encode_input(*call[2:])},
                    "latest",
                ],
            }
            for i, (call, method) in enumerate(zip(calls, methods, strict=True))
        ]
        responses = {r["id"]: r for r in self._session.post(self._url, json=payload).json()}
        return [method.decode_output(responses[i]["result"]) for i, method in enumerate(methods)]


# --- The model --------------------------------------------------------------------------------


@dataclass
class Wallet:
    account: object
    kind: Kind = Kind.NONE
    status: Status = Status.NONE
    frozen: bool = False
    balance: int = 0
    payout_account: bytes = ZERO_ID

    @property
    def address(self) -> str:
        return self.account.address

    def refusals(self, kind: Kind) -> set[str]:
        """Why this wallet may not take part in a movement as `kind` (payer or payee)."""
        reasons = set()
        if self.frozen:
            reasons.add("CityTokenAccountFrozen")
        if self.kind == Kind.NONE:
            reasons.add("CityTokenNotRegistered")
        elif self.status != Status.ACTIVE:
            reasons.add(
                "CityTokenMerchantNotActive"
                if self.kind == Kind.MERCHANT
                else "CityTokenResidentNotActive"
            )
        if self.kind != kind:
            reasons.add("CityTokenTransferNotAllowed")
        return reasons


@dataclass
class Tally:
    month: int
    purchased: int = 0
    incentive: int = 0
    charged: int = 0
    incentive_charged: int = 0

    def as_tuple(self) -> tuple:
        return (self.month, self.purchased, self.incentive, self.charged, self.incentive_charged)


@dataclass
class Payment:
    """What an invoice id or authorization nonce of a payer records."""

    payee: str
    refundable: int
    canceled: bool = False


@dataclass
class Redemption:
    account: str
    kind: RedemptionKind
    burned: int
    payout: int
    payout_account: bytes
    status: RedemptionStatus = RedemptionStatus.PENDING
    closing_reference: bytes = ZERO_ID
    # A resident refund resets the tally; a return puts back what the reset took.
    charged_before: int = 0
    incentive_before: int = 0


@dataclass
class Totals:
    issued: int = 0
    incentive: int = 0
    burned: int = 0
    returned: int = 0
    settled: int = 0
    clawed_back: int = 0

    def as_tuple(self) -> tuple:
        return (
            self.issued,
            self.incentive,
            self.burned,
            self.returned,
            self.settled,
            self.clawed_back,
        )


# --- The state machine ------------------------------------------------------------------------


class CityMachine:
    st_any = strategy("uint8", max_value=WALLETS - 1)
    st_payer = strategy("uint8", max_value=len(PAYERS) - 1)
    st_payee = strategy("uint8", max_value=len(PAYEES) - 1)
    st_resident = strategy("uint8", max_value=RESIDENT_WALLETS - 1)
    st_merchant = strategy("uint8", max_value=MERCHANT_WALLETS - 1)
    st_pct = strategy("uint8", max_value=120)
    st_size = strategy("uint8", max_value=len(CHARGE_AMOUNTS) - 1)
    st_reference = strategy("uint8", max_value=9)
    st_payment_id = strategy("uint8", max_value=PAYMENT_IDS - 1)
    st_flaw = strategy("uint8", max_value=7)
    st_mode = strategy("uint8", max_value=3)
    st_way = strategy("uint8", max_value=3)
    st_choice = strategy("uint8")
    st_flag = strategy("uint8", max_value=7)
    st_variant = strategy("uint8", max_value=4)
    st_landing = strategy("uint8", max_value=2)
    st_allowance = strategy("uint8", max_value=len(ISSUER_ALLOWANCES) - 1)
    st_forbidden = strategy("uint8", max_value=10)
    st_interlude = strategy("uint8", max_value=12)
    st_batch = st.lists(
        st.tuples(st_payer, st_payee, st_pct, st_payment_id, st_flaw), min_size=1, max_size=4
    )

    def __init__(cls, suite, roles: dict, domain):
        """Runs once: the city's policy, its residents (charged) and merchants, then a snapshot."""
        cls.token, cls.registry, cls.treasury = suite.token, suite.registry, suite.treasury
        cls.roles = roles
        cls.domain = domain
        cls.reader = ChainReader()
        cls.accounts = [
            accounts.add(keccak(text=f"city-token-invariants:{i}")) for i in range(WALLETS)
        ]
        admin = {"from": roles["city_admin"]}
        cls.treasury.setAnnualIssuanceCap(ANNUAL_CAP, admin)
        cls.treasury.setMonthlyPurchaseLimit(MONTHLY_LIMIT, admin)
        cls.treasury.setHoldingCap(HOLDING_CAP, admin)
        cls.treasury.setIncentiveBps(INCENTIVE_BPS, admin)
        cls.treasury.setMonthlyIncentiveLimit(MONTHLY_INCENTIVE_LIMIT, admin)
        cls.treasury.configureIssuer(
            roles["issuer"], INITIAL_ALLOWANCE, {"from": roles["issuer_admin"]}
        )
        registrar = {"from": roles["registrar"]}
        for index in range(RESIDENT_WALLETS):
            address = cls.accounts[index].address
            cls.registry.registerResident(address, identity_hash(address), 41570, registrar)
            cls.treasury.issue(
                address, INITIAL_CHARGE, initial_deposit(index), {"from": roles["issuer"]}
            )
        for index in range(RESIDENT_WALLETS, RESIDENT_WALLETS + MERCHANT_WALLETS):
            address = cls.accounts[index].address
            cls.registry.registerMerchant(address, application(address), registrar)

    def setup(self):
        """The model of the snapshot taken after __init__."""
        self.wallets = [Wallet(account) for account in self.accounts]
        self.by_address = {w.address: w for w in self.wallets}
        self.identities: dict[bytes, str] = {}
        self.businesses: dict[bytes, str] = {}
        self.tallies: dict[str, Tally] = {}
        self.deposits: list[bytes] = []
        now = chain.time()
        initial_incentive = INITIAL_CHARGE * INCENTIVE_BPS // MAX_BPS
        initial_total = INITIAL_CHARGE + initial_incentive
        for index, wallet in enumerate(self.wallets):
            if index < RESIDENT_WALLETS:
                wallet.kind, wallet.status = Kind.RESIDENT, Status.ACTIVE
                wallet.balance = initial_total
                self.identities[identity_hash(wallet.address)] = wallet.address
                self.tallies[wallet.address] = Tally(
                    month_index(now),
                    INITIAL_CHARGE,
                    initial_incentive,
                    initial_total,
                    initial_incentive,
                )
                self.deposits.append(initial_deposit(index))
            elif index < RESIDENT_WALLETS + MERCHANT_WALLETS:
                wallet.kind, wallet.status = Kind.MERCHANT, Status.ACTIVE
                wallet.payout_account = account_hash(wallet.address)
                self.businesses[business_hash(wallet.address)] = wallet.address
        issued = RESIDENT_WALLETS * initial_total
        self.totals = Totals(issued=issued, incentive=RESIDENT_WALLETS * initial_incentive)
        self.fiscal_year, self.issued_in_fiscal_year = fiscal_year(now), issued
        self.allowance = INITIAL_ALLOWANCE - issued
        self.paused = False
        self.deposit_counter = itertools.count(1)
        self.reference_counter = itertools.count(1)
        self.payments: dict[tuple[str, bytes], Payment] = {}
        self.plain_payments: dict[tuple[str, str], int] = {}
        self.redemptions: list[Redemption] = []
        self.seen_status: dict[int, RedemptionStatus] = {}
        self.expected_transfers: list[tuple] = []
        self.observed_transfers: list[tuple] = []

    # --- Model reads --------------------------------------------------------------------------

    def _tally(self, address: str) -> Tally:
        """The resident's tally as the treasury reads it now (this month's counters)."""
        month = month_index(chain.time())
        tally = self.tallies.setdefault(address, Tally(month))
        if tally.month != month:
            tally.month, tally.purchased, tally.incentive = month, 0, 0
        return tally

    def _issued_this_year(self) -> int:
        return self.issued_in_fiscal_year if self.fiscal_year == fiscal_year(chain.time()) else 0

    def _value(self, wallet: Wallet, pct: int) -> int:
        """An amount relative to what the wallet holds; over 100% asks for more than it has."""
        return wallet.balance * pct // 100 if wallet.balance else pct * 1_000

    def _pause_reasons(self) -> set[str]:
        return {"EnforcedPause"} if self.paused else set()

    def _move_reasons(self, source: Wallet, source_kind: Kind, target: Wallet, value: int):
        """A payment (resident -> merchant) or a refund (merchant -> resident) of `value`."""
        target_kind = Kind.MERCHANT if source_kind == Kind.RESIDENT else Kind.RESIDENT
        reasons = (
            self._pause_reasons() | source.refusals(source_kind) | target.refusals(target_kind)
        )
        if source.balance < value:
            reasons.add("ERC20InsufficientBalance")
        return reasons

    def _move(self, source: Wallet | None, target: Wallet | None, value: int) -> None:
        if source is not None:
            source.balance -= value
        if target is not None:
            target.balance += value
        self.expected_transfers.append(
            (
                source.address if source else ZERO_ADDRESS,
                target.address if target else ZERO_ADDRESS,
                value,
            )
        )

    # --- Sending ------------------------------------------------------------------------------

    def _send(self, label: str, reasons: set[str], method, *args, sender):
        """Sends a transaction that must revert with one of `reasons`, or go through if none."""
        try:
            tx = method(*args, {"from": sender, "gas_limit": next(GAS_LIMITS)})
        except VirtualMachineError as exc:
            assert reasons, f"{label} reverted with {exc.revert_msg!r}; the model expected success"
            assert error_name(exc.revert_msg) in reasons, (
                f"{label} reverted with {exc.revert_msg!r}; expected one of {sorted(reasons)}"
            )
            event(f"{label} refused: {error_name(exc.revert_msg)}")
            return None
        assert not reasons, f"{label} went through; the model expected one of {sorted(reasons)}"
        event(f"{label} went through")
        self.observed_transfers.extend(
            (e["from"], e["to"], e["value"])
            for e in tx.events
            if e.name == "Transfer" and e.address == self.token.address
        )
        return tx

    # --- Registration -------------------------------------------------------------------------

    def _register_resident(self, who: int, borrow: bool) -> None:
        """`borrow` applies with the identity of the next wallet."""
        wallet = self.wallets[who]
        owner = self.wallets[(who + 1) % WALLETS] if borrow else wallet
        identity = identity_hash(owner.address)
        reasons = set()
        if wallet.kind != Kind.NONE:
            reasons.add("CityRegistryAlreadyRegistered")
        if identity in self.identities:
            reasons.add("CityRegistryIdentityInUse")
        if self._send(
            "registerResident",
            reasons,
            self.registry.registerResident,
            wallet.address,
            identity,
            41570,
            sender=self.roles["registrar"],
        ):
            wallet.kind, wallet.status = Kind.RESIDENT, Status.ACTIVE
            self.identities[identity] = wallet.address

    def rule_register_resident(self, who="st_any", borrow="st_flag"):
        self._register_resident(who, borrow == 0)

    def rule_register_merchant(self, who="st_any", variant="st_variant"):
        """Variants: 0-1 eligible, 2 excluded category, 3 revenue over the cap, 4 borrowed id."""
        wallet = self.wallets[who]
        owner = self.wallets[(who + 1) % WALLETS] if variant == 4 else wallet
        business = business_hash(owner.address)
        reasons = set()
        if wallet.kind != Kind.NONE:
            reasons.add("CityRegistryAlreadyRegistered")
        if business in self.businesses:
            reasons.add("CityRegistryBusinessInUse")
        if variant == 2:
            reasons.add("CityRegistryCategoryExcluded")
        if variant == 3:
            reasons.add("CityRegistryRevenueOverCap")
        if self._send(
            "registerMerchant",
            reasons,
            self.registry.registerMerchant,
            wallet.address,
            application(wallet.address, business=business, variant=variant),
            sender=self.roles["registrar"],
        ):
            wallet.kind, wallet.status = Kind.MERCHANT, Status.ACTIVE
            wallet.payout_account = account_hash(wallet.address)
            self.businesses[business] = wallet.address

    # --- Charging (충전) -----------------------------------------------------------------------

    def _charge(self, wallet: Wallet, amount: int, reference_choice: int) -> None:
        """Reference choices: 0 reuses an issued deposit reference, 1 is empty, others fresh."""
        if reference_choice == 0:
            reference = self.deposits[-1]
        elif reference_choice == 1:
            reference = ZERO_ID
        else:
            reference = keccak(text=f"deposit:{next(self.deposit_counter)}")
        tally = self._tally(wallet.address)
        incentive_left = max(0, MONTHLY_INCENTIVE_LIMIT - tally.incentive)
        incentive = min(amount * INCENTIVE_BPS // MAX_BPS, incentive_left)
        total = amount + incentive
        reasons = set()
        if amount == 0:
            reasons.add("CityTreasuryZeroAmount")
        if reference == ZERO_ID:
            reasons.add("CityTreasuryEmptyReference")
        if reference in self.deposits:
            reasons.add("CityTreasuryDepositAlreadyIssued")
        if wallet.kind != Kind.RESIDENT:
            reasons.add("CityTreasuryNotResident")
        if tally.purchased + amount > MONTHLY_LIMIT:
            reasons.add("CityTreasuryMonthlyLimitExceeded")
        if wallet.balance + total > HOLDING_CAP:
            reasons.add("CityTreasuryHoldingCapExceeded")
        if self._issued_this_year() + total > ANNUAL_CAP:
            reasons.add("CityTreasuryAnnualCapExceeded")
        if total > self.allowance:
            reasons.add("CityTreasuryIssuerAllowanceExceeded")
        reasons |= self._pause_reasons()
        if wallet.frozen:
            reasons.add("CityTokenAccountFrozen")
        if wallet.kind == Kind.RESIDENT and wallet.status != Status.ACTIVE:
            reasons.add("CityTokenResidentNotActive")
        tx = self._send(
            "charge",
            reasons,
            self.treasury.issue,
            wallet.address,
            amount,
            reference,
            sender=self.roles["issuer"],
        )
        if not tx:
            return
        assert tx.events["Issued"]["incentive"] == incentive
        self.deposits.append(reference)
        self.allowance -= total
        self.fiscal_year, self.issued_in_fiscal_year = (
            fiscal_year(chain.time()),
            self._issued_this_year() + total,
        )
        self.totals.issued += total
        self.totals.incentive += incentive
        tally.purchased += amount
        tally.incentive += incentive
        tally.charged += total
        tally.incentive_charged += incentive
        self._move(None, wallet, total)

    def rule_charge(self, who="st_payer", size="st_size", reference="st_reference"):
        self._charge(self.wallets[PAYERS[who]], CHARGE_AMOUNTS[size], reference)

    def rule_configure_issuer(self, allowance="st_allowance"):
        self.allowance = ISSUER_ALLOWANCES[allowance]
        self._send(
            "configureIssuer",
            set(),
            self.treasury.configureIssuer,
            self.roles["issuer"],
            self.allowance,
            sender=self.roles["issuer_admin"],
        )

    # --- Payments -----------------------------------------------------------------------------

    def _plain_transfer(self, payer: Wallet, payee: Wallet, pct: int) -> None:
        value = self._value(payer, pct)
        reasons = self._move_reasons(payer, Kind.RESIDENT, payee, value)
        if self._send(
            "transfer", reasons, self.token.transfer, payee.address, value, sender=payer.account
        ):
            key = (payer.address, payee.address)
            self.plain_payments[key] = self.plain_payments.get(key, 0) + value
            self._move(payer, payee, value)

    def _invoice_pay(self, payer: Wallet, payee: Wallet, pct: int, id_index: int) -> None:
        value = self._value(payer, pct)
        invoice = payment_id(id_index)
        reasons = self._move_reasons(payer, Kind.RESIDENT, payee, value)
        if invoice == ZERO_ID:
            reasons.add("CityTokenZeroPaymentId")
        if (payer.address, invoice) in self.payments:
            reasons.add("CityTokenPaymentIdUsed")
        if self._send(
            "pay", reasons, self.token.pay, payee.address, value, invoice, sender=payer.account
        ):
            self.payments[(payer.address, invoice)] = Payment(payee.address, value)
            self._move(payer, payee, value)

    def _sign(self, payer: Wallet, payee: Wallet, value: int, nonce: bytes, flaw: int, **kwargs):
        """Signs an authorization from `payer` with `flaw`.

        Returns its arguments (from .. nonce), its signature (v, r, s) and the reasons it fails
        whatever the state: its window, its signature, its nonce.
        """
        valid_after, valid_before = self._window(flaw)
        key = self._signing_key(payer, flaw)
        signed = sign_authorization(
            key,
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
        reasons = FLAW_REASONS.get(flaw, set())
        # The nonce is the payment id a refund names; zero names the plain transfers instead, so
        # a zero nonce would make a payment no refund can reach (pay() refuses a zero id).
        if nonce == ZERO_ID:
            reasons.add("CityTokenZeroPaymentId")
        return arguments, (signed.v, signed.r, signed.s), reasons

    @staticmethod
    def _window(flaw: int) -> tuple[int, int]:
        """(validAfter, validBefore) of an authorization signed now with `flaw`."""
        now = chain.time()
        if flaw == Flaw.EXPIRED:
            return 0, now - 60
        if flaw == Flaw.NOT_YET_VALID:
            return now + 3_600, now + 7_200
        return 0, now + 3_600

    def _signing_key(self, authorizer: Wallet, flaw: int):
        """The authorizer's key, or with Flaw.WRONG_SIGNER the next wallet's."""
        signer = self.wallets[(self.wallets.index(authorizer) + 1) % WALLETS]
        return (signer if flaw == Flaw.WRONG_SIGNER else authorizer).account.private_key

    def _authorization_reasons(self, arguments: tuple) -> set[str]:
        """Why the authorization fails in the current state: a used nonce, the payment rules."""
        payer, payee = self.by_address[arguments[0]], self.by_address[arguments[1]]
        reasons = self._move_reasons(payer, Kind.RESIDENT, payee, arguments[2])
        if (payer.address, arguments[5]) in self.payments:
            reasons.add("EIP3009AuthorizationUsedOrCanceled")
        return reasons

    def _authorized(self, arguments: tuple) -> None:
        payer, payee = self.by_address[arguments[0]], self.by_address[arguments[1]]
        self.payments[(payer.address, arguments[5])] = Payment(payee.address, arguments[2])
        self._move(payer, payee, arguments[2])

    def _gasless_pay(self, payer, payee, pct: int, id_index: int, flaw: int, mode: int) -> None:
        """Modes: 0 transferWithAuthorization (v, r, s), 1 the same with a bytes signature,
        2 receiveWithAuthorization by the merchant, 3 receiveWithAuthorization by a relayer."""
        receive = mode >= 2
        arguments, (v, r, s), reasons = self._sign(
            payer,
            payee,
            self._value(payer, pct),
            payment_id(id_index),
            flaw,
            primary_type=RECEIVE_WITH_AUTHORIZATION if receive else TRANSFER_WITH_AUTHORIZATION,
        )
        reasons |= self._authorization_reasons(arguments)
        if mode == 3:
            reasons.add("EIP3009CallerMustBePayee")
        token = self.token
        method = token.receiveWithAuthorization if receive else token.transferWithAuthorization
        signature = (r + s + bytes([v]),) if mode == 1 else (v, r, s)
        label = ("transfer", "transfer", "receive", "receive")[mode] + "WithAuthorization"
        sender = payee.account if mode == 2 else self.roles["relayer"]
        if self._send(label, reasons, method, *arguments, *signature, sender=sender):
            self._authorized(arguments)

    def _relay_batch(self, items: list[tuple]) -> None:
        """Relays a batch of (payer, payee, pct, payment id, flaw) by wallet index; flaw 3 repeats
        the previous authorization word for word."""
        batch, intrinsic, outcomes = [], [], []
        for payer_index, payee_index, pct, id_index, flaw in items:
            if flaw == 3 and batch:
                batch.append(batch[-1])
                intrinsic.append(intrinsic[-1])
            else:
                payer, payee = self.wallets[payer_index], self.wallets[payee_index]
                arguments, signature, reasons = self._sign(
                    payer, payee, self._value(payer, pct), payment_id(id_index), flaw
                )
                batch.append(arguments + signature)
                intrinsic.append(reasons)
            # Items settle in order: each sees the balances and nonces the earlier ones left.
            reasons = intrinsic[-1] | self._authorization_reasons(batch[-1][:6])
            outcomes.append(reasons)
            if not reasons:
                self._authorized(batch[-1][:6])
        tx = self._send(
            "transferWithAuthorizationBatch",
            set(),
            self.token.transferWithAuthorizationBatch,
            batch,
            sender=self.roles["relayer"],
        )
        used = [
            (e["authorizer"], hex_bytes(e["nonce"]))
            for e in tx.events
            if e.name == "AuthorizationUsed"
        ]
        expected_used = [(a[0], a[5]) for a, r in zip(batch, outcomes, strict=True) if not r]
        assert used == expected_used, f"batch settled {used}, expected {expected_used}"
        failed = [e for e in tx.events if e.name == "AuthorizationFailed"]
        expected_failed = [(a, r) for a, r in zip(batch, outcomes, strict=True) if r]
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
        """Ways: 0 plain ERC-20 transfer, 1 invoice, 2 EIP-3009 authorization, 3 a batch of one."""
        if way == 0:
            self._plain_transfer(payer, payee, pct)
        elif way == 1:
            self._invoice_pay(payer, payee, pct, id_index)
        elif way == 2:
            self._gasless_pay(payer, payee, pct, id_index, flaw, mode)
        else:
            batch = [(self.wallets.index(payer), self.wallets.index(payee), pct, id_index, flaw)]
            self._relay_batch(batch)

    def rule_pay(
        self,
        payer="st_payer",
        payee="st_payee",
        pct="st_pct",
        way="st_way",
        payment="st_payment_id",
        flaw="st_flaw",
        mode="st_mode",
    ):
        self._pay(
            self.wallets[PAYERS[payer]], self.wallets[PAYEES[payee]], pct, way, payment, flaw, mode
        )

    def rule_relay_batch(self, items="st_batch"):
        self._relay_batch([(PAYERS[p], PAYEES[q], *rest) for p, q, *rest in items])

    def rule_resident_pays_resident(
        self,
        payer="st_resident",
        other="st_resident",
        pct="st_pct",
        way="st_way",
        payment="st_payment_id",
    ):
        """상품권깡's resale channel: refused between residents whatever the way."""
        payee = other if other != payer else (payer + 1) % RESIDENT_WALLETS
        self._pay(self.wallets[payer], self.wallets[payee], pct, way, payment)

    def rule_merchant_pays_resident(
        self,
        merchant="st_merchant",
        resident="st_resident",
        pct="st_pct",
        way="st_way",
        payment="st_payment_id",
    ):
        """Money goes back to a resident only as the refund of a payment."""
        merchant_wallet = self.wallets[RESIDENT_WALLETS + merchant]
        self._pay(merchant_wallet, self.wallets[resident], pct, way, payment)

    def _cancel_authorization(self, payer: Wallet, nonce: bytes, forged: bool) -> None:
        signer = self.wallets[(self.wallets.index(payer) + 1) % WALLETS] if forged else payer
        signature = sign_cancellation(signer.account.private_key, self.domain, nonce)
        reasons = {"EIP3009InvalidSignature"} if forged else set()
        if (payer.address, nonce) in self.payments:
            reasons.add("EIP3009AuthorizationUsedOrCanceled")
        if self._send(
            "cancelAuthorization",
            reasons,
            self.token.cancelAuthorization,
            payer.address,
            nonce,
            signature,
            sender=self.roles["relayer"],
        ):
            self.payments[(payer.address, nonce)] = Payment(ZERO_ADDRESS, 0, canceled=True)

    def rule_cancel_authorization(self, payer="st_payer", nonce="st_payment_id", forged="st_flag"):
        self._cancel_authorization(self.wallets[PAYERS[payer]], payment_id(nonce), forged == 0)

    # --- Merchant refunds ---------------------------------------------------------------------

    def _refund_terms(self, choice: int, pct: int, wrong: bool):
        """One of the payments made so far (a made-up one when there is none), who refunds it
        (`wrong`: the wallet after the payee), how much, and why the refund rules refuse it:
        (payer, merchant, payment id, value, reasons)."""
        made = sorted(
            [(payer, merchant, ZERO_ID) for (payer, merchant) in self.plain_payments]
            + [(payer, p.payee, pid) for (payer, pid), p in self.payments.items() if not p.canceled]
        )
        if made:
            payer_address, merchant_address, pid = made[choice % len(made)]
            payer, merchant = self.by_address[payer_address], self.by_address[merchant_address]
        else:
            payer = self.wallets[choice % WALLETS]
            merchant = self.wallets[(choice + RESIDENT_WALLETS) % WALLETS]
            pid = payment_id(choice % PAYMENT_IDS)
        if wrong:
            merchant = self.wallets[(self.wallets.index(merchant) + 1) % WALLETS]
        reasons = set()
        if pid == ZERO_ID:
            refundable = self.plain_payments.get((payer.address, merchant.address), 0)
        else:
            payment = self.payments.get((payer.address, pid))
            if payment is None or payment.canceled or payment.payee != merchant.address:
                reasons.add("CityTokenPaymentNotFound")
                refundable = 0
            else:
                refundable = payment.refundable
        value = refundable * pct // 100 if refundable else pct
        if value > refundable:
            reasons.add("CityTokenRefundExceedsPayment")
        reasons |= self._move_reasons(merchant, Kind.MERCHANT, payer, value)
        return payer, merchant, pid, value, reasons

    def _refunded(self, payer: Wallet, merchant: Wallet, pid: bytes, value: int) -> None:
        if pid == ZERO_ID:
            key = (payer.address, merchant.address)
            self.plain_payments[key] = self.plain_payments.get(key, 0) - value
        else:
            self.payments[(payer.address, pid)].refundable -= value
        self._move(merchant, payer, value)

    def _refund(self, choice: int, pct: int, wrong: bool) -> None:
        payer, merchant, pid, value, reasons = self._refund_terms(choice, pct, wrong)
        if self._send(
            "refund", reasons, self.token.refund, payer.address, pid, value, sender=merchant.account
        ):
            self._refunded(payer, merchant, pid, value)

    def rule_refund(self, choice="st_choice", pct="st_pct", wrong="st_flag"):
        self._refund(choice, pct, wrong == 0)

    def _relayed_refund(self, choice: int, pct: int, wrong: bool, nonce: bytes, flaw: int):
        """The same refund signed by the merchant (with `flaw`) and sent by the relayer; its
        nonce is one of the merchant's, in the space payers' nonces live in."""
        payer, merchant, pid, value, reasons = self._refund_terms(choice, pct, wrong)
        valid_after, valid_before = self._window(flaw)
        signed = sign_refund(
            self._signing_key(merchant, flaw),
            self.domain,
            payer=payer.address,
            payment_id=pid,
            value=value,
            valid_after=valid_after,
            valid_before=valid_before,
            nonce=nonce,
            merchant=merchant.address,
        )
        arguments = signed.as_args()
        if flaw == Flaw.TAMPERED_VALUE:
            arguments = (*arguments[:4], value + 1, *arguments[5:])
        reasons |= FLAW_REASONS.get(flaw, set())
        if (merchant.address, nonce) in self.payments:
            reasons.add("EIP3009AuthorizationUsedOrCanceled")
        if nonce == ZERO_ID:
            reasons.add("CityTokenZeroNonce")
        if self._send(
            "refundWithAuthorization",
            reasons,
            self.token.refundWithAuthorization,
            *arguments,
            sender=self.roles["relayer"],
        ):
            # The nonce's record names the payer and leaves nothing to refund back.
            self.payments[(merchant.address, nonce)] = Payment(payer.address, 0)
            self._refunded(payer, merchant, pid, value)

    def rule_relayed_refund(
        self,
        choice="st_choice",
        pct="st_pct",
        wrong="st_flag",
        nonce="st_payment_id",
        flaw="st_flaw",
    ):
        self._relayed_refund(choice, pct, wrong == 0, payment_id(nonce), flaw)

    # --- Cash-out (환전), resident refund (환불), settlement -------------------------------------

    def _open_redemption(self, wallet: Wallet, tx, redemption: Redemption) -> None:
        assert tx.events["RedemptionRequested"]["id"] == len(self.redemptions)
        self.redemptions.append(redemption)
        self.totals.burned += redemption.burned
        self._move(wallet, None, redemption.burned)

    def _cash_out(self, wallet: Wallet, pct: int) -> None:
        amount = self._value(wallet, pct)
        reasons = self._pause_reasons()
        if amount == 0:
            reasons.add("CityTreasuryZeroAmount")
        if wallet.kind != Kind.MERCHANT:
            reasons.add("CityTreasuryNotMerchant")
        if wallet.frozen:
            reasons.add("CityTokenAccountFrozen")
        if wallet.status != Status.ACTIVE:
            reasons.add("CityTokenMerchantNotActive")
        if wallet.balance < amount:
            reasons.add("ERC20InsufficientBalance")
        tx = self._send("cashOut", reasons, self.treasury.cashOut, amount, sender=wallet.account)
        if tx:
            redemption = Redemption(
                wallet.address, RedemptionKind.CASH_OUT, amount, amount, wallet.payout_account
            )
            self._open_redemption(wallet, tx, redemption)

    def rule_cash_out(self, who="st_payee", pct="st_pct"):
        self._cash_out(self.wallets[PAYEES[who]], pct)

    def _request_resident_refund(self, wallet: Wallet, empty: bool) -> None:
        payout_account = ZERO_ID if empty else account_hash(wallet.address)
        tally = self._tally(wallet.address)
        balance, charged = wallet.balance, tally.charged
        used = max(0, charged - balance)
        reasons = self._pause_reasons()
        if payout_account == ZERO_ID:
            reasons.add("CityTreasuryEmptyReference")
        if wallet.kind != Kind.RESIDENT:
            reasons.add("CityTreasuryNotResident")
        if balance == 0:
            reasons.add("CityTreasuryNothingToRefund")
        if charged == 0 or used * MAX_BPS < charged * REFUND_MIN_USED_BPS:
            reasons.add("CityTreasuryRefundBelowUsage")
        if wallet.frozen:
            reasons.add("CityTokenAccountFrozen")
        if wallet.status != Status.ACTIVE:
            reasons.add("CityTokenResidentNotActive")
        tx = self._send(
            "requestResidentRefund",
            reasons,
            self.treasury.requestResidentRefund,
            payout_account,
            sender=wallet.account,
        )
        if not tx:
            return
        unused_incentive = balance * tally.incentive_charged // charged
        redemption = Redemption(
            wallet.address,
            RedemptionKind.RESIDENT_REFUND,
            balance,
            balance - unused_incentive,
            payout_account,
            charged_before=tally.charged,
            incentive_before=tally.incentive_charged,
        )
        tally.charged, tally.incentive_charged = 0, 0
        self.totals.clawed_back += unused_incentive
        self._open_redemption(wallet, tx, redemption)

    def rule_request_resident_refund(self, who="st_payer", empty="st_flag"):
        self._request_resident_refund(self.wallets[PAYERS[who]], empty == 0)

    def _pending_reasons(self, redemption_id: int) -> set[str]:
        in_range = redemption_id < len(self.redemptions)
        if in_range and self.redemptions[redemption_id].status == RedemptionStatus.PENDING:
            return set()
        return {"CityTreasuryRedemptionNotPending"}

    def _settle(self, choice: int, empty: bool) -> None:
        """Settles any redemption, closed ones and one past the last included."""
        redemption_id = choice % (len(self.redemptions) + 1)
        reference = ZERO_ID if empty else keccak(text=f"bank:{next(self.reference_counter)}")
        reasons = self._pending_reasons(redemption_id)
        if reference == ZERO_ID:
            reasons.add("CityTreasuryEmptyReference")
        if self._send(
            "settle",
            reasons,
            self.treasury.settle,
            redemption_id,
            reference,
            sender=self.roles["settler"],
        ):
            redemption = self.redemptions[redemption_id]
            redemption.status, redemption.closing_reference = RedemptionStatus.SETTLED, reference
            self.totals.settled += redemption.payout

    def rule_settle(self, choice="st_choice", empty="st_flag"):
        self._settle(choice, empty == 0)

    def _return(self, choice: int) -> None:
        """The bank transfer of a redemption failed: its tokens go back."""
        redemption_id = choice % (len(self.redemptions) + 1)
        reason = keccak(text=f"bank-failure:{next(self.reference_counter)}")
        reasons = self._pending_reasons(redemption_id)
        if not reasons:
            account = self.by_address[self.redemptions[redemption_id].account]
            reasons |= self._pause_reasons()
            if account.frozen:
                reasons.add("CityTokenAccountFrozen")
        if not self._send(
            "returnRedemption",
            reasons,
            self.treasury.returnRedemption,
            redemption_id,
            reason,
            sender=self.roles["settler"],
        ):
            return
        redemption = self.redemptions[redemption_id]
        redemption.status, redemption.closing_reference = RedemptionStatus.RETURNED, reason
        self.totals.returned += redemption.burned
        if redemption.kind == RedemptionKind.RESIDENT_REFUND:
            # The refund did not happen: the resident's usage stands as before the request.
            tally = self._tally(redemption.account)
            tally.charged += redemption.charged_before
            tally.incentive_charged += redemption.incentive_before
            self.totals.clawed_back -= redemption.burned - redemption.payout
        self._move(None, self.by_address[redemption.account], redemption.burned)

    def rule_return(self, choice="st_choice"):
        self._return(choice)

    # --- Compliance ---------------------------------------------------------------------------

    def _toggle_freeze(self, wallet: Wallet) -> None:
        method = self.token.unfreeze if wallet.frozen else self.token.freeze
        self._send(
            method.abi["name"], set(), method, wallet.address, sender=self.roles["compliance"]
        )
        wallet.frozen = not wallet.frozen

    def rule_toggle_freeze(self, who="st_any"):
        self._toggle_freeze(self.wallets[who])

    def _change_status(self, who: int, method, expected: Status, next_status: Status):
        wallet = self.wallets[who]
        reasons = set() if wallet.status == expected else {"CityRegistryInvalidStatusChange"}
        if self._send(
            method.abi["name"], reasons, method, wallet.address, sender=self.roles["registrar"]
        ):
            wallet.status = next_status

    def rule_suspend(self, who="st_any"):
        self._change_status(who, self.registry.suspend, Status.ACTIVE, Status.SUSPENDED)

    def rule_activate(self, who="st_any"):
        self._change_status(who, self.registry.activate, Status.SUSPENDED, Status.ACTIVE)

    def _set_paused(self, paused: bool) -> None:
        if paused:
            reasons = {"EnforcedPause"} if self.paused else set()
            method = self.token.pause
        else:
            reasons = set() if self.paused else {"ExpectedPause"}
            method = self.token.unpause
        if self._send(method.abi["name"], reasons, method, sender=self.roles["pauser"]):
            self.paused = paused

    def rule_pause_interlude(
        self, action="st_interlude", payer="st_payer", payee="st_payee", pct="st_pct"
    ):
        """Pauses the city, tries one operation, and unpauses (each twice: the second refused).

        A pause that lasts until a later rule lifts it would leave most examples paused."""
        payer_wallet, payee_wallet = self.wallets[PAYERS[payer]], self.wallets[PAYEES[payee]]
        actions = (
            lambda: self._plain_transfer(payer_wallet, payee_wallet, pct),
            lambda: self._invoice_pay(payer_wallet, payee_wallet, pct, 1 + pct % 5),
            lambda: self._gasless_pay(payer_wallet, payee_wallet, pct, 1 + pct % 5, 0, pct % 3),
            lambda: self._pay(payer_wallet, payee_wallet, pct, 3, 1 + pct % 5),
            lambda: self._charge(payer_wallet, CHARGE_AMOUNTS[pct % len(CHARGE_AMOUNTS)], 9),
            lambda: self._cash_out(payee_wallet, pct),
            lambda: self._request_resident_refund(payer_wallet, False),
            lambda: self._settle(pct, False),
            lambda: self._return(pct),
            lambda: self._refund(pct, pct, False),
            lambda: self._toggle_freeze(payer_wallet),
            lambda: self._register_resident(PAYERS[payer], False),
            lambda: self._cancel_authorization(payer_wallet, payment_id(1 + pct % 5), False),
        )
        self._set_paused(True)
        self._set_paused(True)
        actions[action]()
        self._set_paused(False)
        self._set_paused(False)

    def rule_forbidden_call(self, which="st_forbidden", who="st_any"):
        """A wallet without any role tries what only the city's staff or contracts may do."""
        wallet = self.wallets[who]
        target = self.wallets[(who + 1) % WALLETS].address
        unauthorized = {"AccessControlUnauthorizedAccount"}
        suite_only = {"CityTokenUnauthorizedSuiteCall"}
        calls = (
            (unauthorized, self.treasury.issue, target, 1_000, keccak(text="deposit:forged")),
            (suite_only, self.token.issue, wallet.address, 1_000),
            (suite_only, self.token.redeem, target, 1),
            (suite_only, self.token.restore, wallet.address, 1_000),
            (suite_only, self.token.setAccountStatus, wallet.address, Kind.MERCHANT, True),
            (unauthorized, self.treasury.settle, 0, keccak(text="bank:forged")),
            (unauthorized, self.token.freeze, target),
            (unauthorized, self.token.pause),
            (unauthorized, self.registry.registerResident, wallet.address, keccak(text="id"), 1),
            (unauthorized, self.treasury.configureIssuer, wallet.address, 10**9),
        )
        if which < len(calls):
            reasons, method, *args = calls[which]
            self._send(
                f"forbidden {method.abi['name']}", reasons, method, *args, sender=wallet.account
            )
            return
        # The per-item step of a batch is the token's alone, even with a valid authorization.
        payer, payee = self.wallets[0], self.wallets[RESIDENT_WALLETS]
        nonce = keccak(text=f"direct:{next(self.reference_counter)}")
        arguments, signature, _ = self._sign(payer, payee, 1, nonce, 0)
        self._send(
            "settleAuthorization",
            {"CityTokenSelfCallOnly"},
            self.token.settleAuthorization,
            arguments + signature,
            sender=self.roles["relayer"],
        )

    # --- Time ---------------------------------------------------------------------------------

    def rule_next_month(self, landing="st_landing"):
        chain.sleep(next_month_landing(chain.time(), landing) - chain.time())
        chain.mine()

    # --- Invariants ---------------------------------------------------------------------------

    def invariant_supply_is_balances_and_issued_less_burned_plus_returned(self):
        calls = [(self.token, "balanceOf", w.address) for w in self.wallets]
        *balances, supply, totals = self.reader.read(
            [*calls, (self.token, "totalSupply"), (self.treasury, "totals")]
        )
        issued, _, burned, returned, _, _ = totals
        assert sum(balances) == supply == issued - burned + returned
        assert tuple(totals) == self.totals.as_tuple()

    def invariant_no_transfer_from_a_resident_to_a_resident(self):
        kinds = {w.address: w.kind for w in self.wallets}
        observed, expected = self.observed_transfers, self.expected_transfers
        self.observed_transfers, self.expected_transfers = [], []
        for source, target, value in observed:
            assert not (kinds.get(source) == kinds.get(target) == Kind.RESIDENT), (
                f"{value} moved from resident {source} to resident {target}"
            )
        assert observed == expected, f"transfers {observed}, expected {expected}"

    def invariant_purchases_within_monthly_limit_and_issuance_within_annual_cap(self):
        residents = [w for w in self.wallets if w.kind == Kind.RESIDENT]
        *tallies, issued_this_year = self.reader.read(
            [(self.treasury, "residentTally", w.address) for w in residents]
            + [(self.treasury, "issuedThisFiscalYear")]
        )
        for wallet, tally in zip(residents, tallies, strict=True):
            assert tally[1] <= MONTHLY_LIMIT
            assert tally[2] <= MONTHLY_INCENTIVE_LIMIT
            assert tuple(tally) == self._tally(wallet.address).as_tuple(), wallet.address
        assert issued_this_year <= ANNUAL_CAP
        assert issued_this_year == self._issued_this_year()

    def invariant_every_redemption_ends_at_most_once(self):
        count, *redemptions = self.reader.read(
            [(self.treasury, "redemptionCount")]
            + [(self.treasury, "redemption", i) for i in range(len(self.redemptions))]
        )
        assert count == len(self.redemptions)
        for redemption_id, (model, chained) in enumerate(
            zip(self.redemptions, redemptions, strict=True)
        ):
            status = RedemptionStatus(chained[2])
            before = self.seen_status.get(redemption_id, RedemptionStatus.PENDING)
            assert status == before or before == RedemptionStatus.PENDING, (
                f"redemption {redemption_id} went from {before.name} to {status.name}"
            )
            self.seen_status[redemption_id] = status
            # (account, kind, status, requestedAt, closedAt, burned, chargedBefore, payout,
            #  incentiveBefore, payoutAccountHash, closingReference)
            assert (
                chained[0],
                chained[1],
                status,
                chained[5],
                chained[6],
                chained[7],
                chained[8],
                hex_bytes(chained[9]),
                hex_bytes(chained[10]),
            ) == (
                model.account,
                model.kind,
                model.status,
                model.burned,
                model.charged_before,
                model.payout,
                model.incentive_before,
                model.payout_account,
                model.closing_reference,
            )

    def invariant_chain_agrees_with_the_model(self):
        calls = [(self.token, "paused"), (self.treasury, "issuerAllowance", self.roles["issuer"])]
        for w in self.wallets:
            calls += [
                (self.token, "accountKind", w.address),
                (self.token, "isActive", w.address),
                (self.token, "isFrozen", w.address),
                (self.token, "balanceOf", w.address),
            ]
        payments = sorted(self.payments.items())
        calls += [
            (self.token, "refundableAmount", payer, p.payee, pid) for (payer, pid), p in payments
        ]
        plain = sorted(self.plain_payments.items())
        calls += [(self.token, "refundableAmount", *key, ZERO_ID) for key, _ in plain]
        calls += [(self.token, "authorizationState", payer, pid) for (payer, pid), _ in payments]
        paused, allowance, *rest = self.reader.read(calls)
        assert (paused, allowance) == (self.paused, self.allowance)
        for i, w in enumerate(self.wallets):
            kind, active, frozen, balance = rest[4 * i : 4 * i + 4]
            expected = (w.kind, w.status == Status.ACTIVE, w.frozen, w.balance)
            assert (kind, active, frozen, balance) == expected, f"wallet {i} {w.address}"
        rest = rest[4 * len(self.wallets) :]
        refundable = [p.refundable for _, p in payments] + [amount for _, amount in plain]
        assert rest[: len(refundable)] == refundable
        assert all(rest[len(refundable) :])


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
