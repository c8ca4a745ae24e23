"""The sandbox bank: a separate process that takes payout orders as a bank's transfer API would.

    python -m citypay.bank.sandbox --port 8548 --database data/bank/sandbox.sqlite3

It keeps its own books (SQLite, apart from the platform's database: the bank is another party),
pays an order id once (asked again, it answers with the first transfer), and can be told to fail
or to be slow through PUT /control:

    {"fail_accounts": ["0x<account hash>"], "fail_next": 2, "delay": 3.0}

fail_accounts fail every order to those accounts, fail_next fails the next N new orders, delay
holds every answer that many seconds after the transfer is booked (an answer lost in a slow
network: the money moved, the caller does not know yet).
"""

from __future__ import annotations

import argparse
import logging
import sqlite3
import threading
import time
from pathlib import Path

import uvicorn
from fastapi import FastAPI, Response
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

from citypay.core.logs import LogSettings, configure_logging

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
)
"""


class TransferOrder(BaseModel):
    order_id: str = Field(min_length=1, max_length=128)
    account: str = Field(min_length=1, max_length=128)
    amount: int = Field(gt=0)


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
        self._db.execute(_SCHEMA)
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

    def find(self, order_id: str) -> dict | None:
        row = self._db.execute("SELECT * FROM transfers WHERE order_id = ?", (order_id,)).fetchone()
        return dict(row) if row else None

    def all(self) -> list[dict]:
        return [dict(row) for row in self._db.execute("SELECT * FROM transfers ORDER BY seq")]


def create_app(database: Path) -> FastAPI:
    books = Books(database)
    app = FastAPI(title="Sandbox bank")

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

    @app.put("/control")
    def control(faults: Faults) -> Faults:
        books.faults = faults
        return faults

    return app


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8548)
    parser.add_argument("--database", type=Path, default=Path("data/bank/sandbox.sqlite3"))
    args = parser.parse_args()
    configure_logging(LogSettings(), service="bank")
    # log_config=None: uvicorn keeps the handler configure_logging set (LOG_FORMAT, LOG_LEVEL).
    uvicorn.run(
        create_app(args.database),
        host=args.host,
        port=args.port,
        log_config=None,
        log_level="warning",
    )


if __name__ == "__main__":
    main()
