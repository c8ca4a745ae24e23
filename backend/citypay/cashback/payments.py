"""The payments and refunds of a city's blocks, from the token's events in the listener's index, as
CityCashback names them: (payer, merchant, paymentId).

A payment shows in the token's events one of three ways, within its transaction:
- `pay`: Transfer(payer, merchant, value), then Paid(payer, merchant, invoiceId, value): the
  invoice id;
- an EIP-3009 authorization, sent alone or in a relayer's batch: AuthorizationUsed(payer, nonce),
  then its Transfer(payer, merchant, value): the nonce;
- a plain ERC-20 transfer: a Transfer(payer, merchant, value) of neither: id zero, which names the
  running total between the two.
Every other Transfer between two accounts pays no merchant (a refund's, a gift's) but a merchant
wallet's recovery to its replacement (AccountRecovered follows it), which is no payment: so each
candidate's receiver is asked of the chain (settler.py), as CityCashback itself refuses any other.
A refund is Refunded(merchant, payer, paymentId, value).

Each is found with its position, (block, log index), which says in which incentive mode it was
made (ModeHistory)."""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from itertools import groupby
from typing import Any, NamedTuple

from citypay.chain.enums import IncentiveMode

ZERO_ADDRESS = "0x" + "00" * 20
# The id of a pair's plain transfers, as the token's refunds and CityCashback name it.
PLAIN_TRANSFERS = "0x" + "00" * 32
# The token events a payment or a refund is read from.
TOKEN_EVENTS = ("Transfer", "Paid", "AuthorizationUsed", "Refunded", "AccountRecovered")

Position = tuple[int, int]  # (block, log index)


class Log(NamedTuple):
    """One of the token's indexed events (listener/models.py IndexedEvent's columns)."""

    block_number: int
    tx_hash: str
    log_index: int
    event: str
    args: dict[str, Any]

    @property
    def position(self) -> Position:
        return (self.block_number, self.log_index)


@dataclass(frozen=True)
class Settlement:
    """A payment as CityCashback settles it; `payment_id` as 0x-hex."""

    payer: str
    merchant: str
    payment_id: str

    def as_argument(self) -> tuple[str, str, bytes]:
        """ICityCashback.Settlement, as settleBatch takes it."""
        return (self.payer, self.merchant, bytes.fromhex(self.payment_id[2:]))


@dataclass(frozen=True)
class Found:
    settlement: Settlement
    position: Position


def payments_in(logs: Iterable[Log]) -> list[Found]:
    """Every payment candidate of `logs`, which hold every token event of whole transactions in
    (block, log index) order."""
    found: list[Found] = []
    for _, transaction in groupby(logs, key=lambda log: (log.block_number, log.tx_hash)):
        found += _payments_of_transaction(list(transaction))
    return found


def refunds_in(logs: Iterable[Log]) -> list[Found]:
    return [
        Found(
            Settlement(log.args["payer"], log.args["merchant"], log.args["paymentId"]), log.position
        )
        for log in logs
        if log.event == "Refunded"
    ]


def _payments_of_transaction(logs: Sequence[Log]) -> list[Found]:
    found, taken = [], set()
    for at, log in enumerate(logs):
        args = log.args
        if log.event == "Paid":
            payer, merchant = args["payer"], args["merchant"]
            _take_transfer_before(logs, at, payer, merchant, taken)
            found.append(Found(Settlement(payer, merchant, args["paymentId"]), log.position))
        elif log.event == "AuthorizationUsed":
            # The token marks the nonce used right before it moves the money: the next of its
            # events is the payment's Transfer (a refund's authorization moves money to a
            # resident, whom the receiver check leaves out).
            following = logs[at + 1] if at + 1 < len(logs) else None
            if following is not None and _is_transfer(following, args["authorizer"]):
                taken.add(at + 1)
                settlement = Settlement(args["authorizer"], following.args["to"], args["nonce"])
                found.append(Found(settlement, log.position))
        elif log.event == "Refunded":
            _take_transfer_before(logs, at, args["merchant"], None, taken)
        elif log.event == "AccountRecovered":
            _take_transfer_before(logs, at, args["lost"], args["replacement"], taken)
    for at, log in enumerate(logs):
        if log.event == "Transfer" and at not in taken:
            payer, merchant = log.args["from"], log.args["to"]
            if ZERO_ADDRESS not in (payer, merchant):  # a mint or a burn
                found.append(Found(Settlement(payer, merchant, PLAIN_TRANSFERS), log.position))
    return found


def _is_transfer(log: Log, sender: str, receiver: str | None = None) -> bool:
    return (
        log.event == "Transfer"
        and log.args["from"] == sender
        and receiver in (None, log.args["to"])
    )


def _take_transfer_before(
    logs: Sequence[Log], at: int, sender: str, receiver: str | None, taken: set[int]
) -> None:
    """Takes the nearest Transfer before `at` from `sender` (to `receiver`) not yet taken: the
    one the event at `at` announces (a money class's burn of expired money may come between)."""
    for before in range(at - 1, -1, -1):
        if before not in taken and _is_transfer(logs[before], sender, receiver):
            taken.add(before)
            return


class ModeHistory:
    """When a city paid cashback: its treasury's IncentiveModeChanged events, oldest first. A
    payment counts in the mode the last change before it set (a city starts in discount mode)."""

    def __init__(self, changes: Sequence[tuple[Position, int]]) -> None:
        self._positions = [position for position, _ in changes]
        self._modes = [IncentiveMode(mode) for _, mode in changes]

    @property
    def ever_cashback(self) -> bool:
        return IncentiveMode.CASHBACK in self._modes

    def cashback_at(self, position: Position) -> bool:
        before = bisect_left(self._positions, position)
        return before > 0 and self._modes[before - 1] == IncentiveMode.CASHBACK

    def switches_to_cashback(self, after: int, upto: int) -> list[Position]:
        """Where the city went from discount to cashback in blocks `after` (excluded) to `upto`:
        the first IncentiveModeChanged to cashback too, as a city starts in discount mode (a city
        deployed in cashback mode switches in its deployment, before any resident paid)."""
        return [
            position
            for at, position in enumerate(self._positions)
            if after < position[0] <= upto
            and self._modes[at] == IncentiveMode.CASHBACK
            and (at == 0 or self._modes[at - 1] != IncentiveMode.CASHBACK)
        ]
