"""What the wallet-signed messages the backend relays one transaction each share (a merchant's
refund, refund/; a resident's gift, gifts/): where each stands, the columns that say so, the
checks of the message itself, and the sender.

Any account may relay such a message, and each city's relayer relays its payments. So these
messages share its nonces in the outbox (chain/outbox.py) with the payment batches: a message's
transaction is recorded in the same database transaction that marks it submitted, and only then
sent; the outbox follows it, sends the same bytes again if the node loses them, and tells the
sender when it is mined (included, or failed with the chain's reason) or taken back with its
block (submitted again).

Exactly once: the contract uses each nonce of the signer once, so the message takes effect at
most once whoever sends it (another replica, anyone who saw the signature), and the event that
names (signer, nonce) names the transaction that did.
"""

from __future__ import annotations

import enum
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

from eth_account.signers.local import LocalAccount
from sqlalchemy import BigInteger, DateTime, Enum, ForeignKey, String, Text, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Mapped, Session, mapped_column

from citypay.authorization import TokenDomain
from citypay.chain.deployment import City, Deployment
from citypay.chain.gateway import PlatformContract
from citypay.chain.outbox import ChainTransaction, Outbox
from citypay.core.errors import ApiError, Conflict, Unprocessable
from citypay.core.faults import crash_point
from citypay.db.models import utcnow

if TYPE_CHECKING:  # db.session imports every model, the relayed ones among them
    from citypay.db.session import Database

log = logging.getLogger(__name__)

# The most messages of one kind a round sends.
ROUND = 50
# A sender's round comes at once when a message is accepted in this process (the service wakes
# it); idle, one a second finds what another replica accepted or a restart left, as the payment
# relayer's idle look does. Every RELAY_INTERVAL instead, the refunds' and gifts' empty rounds
# were 4% of a busy replica's time under make bench-relay.
IDLE_ROUND_SECONDS = 1.0
ZERO = bytes(32)


class RelayStatus(enum.StrEnum):
    ACCEPTED = "accepted"  # checked and recorded; not sent yet
    SUBMITTED = "submitted"  # its signed transaction is recorded (the outbox) and sent
    INCLUDED = "included"  # final: done on chain (tx_hash, block_number)
    FAILED = "failed"  # final: the chain refused it, or it expired before it could be sent


FINAL = frozenset({RelayStatus.INCLUDED, RelayStatus.FAILED})
IN_FLIGHT = (RelayStatus.ACCEPTED, RelayStatus.SUBMITTED)


class RelayedRow:
    """The columns every relayed message's table has besides its own terms: its window, nonce
    and signature, where it stands, and the transaction that carries it."""

    id: Mapped[int] = mapped_column(primary_key=True)
    city: Mapped[str] = mapped_column(String(32))
    nonce: Mapped[str] = mapped_column(String(66))
    value: Mapped[int] = mapped_column(BigInteger)
    valid_after: Mapped[int] = mapped_column(BigInteger)
    valid_before: Mapped[int] = mapped_column(BigInteger)
    v: Mapped[int] = mapped_column()
    r: Mapped[str] = mapped_column(String(66))
    s: Mapped[str] = mapped_column(String(66))
    status: Mapped[RelayStatus] = mapped_column(
        Enum(RelayStatus, native_enum=False, length=16), index=True
    )
    failure_reason: Mapped[str | None] = mapped_column(Text)
    relay_transaction_id: Mapped[int | None] = mapped_column(ForeignKey("outbox_transactions.id"))
    tx_hash: Mapped[str | None] = mapped_column(String(66))
    block_number: Mapped[int | None] = mapped_column(BigInteger)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), default=utcnow, onupdate=utcnow
    )

    @property
    def signature(self) -> str:
        """The 65-byte signature (r, s, v) as hex."""
        return self.r + self.s[2:] + f"{self.v:02x}"


def hex32(value: bytes) -> str:
    return "0x" + value.hex()


# --- what the message alone shows ---------------------------------------------------------------


def zero_nonce_refusal(nonce: bytes) -> ApiError | None:
    if nonce != ZERO:
        return None
    return Unprocessable(
        "zero_nonce",
        "the nonce is zero: the wallet drew no random nonce",
        field="nonce",
        value=nonce,
        accepted="a fresh random 32-byte nonce, not zero",
    )


def signer_refusal(
    signer: str | None,
    *,
    expected: str,
    role: str,
    primary_type: str,
    domain: TokenDomain,
    signature: bytes,
) -> ApiError | None:
    """The refusal of a signature that recovers another address than the `role`'s, `expected`."""
    if signer == expected:
        return None
    return Unprocessable(
        "invalid_signature",
        f"the signature recovers {signer}, not the {role} {expected}",
        field="signature",
        value=signature,
        accepted=f"the {role}'s EIP-712 {primary_type} signature for domain "
        f"'{domain.name}' version {domain.version}, chain {domain.chain_id}, "
        f"contract {domain.verifying_contract}",
    )


def require_same_terms(what: str, terms: list[tuple[str, Any, Any]]) -> None:
    """The signer's nonce is taken by `what` (e.g. "refund 7"): refused (409) naming the first
    (field, recorded, posted) of `terms` that differs."""
    for name, recorded, posted in terms:
        if recorded != posted:
            raise Conflict(
                "nonce_reused",
                f"{what} already uses this nonce with another {name}",
                field=name,
                value=posted,
                accepted=f"{recorded}, or a new nonce for a new one",
            )


# --- sending ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Settled:
    """What the chain did with a message whose nonce is spent already."""

    status: RelayStatus
    fields: dict = field(default_factory=dict)

    @classmethod
    def by(cls, log_entry: dict) -> Settled:
        """Done by the transaction of this log (another sender's, or ours before a restart)."""
        return cls(
            RelayStatus.INCLUDED,
            {
                "tx_hash": log_entry["transactionHash"],
                "block_number": int(log_entry["blockNumber"], 16),
            },
        )

    @classmethod
    def cancelled(cls, reason: str) -> Settled:
        return cls(RelayStatus.FAILED, {"failure_reason": reason})


@dataclass(frozen=True)
class RelayedKind:
    """One kind of relayed message, as the sender needs to know it."""

    name: str  # its outbox purpose, and its name in logs and crash points
    row: type  # its model: a RelayedRow
    gas: int
    contract: Callable[[City], PlatformContract]  # where its transaction goes
    function: str
    arguments: Callable[[Any], tuple]  # the row's call arguments
    # The chain's verdict on sending the row from the account now: None if it would go through.
    refusal: Callable[[City, LocalAccount, Any], ApiError | None]
    # What the chain did with the row's nonce, if it is spent already.
    settled: Callable[[City, Any], Settled | None]


class _Taken(Exception):
    """Another replica submitted the message first: the recording is rolled back."""


class RelayedSender:
    """Sends a kind's accepted messages from their city's relayer, one transaction each, and
    records what the outbox tells of them."""

    def __init__(
        self,
        kind: RelayedKind,
        db: Database,
        deployment: Deployment,
        outbox: Outbox,
        accounts: dict[str, LocalAccount],
    ) -> None:
        self.kind = kind
        self.db = db
        self.deployment = deployment
        self.outbox = outbox
        self.accounts = accounts  # by city code: the relayer each city's messages go from
        outbox.on(kind.name, mined=self._mined, unmined=self._unmined)

    def round(self) -> None:
        """Sends the messages accepted (the outbox follows them), ROUND at a time until none is
        left: a backlog (a mass refund, a restart) goes out at once, not a ROUND an idle round."""
        while True:
            found, moved = self._send_some()
            if found < ROUND or not moved:  # all sent, or the rest is stuck: the next round
                return

    def _send_some(self) -> tuple[int, int]:
        """(messages found accepted, of which handled: sent, settled or refused)."""
        row = self.kind.row
        with self.db.session() as session:
            accepted = session.scalars(
                select(row)
                .where(row.status == RelayStatus.ACCEPTED, row.city.in_(list(self.accounts)))
                .order_by(row.id)
                .limit(ROUND)
            ).all()
        moved = 0
        for message in accepted:
            try:
                self._submit(message)
                moved += 1
            except (_Taken, IntegrityError):
                log.info(
                    "%s %s: taken by another sender or nonce; next round",
                    self.kind.name,
                    message.id,
                )
        return len(accepted), moved

    def _submit(self, message) -> None:
        kind, row = self.kind, self.kind.row
        city = self.deployment.city(message.city)
        if self._settled_elsewhere(city, message):
            return
        account = self.accounts[message.city]
        # Simulated first, so that a message the chain now refuses (its window passed while it
        # waited, the city paused, ...) costs no transaction and says why.
        refusal = kind.refusal(city, account, message)
        if refusal is not None:
            self._record(message.id, RelayStatus.FAILED, failure_reason=refusal.message)
            return
        contract = kind.contract(city)
        data = contract.calldata(kind.function, *kind.arguments(message))
        with self.db.session() as session:
            record = self.outbox.record(
                session, account, to=contract.address, data=data, gas=kind.gas, purpose=kind.name
            )
            taken = session.execute(
                update(row)
                .where(row.id == message.id, row.status == RelayStatus.ACCEPTED)
                .values(
                    status=RelayStatus.SUBMITTED,
                    relay_transaction_id=record.id,
                    tx_hash=record.tx_hash,
                )
            )
            if taken.rowcount != 1:
                raise _Taken
        log.info(
            "%s %s submitted",
            kind.name,
            message.id,
            extra={"city": message.city, f"{kind.name}_id": message.id, "tx_hash": record.tx_hash},
        )
        crash_point(f"after_{kind.name}_recorded")
        self.outbox.broadcast(record.raw_transaction)
        crash_point(f"after_{kind.name}_sent")

    # --- what the outbox tells of a message's transaction ---------------------------------------

    def _mined(self, session: Session, record: ChainTransaction, receipt: dict) -> None:
        row = self.kind.row
        message = session.scalar(select(row).where(row.relay_transaction_id == record.id))
        if message is None:
            return
        if record.succeeded:
            message.status, message.block_number = RelayStatus.INCLUDED, record.block_number
            return
        city = self.deployment.city(message.city)
        if not self._settled_elsewhere(city, message, session):
            # Reverted: the state changed between the check and the block. Nothing moved; the
            # simulation says why.
            refusal = self.kind.refusal(city, self.accounts[message.city], message)
            message.status = RelayStatus.FAILED
            message.failure_reason = (
                refusal.message if refusal else f"reverted in block {record.block_number}"
            )

    def _unmined(self, session: Session, record: ChainTransaction) -> None:
        """The block is gone: the message is on its way again, in the same bytes."""
        row = self.kind.row
        session.execute(
            update(row)
            .where(row.relay_transaction_id == record.id)
            .values(
                status=RelayStatus.SUBMITTED,
                tx_hash=record.tx_hash,
                block_number=None,
                failure_reason=None,
            )
        )

    def _settled_elsewhere(self, city: City, message, session: Session | None = None) -> bool:
        """Records what the chain says if the signer's nonce is spent already: by the transaction
        that used it (another sender's, or this message's before a restart), or cancelled."""
        settled = self.kind.settled(city, message)
        if settled is None:
            return False
        self._record(message.id, settled.status, session, **settled.fields)
        return True

    def _record(
        self, message_id: int, status: RelayStatus, session: Session | None = None, **fields
    ) -> None:
        """Records the message's new status: in `session` when the caller has one open."""
        row = self.kind.row
        change = update(row).where(row.id == message_id).values(status=status, **fields)
        if session is not None:
            session.execute(change)
        else:
            with self.db.session() as own:
                own.execute(change)
        log.info(
            "%s %s: %s",
            self.kind.name,
            message_id,
            status,
            extra={f"{self.kind.name}_id": message_id, "status": status.value, **fields},
        )
