"""The reference model of one city (token, registry, treasury): what every operation must do.

Each operation returns an Outcome: the custom errors that may refuse it in the model's state (the
chain must revert with one of them, or go through when there is none) and the effect the model
applies once it went through, given the block's timestamp. The model knows nothing of the chain:
tests/test_invariants.py drives the contracts and this model side by side, and reads this module as
the specification of the suite.

Wallets are addresses. A holder's first wallet is its origin; after a recovery its money, records
and status live in the replacement, the lost wallet is retired for good, and the holder's current
wallet is found from the origin (`current_wallet`), as the token finds it.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import IntEnum

ZERO_ADDRESS = "0x" + "00" * 20
ZERO_ID = bytes(32)
KST = dt.timezone(dt.timedelta(hours=9))
MAX_BPS = 10_000
MAX_CASH_OUT_VALIDITY = 86_400
MIN_RECOVERY_DELAY = 3_600
MAX_RECOVERY_DELAY = 30 * 86_400
UINT64_MAX = 2**64 - 1
UINT256_MAX = 2**256 - 1


class Kind(IntEnum):
    NONE = 0
    RESIDENT = 1
    MERCHANT = 2


class Status(IntEnum):
    NONE = 0
    ACTIVE = 1
    SUSPENDED = 2
    REVOKED = 3


class RedemptionKind(IntEnum):
    CASH_OUT = 0
    RESIDENT_REFUND = 1
    CONFISCATION = 2


class RedemptionStatus(IntEnum):
    NONE = 0
    PENDING = 1
    SETTLED = 2
    RETURNED = 3


class NonceState(IntEnum):
    """A token nonce or invoice id (PaymentRecord), or a treasury cash-out nonce (no VOIDED)."""

    UNUSED = 0
    USED = 1
    CANCELED = 2
    VOIDED = 3


NONCE_ERRORS = {
    NonceState.USED: "EIP3009AuthorizationUsed",
    NonceState.CANCELED: "EIP3009AuthorizationCanceled",
    NonceState.VOIDED: "EIP3009AuthorizationVoided",
}
CASH_OUT_NONCE_ERRORS = {
    NonceState.USED: "CityTreasuryAuthorizationUsed",
    NonceState.CANCELED: "CityTreasuryAuthorizationCanceled",
}
NOT_ACTIVE = {
    Kind.RESIDENT: "CityTokenResidentNotActive",
    Kind.MERCHANT: "CityTokenMerchantNotActive",
}


def month_index(timestamp: int) -> int:
    """KoreanCalendar.monthIndex: months since year 0 in Korea Standard Time."""
    local = dt.datetime.fromtimestamp(timestamp, KST)
    return local.year * 12 + local.month - 1


def fiscal_year(timestamp: int) -> int:
    """The fiscal year (starting in January) as the calendar year in KST."""
    return dt.datetime.fromtimestamp(timestamp, KST).year


# --- State ------------------------------------------------------------------------------------


@dataclass
class Wallet:
    """An address: the token's word for it (balance, kind, flags, origin), its registry record."""

    address: str
    kind: Kind = Kind.NONE
    status: Status = Status.NONE
    frozen: bool = False
    held: bool = False
    retired: bool = False
    balance: int = 0
    origin: str = ""
    # The registry's record: a resident's identity hash or a merchant's business id hash, ...
    key: bytes = ZERO_ID
    region: int = 0
    category: int = 0
    revenue: int = 0
    payout_account: bytes = ZERO_ID
    payout_nonce: int = 0
    illegal_exchange: bool = False
    permit_nonce: int = 0

    def __post_init__(self):
        self.origin = self.origin or self.address

    @property
    def locked(self) -> bool:
        return self.frozen or self.held

    def lock_refusals(self) -> set[str]:
        reasons = set()
        if self.retired:
            reasons.add("CityTokenAccountRetired")
        if self.held:
            reasons.add("CityTokenAccountInRecovery")
        if self.frozen:
            reasons.add("CityTokenAccountFrozen")
        return reasons

    def refusals(self, kind: Kind) -> set[str]:
        """Why the token refuses this wallet as the `kind` side of a payment or refund."""
        reasons = self.lock_refusals()
        if self.kind == Kind.NONE:
            reasons.add("CityTokenNotRegistered")
        elif self.status != Status.ACTIVE:
            reasons.add(NOT_ACTIVE[self.kind])
        if self.kind != kind:
            reasons.add("CityTokenTransferNotAllowed")
        return reasons

    def resident_record(self) -> tuple:
        """CityRegistry.residentOf: (identityHash, region, status)."""
        if self.kind != Kind.RESIDENT:
            return (ZERO_ID, 0, Status.NONE)
        return (self.key, self.region, self.status)

    def merchant_record(self) -> tuple:
        """CityRegistry.merchantOf: (businessIdHash, payoutAccountHash, annualRevenue, category,
        region, status)."""
        if self.kind != Kind.MERCHANT:
            return (ZERO_ID, ZERO_ID, 0, 0, 0, Status.NONE)
        return (
            self.key,
            self.payout_account,
            self.revenue,
            self.category,
            self.region,
            self.status,
        )


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
class Reversible:
    """What a resident's last refund (redemption `redemption_id`) counted as used, less what
    merchants refunded of it since; the incentive's share of its charges then; and what those
    merchant refunds made charged again (a return of that refund takes it back)."""

    usage: int
    share_bps: int
    redemption_id: int
    charged_back: int = 0
    incentive_back: int = 0


@dataclass
class NonceRecord:
    """PaymentRecord: a used nonce or invoice id keeps its payee and what may still be refunded."""

    state: NonceState
    payee: str = ZERO_ADDRESS
    refundable: int = 0


@dataclass
class Redemption:
    account: str
    kind: RedemptionKind
    burned: int
    payout: int
    payout_account: bytes
    requested_at: int
    status: RedemptionStatus = RedemptionStatus.PENDING
    closed_at: int = 0
    closing_reference: bytes = ZERO_ID
    # A resident refund resets the tally; a return puts back what the reset took.
    charged_before: int = 0
    incentive_before: int = 0

    def as_tuple(self) -> tuple:
        """CityTreasury.redemption, field by field."""
        return (
            self.account,
            self.kind,
            self.status,
            self.requested_at,
            self.closed_at,
            self.burned,
            self.charged_before,
            self.payout,
            self.incentive_before,
            self.payout_account,
            self.closing_reference,
        )


@dataclass
class Recovery:
    replacement: str
    proposer: str
    proposed_at: int
    executable_at: int

    def as_tuple(self) -> tuple:
        return (self.replacement, self.proposer, self.proposed_at, self.executable_at)


@dataclass
class Totals:
    issued: int = 0
    incentive: int = 0
    burned: int = 0
    returned: int = 0
    settled: int = 0
    clawed_back: int = 0
    confiscated: int = 0

    def as_tuple(self) -> tuple:
        """CityTreasury.totals() (totalConfiscated is read on its own)."""
        return (
            self.issued,
            self.incentive,
            self.burned,
            self.returned,
            self.settled,
            self.clawed_back,
        )


@dataclass
class Policy:
    annual_cap: int
    monthly_limit: int
    holding_cap: int
    incentive_bps: int
    monthly_incentive_limit: int
    revenue_cap: int
    ban_period: int
    recovery_delay: int
    excluded: set[int] = field(default_factory=set)
    refund_ratio: int = 6_000

    def treasury_policy(self) -> tuple:
        """CityTreasury.policy()."""
        return (
            self.annual_cap,
            self.monthly_limit,
            self.holding_cap,
            self.incentive_bps,
            self.monthly_incentive_limit,
        )


def _nothing(timestamp: int) -> None:
    """The effect of an operation that changes nothing the model keeps."""


@dataclass
class Outcome:
    """What an operation must do: revert with one of `reasons`, or go through when there is none
    and have `effect` (called with the block's timestamp)."""

    reasons: set[str]
    effect: Callable[[int], None] = _nothing


# --- The city ---------------------------------------------------------------------------------


class City:
    """One city's suite as the specification sees it."""

    def __init__(self, addresses: list[str], policy: Policy, issuer_allowance: int, now: int):
        self.wallets = {address: Wallet(address) for address in addresses}
        self.policy = policy
        self.paused = False
        self.issuer_allowance = issuer_allowance
        self.issuer_enabled = True
        self.resident_count = 0
        self.merchant_count = 0
        # The registry.
        self.identities: dict[bytes, str] = {}
        self.businesses: dict[bytes, str] = {}
        self.banned_until: dict[bytes, int] = {}
        self.recoveries: dict[str, Recovery] = {}
        # The token.
        self.current_of: dict[str, str] = {}
        self.records: dict[tuple[str, bytes], NonceRecord] = {}
        self.plain_payments: dict[tuple[str, str], int] = {}
        self.allowances: dict[tuple[str, str], int] = {}
        # The treasury.
        self.tallies: dict[str, Tally] = {}
        self.reversible: dict[str, Reversible] = {}
        self.deposits: set[bytes] = set()
        self.bank_references: set[bytes] = set()
        self.cash_out_nonces: dict[tuple[str, bytes], NonceState] = {}
        self.redemptions: list[Redemption] = []
        self.totals = Totals()
        self.fiscal_year, self.issued_in_fiscal_year = fiscal_year(now), 0
        # Every Transfer the token must have emitted, in order: (from, to, value).
        self.transfers: list[tuple[str, str, int]] = []
        # Wallet recoveries in the order they happened: (lost, replacement).
        self.recovered: list[tuple[str, str]] = []

    # --- Reads --------------------------------------------------------------------------------

    def wallet(self, address: str) -> Wallet:
        return self.wallets[address]

    def origin_of(self, address: str) -> str:
        return self.wallets[address].origin if address in self.wallets else address

    def current_wallet(self, address: str) -> str:
        """CityToken.currentWallet: one look-up from the holder's first wallet."""
        return self.current_of.get(self.origin_of(address), address)

    def tally(self, address: str, now: int) -> Tally:
        """The resident's tally as the treasury reads it now (this month's counters)."""
        month = month_index(now)
        tally = self.tallies.setdefault(address, Tally(month))
        if tally.month != month:
            tally.month, tally.purchased, tally.incentive = month, 0, 0
        return tally

    def tally_at(self, address: str, now: int) -> tuple:
        """CityTreasury.residentTally, without creating a record."""
        if address not in self.tallies:
            return Tally(month_index(now)).as_tuple()
        return self.tally(address, now).as_tuple()

    def issued_this_year(self, now: int) -> int:
        return self.issued_in_fiscal_year if self.fiscal_year == fiscal_year(now) else 0

    def nonce_state(self, authorizer: str, nonce: bytes) -> NonceState:
        record = self.records.get((authorizer, nonce))
        return record.state if record else NonceState.UNUSED

    def _paused(self) -> set[str]:
        return {"EnforcedPause"} if self.paused else set()

    def _move(self, source: Wallet | None, target: Wallet | None, value: int) -> None:
        if source is not None:
            source.balance -= value
        if target is not None:
            target.balance += value
        self.transfers.append(
            (
                source.address if source else ZERO_ADDRESS,
                target.address if target else ZERO_ADDRESS,
                value,
            )
        )

    # --- Registration -------------------------------------------------------------------------

    def _new_wallet_refusals(self, address: str) -> set[str]:
        """CityRegistry._requireNew."""
        wallet = self.wallets[address]
        if wallet.retired:
            return {"CityRegistryWalletRetired"}
        if wallet.status != Status.NONE or wallet.kind != Kind.NONE:
            return {"CityRegistryAlreadyRegistered"}
        return set()

    def register_resident(self, address: str, identity: bytes, region: int) -> Outcome:
        reasons = self._new_wallet_refusals(address)
        if identity in self.identities:
            reasons.add("CityRegistryIdentityInUse")

        def effect(timestamp: int) -> None:
            wallet = self.wallets[address]
            wallet.kind, wallet.status = Kind.RESIDENT, Status.ACTIVE
            wallet.key, wallet.region = identity, region
            self.identities[identity] = address
            self.resident_count += 1

        return Outcome(reasons, effect)

    def _payout_signature_refusals(
        self, payout_account: bytes, *, signed: bool, expired: bool
    ) -> set[str]:
        """A PayoutAccount signature over the wallet's next nonce (`signed`: the merchant's)."""
        reasons = set()
        if payout_account == ZERO_ID:
            reasons.add("CityRegistryEmptyHash")
        if expired:
            reasons.add("CityRegistrySignatureExpired")
        if not signed:
            reasons.add("CityRegistryInvalidSignature")
        return reasons

    def _eligibility_refusals(self, category: int, revenue: int) -> set[str]:
        reasons = set()
        if category in self.policy.excluded:
            reasons.add("CityRegistryCategoryExcluded")
        if revenue > self.policy.revenue_cap:
            reasons.add("CityRegistryRevenueOverCap")
        return reasons

    def register_merchant(
        self,
        address: str,
        business: bytes,
        payout_account: bytes,
        revenue: int,
        category: int,
        region: int,
        *,
        signed: bool,
        expired: bool,
        now: int,
    ) -> Outcome:
        reasons = self._new_wallet_refusals(address)
        if self.banned_until.get(business, 0) > now:
            reasons.add("CityRegistryBusinessBanned")
        if business in self.businesses:
            reasons.add("CityRegistryBusinessInUse")
        reasons |= self._eligibility_refusals(category, revenue)
        reasons |= self._payout_signature_refusals(payout_account, signed=signed, expired=expired)

        def effect(timestamp: int) -> None:
            wallet = self.wallets[address]
            wallet.kind, wallet.status = Kind.MERCHANT, Status.ACTIVE
            wallet.key, wallet.payout_account = business, payout_account
            wallet.revenue, wallet.category, wallet.region = revenue, category, region
            wallet.payout_nonce += 1
            self.businesses[business] = address
            self.merchant_count += 1

        return Outcome(reasons, effect)

    def update_merchant(self, address: str, category: int, region: int, revenue: int) -> Outcome:
        wallet = self.wallets[address]
        reasons = set() if wallet.kind == Kind.MERCHANT else {"CityRegistryNotMerchant"}
        reasons |= self._eligibility_refusals(category, revenue)

        def effect(timestamp: int) -> None:
            wallet.category, wallet.region, wallet.revenue = category, region, revenue

        return Outcome(reasons, effect)

    def change_payout_account(
        self, address: str, payout_account: bytes, *, signed: bool, expired: bool
    ) -> Outcome:
        wallet = self.wallets[address]
        reasons = set() if wallet.kind == Kind.MERCHANT else {"CityRegistryNotMerchant"}
        reasons |= self._payout_signature_refusals(payout_account, signed=signed, expired=expired)

        def effect(timestamp: int) -> None:
            wallet.payout_account = payout_account
            wallet.payout_nonce += 1

        return Outcome(reasons, effect)

    # --- Lifecycle ----------------------------------------------------------------------------

    def change_status(self, address: str, expected: Status, next_status: Status) -> Outcome:
        """activate (Suspended -> Active) and suspend (Active -> Suspended)."""
        wallet = self.wallets[address]
        reasons = set() if wallet.status == expected else {"CityRegistryInvalidStatusChange"}

        def effect(timestamp: int) -> None:
            wallet.status = next_status

        return Outcome(reasons, effect)

    def revoke(self, address: str, illegal_exchange: bool) -> Outcome:
        wallet = self.wallets[address]
        reasons = set()
        if wallet.status in (Status.NONE, Status.REVOKED):
            reasons.add("CityRegistryInvalidStatusChange")
        if address in self.recoveries:
            reasons.add("CityRegistryRecoveryPending")

        def effect(timestamp: int) -> None:
            wallet.status = Status.REVOKED
            wallet.illegal_exchange = illegal_exchange
            if wallet.kind == Kind.MERCHANT:
                self.merchant_count -= 1
                self.businesses.pop(wallet.key, None)
                if illegal_exchange:
                    # A ban period past the end of time bans for good.
                    until = min(timestamp + self.policy.ban_period, UINT64_MAX)
                    self.banned_until[wallet.key] = until
            else:
                self.resident_count -= 1
                self.identities.pop(wallet.key, None)

        return Outcome(reasons, effect)

    def confiscate(self, address: str, reason: bytes) -> Outcome:
        """Compliance burns the balance of an account revoked for illegal exchange."""
        wallet = self.wallets[address]
        reasons = set()
        if not wallet.illegal_exchange:
            reasons.add("CityRegistryNotRevokedForIllegalExchange")
        if wallet.balance == 0:
            reasons.add("CityTreasuryZeroAmount")
        reasons |= self._paused()

        def effect(timestamp: int) -> None:
            amount = wallet.balance
            self.redemptions.append(
                Redemption(
                    address,
                    RedemptionKind.CONFISCATION,
                    amount,
                    0,
                    ZERO_ID,
                    timestamp,
                    status=RedemptionStatus.SETTLED,
                    closed_at=timestamp,
                    closing_reference=reason,
                )
            )
            self.totals.burned += amount
            self.totals.confiscated += amount
            self._move(wallet, None, amount)

        return Outcome(reasons, effect)

    # --- Wallet recovery ----------------------------------------------------------------------

    def propose_recovery(self, lost: str, replacement: str, proposer: str) -> Outcome:
        wallet = self.wallets[lost]
        reasons = set()
        if wallet.status == Status.NONE:
            reasons.add("CityRegistryNotRegistered")
        if wallet.illegal_exchange:
            reasons.add("CityRegistryRevokedForIllegalExchange")
        if lost in self.recoveries:
            reasons.add("CityRegistryRecoveryPending")
        reasons |= self._new_wallet_refusals(replacement)

        def effect(timestamp: int) -> None:
            executable_at = timestamp + self.policy.recovery_delay
            self.recoveries[lost] = Recovery(replacement, proposer, timestamp, executable_at)
            wallet.held = True

        return Outcome(reasons, effect)

    def execute_recovery(self, lost: str, sender: str, now: int) -> Outcome:
        recovery = self.recoveries.get(lost)
        if recovery is None:
            return Outcome({"CityRegistryNoRecoveryPending"})
        reasons = set()
        if now < recovery.executable_at:
            reasons.add("CityRegistryRecoveryNotDue")
        if sender == recovery.proposer:
            reasons.add("CityRegistryRecoveryNeedsSecondRole")
        reasons |= self._new_wallet_refusals(recovery.replacement)
        # The token takes only a replacement whose word is empty: a frozen one is not.
        if self.wallets[recovery.replacement].frozen:
            reasons.add("CityTokenReplacementInUse")
        reasons |= self._paused()

        def effect(timestamp: int) -> None:
            self._recover(lost, recovery.replacement)

        return Outcome(reasons, effect)

    def _recover(self, lost: str, replacement: str) -> None:
        old, new = self.wallets[lost], self.wallets[replacement]
        del self.recoveries[lost]
        # The record, status and flags move (a freeze too; the hold ends); the lost wallet keeps
        # only its origin, retired for good. Payout and permit nonces stay with their addresses.
        for name in ("kind", "status", "frozen", "key", "region", "category", "revenue"):
            setattr(new, name, getattr(old, name))
        new.payout_account, new.origin = old.payout_account, old.origin
        index = self.businesses if old.kind == Kind.MERCHANT else self.identities
        if index.get(old.key) == lost:
            index[old.key] = replacement
        if old.kind == Kind.RESIDENT:
            for table in (self.tallies, self.reversible):
                if lost in table:
                    table[replacement] = table.pop(lost)
        self.current_of[old.origin] = replacement
        self._move(old, new, old.balance)
        old.kind, old.status, old.frozen, old.held, old.retired = (
            Kind.NONE,
            Status.NONE,
            False,
            False,
            True,
        )
        old.key, old.region, old.category, old.revenue = ZERO_ID, 0, 0, 0
        old.payout_account = ZERO_ID
        self.recovered.append((lost, replacement))

    def end_recovery(self, lost: str, *, objection: bool = False, refused: bool = False):
        """cancelRecovery by compliance, or (`objection`) objectToRecovery by the holder:
        `refused`, relayed with a signature that is not the holder's. The key of a wallet
        compliance froze is taken to be in the wrong hands: it does not object."""
        if lost not in self.recoveries:
            return Outcome({"CityRegistryNoRecoveryPending"})
        reasons = {"CityRegistryInvalidSignature"} if refused else set()
        if objection and self.wallets[lost].frozen:
            reasons.add("CityRegistryFrozenWalletCannotObject")

        def effect(timestamp: int) -> None:
            del self.recoveries[lost]
            self.wallets[lost].held = False

        return Outcome(reasons, effect)

    # --- Charging (충전) -----------------------------------------------------------------------

    def charge(self, address: str, amount: int, reference: bytes, now: int) -> Outcome:
        wallet, policy = self.wallets[address], self.policy
        tally = self.tally(address, now)
        incentive_left = max(0, policy.monthly_incentive_limit - tally.incentive)
        incentive = min(amount * policy.incentive_bps // MAX_BPS, incentive_left)
        total = amount + incentive
        reasons = set() if self.issuer_enabled else {"AccessControlUnauthorizedAccount"}
        if amount == 0:
            reasons.add("CityTreasuryZeroAmount")
        if reference == ZERO_ID:
            reasons.add("CityTreasuryEmptyReference")
        if reference in self.deposits:
            reasons.add("CityTreasuryDepositAlreadyIssued")
        if wallet.kind != Kind.RESIDENT:
            reasons.add("CityTreasuryNotResident")
        else:
            reasons |= wallet.refusals(Kind.RESIDENT) | self._paused()
        if tally.purchased + amount > policy.monthly_limit:
            reasons.add("CityTreasuryMonthlyLimitExceeded")
        if wallet.balance + total > policy.holding_cap:
            reasons.add("CityTreasuryHoldingCapExceeded")
        if self.issued_this_year(now) + total > policy.annual_cap:
            reasons.add("CityTreasuryAnnualCapExceeded")
        if total > self.issuer_allowance:
            reasons.add("CityTreasuryIssuerAllowanceExceeded")

        def effect(timestamp: int) -> None:
            self.deposits.add(reference)
            self.issuer_allowance -= total
            self.fiscal_year, self.issued_in_fiscal_year = (
                fiscal_year(now),
                self.issued_this_year(now) + total,
            )
            self.totals.issued += total
            self.totals.incentive += incentive
            tally.purchased += amount
            tally.incentive += incentive
            tally.charged += total
            tally.incentive_charged += incentive
            self._move(None, wallet, total)

        return Outcome(reasons, effect)

    def configure_issuer(self, allowance: int) -> Outcome:
        def effect(timestamp: int) -> None:
            self.issuer_allowance, self.issuer_enabled = allowance, True

        return Outcome(set(), effect)

    def remove_issuer(self) -> Outcome:
        def effect(timestamp: int) -> None:
            self.issuer_allowance, self.issuer_enabled = 0, False

        return Outcome(set(), effect)

    def grant_issuer_role(self) -> Outcome:
        """grantRole(ISSUER_ROLE, issuer): the role back, with whatever allowance it had."""

        def effect(timestamp: int) -> None:
            self.issuer_enabled = True

        return Outcome(set(), effect)

    # --- Payments -----------------------------------------------------------------------------

    def payment_refusals(self, payer: str, payee: str, value: int) -> set[str]:
        """CityToken._tryMove for a Payment: an active resident to an active merchant, above 0."""
        source, target = self.wallets[payer], self.wallets[payee]
        reasons = self._paused() | source.refusals(Kind.RESIDENT) | target.refusals(Kind.MERCHANT)
        if value == 0:
            reasons.add("CityTokenZeroValue")
        if source.balance < value:
            reasons.add("ERC20InsufficientBalance")
        return reasons

    def transfer(self, payer: str, payee: str, value: int, *, spender: str | None = None):
        """A plain ERC-20 payment: transfer, or transferFrom by `spender`."""
        reasons = self.payment_refusals(payer, payee, value)
        allowance = self.allowances.get((payer, spender), 0) if spender else UINT256_MAX
        if allowance < value:
            reasons.add("ERC20InsufficientAllowance")

        def effect(timestamp: int) -> None:
            if allowance != UINT256_MAX:
                self.allowances[(payer, spender)] = allowance - value
            key = (self.origin_of(payer), self.origin_of(payee))
            self.plain_payments[key] = self.plain_payments.get(key, 0) + value
            self._move(self.wallets[payer], self.wallets[payee], value)

        return Outcome(reasons, effect)

    def approve(self, owner: str, spender: str, value: int, *, permit: set[str] | None = None):
        """approve by the owner, or a relayed EIP-2612 permit: `permit` holds its flaw's error."""
        reasons = set(permit or ())

        def effect(timestamp: int) -> None:
            self.allowances[(owner, spender)] = value
            if permit is not None:
                self.wallets[owner].permit_nonce += 1

        return Outcome(reasons, effect)

    def pay(self, payer: str, payee: str, value: int, invoice: bytes) -> Outcome:
        reasons = self.payment_refusals(payer, payee, value)
        if invoice == ZERO_ID:
            reasons.add("CityTokenZeroPaymentId")
        if (payer, invoice) in self.records:
            reasons.add("CityTokenPaymentIdUsed")

        def effect(timestamp: int) -> None:
            self.records[(payer, invoice)] = NonceRecord(NonceState.USED, payee, value)
            self._move(self.wallets[payer], self.wallets[payee], value)

        return Outcome(reasons, effect)

    def authorized_payment(
        self, payer: str, payee: str, value: int, nonce: bytes, *, window: str | None, signed: bool
    ) -> tuple[Outcome, bool]:
        """An EIP-3009 authorization in USDC's order (window, nonce, signature, the token's rules).
        `window` is its window's error if any; `signed`: the signature is the payer's.

        Returns the outcome and whether a batch that refuses it voids its nonce: an unused one,
        under the payer's signature, refused by the token's rules or not yet valid (a used or
        cancelled nonce keeps its record)."""
        state = self.nonce_state(payer, nonce)
        stage = {window} if window else set()
        if state != NonceState.UNUSED:
            stage.add(NONCE_ERRORS[state])
        if not signed:
            stage.add("EIP3009InvalidSignature")
        rules = self.payment_refusals(payer, payee, value)
        if nonce == ZERO_ID:
            rules.add("CityTokenZeroPaymentId")
        reasons = stage | rules
        voids = (
            bool(reasons)
            and signed
            and state == NonceState.UNUSED
            and window in (None, "EIP3009AuthorizationNotYetValid")
        )

        def effect(timestamp: int) -> None:
            self.records[(payer, nonce)] = NonceRecord(NonceState.USED, payee, value)
            self._move(self.wallets[payer], self.wallets[payee], value)

        return Outcome(reasons, effect), voids

    def void(self, authorizer: str, nonce: bytes) -> None:
        self.records[(authorizer, nonce)] = NonceRecord(NonceState.VOIDED)

    def cancel_authorization(self, authorizer: str, nonce: bytes, *, signed: bool) -> Outcome:
        state = self.nonce_state(authorizer, nonce)
        reasons = set() if state == NonceState.UNUSED else {NONCE_ERRORS[state]}
        if not signed:
            reasons.add("EIP3009InvalidSignature")

        def effect(timestamp: int) -> None:
            self.records[(authorizer, nonce)] = NonceRecord(NonceState.CANCELED)

        return Outcome(reasons, effect)

    # --- Merchant refunds ---------------------------------------------------------------------

    def refundable(self, payer: str, merchant: str, payment_id: bytes) -> int:
        """CityToken.refundableAmount: what `merchant` may still refund of the payment."""
        if payment_id == ZERO_ID:
            return self.plain_payments.get((self.origin_of(payer), self.origin_of(merchant)), 0)
        record = self.records.get((payer, payment_id))
        if record is None or record.state != NonceState.USED:
            return 0
        return record.refundable if self.current_wallet(record.payee) == merchant else 0

    def refund(self, merchant: str, payer: str, payment_id: bytes, value: int, now: int):
        """`merchant` (the sender, or the signer of a relayed refund) refunds `value` of `payer`'s
        payment `payment_id` (zero: its plain transfers) to the payer's current wallet."""
        reasons = set()
        record = self.records.get((payer, payment_id))
        if payment_id != ZERO_ID and not (
            record is not None
            and record.state == NonceState.USED
            and self.current_wallet(record.payee) == merchant
        ):
            reasons.add("CityTokenPaymentNotFound")
        refundable = self.refundable(payer, merchant, payment_id)
        if value > refundable:
            reasons.add("CityTokenRefundExceedsPayment")
        resident = self.current_wallet(payer)
        source, target = self.wallets[merchant], self.wallets[resident]
        reasons |= self._paused() | source.refusals(Kind.MERCHANT) | target.refusals(Kind.RESIDENT)
        if value == 0:
            reasons.add("CityTokenZeroValue")
        if source.balance < value:
            reasons.add("ERC20InsufficientBalance")

        def effect(timestamp: int) -> None:
            if payment_id == ZERO_ID:
                key = (self.origin_of(payer), self.origin_of(merchant))
                self.plain_payments[key] = refundable - value
            else:
                record.refundable -= value
            self._move(source, target, value)
            self._merchant_refunded(resident, value, now)

        return Outcome(reasons, effect)

    def _merchant_refunded(self, resident: str, value: int, now: int) -> None:
        """CityTreasury.recordMerchantRefund: what the resident's last refund counted as used and
        a merchant now refunded is charged money again, with the incentive share it had."""
        reversible = self.reversible.get(resident)
        back = min(value, reversible.usage) if reversible else 0
        if back == 0:
            return
        incentive_back = back * reversible.share_bps // MAX_BPS
        reversible.usage -= back
        reversible.charged_back += back
        reversible.incentive_back += incentive_back
        tally = self.tally(resident, now)
        tally.charged += back
        tally.incentive_charged += incentive_back

    def signed_refund(
        self,
        merchant: str,
        payer: str,
        payment_id: bytes,
        value: int,
        nonce: bytes,
        *,
        window: str | None,
        signed: bool,
        now: int,
    ) -> Outcome:
        """refundWithAuthorization: EIP-3009's checks on the merchant's nonce, then refund's."""
        refund = self.refund(merchant, payer, payment_id, value, now)
        state = self.nonce_state(merchant, nonce)
        reasons = refund.reasons | ({window} if window else set())
        if state != NonceState.UNUSED:
            reasons.add(NONCE_ERRORS[state])
        if not signed:
            reasons.add("EIP3009InvalidSignature")
        if nonce == ZERO_ID:
            reasons.add("CityTokenZeroNonce")

        def effect(timestamp: int) -> None:
            # The nonce's record names the payer and leaves nothing to refund back.
            self.records[(merchant, nonce)] = NonceRecord(NonceState.USED, payer, 0)
            refund.effect(timestamp)

        return Outcome(reasons, effect)

    # --- Cash-out (환전), resident refund (환불), settlement -------------------------------------

    def _burn_refusals(self, wallet: Wallet, closing: bool) -> set[str]:
        """The token's Redeem (an active account) or Close (a revoked one's closing redemption)."""
        reasons = self._paused() | wallet.lock_refusals()
        if not closing and wallet.status != Status.ACTIVE:
            reasons.add(NOT_ACTIVE[wallet.kind])
        return reasons

    def _closing_refusals(self, wallet: Wallet) -> set[str]:
        if wallet.status == Status.REVOKED and wallet.illegal_exchange:
            return {"CityTreasuryAwaitingConfiscation"}
        return set()

    def _open(self, wallet: Wallet, redemption: Redemption) -> None:
        self.redemptions.append(redemption)
        self.totals.burned += redemption.burned
        self._move(wallet, None, redemption.burned)

    def cash_out(self, address: str, amount: int, *, signed_account: bytes | None = None):
        """cashOut, or (`signed_account`) the part of cashOutWithAuthorization after its
        signature: to the payout account the registry holds, which the merchant signed."""
        wallet = self.wallets[address]
        reasons = set()
        if amount == 0:
            reasons.add("CityTreasuryZeroAmount")
        if wallet.kind != Kind.MERCHANT:
            reasons.add("CityTreasuryNotMerchant")
        else:
            reasons |= self._closing_refusals(wallet)
            reasons |= self._burn_refusals(wallet, wallet.status == Status.REVOKED)
        if wallet.balance < amount:
            reasons.add("ERC20InsufficientBalance")
        if signed_account is not None and signed_account != wallet.payout_account:
            reasons.add("CityTreasuryPayoutAccountMismatch")

        def effect(timestamp: int) -> None:
            redemption = Redemption(
                address, RedemptionKind.CASH_OUT, amount, amount, wallet.payout_account, timestamp
            )
            self._open(wallet, redemption)

        return Outcome(reasons, effect)

    def signed_cash_out(
        self,
        address: str,
        amount: int,
        signed_account: bytes,
        nonce: bytes,
        *,
        window: str | None,
        signed: bool,
    ) -> Outcome:
        cash_out = self.cash_out(address, amount, signed_account=signed_account)
        state = self.cash_out_nonces.get((address, nonce), NonceState.UNUSED)
        reasons = cash_out.reasons | ({window} if window else set())
        if state != NonceState.UNUSED:
            reasons.add(CASH_OUT_NONCE_ERRORS[state])
        if not signed:
            reasons.add("CityTreasuryInvalidSignature")

        def effect(timestamp: int) -> None:
            self.cash_out_nonces[(address, nonce)] = NonceState.USED
            cash_out.effect(timestamp)

        return Outcome(reasons, effect)

    def cancel_cash_out(self, address: str, nonce: bytes, *, signed: bool) -> Outcome:
        state = self.cash_out_nonces.get((address, nonce), NonceState.UNUSED)
        reasons = set() if state == NonceState.UNUSED else {CASH_OUT_NONCE_ERRORS[state]}
        if not signed:
            reasons.add("CityTreasuryInvalidSignature")

        def effect(timestamp: int) -> None:
            self.cash_out_nonces[(address, nonce)] = NonceState.CANCELED

        return Outcome(reasons, effect)

    def resident_refund(self, address: str, payout_account: bytes, now: int) -> Outcome:
        """A resident who used 60% of its charges (or was revoked: its closing refund) redeems
        all it holds less the unused incentive, which is clawed back."""
        wallet = self.wallets[address]
        tally = self.tally(address, now)
        balance, charged, incentive_charged = wallet.balance, tally.charged, tally.incentive_charged
        used = max(0, charged - balance)
        closing = wallet.status == Status.REVOKED
        reasons = set()
        if payout_account == ZERO_ID:
            reasons.add("CityTreasuryEmptyReference")
        if wallet.kind != Kind.RESIDENT:
            reasons.add("CityTreasuryNotResident")
        else:
            reasons |= self._closing_refusals(wallet) | self._burn_refusals(wallet, closing)
        if balance == 0:
            reasons.add("CityTreasuryNothingToRefund")
        required = self.policy.refund_ratio
        if not closing and (charged == 0 or used * MAX_BPS < charged * required):
            reasons.add("CityTreasuryRefundBelowUsage")
        unused_incentive = (
            0 if charged == 0 else min(balance * incentive_charged // charged, incentive_charged)
        )

        def effect(timestamp: int) -> None:
            redemption = Redemption(
                address,
                RedemptionKind.RESIDENT_REFUND,
                balance,
                balance - unused_incentive,
                payout_account,
                timestamp,
                charged_before=charged,
                incentive_before=incentive_charged,
            )
            share = 0 if charged == 0 else incentive_charged * MAX_BPS // charged
            # An earlier refund's record gives way: what it counted was paid out or returned.
            self.reversible[address] = Reversible(used, share, len(self.redemptions))
            tally.charged, tally.incentive_charged = 0, 0
            self.totals.clawed_back += unused_incentive
            self._open(wallet, redemption)

        return Outcome(reasons, effect)

    def _pending(self, redemption_id: int) -> Redemption | None:
        if redemption_id < len(self.redemptions):
            redemption = self.redemptions[redemption_id]
            if redemption.status == RedemptionStatus.PENDING:
                return redemption
        return None

    def _redemption_named(self, redemption_id: int, account: str, amount: str, named: int):
        """A settlement or return names the pending redemption it closes by id, account and
        amount (`amount`: its field), so a call sent again after a rollback that renumbered
        the redemptions closes the one it was for or nothing."""
        redemption = self._pending(redemption_id)
        if redemption is None:
            return None, {"CityTreasuryRedemptionNotPending"}
        if (account, named) != (redemption.account, getattr(redemption, amount)):
            return redemption, {"CityTreasuryRedemptionMismatch"}
        return redemption, set()

    def settle(self, redemption_id: int, account: str, payout: int, reference: bytes) -> Outcome:
        redemption, reasons = self._redemption_named(redemption_id, account, "payout", payout)
        if reference == ZERO_ID:
            reasons.add("CityTreasuryEmptyReference")
        if reference in self.bank_references:
            reasons.add("CityTreasuryBankReferenceUsed")
        account = redemption and self.wallets[self.current_wallet(redemption.account)]
        if account and account.locked:
            reasons.add("CityTreasuryAccountLocked")
        if account and account.illegal_exchange:
            # Returned instead, then confiscated.
            reasons.add("CityTreasuryAwaitingConfiscation")

        def effect(timestamp: int) -> None:
            redemption.status, redemption.closing_reference = RedemptionStatus.SETTLED, reference
            redemption.closed_at = timestamp
            self.bank_references.add(reference)
            self.totals.settled += redemption.payout

        return Outcome(reasons, effect)

    def return_redemption(
        self, redemption_id: int, account_named: str, burned: int, reason: bytes, now: int
    ) -> Outcome:
        """The bank transfer failed: the tokens go back to the account's current wallet."""
        redemption, reasons = self._redemption_named(redemption_id, account_named, "burned", burned)
        if redemption is None:
            return Outcome(reasons)
        account = self.wallets[self.current_wallet(redemption.account)]
        reasons |= self._paused() | account.lock_refusals()
        if account.kind == Kind.NONE:
            reasons.add("CityTokenNotRegistered")

        def effect(timestamp: int) -> None:
            redemption.status, redemption.closing_reference = RedemptionStatus.RETURNED, reason
            redemption.closed_at = timestamp
            self.totals.returned += redemption.burned
            if redemption.kind == RedemptionKind.RESIDENT_REFUND:
                # The refund did not happen: the tally it reset is put back, and the merchant
                # refunds of payments it counted as used only lift the balance again.
                tally = self.tally(account.address, now)
                tally.charged += redemption.charged_before
                tally.incentive_charged += redemption.incentive_before
                reversible = self.reversible.get(account.address)
                if (
                    reversible
                    and reversible.redemption_id == redemption_id
                    and reversible.usage + reversible.charged_back
                ):
                    tally.charged -= reversible.charged_back
                    tally.incentive_charged -= reversible.incentive_back
                    del self.reversible[account.address]
                self.totals.clawed_back -= redemption.burned - redemption.payout
            self._move(None, account, redemption.burned)

        return Outcome(reasons, effect)

    # --- Staff --------------------------------------------------------------------------------

    def set_paused(self, paused: bool) -> Outcome:
        if self.paused == paused:
            return Outcome({"EnforcedPause" if paused else "ExpectedPause"})

        def effect(timestamp: int) -> None:
            self.paused = paused

        return Outcome(set(), effect)

    def sweep(self, address: str) -> Outcome:
        """Nothing expires in this model's city (its general money is valid for 50 years) and it
        runs no programs: a sweep changes nothing, unless the city is paused."""
        return Outcome(self._paused(), lambda timestamp: None)

    def refresh_general_exclusion(self, address: str) -> Outcome:
        """The general revenue cap is the registration cap here: nobody is excluded."""
        wallet = self.wallets[address]
        reasons = set() if wallet.kind == Kind.MERCHANT else {"CityRegistryNotMerchant"}
        return Outcome(reasons, lambda timestamp: None)

    def set_frozen(self, address: str, frozen: bool) -> Outcome:
        def effect(timestamp: int) -> None:
            self.wallets[address].frozen = frozen

        return Outcome(set(), effect)

    def set_policy(self, name: str, value) -> Outcome:
        """A policy setter (Policy's field `name`); `excluded` takes (category, excluded)."""
        reasons = set()
        if name == "incentive_bps" and value > MAX_BPS:
            reasons.add("CityTreasuryRateTooHigh")
        if name == "recovery_delay" and not MIN_RECOVERY_DELAY <= value <= MAX_RECOVERY_DELAY:
            reasons.add("CityRegistryRecoveryDelayOutOfRange")
        if name == "refund_ratio" and not 6_000 <= value <= 8_000:
            reasons.add("CityTreasuryRefundRatioOutOfRange")

        def effect(timestamp: int) -> None:
            if name == "excluded":
                category, excluded = value
                (self.policy.excluded.add if excluded else self.policy.excluded.discard)(category)
            else:
                setattr(self.policy, name, value)

        return Outcome(reasons, effect)
