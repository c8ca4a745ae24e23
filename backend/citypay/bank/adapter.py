"""What the cash-out flow needs from a bank: pay an order once, and say what became of an order.

A real bank's transfer API takes an idempotency key; here it is the order id, so asking twice for
the same order pays once and answers with the first transfer. That, not the backend's memory, is
what makes a payout exactly once across a crash between the bank's answer and its record.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Protocol

import httpx


class PayoutStatus(enum.StrEnum):
    PAID = "paid"
    FAILED = "failed"  # the bank refused the transfer for good (account closed, ...)


@dataclass(frozen=True)
class Payout:
    order_id: str
    status: PayoutStatus
    amount: int
    reference: str | None = None  # the bank's transfer reference, once paid
    reason: str | None = None  # why it failed


class BankUnavailable(RuntimeError):
    """No answer, or no usable one: the order may or may not have been paid. Ask again with the
    same order id later; never pay it under another."""


@dataclass(frozen=True)
class CustodyStatement:
    """The bank's signed statement of a custody account (citypay/reserve/statement.py)."""

    account: str  # the account's number at the bank
    balance: int
    as_of: int  # unix seconds, the bank's clock
    signer: str
    signature: bytes


class BankAdapter(Protocol):
    def pay(
        self, order_id: str, account: str, amount: int, *, debit_account: str | None = None
    ) -> Payout:
        """Pays `amount` KRW to `account` under `order_id`, from the custody account
        `debit_account` when given; the first transfer again if the order was given before.
        Raises BankUnavailable when the outcome is unknown."""
        ...

    def statement(self, account: str) -> CustodyStatement:
        """The custody account's balance now, signed by the bank's statement key."""
        ...

    def status(self, order_id: str) -> Payout | None:
        """The order's transfer, or None if the bank never received the order."""
        ...


class HttpBank:
    """The sandbox bank's HTTP API (citypay.bank.sandbox); a real bank gets an adapter of its own
    with the same two methods."""

    def __init__(self, url: str, *, timeout: float) -> None:
        self.url = url.rstrip("/")
        self.timeout = timeout

    def pay(
        self, order_id: str, account: str, amount: int, *, debit_account: str | None = None
    ) -> Payout:
        body = {"order_id": order_id, "account": account, "amount": amount}
        if debit_account is not None:
            body["debit_account"] = debit_account
        return _payout(self._request("POST", "/transfers", json=body))

    def statement(self, account: str) -> CustodyStatement:
        response = self._request("GET", f"/custody/{account}/statement")
        try:
            data = response.json()
            return CustodyStatement(
                account=data["account"],
                balance=int(data["balance"]),
                as_of=int(data["asOf"]),
                signer=data["signer"],
                signature=bytes.fromhex(data["signature"].removeprefix("0x")),
            )
        except (ValueError, KeyError, TypeError, AttributeError) as unreadable:
            raise BankUnavailable(
                f"bank at {self.url}: no readable statement of {account} "
                f"({response.status_code}: {unreadable!r})"
            ) from None

    def status(self, order_id: str) -> Payout | None:
        response = self._request("GET", f"/transfers/{order_id}")
        return None if response.status_code == 404 else _payout(response)

    def _request(self, method: str, path: str, **kwargs) -> httpx.Response:
        try:
            response = httpx.request(method, self.url + path, timeout=self.timeout, **kwargs)
        except httpx.HTTPError as error:
            raise BankUnavailable(f"bank at {self.url}: {error!r}") from None
        if response.status_code >= 500 or response.status_code not in (200, 201, 404):
            raise BankUnavailable(
                f"bank at {self.url} answered {response.status_code} to {method} {path}: "
                f"{response.text[:200]}"
            )
        return response


def _payout(response: httpx.Response) -> Payout:
    if response.status_code == 404:
        raise BankUnavailable(f"the bank lost an order it answered for: {response.text[:200]}")
    data = response.json()
    return Payout(
        order_id=data["order_id"],
        status=PayoutStatus(data["status"]),
        amount=data["amount"],
        reference=data.get("reference"),
        reason=data.get("reason"),
    )
