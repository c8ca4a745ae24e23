"""The outbox of every account the backend sends from (relayer, issuers, settlers, registrar):
nothing is believed that the chain has not kept.

- Recorded before sent. A transaction is signed under the account's next nonce and recorded,
  signed bytes included, in the caller's database transaction (with whatever the transaction is
  for: the payments of a batch, a deposit, a cash-out); it is broadcast only after that commits.
  Two writers of one nonce meet the unique (sender, nonce) and one of them tries again.
- One nonce, one transaction. The next nonce is after every recorded one, and never below the
  node's pending count (a transaction the key sent that nobody recorded). A recorded transaction
  the node does not know (dropped, or lost with the blocks of a node restart or a rollback) is
  broadcast again as it was, byte for byte: the same payments, never under a second nonce, and
  no gap is left waiting, since every nonce below the next one has its bytes here.
- Followed to finality. `follow()` asks for the receipts of what is sent and not final, records
  the block (number, hash, success) of what was mined, and calls it final once its block is at
  or below the head less the configured confirmations. Each round it also checks that the
  newest block it recorded a transaction in is still the node's block at that height; if not
  (a rollback, or a node restarted from an older state), it walks down to the last block both
  agree on and takes every transaction above it back to sent, so its subject's status goes back
  too, and the bytes are sent again in their first order.
- What a transaction is for reacts through handlers registered per purpose: `mined` (with the
  receipt), `unmined` (its block is gone) and `final`.
"""

from __future__ import annotations

import enum
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING

from eth_account.signers.local import LocalAccount
from sqlalchemy import (
    BigInteger,
    Boolean,
    DateTime,
    Enum,
    String,
    Text,
    UniqueConstraint,
    func,
    select,
)
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Mapped, Session, mapped_column

from citypay.chain.gateway import ChainGateway
from citypay.chain.rpc import NodeRefused
from citypay.db.models import Base, utcnow

if TYPE_CHECKING:  # db.session imports every model, this module's among them
    from citypay.db.session import Database

log = logging.getLogger(__name__)

# What a node answers to bytes it has in its pool already, or mined: not a failure, as the
# transaction is followed by its hash either way.
_ALREADY_SENT = ("already", "nonce too low", "known")
# Receipts asked for in one JSON-RPC batch.
_RECEIPT_BATCH = 200
# Block hashes compared in one JSON-RPC batch while looking for where a rollback began.
_HASH_BATCH = 64


class OutboxStatus(enum.StrEnum):
    SENT = "sent"  # recorded, broadcast (or about to be): not in a block the node has
    MINED = "mined"  # in a block, not yet below the confirmations
    FINAL = "final"  # its block is at or below the head less the confirmations


class ChainTransaction(Base):
    """One transaction of one of the backend's accounts, with its signed bytes."""

    __tablename__ = "outbox_transactions"
    __table_args__ = (UniqueConstraint("sender", "nonce"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    sender: Mapped[str] = mapped_column(String(42))
    nonce: Mapped[int] = mapped_column(BigInteger)
    purpose: Mapped[str] = mapped_column(String(32), server_default="payment_batch")
    tx_hash: Mapped[str] = mapped_column(String(66), unique=True)
    raw_transaction: Mapped[str] = mapped_column(Text)
    status: Mapped[OutboxStatus] = mapped_column(
        Enum(OutboxStatus, native_enum=False, length=16), index=True
    )
    block_number: Mapped[int | None] = mapped_column(BigInteger, index=True)
    block_hash: Mapped[str | None] = mapped_column(String(66))
    succeeded: Mapped[bool | None] = mapped_column(Boolean)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), default=utcnow, onupdate=utcnow
    )


# (session, transaction, receipt) for mined; (session, transaction) for unmined and final.
MinedHandler = Callable[[Session, ChainTransaction, dict], None]
PlainHandler = Callable[[Session, ChainTransaction], None]


@dataclass
class _Handlers:
    mined: MinedHandler | None = None
    unmined: PlainHandler | None = None
    final: PlainHandler | None = None


@dataclass
class FollowRound:
    """What one round of follow() found, for logs, metrics and tests."""

    mined: int = 0
    unmined: int = 0
    finalized: int = 0
    resent: int = 0
    waiting: int = 0  # sent and not yet mined after the round
    rolled_back_to: int | None = None  # the last block the records and the node agreed on


class Outbox:
    def __init__(self, db: Database, gateway: ChainGateway, *, confirmations: int = 0) -> None:
        self.db = db
        self.gateway = gateway
        self.confirmations = confirmations
        self._handlers: dict[str, _Handlers] = {}
        self._follow_lock = threading.Lock()

    def on(
        self,
        purpose: str,
        *,
        mined: MinedHandler | None = None,
        unmined: PlainHandler | None = None,
        final: PlainHandler | None = None,
    ) -> None:
        """What a transaction for `purpose` does to its subject as the chain keeps or loses it."""
        self._handlers[purpose] = _Handlers(mined, unmined, final)

    # --- sending ------------------------------------------------------------------------------

    def record(
        self,
        session: Session,
        account: LocalAccount,
        *,
        to: str,
        data: bytes,
        gas: int,
        purpose: str,
        pending: int | None = None,
    ) -> ChainTransaction:
        """The transaction signed under the account's next nonce and added to `session`
        (flushed, so it has its id); the caller broadcasts it once its transaction commits.
        `pending` is the node's pending count of the account, when the caller has it."""
        if pending is None:
            pending = int(
                self.gateway.rpc.request("eth_getTransactionCount", account.address, "pending"), 16
            )
        nonce = next_nonce(session, account.address, pending)
        signed = account.sign_transaction(
            {
                "to": to,
                "data": data,
                "value": 0,
                "nonce": nonce,
                "gas": gas,
                "gasPrice": 0,  # the city's chain charges no gas
                "chainId": self.gateway.chain_id,
            }
        )
        record = ChainTransaction(
            sender=account.address,
            nonce=nonce,
            purpose=purpose,
            tx_hash="0x" + signed.hash.hex(),
            raw_transaction="0x" + signed.raw_transaction.hex(),
            status=OutboxStatus.SENT,
        )
        session.add(record)
        session.flush()
        return record

    def send(
        self,
        account: LocalAccount,
        *,
        to: str,
        data: bytes,
        gas: int,
        purpose: str,
        attach: Callable[[Session, ChainTransaction], None] | None = None,
        attempts: int = 5,
    ) -> ChainTransaction:
        """Records a transaction (with `attach` run in the same database transaction, to tie
        its subject to it), commits, then broadcasts it. A nonce taken by another writer
        meanwhile is tried again with the next."""
        for attempt in range(attempts):
            try:
                with self.db.session() as session:
                    record = self.record(
                        session, account, to=to, data=data, gas=gas, purpose=purpose
                    )
                    if attach is not None:
                        attach(session, record)
                break
            except IntegrityError:
                if attempt == attempts - 1:
                    raise
        self.broadcast(record.raw_transaction)
        return record

    def broadcast(self, raw: str) -> None:
        """Sends signed bytes; bytes the node has already are no error."""
        try:
            self.gateway.rpc.request("eth_sendRawTransaction", raw)
        except NodeRefused as refused:
            if not any(known in refused.message.lower() for known in _ALREADY_SENT):
                raise

    def receipt(self, tx_hash: str) -> dict | None:
        return self.gateway.rpc.request("eth_getTransactionReceipt", tx_hash)

    # --- following ----------------------------------------------------------------------------

    def follow(self) -> FollowRound:
        """One round: rollbacks first, then receipts, then finality (see the module)."""
        with self._follow_lock:
            result = FollowRound()
            head = self.gateway.block_number()
            result.rolled_back_to = self._take_back_rolled_back(head, result)
            self._follow_unmined(result)
            self._finalize(head, result)
            if result.mined or result.unmined or result.resent or result.finalized:
                log.info(
                    "outbox: %s mined, %s taken back, %s final, %s sent again",
                    result.mined,
                    result.unmined,
                    result.finalized,
                    result.resent,
                    extra={"block": head},
                )
            return result

    def _take_back_rolled_back(self, head: int, result: FollowRound) -> int | None:
        """Finds the last block the records and the node agree on; every transaction recorded
        in a later block goes back to sent. None when nothing was rolled back."""
        agreed: int | None = None
        agreed_hash: str | None = None
        lost_above = None
        offset = 0
        while agreed is None:
            with self.db.session() as session:
                chunk = session.execute(
                    select(ChainTransaction.block_number, ChainTransaction.block_hash)
                    .where(ChainTransaction.block_number.is_not(None))
                    .distinct()
                    .order_by(ChainTransaction.block_number.desc())
                    .offset(offset)
                    .limit(_HASH_BATCH)
                ).all()
            if not chunk:
                break
            offset += len(chunk)
            answers = self.gateway.rpc.batch_results(
                [("eth_getBlockByNumber", [hex(number), False]) for number, _ in chunk]
            )
            for (number, recorded), block in zip(chunk, answers, strict=True):
                if block is not None and block["hash"] == recorded:
                    agreed, agreed_hash = number, recorded
                    break
                lost_above = number
        if lost_above is None:
            return None
        if agreed is None:
            agreed, agreed_hash = -1, None
        with self.db.session() as session:
            lost = session.scalars(
                select(ChainTransaction)
                .where(
                    (ChainTransaction.block_number > agreed)
                    # A block of the same height that is not the node's (a reorg's other branch).
                    | (
                        (ChainTransaction.block_number == agreed)
                        & (ChainTransaction.block_hash != agreed_hash)
                    )
                )
                .order_by(ChainTransaction.block_number, ChainTransaction.id)
            ).all()
            for record in lost:
                log.warning(
                    "outbox: %s (%s of %s, nonce %s) was in block %s, which the node no longer has",
                    record.tx_hash,
                    record.purpose,
                    record.sender,
                    record.nonce,
                    record.block_number,
                    extra={"tx_hash": record.tx_hash, "block": record.block_number},
                )
                record.status = OutboxStatus.SENT
                record.block_number = record.block_hash = record.succeeded = None
                handlers = self._handlers.get(record.purpose)
                if handlers and handlers.unmined:
                    handlers.unmined(session, record)
                result.unmined += 1
        return agreed

    def _follow_unmined(self, result: FollowRound) -> None:
        with self.db.session() as session:
            sent = session.scalars(
                select(ChainTransaction)
                .where(ChainTransaction.status == OutboxStatus.SENT)
                .order_by(ChainTransaction.sender, ChainTransaction.nonce)
            ).all()
        lost = []
        for start in range(0, len(sent), _RECEIPT_BATCH):
            chunk = sent[start : start + _RECEIPT_BATCH]
            receipts = self.gateway.rpc.batch_results(
                [("eth_getTransactionReceipt", [r.tx_hash]) for r in chunk]
            )
            mined = [(r, receipt) for r, receipt in zip(chunk, receipts, strict=True) if receipt]
            lost += [r for r, receipt in zip(chunk, receipts, strict=True) if not receipt]
            if mined:
                with self.db.session() as session:
                    for record, receipt in mined:
                        self._mined(session, record, receipt)
                        result.mined += 1
        result.waiting = len(lost)
        if lost:
            known = self.gateway.rpc.batch_results(
                [("eth_getTransactionByHash", [r.tx_hash]) for r in lost]
            )
            for record, pooled in zip(lost, known, strict=True):
                if pooled is None:
                    # Dropped from the pool or lost with a rollback: the same bytes again, in
                    # each sender's nonce order (the query's order), so none waits on a gap.
                    self.broadcast(record.raw_transaction)
                    result.resent += 1

    def _mined(self, session: Session, record: ChainTransaction, receipt: dict) -> None:
        row = session.get(ChainTransaction, record.id)
        row.status = OutboxStatus.MINED
        row.block_number = int(receipt["blockNumber"], 16)
        row.block_hash = receipt["blockHash"]
        row.succeeded = int(receipt["status"], 16) == 1
        handlers = self._handlers.get(row.purpose)
        if handlers and handlers.mined:
            handlers.mined(session, row, receipt)

    def _finalize(self, head: int, result: FollowRound) -> None:
        with self.db.session() as session:
            due = session.scalars(
                select(ChainTransaction).where(
                    ChainTransaction.status == OutboxStatus.MINED,
                    ChainTransaction.block_number <= head - self.confirmations,
                )
            ).all()
            for record in due:
                record.status = OutboxStatus.FINAL
                handlers = self._handlers.get(record.purpose)
                if handlers and handlers.final:
                    handlers.final(session, record)
                result.finalized += 1

    def wait_mined(self, record: ChainTransaction, *, timeout: float = 60, poll: float = 0.1):
        """Follows until `record` is mined (its receipt, as recorded), for a sender that waits
        for its transaction; TimeoutError if it is not within `timeout` seconds."""
        deadline = time.monotonic() + timeout
        while True:
            self.follow()
            with self.db.session() as session:
                row = session.get(ChainTransaction, record.id)
            if row.status is not OutboxStatus.SENT:
                return row
            if time.monotonic() > deadline:
                raise TimeoutError(f"{record.tx_hash} not mined within {timeout} s")
            time.sleep(poll)


def next_nonce(session: Session, sender: str, pending: int) -> int:
    """After every nonce recorded, and never below the node's pending count of the sender's
    transactions (one the key sent that no one recorded)."""
    recorded = session.scalar(
        select(func.max(ChainTransaction.nonce)).where(ChainTransaction.sender == sender)
    )
    return max(pending, -1 if recorded is None else recorded + 1)
