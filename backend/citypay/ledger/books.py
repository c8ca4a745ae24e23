"""The books: a city's money, folded from its contracts' events in chain order.

Every figure is in won and comes from events alone, so the same `Books` serves the dashboard (from
the `chain_events` table) and the auditor (from a node it reads itself), and either can set it
against the contracts' own views. What each event means:

- treasury `Issued(resident, ref, issuer, amount, incentive)`: a charge (충전); `amount + incentive`
  is minted. `issued` counts both, as the treasury's `totals()` does.
- token `Transfer`: balances and the supply. Between two accounts it is a payment when a resident
  pays a merchant, a refund's movement when a merchant pays a resident, otherwise a recovered
  wallet's balance moving to its replacement. Who is what comes from the token's `AccountStatusSet`
  (the registry sets it on every registration and status change) and `AccountRecovered`.
- token `Refunded(merchant, payer, paymentId, value)`: a merchant's refund of a payment.
- treasury `RedemptionRequested` / `RedemptionSettled` / `RedemptionReturned`: a merchant's
  cash-out (환전) or a resident's refund (환불): tokens burned, then the bank transfer paid
  (`settled`, in payout won) or failed and the tokens restored (`returned`). A pending one is
  `outstanding` (its payout, what the city still owes).
- cashback `CashbackPaid(..., resident, base, bps, minted, fromDebt)`: cashback on a payment (결제
  캐시백), the city's incentive paid when a resident pays rather than at charge. `minted` is new
  money (the treasury counts it in `issued` and `incentive`, as the books do); `fromDebt` only
  settles what the resident owed from a reversed cashback. Both come off the cashback budget.
- cashback `CashbackReversed(..., resident, base, amount, burned)`: a refund took its payment's
  cashback back: `burned` from the resident's money (the treasury counts it in `burned` and
  `clawedBack`), the rest owed, set against its next cashback. `amount` goes back to the budget.
- treasury `CashbackLinked` / `IncentiveModeChanged` and cashback `CashbackBudgetChanged`: the
  city's cashback contract, whether it pays its incentive as a discount at charge or as cashback
  on payments, and the budget it set.

- directory `CustodyConfigured` / `ReserveAttested`: the proof of reserve. A statement is the
  bank's balance of the custody account at `asOf`; the books set it against what the city owed at
  that moment, by the events of blocks no later than `asOf`: the supply plus the payout of
  pending redemptions (burned tokens whose KRW the bank has not yet paid out). The difference is
  the statement's `margin`; below zero, a shortfall.

Anything the events contradict themselves on (a redemption closed twice, a balance below zero) is
kept in `anomalies`: the auditor reports them, the dashboard may show them.
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, fields
from datetime import UTC, datetime, timedelta
from enum import IntEnum
from typing import Any, NamedTuple

from citypay.chain.enums import AccountKind, IncentiveMode, RedemptionKind, Status
from citypay.chain.events import ChainEvent, event_names
from citypay.reserve.statement import Statement

ZERO_ADDRESS = "0x0000000000000000000000000000000000000000"


def _named(enum: type[IntEnum], **renamed: str) -> dict[int, str]:
    """An enum's numbers as the books name them: its members' names in lower case."""
    return {member.value: renamed.get(member.name, member.name.lower()) for member in enum}


# The contracts' enums (chain/enums.py) as the books name an event's number of them.
ACCOUNT_KINDS = _named(AccountKind, NONE="")
REGISTRY_STATUS = _named(Status)
REDEMPTION_KINDS = _named(RedemptionKind)
INCENTIVE_MODES = _named(IncentiveMode)

KST = timedelta(hours=9)


def fiscal_year(block_time: int, start_month: int) -> int:
    """The fiscal year a moment falls in, named by the year it starts in (as KoreanCalendar)."""
    moment = datetime.fromtimestamp(block_time, UTC) + KST
    return (moment.year * 12 + moment.month - 1 - (start_month - 1)) // 12


def policy_parameter(raw: str) -> str:
    """PolicyChanged's indexed bytes32 parameter ("annualIssuanceCap" padded) as its text."""
    return bytes.fromhex(raw.removeprefix("0x")).rstrip(b"\0").decode("ascii", "replace")


@dataclass(slots=True)
class Figures:
    """Won moved by kind; for an account, seen from its side (a merchant's `refunded` is what it
    gave back, a resident's what it got back)."""

    charged: int = 0  # deposits turned into tokens (Issued.amount)
    incentive: int = 0  # the city's incentive: on top of charges, and cashback minted
    issued: int = 0  # charged + incentive: what charging and cashback minted
    paid: int = 0  # payments made by residents
    received: int = 0  # payments received by merchants
    payments: int = 0  # how many payments (made or received)
    refunded: int = 0  # merchants' refunds of payments
    refunds: int = 0
    cashed_out: int = 0  # burned by merchants' cash-outs (환전)
    resident_refunded: int = 0  # burned by residents' refunds (환불)
    confiscated: int = 0  # burned from accounts revoked for illegal exchange (깡)
    burned: int = 0  # cashed_out + resident_refunded + confiscated + cashback_reversed
    settled: int = 0  # payout of redemptions the bank paid
    returned: int = 0  # tokens restored by redemptions whose bank transfer failed
    outstanding: int = 0  # payout of redemptions still pending
    # Incentive taken back: unused incentive kept back from residents' refunds not returned, and
    # cashback burned.
    clawed_back: int = 0
    gifted: int = 0  # gifts (선물하기) given by residents
    gifts_received: int = 0  # gifts received by residents
    gifts: int = 0  # how many gifts (given or received)
    cashback: int = 0  # cashback on payments minted to residents (in incentive and issued)
    cashbacks: int = 0  # how many payments earned cashback that was minted
    cashback_reversed: int = 0  # cashback burned when its payment was refunded (in burned)
    # Reversed cashback the resident's money did not cover: owed now, set against its next
    # cashback. The contract keeps it by the resident's first wallet: it follows a recovery.
    cashback_owed: int = 0

    def as_dict(self) -> dict[str, int]:
        return {f.name: getattr(self, f.name) for f in fields(self)}


@dataclass(slots=True)
class Program:
    """A policy program (정책발행) as its events tell it, the figures of the auditor's report."""

    program: int
    code: str
    budget: int
    expiry: int
    funded: int = 0
    paid_out: int = 0
    spent: int = 0
    refunded: int = 0
    expired: int = 0
    closed: bool = False
    recipients: int = 0

    @property
    def outstanding(self) -> int:
        """What residents still hold of it."""
        return self.paid_out - self.spent + self.refunded - self.expired

    @property
    def returned_to_city(self) -> int:
        """Expired money, and once closed, what was funded and never paid out."""
        return self.expired + (self.funded - self.paid_out if self.closed else 0)

    def as_dict(self) -> dict[str, Any]:
        return {
            "program": self.program,
            "code": self.code,
            "budget": self.budget,
            "funded": self.funded,
            "paid_out": self.paid_out,
            "recipients": self.recipients,
            "spent": self.spent,
            "refunded": self.refunded,
            "expired": self.expired,
            "returned_to_city": self.returned_to_city,
            "outstanding": self.outstanding,
            "closed": self.closed,
            "expiry": self.expiry,
        }


@dataclass(slots=True)
class Account:
    """A wallet as the city's registry and token see it, with its figures and balance."""

    address: str
    kind: str = ""  # resident, merchant, or "" when never registered
    status: str = "none"  # active, suspended, revoked, recovered (registry status)
    active: bool = False  # the token's flag: may it transact
    frozen: bool = False
    category: int | None = None
    region: int | None = None
    registered_at: int | None = None  # block time
    replaced_by: str | None = None
    balance: int = 0
    figures: Figures = field(default_factory=Figures)

    def as_dict(self) -> dict[str, Any]:
        return {
            "address": self.address,
            "kind": self.kind,
            "status": self.status,
            "active": self.active,
            "frozen": self.frozen,
            "category": self.category,
            "region": self.region,
            "registered_at": self.registered_at,
            "replaced_by": self.replaced_by,
            "balance": self.balance,
            **self.figures.as_dict(),
        }


@dataclass(slots=True)
class Redemption:
    id: int
    account: str
    kind: str  # cash_out or resident_refund
    burned: int
    payout: int
    status: str  # pending, settled, returned
    requested_block: int
    requested_at: int  # block time
    request_tx: str
    closed_block: int | None = None
    closed_at: int | None = None
    close_tx: str | None = None
    reference: str | None = None  # the bank's reference when settled, the reason when returned
    restored: int = 0
    nonce: str | None = None  # a relayed cash-out's authorization nonce (CashOutAuthorized)

    def as_dict(self) -> dict[str, Any]:
        return {f.name: getattr(self, f.name) for f in fields(self)}


@dataclass(slots=True)
class Issuance:
    block_number: int
    log_index: int
    block_time: int
    resident: str
    deposit_reference: str
    amount: int
    incentive: int


@dataclass(slots=True)
class CashbackMint:
    """Cashback minted on a payment: counted by the annual issuance cap like a charge."""

    block_number: int
    log_index: int
    block_time: int
    resident: str
    minted: int


@dataclass(slots=True)
class PolicyChange:
    block_number: int
    log_index: int
    block_time: int
    parameter: str
    old: int
    new: int


@dataclass(slots=True)
class ReserveStatement:
    """A bank statement the directory recorded, checked and set against the city's obligations."""

    block_number: int
    block_time: int  # when it was recorded
    tx_hash: str
    account: str  # the custody account's hash, as the statement names it
    balance: int  # KRW in the custody account at `as_of`
    as_of: int  # the bank's time (unix seconds)
    outstanding: int  # the token's supply in the recording block, as the directory read it
    supply_at_record: int  # the same by the Transfer events before the record
    owed: int  # supply plus pending payouts at `as_of`, by the events
    statement_hash: str
    signer: str
    signature: str
    # The statement's digest recomputed from its fields, and the key that signed that digest:
    # both the recorded ones, or the record is not the bank's statement.
    hash_matches: bool
    signed_by_signer: bool
    custody_matches: bool  # the account and key are the city's custody as configured then

    @property
    def margin(self) -> int:
        return self.balance - self.owed

    def as_dict(self) -> dict[str, Any]:
        return {
            "block": self.block_number,
            "recorded_at": self.block_time,
            "tx_hash": self.tx_hash,
            "account": self.account,
            "balance": self.balance,
            "as_of": self.as_of,
            "owed": self.owed,
            "margin": self.margin,
            "outstanding_recorded": self.outstanding,
            "supply_at_record": self.supply_at_record,
            "statement_hash": self.statement_hash,
            "signer": self.signer,
            "verified": self.hash_matches and self.signed_by_signer and self.custody_matches,
        }


@dataclass(slots=True)
class Anomaly:
    """Events that contradict each other: a chain cannot produce these, a gap in events can."""

    city: str
    code: str
    message: str
    block_number: int
    tx_hash: str


class Movement(NamedTuple):
    """One money movement, for those who break the books down further (by hour, category...).

    kind: charge, payment, refund, gift, redemption, settlement or return; `account` is the
    resident or merchant whose money it is, `counterparty` the other side (the merchant of a
    payment or refund, the receiver of a gift), `value` the won (a charge's amount + incentive, a
    redemption's burned tokens, a settlement's payout, a return's restored tokens). `reference`
    is a gasless payment's or a relayed gift's id (its authorization's nonce), a redemption's id
    as text, or None.
    """

    kind: str
    city: str
    account: str
    counterparty: str | None
    value: int
    block_number: int
    block_time: int
    tx_hash: str
    reference: str | None = None


@dataclass(slots=True)
class CityBooks:
    code: str
    name: str = ""
    token: str | None = None
    registry: str | None = None
    treasury: str | None = None
    programs_contract: str | None = None
    cashback_contract: str | None = None  # as the treasury linked it (CashbackLinked)
    incentive_mode: str = "discount"  # or "cashback": how the city pays its incentive
    # What the cashback contract may still pay (its budget()), followed from its events.
    cashback_budget: int = 0
    # The wallets a cashback reversal or a debt's repayment named: the residents that owe or owed.
    cashback_debtors: set[str] = field(default_factory=set)
    figures: Figures = field(default_factory=Figures)
    programs: dict[int, Program] = field(default_factory=dict)
    # General money that expired and went back to the city (Expired with program 0).
    general_expired: int = 0
    minted: int = 0  # every Transfer from the zero address: charges, cashback and restores
    destroyed: int = 0  # every Transfer to the zero address: redemptions, cashback taken back
    accounts: dict[str, Account] = field(default_factory=dict)
    redemptions: dict[int, Redemption] = field(default_factory=dict)
    issuances: list[Issuance] = field(default_factory=list)
    cashback_mints: list[CashbackMint] = field(default_factory=list)
    policy_changes: list[PolicyChange] = field(default_factory=list)
    events: int = 0
    first_block: int | None = None
    last_block: int | None = None
    custody: tuple[str, str] | None = None  # (account hash, bank key) as last configured
    reserve: list[ReserveStatement] = field(default_factory=list)
    # What the city owed (supply + pending payouts) after each block time it changed since the
    # last statement's `as_of`, and before them: enough to answer "owed at as_of" for the next
    # statement, which is always later. Bounded by the blocks between two statements.
    owed_times: list[int] = field(default_factory=list)
    owed_after: list[int] = field(default_factory=list)
    owed_before: int = 0

    @property
    def owed(self) -> int:
        """The supply plus the payout of pending redemptions: the KRW the custody must hold."""
        return self.supply + self.figures.outstanding

    def note_owed(self, block_time: int) -> None:
        if self.owed_times and self.owed_times[-1] == block_time:
            self.owed_after[-1] = self.owed
        else:
            self.owed_times.append(block_time)
            self.owed_after.append(self.owed)

    def owed_at(self, moment: int) -> int:
        """What the city owed after every event of blocks no later than `moment`."""
        position = bisect_right(self.owed_times, moment)
        return self.owed_after[position - 1] if position else self.owed_before

    def forget_owed_until(self, moment: int) -> None:
        position = bisect_right(self.owed_times, moment)
        if position:
            self.owed_before = self.owed_after[position - 1]
            del self.owed_times[:position], self.owed_after[:position]

    @property
    def supply(self) -> int:
        """The token's supply as its Transfer events tell it."""
        return self.minted - self.destroyed

    def account(self, address: str) -> Account:
        account = self.accounts.get(address)
        if account is None:
            account = self.accounts[address] = Account(address)
        return account

    def current_wallet(self, address: str) -> str:
        """Where an account lives now: itself or, after recoveries, its last replacement."""
        account = self.accounts.get(address)
        while account is not None and account.replaced_by is not None:
            address = account.replaced_by
            account = self.accounts.get(address)
        return address

    def issued_by_fiscal_year(self, start_month: int) -> dict[int, int]:
        """What charging (amount + incentive) and cashback minted in each fiscal year: what the
        cap counts."""
        years: dict[int, int] = {}
        minted = [(i.block_time, i.amount + i.incentive) for i in self.issuances]
        for block_time, value in minted + [(c.block_time, c.minted) for c in self.cashback_mints]:
            year = fiscal_year(block_time, start_month)
            years[year] = years.get(year, 0) + value
        return years

    @property
    def program_money(self) -> int:
        return sum(p.outstanding for p in self.programs.values())

    def classes(self) -> dict[str, int]:
        """The supply by class: general money (charged, its incentive included) and policy
        money outstanding, and what went back to the city from each."""
        programs = self.program_money
        return {
            "general": self.supply - programs,
            "programs": programs,
            "general_expired": self.general_expired,
            "programs_paid_out": sum(p.paid_out for p in self.programs.values()),
            "programs_expired": sum(p.expired for p in self.programs.values()),
        }

    def merchants(self) -> list[Account]:
        return [a for a in self.accounts.values() if a.kind == "merchant"]

    def residents(self) -> list[Account]:
        return [a for a in self.accounts.values() if a.kind == "resident"]

    def summary(self) -> dict[str, Any]:
        pending = sum(1 for r in self.redemptions.values() if r.status == "pending")
        return {
            "city": self.code,
            "name": self.name,
            "token": self.token,
            "registry": self.registry,
            "treasury": self.treasury,
            "incentive_mode": self.incentive_mode,
            "cashback_contract": self.cashback_contract,
            # None where no cashback contract is linked: no budget to speak of.
            "cashback_budget": self.cashback_budget if self.cashback_contract else None,
            **self.figures.as_dict(),
            "supply": self.supply,
            "resident_count": sum(1 for a in self.accounts.values() if a.kind == "resident"),
            "merchant_count": sum(1 for a in self.accounts.values() if a.kind == "merchant"),
            "redemption_count": len(self.redemptions),
            "redemptions_pending": pending,
            "events": self.events,
            "first_block": self.first_block,
            "last_block": self.last_block,
            "reserve": self.reserve[-1].as_dict() if self.reserve else None,
            "programs": [p.as_dict() for p in sorted(self.programs.values(), key=_program_id)],
            "classes": self.classes(),
        }


def _program_id(program: Program) -> int:
    return program.program


class Books:
    """Folds ChainEvents, in chain order, into every city's figures. Not thread-safe."""

    def __init__(self) -> None:
        self.cities: dict[str, CityBooks] = {}
        self.anomalies: list[Anomaly] = []
        self.last_block: int | None = None
        self._subscribers: list[Callable[[Movement], None]] = []
        self._observers: list[Callable[[CityBooks, ChainEvent], None]] = []
        # EIP-3009 marks an authorization used just before its Transfer, in the same transaction:
        # (tx_hash, authorizer, nonce) of the last one names the payment that follows.
        self._authorization: tuple[str, str, str] | None = None
        self._handlers: dict[tuple[str, str], Callable[[CityBooks, ChainEvent], None]] = {
            ("directory", "CityRegistered"): self._city_registered,
            ("directory", "CustodyConfigured"): self._custody_configured,
            ("directory", "ReserveAttested"): self._reserve_attested,
            ("token", "Transfer"): self._transfer,
            ("token", "Refunded"): self._refunded,
            ("token", "AuthorizationUsed"): self._authorization_used,
            ("token", "AccountStatusSet"): self._account_status_set,
            ("token", "AccountFrozen"): self._account_frozen,
            ("token", "AccountUnfrozen"): self._account_unfrozen,
            ("token", "AccountRecovered"): self._account_recovered,
            ("registry", "ResidentRegistered"): self._resident_registered,
            ("registry", "MerchantRegistered"): self._merchant_registered,
            ("registry", "MerchantUpdated"): self._merchant_updated,
            ("registry", "StatusChanged"): self._status_changed,
            ("treasury", "Issued"): self._issued,
            ("treasury", "RedemptionRequested"): self._redemption_requested,
            ("treasury", "RedemptionSettled"): self._redemption_settled,
            ("treasury", "RedemptionReturned"): self._redemption_returned,
            ("treasury", "CashOutAuthorized"): self._cash_out_authorized,
            ("treasury", "PolicyChanged"): self._policy_changed,
            ("treasury", "CashbackLinked"): self._cashback_linked,
            ("treasury", "IncentiveModeChanged"): self._incentive_mode_changed,
            ("programs", "ProgramCreated"): self._program_created,
            ("programs", "ProgramFunded"): self._program_funded,
            ("programs", "ProgramPaid"): self._program_paid,
            ("programs", "ProgramSpent"): self._program_spent,
            ("programs", "ProgramRefunded"): self._program_refunded,
            ("programs", "ProgramClosed"): self._program_closed,
            ("programs", "Expired"): self._expired,
            ("gifts", "Gifted"): self._gifted,
            ("cashback", "CashbackPaid"): self._cashback_paid,
            ("cashback", "CashbackReversed"): self._cashback_reversed,
            ("cashback", "CashbackBudgetChanged"): self._cashback_budget_changed,
        }

    # --- folding ------------------------------------------------------------------------------

    def subscribe(self, callback: Callable[[Movement], None]) -> None:
        """`callback(movement)` for every charge, payment, refund and redemption step folded."""
        self._subscribers.append(callback)

    def observe(self, callback: Callable[[CityBooks, ChainEvent], None]) -> None:
        """`callback(city books, event)` after every event is folded, for what the books keep
        no history of (a registration's or revocation's time in a period, ...)."""
        self._observers.append(callback)

    def city(self, code: str) -> CityBooks:
        books = self.cities.get(code)
        if books is None:
            books = self.cities[code] = CityBooks(code)
        return books

    def unread(self, contract: str) -> set[str]:
        """The events of a city's `contract` kind the books would only count, as nothing
        subscribes to or observes what they tell: a reader may count them with `tally` instead of
        decoding them (an EIP-3009 payment's AuthorizationUsed is half of a city's logs)."""
        if contract == "directory" or self._observers:
            return set()
        handled = {event for kind, event in self._handlers if kind == contract}
        if not self._subscribers:
            handled.discard("AuthorizationUsed")
        return {event for event in event_names(contract) if event not in handled}

    def tally(self, code: str, block_number: int) -> None:
        """An event of the city's that `unread` named, counted without being read."""
        books = self.city(code)
        books.events += 1
        if books.first_block is None:
            books.first_block = block_number
        books.last_block = self.last_block = block_number

    def apply(self, event: ChainEvent) -> None:
        if event.contract == "directory":
            # The directory's events name their city by its code; its role events name none.
            code = event.args.get("code")
            if code is None:
                return
            books = self.city(code)
        else:
            books = self.city(event.city)
        books.events += 1
        if books.first_block is None:
            books.first_block = event.block_number
        books.last_block = self.last_block = event.block_number
        handler = self._handlers.get((event.contract, event.event))
        if handler is not None:
            handler(books, event)
        if self._observers:
            for observer in self._observers:
                observer(books, event)

    def apply_all(self, events: Iterable[ChainEvent]) -> Books:
        apply = self.apply
        for event in events:
            apply(event)
        return self

    def _emit(
        self,
        kind: str,
        books: CityBooks,
        account: str,
        counterparty: str | None,
        value: int,
        event: ChainEvent,
        reference: str | None = None,
    ) -> None:
        movement = Movement(
            kind,
            books.code,
            account,
            counterparty,
            value,
            event.block_number,
            event.block_time,
            event.tx_hash,
            reference,
        )
        for callback in self._subscribers:
            callback(movement)

    def _anomaly(self, books: CityBooks, code: str, message: str, event: ChainEvent) -> None:
        self.anomalies.append(Anomaly(books.code, code, message, event.block_number, event.tx_hash))

    # --- directory ----------------------------------------------------------------------------

    def _city_registered(self, books: CityBooks, event: ChainEvent) -> None:
        books.token = event.args["token"]
        books.registry = event.args["registry"]
        books.treasury = event.args["treasury"]

    def _custody_configured(self, books: CityBooks, event: ChainEvent) -> None:
        books.custody = (event.args["account"], event.args["signer"])

    def _reserve_attested(self, books: CityBooks, event: ChainEvent) -> None:
        args = event.args
        account, balance, as_of = args["account"], args["balance"], args["asOf"]
        statement = Statement(bytes.fromhex(account[2:]), balance, as_of)
        signature = bytes.fromhex(args["signature"][2:])
        # A contract's key (ERC-1271) has no address to recover: the directory checked it.
        recovered = statement.signer(signature)
        books.reserve.append(
            ReserveStatement(
                block_number=event.block_number,
                block_time=event.block_time,
                tx_hash=event.tx_hash,
                account=account,
                balance=balance,
                as_of=as_of,
                outstanding=args["outstanding"],
                supply_at_record=books.supply,
                owed=books.owed_at(as_of),
                statement_hash=args["statementHash"],
                signer=args["signer"],
                signature=args["signature"],
                hash_matches="0x" + statement.digest().hex() == args["statementHash"],
                signed_by_signer=recovered == args["signer"] or len(signature) != 65,
                custody_matches=books.custody == (account, args["signer"]),
            )
        )
        books.forget_owed_until(as_of)

    # --- token --------------------------------------------------------------------------------

    def _transfer(self, books: CityBooks, event: ChainEvent) -> None:
        args = event.args
        sender, recipient, value = args["from"], args["to"], args["value"]
        accounts = books.accounts
        if sender == ZERO_ADDRESS:
            books.minted += value
            books.note_owed(event.block_time)
        else:
            payer = accounts.get(sender) or books.account(sender)
            if payer.balance < value:
                self._anomaly(
                    books,
                    "negative_balance",
                    f"{sender} sends {value:,} won holding {payer.balance:,} by the events",
                    event,
                )
            payer.balance -= value
        if recipient == ZERO_ADDRESS:
            books.destroyed += value
            books.note_owed(event.block_time)
            return
        payee = accounts.get(recipient) or books.account(recipient)
        payee.balance += value
        if sender == ZERO_ADDRESS or payer.kind != "resident" or payee.kind != "merchant":
            return  # a mint, a refund's movement (counted by Refunded) or a recovery
        payer.figures.paid += value
        payer.figures.payments += 1
        payee.figures.received += value
        payee.figures.payments += 1
        city = books.figures
        city.paid += value
        city.received += value
        city.payments += 1
        if self._subscribers:
            authorization = self._authorization
            nonce = (
                authorization[2]
                if authorization is not None
                and authorization[0] == event.tx_hash
                and authorization[1] == sender
                else None
            )
            self._emit("payment", books, sender, recipient, value, event, nonce)

    def _refunded(self, books: CityBooks, event: ChainEvent) -> None:
        merchant, value = event.args["merchant"], event.args["value"]
        payer = books.current_wallet(event.args["payer"])
        for figures in (
            books.account(merchant).figures,
            books.account(payer).figures,
            books.figures,
        ):
            figures.refunded += value
            figures.refunds += 1
        if self._subscribers:
            self._emit("refund", books, payer, merchant, value, event)

    def _authorization_used(self, books: CityBooks, event: ChainEvent) -> None:
        self._authorization = (event.tx_hash, event.args["authorizer"], event.args["nonce"])

    def _account_status_set(self, books: CityBooks, event: ChainEvent) -> None:
        account = books.account(event.args["account"])
        account.kind = ACCOUNT_KINDS.get(event.args["kind"], str(event.args["kind"]))
        account.active = event.args["active"]

    def _account_frozen(self, books: CityBooks, event: ChainEvent) -> None:
        books.account(event.args["account"]).frozen = True

    def _account_unfrozen(self, books: CityBooks, event: ChainEvent) -> None:
        books.account(event.args["account"]).frozen = False

    def _account_recovered(self, books: CityBooks, event: ChainEvent) -> None:
        lost = books.account(event.args["lost"])
        replacement = books.account(event.args["replacement"])
        # The token moves the status word, frozen bit included; the registry moves the record.
        replacement.kind, replacement.active, replacement.frozen = (
            lost.kind,
            lost.active,
            lost.frozen,
        )
        replacement.category, replacement.region = lost.category, lost.region
        replacement.status = lost.status
        replacement.registered_at = event.block_time
        lost.replaced_by = replacement.address
        lost.status, lost.active, lost.frozen = "recovered", False, False
        # What the lost wallet owed from reversed cashback is the resident's debt still.
        replacement.figures.cashback_owed += lost.figures.cashback_owed
        lost.figures.cashback_owed = 0

    # --- registry -----------------------------------------------------------------------------

    def _resident_registered(self, books: CityBooks, event: ChainEvent) -> None:
        account = books.account(event.args["wallet"])
        account.kind, account.status = "resident", "active"
        account.region = event.args["region"]
        account.registered_at = event.block_time

    def _merchant_registered(self, books: CityBooks, event: ChainEvent) -> None:
        account = books.account(event.args["wallet"])
        account.kind, account.status = "merchant", "active"
        account.category, account.region = event.args["category"], event.args["region"]
        account.registered_at = event.block_time

    def _merchant_updated(self, books: CityBooks, event: ChainEvent) -> None:
        account = books.account(event.args["wallet"])
        account.category, account.region = event.args["category"], event.args["region"]

    def _status_changed(self, books: CityBooks, event: ChainEvent) -> None:
        new = event.args["newStatus"]
        books.account(event.args["wallet"]).status = REGISTRY_STATUS.get(new, str(new))

    # --- treasury -----------------------------------------------------------------------------

    def _issued(self, books: CityBooks, event: ChainEvent) -> None:
        args = event.args
        resident, amount, incentive = args["resident"], args["amount"], args["incentive"]
        books.issuances.append(
            Issuance(
                event.block_number,
                event.log_index,
                event.block_time,
                resident,
                args["depositReference"],
                amount,
                incentive,
            )
        )
        for figures in (books.account(resident).figures, books.figures):
            figures.charged += amount
            figures.incentive += incentive
            figures.issued += amount + incentive
        if self._subscribers:
            self._emit("charge", books, resident, None, amount + incentive, event)

    def _redemption_requested(self, books: CityBooks, event: ChainEvent) -> None:
        args = event.args
        number, account = args["id"], args["account"]
        kind = REDEMPTION_KINDS.get(args["kind"], str(args["kind"]))
        if number in books.redemptions:
            self._anomaly(
                books, "redemption_reopened", f"redemption {number} requested twice", event
            )
        books.redemptions[number] = Redemption(
            id=number,
            account=account,
            kind=kind,
            burned=args["burned"],
            payout=args["payout"],
            status="pending",
            requested_block=event.block_number,
            requested_at=event.block_time,
            request_tx=event.tx_hash,
        )
        burned, payout = args["burned"], args["payout"]
        for figures in (books.account(account).figures, books.figures):
            if kind == "cash_out":
                figures.cashed_out += burned
            elif kind == "confiscation":
                figures.confiscated += burned
            else:
                figures.resident_refunded += burned
                figures.clawed_back += burned - payout
            figures.burned += burned
            figures.outstanding += payout
        books.note_owed(event.block_time)
        if self._subscribers:
            self._emit("redemption", books, account, None, burned, event, str(number))

    def _closing(self, books: CityBooks, event: ChainEvent, status: str) -> Redemption | None:
        number = event.args["id"]
        redemption = books.redemptions.get(number)
        if redemption is None:
            self._anomaly(
                books,
                "redemption_unknown",
                f"redemption {number} {status} but never requested",
                event,
            )
            return None
        if redemption.status != "pending":
            self._anomaly(
                books,
                "redemption_closed_twice",
                f"redemption {number} {status} but already {redemption.status} in "
                f"block {redemption.closed_block}",
                event,
            )
            return None
        redemption.status = status
        redemption.closed_block = event.block_number
        redemption.closed_at = event.block_time
        redemption.close_tx = event.tx_hash
        for figures in (books.account(redemption.account).figures, books.figures):
            figures.outstanding -= redemption.payout
        books.note_owed(event.block_time)
        return redemption

    def _redemption_settled(self, books: CityBooks, event: ChainEvent) -> None:
        redemption = self._closing(books, event, "settled")
        if redemption is None:
            return
        payout = event.args["payout"]
        redemption.reference = event.args["bankReference"]
        if payout != redemption.payout:
            self._anomaly(
                books,
                "settled_payout_differs",
                f"redemption {redemption.id} settled for {payout:,} won, requested "
                f"with a payout of {redemption.payout:,}",
                event,
            )
        for figures in (books.account(redemption.account).figures, books.figures):
            figures.settled += payout
        if self._subscribers:
            self._emit(
                "settlement", books, redemption.account, None, payout, event, str(redemption.id)
            )

    def _redemption_returned(self, books: CityBooks, event: ChainEvent) -> None:
        redemption = self._closing(books, event, "returned")
        if redemption is None:
            return
        restored = event.args["restored"]
        redemption.reference = event.args["reason"]
        redemption.restored = restored
        if restored != redemption.burned:
            self._anomaly(
                books,
                "returned_amount_differs",
                f"redemption {redemption.id} returned {restored:,} won of "
                f"{redemption.burned:,} burned",
                event,
            )
        for figures in (books.account(redemption.account).figures, books.figures):
            figures.returned += restored
            # A returned refund's incentive goes back to the resident: nothing was clawed back.
            figures.clawed_back -= redemption.burned - redemption.payout
        if self._subscribers:
            self._emit(
                "return", books, redemption.account, None, restored, event, str(redemption.id)
            )

    def _cash_out_authorized(self, books: CityBooks, event: ChainEvent) -> None:
        redemption = books.redemptions.get(event.args["id"])
        if redemption is not None:
            redemption.nonce = event.args["nonce"]

    def _policy_changed(self, books: CityBooks, event: ChainEvent) -> None:
        args = event.args
        books.policy_changes.append(
            PolicyChange(
                event.block_number,
                event.log_index,
                event.block_time,
                policy_parameter(args["parameter"]),
                args["oldValue"],
                args["newValue"],
            )
        )

    def _cashback_linked(self, books: CityBooks, event: ChainEvent) -> None:
        books.cashback_contract = event.args["cashback"]

    def _incentive_mode_changed(self, books: CityBooks, event: ChainEvent) -> None:
        mode = event.args["newMode"]
        books.incentive_mode = INCENTIVE_MODES.get(mode, str(mode))

    # --- programs (money classes) ---------------------------------------------------------------

    def _program(self, books: CityBooks, event: ChainEvent) -> Program | None:
        program = books.programs.get(event.args["program"])
        if program is None:
            self._anomaly(
                books,
                "unknown_program",
                f"{event.event} names program {event.args['program']}, never created",
                event,
            )
        return program

    def _program_created(self, books: CityBooks, event: ChainEvent) -> None:
        terms = event.args["terms"]
        number = event.args["program"]
        books.programs[number] = Program(number, _code_text(event.args["code"]), terms[1], terms[4])

    def _program_funded(self, books: CityBooks, event: ChainEvent) -> None:
        program = self._program(books, event)
        if program is not None:
            program.funded += event.args["amount"]

    def _program_paid(self, books: CityBooks, event: ChainEvent) -> None:
        program = self._program(books, event)
        if program is not None:
            program.paid_out += event.args["amount"]
            program.recipients += 1

    def _program_spent(self, books: CityBooks, event: ChainEvent) -> None:
        program = self._program(books, event)
        if program is not None:
            program.spent += event.args["amount"]

    def _program_refunded(self, books: CityBooks, event: ChainEvent) -> None:
        program = self._program(books, event)
        if program is not None:
            program.refunded += event.args["amount"]

    def _program_closed(self, books: CityBooks, event: ChainEvent) -> None:
        program = self._program(books, event)
        if program is not None:
            program.closed = True

    def _expired(self, books: CityBooks, event: ChainEvent) -> None:
        if event.args["program"] == 0:
            books.general_expired += event.args["amount"]
            return
        program = self._program(books, event)
        if program is not None:
            program.expired += event.args["amount"]

    # --- gifts --------------------------------------------------------------------------------

    def _gifted(self, books: CityBooks, event: ChainEvent) -> None:
        """A gift's balances move by its Transfer between the two residents; here its figures."""
        giver, receiver, value = event.args["from"], event.args["to"], event.args["value"]
        for figures in (books.account(giver).figures, books.figures):
            figures.gifted += value
            figures.gifts += 1
        for figures in (books.account(receiver).figures, books.figures):
            figures.gifts_received += value
        books.account(receiver).figures.gifts += 1
        if self._subscribers:
            nonce = event.args["nonce"]
            reference = None if int(nonce, 16) == 0 else nonce
            self._emit("gift", books, giver, receiver, value, event, reference)

    # --- cashback -----------------------------------------------------------------------------

    def _cashback_paid(self, books: CityBooks, event: ChainEvent) -> None:
        """The minted cashback's balance moves by its Transfer from the zero address."""
        args = event.args
        resident, minted, from_debt = args["resident"], args["minted"], args["fromDebt"]
        books.cashback_budget -= minted + from_debt
        if from_debt:
            books.cashback_debtors.add(resident)
            owed = books.account(resident).figures.cashback_owed
            if from_debt > owed:
                self._anomaly(
                    books,
                    "cashback_debt_unknown",
                    f"{resident} repays {from_debt:,} won of reversed cashback owing "
                    f"{owed:,} by the events",
                    event,
                )
        for figures in (books.account(resident).figures, books.figures):
            figures.cashback_owed -= from_debt
        if not minted:
            return  # cut to nothing by a limit, or all set against the debt
        books.cashback_mints.append(
            CashbackMint(event.block_number, event.log_index, event.block_time, resident, minted)
        )
        for figures in (books.account(resident).figures, books.figures):
            figures.cashback += minted
            figures.cashbacks += 1
            figures.incentive += minted
            figures.issued += minted

    def _cashback_reversed(self, books: CityBooks, event: ChainEvent) -> None:
        """The burned cashback's balance moves by its Transfer to the zero address."""
        args = event.args
        resident, amount, burned = args["resident"], args["amount"], args["burned"]
        books.cashback_budget += amount
        books.cashback_debtors.add(resident)
        for figures in (books.account(resident).figures, books.figures):
            figures.cashback_reversed += burned
            figures.burned += burned
            figures.clawed_back += burned
            figures.cashback_owed += amount - burned

    def _cashback_budget_changed(self, books: CityBooks, event: ChainEvent) -> None:
        books.cashback_budget = event.args["newBudget"]


def _code_text(raw: str) -> str:
    """A program's bytes32 code as its text when it is text ("YOUTH-2026H1"), else its hex."""
    data = bytes.fromhex(raw.removeprefix("0x")).rstrip(b"\0")
    try:
        text = data.decode("ascii")
    except UnicodeDecodeError:
        return raw
    return text if text.isprintable() and text else raw
