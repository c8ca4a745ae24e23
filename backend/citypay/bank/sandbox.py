"""The sandbox bank: a separate process that takes payout orders as a bank's transfer API would.

    python -m citypay.bank.sandbox --port 8548 --database data/bank/sandbox.sqlite3

It keeps its own books (SQLite, apart from the platform's database: the bank is another party),
pays an order id once (asked again, it answers with the first transfer), and can be told to fail
or to be slow through PUT /control:

    {"fail_accounts": ["0x<account hash>"], "fail_next": 2, "delay": 3.0}

fail_accounts fail every order to those accounts, fail_next fails the next N new orders, delay
holds every answer that many seconds after the transfer is booked (an answer lost in a slow
network: the money moved, the caller does not know yet).

It also keeps each city's custody account, the one that holds the KRW behind the city's tokens:
money in (`POST /custody/{account}/credits`: a resident's deposit, the city's incentive funding),
money out (a paid transfer whose order names it as `debit_account`: a cash-out, a refund), and a
statement of its balance signed with the bank's statement key (`GET /custody/{account}/statement`:
EIP-712, citypay/reserve/statement.py), which the platform records on chain as its proof of
reserve. The key is SANDBOX_BANK_STATEMENT_KEY (a hex private key, from the environment so that no
process list shows it), by default the development mnemonic's account 18, which the embedded
configuration names `sandbox-bank-statements`.
"""

from __future__ import annotations

import argparse
import logging
import os
import sqlite3
import threading
import time
from pathlib import Path

import uvicorn
from eth_account import Account
from fastapi import FastAPI, Response
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

from citypay.chain.keystore import development_accounts
from citypay.core.logs import LogSettings, configure_logging
from citypay.reserve.statement import Statement, custody_account_hash

log = logging.getLogger("citypay.bank.sandbox")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS transfers (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    order_id TEXT NOT NULL UNIQUE,
    account TEXT NOT NULL,
    amount INTEGER NOT NULL,
    status TEXT NOT NULL,
    reference TEXT,
    reason TEXT,
    booked_at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS custody (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    account TEXT NOT NULL,
    reference TEXT NOT NULL UNIQUE,
    amount INTEGER NOT NULL,
    booked_at REAL NOT NULL
)
"""
# The development mnemonic's account 18: the embedded configuration's sandbox-bank-statements.
DEVELOPMENT_STATEMENT_ACCOUNT = 18
STATEMENT_KEY_VARIABLE = "SANDBOX_BANK_STATEMENT_KEY"


class TransferOrder(BaseModel):
    order_id: str = Field(min_length=1, max_length=128)
    account: str = Field(min_length=1, max_length=128)
    amount: int = Field(gt=0)
    # The custody account the transfer is paid from, when it is one.
    debit_account: str | None = Field(default=None, min_length=1, max_length=64)


class Credit(BaseModel):
    """Money into a custody account, once per reference (the bank's own deposit id)."""

    reference: str = Field(min_length=1, max_length=128)
    amount: int = Field(gt=0, le=10**15)


class Faults(BaseModel):
    fail_accounts: list[str] = []
    fail_next: int = Field(default=0, ge=0)
    fail_reason: str = "account_closed"
    delay: float = Field(default=0.0, ge=0)


class Books:
    """The bank's ledger of transfers, one per order id."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        self._db.row_factory = sqlite3.Row
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.executescript(_SCHEMA)
        self._lock = threading.Lock()
        self.faults = Faults()

    def book(self, order: TransferOrder) -> tuple[dict, bool]:
        """(the order's transfer, whether it is new)."""
        with self._lock:
            existing = self.find(order.order_id)
            if existing is not None:
                return existing, False
            failed = order.account in self.faults.fail_accounts or self.faults.fail_next > 0
            if failed and order.account not in self.faults.fail_accounts:
                self.faults.fail_next -= 1
            cursor = self._db.execute(
                "INSERT INTO transfers (order_id, account, amount, status, reason, booked_at) "
                "VALUES (?, ?, ?, ?, ?, ?)",
                (
                    order.order_id,
                    order.account,
                    order.amount,
                    "failed" if failed else "paid",
                    self.faults.fail_reason if failed else None,
                    time.time(),
                ),
            )
            if not failed:
                self._db.execute(
                    "UPDATE transfers SET reference = ? WHERE seq = ?",
                    (f"SBX-{cursor.lastrowid:08d}", cursor.lastrowid),
                )
                if order.debit_account is not None:
                    self._custody_entry(
                        order.debit_account, f"transfer:{order.order_id}", -order.amount
                    )
            booked = self.find(order.order_id)
            log.info(
                "transfer %s %s",
                booked["order_id"],
                booked["status"],
                extra={
                    "order_id": booked["order_id"],
                    "amount": booked["amount"],
                    "status": booked["status"],
                    "bank_reference": booked["reference"],
                    "reason": booked["reason"],
                },
            )
            return booked, True

    def _custody_entry(self, account: str, reference: str, amount: int) -> bool:
        """Books `amount` (negative: out) on the custody account once; False if already."""
        cursor = self._db.execute(
            "INSERT OR IGNORE INTO custody (account, reference, amount, booked_at) "
            "VALUES (?, ?, ?, ?)",
            (account, reference, amount, time.time()),
        )
        return cursor.rowcount == 1

    def credit(self, account: str, credit: Credit) -> tuple[dict, bool]:
        """(the credit as booked, whether it is new)."""
        with self._lock:
            new = self._custody_entry(account, f"credit:{credit.reference}", credit.amount)
            row = self._db.execute(
                "SELECT account, reference, amount FROM custody WHERE reference = ?",
                (f"credit:{credit.reference}",),
            ).fetchone()
            return dict(row), new

    def custody_balance(self, account: str) -> tuple[int, int]:
        """(balance, entries) of the custody account: every credit less every paid transfer."""
        with self._lock:
            row = self._db.execute(
                "SELECT COALESCE(SUM(amount), 0), COUNT(*) FROM custody WHERE account = ?",
                (account,),
            ).fetchone()
            return row[0], row[1]

    def find(self, order_id: str) -> dict | None:
        row = self._db.execute("SELECT * FROM transfers WHERE order_id = ?", (order_id,)).fetchone()
        return dict(row) if row else None

    def all(self) -> list[dict]:
        return [dict(row) for row in self._db.execute("SELECT * FROM transfers ORDER BY seq")]


def create_app(database: Path, statement_key: str | None = None) -> FastAPI:
    books = Books(database)
    signer = Account.from_key(statement_key) if statement_key else _development_signer()
    app = FastAPI(title="Sandbox bank")
    last_statement = {"as_of": 0}

    @app.get("/health")
    def health() -> dict:
        return {"status": "ok"}

    @app.post("/transfers")
    def transfer(order: TransferOrder) -> Response:
        booked, new = books.book(order)
        if (booked["account"], booked["amount"]) != (order.account, order.amount):
            return JSONResponse(
                {
                    "error": f"order {order.order_id} was given for {booked['amount']} KRW to "
                    f"{booked['account']}, not {order.amount} KRW to {order.account}",
                    "accepted": "the same account and amount, or a new order id",
                },
                status_code=409,
            )
        time.sleep(books.faults.delay)
        return JSONResponse(booked, status_code=201 if new else 200)

    @app.get("/transfers/{order_id}")
    def transfer_of(order_id: str) -> Response:
        found = books.find(order_id)
        if found is None:
            return JSONResponse({"error": f"no order {order_id}"}, status_code=404)
        return JSONResponse(found)

    @app.get("/transfers")
    def transfers() -> list[dict]:
        return books.all()

    @app.post("/custody/{account}/credits")
    def credit(account: str, credit: Credit) -> Response:
        booked, new = books.credit(account, credit)
        if booked["account"] != account or booked["amount"] != credit.amount:
            return JSONResponse(
                {
                    "error": f"credit {credit.reference} was booked for {booked['amount']} KRW "
                    f"to {booked['account']}, not {credit.amount} KRW to {account}",
                    "accepted": "the same account and amount, or a new reference",
                },
                status_code=409,
            )
        return JSONResponse(booked, status_code=201 if new else 200)

    @app.get("/custody/{account}/statement")
    def statement(account: str) -> Response:
        """The account's balance now, signed: each statement a second after the last at least,
        so that each is newer than the one before (the chain records only newer ones)."""
        balance, entries = books.custody_balance(account)
        if balance < 0:  # paid out more than came in: a bank would have refused a transfer
            return JSONResponse(
                {
                    "error": f"{account} is overdrawn by {-balance:,} KRW: no statement",
                    "accepted": "credits to the account first (POST /custody/{account}/credits)",
                },
                status_code=409,
            )
        with books._lock:
            as_of = max(int(time.time()), last_statement["as_of"] + 1)
            last_statement["as_of"] = as_of
        signed = Statement(custody_account_hash(account), balance, as_of)
        return JSONResponse(
            {
                "account": account,
                "accountHash": "0x" + signed.account.hex(),
                "balance": balance,
                "entries": entries,
                "asOf": as_of,
                "signer": signer.address,
                "signature": "0x" + signed.sign(signer.key).hex(),
            }
        )

    @app.get("/statement-key")
    def statement_key_address() -> dict:
        return {"signer": signer.address}

    @app.put("/control")
    def control(faults: Faults) -> Faults:
        books.faults = faults
        return faults

    return app


def _development_signer():
    return list(development_accounts().values())[DEVELOPMENT_STATEMENT_ACCOUNT]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8548)
    parser.add_argument("--database", type=Path, default=Path("data/bank/sandbox.sqlite3"))
    args = parser.parse_args()
    configure_logging(LogSettings(), service="bank")
    # log_config=None: uvicorn keeps the handler configure_logging set (LOG_FORMAT, LOG_LEVEL).
    uvicorn.run(
        create_app(args.database, os.environ.get(STATEMENT_KEY_VARIABLE) or None),
        host=args.host,
        port=args.port,
        log_config=None,
        log_level="warning",
    )


if __name__ == "__main__":
    main()
