"""The backend's database against the chain: every payment, deposit, cash-out and program
payout recipient, to the won.

Each record is matched by the identity both sides share: a payment by (payer, authorization
nonce), a deposit by its bank reference, a cash-out by (merchant, authorization nonce) or its
redemption id, a payout's recipient by (program, wallet). A difference names the record, the
field, and both values.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from sqlalchemy import select

from citypay.cashout.models import CashOut, CashOutStatus
from citypay.chain.events import ChainEvent
from citypay.charging.models import Deposit, DepositStatus
from citypay.db.session import Database
from citypay.ledger import Books, Movement
from citypay.ledger.books import CityBooks
from citypay.payments.models import Payment, PaymentStatus
from citypay.programs.models import PayoutRecipient, ProgramPayout

# What the chain shows of a cash-out the database has at each step.
CASH_OUT_ON_CHAIN = {
    CashOutStatus.REQUESTED: "absent",
    CashOutStatus.REDEEMED: "pending",
    CashOutStatus.PAYING: "pending",
    CashOutStatus.PAID: "pending",
    CashOutStatus.PAYOUT_FAILED: "pending",
    CashOutStatus.SETTLED: "settled",
    CashOutStatus.RETURNED: "returned",
    CashOutStatus.REFUSED: "absent",
}


@dataclass(frozen=True)
class Difference:
    city: str
    record: str  # payment, deposit, cash_out or program_payout
    key: str  # payer/nonce, the deposit reference, merchant/nonce, program code/wallet
    account: str  # the payer, resident or merchant
    field: str
    database: Any
    chain: Any

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    @property
    def message(self) -> str:
        return f"{self.field}: database {_shown(self.database)}, chain {_shown(self.chain)}"


def _shown(value: Any) -> str:
    if value is None:
        return "none"
    return f"{value:,}" if isinstance(value, int) else str(value)


@dataclass(frozen=True)
class Entry:
    """One record as one side has it: where it stands, in the chain's words (included, issued,
    pending, settled, returned or absent), how that side names it, and its figures."""

    city: str
    record: str
    key: str
    account: str
    state: str
    shown: str
    fields: dict[str, Any]


def _match(database: dict[tuple, Entry], chain: dict[tuple, Entry]) -> list[Difference]:
    """Every record either side has: its status when they differ, else each differing field."""
    differences = []
    for identity in [*database, *(i for i in chain if i not in database)]:
        ours, theirs = database.get(identity), chain.get(identity)
        entry = ours or theirs
        assert entry is not None
        found = []
        if (ours.state if ours else "absent") != (theirs.state if theirs else "absent"):
            found = [
                ("status", ours.shown if ours else "absent", theirs.shown if theirs else "absent")
            ]
        elif ours is not None and theirs is not None:
            found = [
                (name, value, theirs.fields[name])
                for name, value in ours.fields.items()
                if value != theirs.fields[name]
            ]
        differences += [
            Difference(entry.city, entry.record, entry.key, entry.account, *difference)
            for difference in found
        ]
    return differences


@dataclass(frozen=True)
class ChainPayment:
    merchant: str
    value: int
    tx_hash: str


class PaymentIndex:
    """Gasless payments by (city, payer, nonce), and program payouts by (city, program,
    recipient), collected while the books fold."""

    def __init__(self) -> None:
        self.payments: dict[tuple[str, str, str], ChainPayment] = {}
        self.program_paid: dict[tuple[str, int, str], tuple[int, str]] = {}

    def __call__(self, movement: Movement) -> None:
        if movement.kind == "payment" and movement.reference is not None:
            key = (movement.city, movement.account, movement.reference.lower())
            self.payments[key] = ChainPayment(
                movement.counterparty or "", movement.value, movement.tx_hash.lower()
            )

    def _observe(self, books: CityBooks, event: ChainEvent) -> None:
        if event.contract == "programs" and event.event == "ProgramPaid":
            key = (books.code, event.args["program"], event.args["recipient"].lower())
            self.program_paid[key] = (event.args["amount"], event.tx_hash.lower())

    def attach(self, books: Books) -> None:
        """Follows `books` from its first event (ChainSource's on_new_books)."""
        self.payments.clear()
        self.program_paid.clear()
        books.subscribe(self)
        books.observe(self._observe)


def _payments(rows: list[Payment], index: PaymentIndex, cities: set[str]) -> list[Difference]:
    def included(value: int, tx_hash: str | None) -> str:
        return f"included ({value:,} won in {tx_hash})"

    database = {
        (row.city, row.payer, row.nonce.lower()): Entry(
            row.city,
            "payment",
            f"{row.payer}/{row.nonce}",
            row.payer,
            "included" if row.status == PaymentStatus.INCLUDED else "absent",
            included(row.value, row.tx_hash)
            if row.status == PaymentStatus.INCLUDED
            else str(row.status),
            {"merchant": row.merchant, "value": row.value, "tx_hash": (row.tx_hash or "").lower()},
        )
        for row in rows
    }
    chain = {
        (city, payer, nonce): Entry(
            city,
            "payment",
            f"{payer}/{nonce}",
            payer,
            "included",
            included(p.value, p.tx_hash),
            {"merchant": p.merchant, "value": p.value, "tx_hash": p.tx_hash},
        )
        for (city, payer, nonce), p in index.payments.items()
        if city in cities
    }
    return _match(database, chain)


def _deposits(rows: list[Deposit], books: dict[str, CityBooks]) -> list[Difference]:
    database = {
        (row.city, row.reference.lower()): Entry(
            row.city,
            "deposit",
            row.reference,
            row.resident,
            "issued" if row.status == DepositStatus.ISSUED else "absent",
            f"issued ({row.amount:,} won)"
            if row.status == DepositStatus.ISSUED
            else str(row.status),
            {"resident": row.resident, "amount": row.amount, "incentive": row.incentive},
        )
        for row in rows
    }
    chain = {
        (code, i.deposit_reference.lower()): Entry(
            code,
            "deposit",
            i.deposit_reference,
            i.resident,
            "issued",
            f"issued ({i.amount:,} won)",
            {"resident": i.resident, "amount": i.amount, "incentive": i.incentive},
        )
        for code, city in books.items()
        for i in city.issuances
    }
    return _match(database, chain)


def _cash_outs(rows: list[CashOut], books: dict[str, CityBooks]) -> list[Difference]:
    chain: dict[tuple, Entry] = {}
    for code, city in books.items():
        for r in city.redemptions.values():
            if r.kind != "cash_out":
                continue
            # Relayed cash-outs carry their authorization nonce; one sent by the merchant itself
            # is known by its id alone.
            identity = (code, r.account, r.nonce.lower()) if r.nonce else (code, r.id)
            chain[identity] = Entry(
                code,
                "cash_out",
                f"{r.account}/{r.nonce}",
                r.account,
                r.status,
                f"{r.status} (redemption {r.id}, {r.burned:,} won)",
                {"amount": r.burned, "redemption_id": r.id},
            )
    database = {}
    for row in rows:
        identity = (row.city, row.merchant, row.nonce.lower())
        if identity not in chain and (row.city, row.redemption_id) in chain:
            identity = (row.city, row.redemption_id)
        database[identity] = Entry(
            row.city,
            "cash_out",
            f"{row.merchant}/{row.nonce}",
            row.merchant,
            CASH_OUT_ON_CHAIN[row.status],
            str(row.status),
            {"amount": row.amount, "redemption_id": row.redemption_id},
        )
    return _match(database, chain)


def _program_payouts(
    rows: list[tuple[PayoutRecipient, ProgramPayout]], index: PaymentIndex
) -> list[Difference]:
    """Each recipient of the payouts the operators posted: paid (now or before) on the chain as
    the database says, for the amount it recorded when it paid it, and refused ones unpaid."""
    database, chain = {}, {}
    for recipient, payout in rows:
        identity = (payout.city, payout.program, recipient.wallet.lower())
        # A list posted again finds its recipients paid before: the payout that paid one speaks.
        if identity in database and recipient.status != "paid":
            continue
        key = f"{payout.code}/{recipient.wallet}"
        # Paid by this payout: its amount must be the chain's; paid before: only that it was.
        fields = {"amount": recipient.amount} if recipient.status == "paid" else {}
        paid = recipient.status in ("paid", "already_paid")
        database[identity] = Entry(
            payout.city, "program_payout", key, recipient.wallet,
            "paid" if paid else "absent", recipient.status, fields,
        )  # fmt: skip
        on_chain = index.program_paid.get(identity)
        if on_chain is not None:
            amount, tx_hash = on_chain
            chain[identity] = Entry(
                payout.city, "program_payout", key, recipient.wallet, "paid",
                f"paid ({amount:,} won in {tx_hash})", {"amount": amount} if fields else {},
            )  # fmt: skip
    return _match(database, chain)


def reconcile(
    database_url: str, books: Books, payments: PaymentIndex, city: str | None = None
) -> list[Difference]:
    """Every difference between the database at `database_url` and the books of the chain."""
    cities = {code: b for code, b in books.cities.items() if city is None or code == city}
    db = Database(database_url)
    try:
        with db.session() as session:

            def rows(model):
                query = select(model)
                if city is not None:
                    query = query.where(model.city == city)
                return list(session.scalars(query))

            recipients = select(PayoutRecipient, ProgramPayout).join(
                ProgramPayout, PayoutRecipient.payout_id == ProgramPayout.id
            )
            if city is not None:
                recipients = recipients.where(ProgramPayout.city == city)
            return (
                _payments(rows(Payment), payments, set(cities))
                + _deposits(rows(Deposit), cities)
                + _cash_outs(rows(CashOut), cities)
                + _program_payouts([tuple(row) for row in session.execute(recipients)], payments)
            )
    finally:
        db.engine.dispose()
