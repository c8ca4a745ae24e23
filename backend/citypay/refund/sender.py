"""Sending recorded refunds from their city's relayer, one transaction each, through the outbox.

Any account may relay a merchant's signed refund, and the city's relayer relays its payments.
So refunds share its nonces in the outbox (chain/outbox.py) with the payment batches: a refund's
transaction is recorded in the same database transaction that marks the refund submitted, and
only then sent; the outbox follows it, sends the same bytes again if the node loses them, and
tells this module when it is mined (included, or failed with the chain's reason) or taken back
with its block (submitted again).

Exactly once: the token uses each nonce of the merchant once, so the refund happens at most once
whoever sends it (another replica, anyone who saw the signature), and the AuthorizationUsed event
of (merchant, nonce) names the transaction that did.
"""

from __future__ import annotations

import logging

from eth_account.signers.local import LocalAccount
from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from citypay.chain.deployment import City, Deployment
from citypay.chain.outbox import ChainTransaction, Outbox
from citypay.core.faults import crash_point
from citypay.db.session import Database
from citypay.refund.checks import chain_refusal
from citypay.refund.models import Refund, RefundStatus

log = logging.getLogger(__name__)

# A refund uses about 84,000 gas (make gas); the limit leaves room for a contract wallet's
# ERC-1271 check. Gas price is zero on the city's chain.
REFUND_GAS = 300_000
# The most refunds one round sends.
ROUND = 50
PURPOSE = "refund"


class _Taken(Exception):
    """Another replica submitted the refund first: the recording is rolled back."""


class RefundSender:
    def __init__(
        self,
        db: Database,
        deployment: Deployment,
        outbox: Outbox,
        accounts: dict[str, LocalAccount],
    ) -> None:
        self.db = db
        self.deployment = deployment
        self.outbox = outbox
        self.accounts = accounts  # by city code: the relayer each city's refunds go from
        outbox.on(PURPOSE, mined=self._mined, unmined=self._unmined)

    def round(self) -> None:
        """Sends the refunds accepted (the outbox follows them)."""
        self.submit_accepted()

    # --- sending ----------------------------------------------------------------------------

    def submit_accepted(self) -> None:
        with self.db.session() as session:
            accepted = session.scalars(
                select(Refund)
                .where(
                    Refund.status == RefundStatus.ACCEPTED,
                    Refund.city.in_(list(self.accounts)),
                )
                .order_by(Refund.id)
                .limit(ROUND)
            ).all()
        for refund in accepted:
            try:
                self._submit(refund)
            except (_Taken, IntegrityError):
                log.info("refund %s: taken by another sender or nonce; next round", refund.id)

    def _submit(self, refund: Refund) -> None:
        city = self.deployment.city(refund.city)
        if self._settled_elsewhere(city, refund):
            return
        signed_refund = refund.signed()
        account = self.accounts[refund.city]
        # Simulated first, so that a refund the chain now refuses (its window passed while it
        # waited, the city paused, ...) costs no transaction and says why.
        refusal = chain_refusal(city, account, signed_refund)
        if refusal is not None:
            self._record(refund.id, RefundStatus.FAILED, failure_reason=refusal.message)
            return
        token = city.chain.token
        data = token.calldata("refundWithAuthorization", *signed_refund.as_args())
        with self.db.session() as session:
            record = self.outbox.record(
                session,
                account,
                to=token.address,
                data=data,
                gas=REFUND_GAS,
                purpose=PURPOSE,
            )
            taken = session.execute(
                update(Refund)
                .where(Refund.id == refund.id, Refund.status == RefundStatus.ACCEPTED)
                .values(
                    status=RefundStatus.SUBMITTED,
                    relay_transaction_id=record.id,
                    tx_hash=record.tx_hash,
                )
            )
            if taken.rowcount != 1:
                raise _Taken
        log.info(
            "refund %s submitted",
            refund.id,
            extra={"city": refund.city, "refund_id": refund.id, "tx_hash": record.tx_hash},
        )
        crash_point("after_refund_recorded")
        self.outbox.broadcast(record.raw_transaction)
        crash_point("after_refund_sent")

    # --- what the outbox tells of a refund's transaction ------------------------------------------

    def _mined(self, session: Session, record: ChainTransaction, receipt: dict) -> None:
        refund = session.scalar(select(Refund).where(Refund.relay_transaction_id == record.id))
        if refund is None:
            return
        if record.succeeded:
            refund.status, refund.block_number = RefundStatus.INCLUDED, record.block_number
            return
        city = self.deployment.city(refund.city)
        if not self._settled_elsewhere(city, refund, session):
            # Reverted: the state changed between the check and the block (a refund of the same
            # payment first, a pause). Nothing moved; the simulation says why.
            refusal = chain_refusal(city, self.accounts[refund.city], refund.signed())
            refund.status = RefundStatus.FAILED
            refund.failure_reason = (
                refusal.message if refusal else f"reverted in block {record.block_number}"
            )

    def _unmined(self, session: Session, record: ChainTransaction) -> None:
        """The block is gone: the refund is on its way again, in the same bytes."""
        session.execute(
            update(Refund)
            .where(Refund.relay_transaction_id == record.id)
            .values(
                status=RefundStatus.SUBMITTED,
                tx_hash=record.tx_hash,
                block_number=None,
                failure_reason=None,
            )
        )

    def _settled_elsewhere(
        self, city: City, refund: Refund, session: Session | None = None
    ) -> bool:
        """Records what the chain says if the merchant's nonce is used already: by the transaction
        that refunded (another sender's, or this refund's before a restart), or cancelled."""
        token = city.chain.token
        nonce = bytes.fromhex(refund.nonce[2:])
        if not token.call("authorizationState", refund.merchant, nonce):
            return False
        used = token.logs(
            "AuthorizationUsed", refund.merchant, nonce, from_block=city.deployed_at["token"]
        )
        if used:
            self._record(
                refund.id,
                RefundStatus.INCLUDED,
                session,
                tx_hash=used[0]["transactionHash"],
                block_number=int(used[0]["blockNumber"], 16),
            )
        else:
            self._record(
                refund.id,
                RefundStatus.FAILED,
                session,
                failure_reason=f"the merchant cancelled nonce {refund.nonce} on chain",
            )
        return True

    def _record(
        self, refund_id: int, status: RefundStatus, session: Session | None = None, **fields
    ) -> None:
        """Records the refund's new status: in `session` when the caller has one open."""
        change = update(Refund).where(Refund.id == refund_id).values(status=status, **fields)
        if session is not None:
            session.execute(change)
        else:
            with self.db.session() as own:
                own.execute(change)
        log.info(
            "refund %s: %s",
            refund_id,
            status,
            extra={"refund_id": refund_id, "status": status.value, **fields},
        )
