"""Sending recorded refunds from the relayer's account, one transaction each, and following them.

The relayer's account holds no role: any account may relay a merchant's signed refund, and this
one already relays the payments. So refunds share its nonces and its record of signed
transactions with the payment batches (chain/relay_account.py): a refund's transaction is
recorded in relay_transactions in the same database transaction that marks the refund
submitted, and only then sent. After a restart a submitted refund is looked up by its
transaction's hash, and the same signed bytes are sent again if the node lost them.

Exactly once: the token uses each nonce of the merchant once, so the refund happens at most once
whoever sends it (another replica, anyone who saw the signature), and the AuthorizationUsed event
of (merchant, nonce) names the transaction that did.
"""

from __future__ import annotations

import logging

from eth_account.signers.local import LocalAccount
from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError
from web3.exceptions import TransactionNotFound

from citypay.cashout.faults import crash_point
from citypay.chain.deployment import City, Deployment
from citypay.chain.relay_account import broadcast, sign_and_record
from citypay.db.models import RelayTransaction
from citypay.db.session import Database
from citypay.refund.checks import chain_refusal
from citypay.refund.models import Refund, RefundStatus

log = logging.getLogger(__name__)

# A refund uses about 84,000 gas (make gas); the limit leaves room for a contract wallet's
# ERC-1271 check. Gas price is zero on the city's chain.
REFUND_GAS = 300_000
# The most refunds one round sends.
ROUND = 50


class _Taken(Exception):
    """Another replica submitted the refund first: the recording is rolled back."""


class RefundSender:
    def __init__(self, db: Database, deployment: Deployment, account: LocalAccount) -> None:
        self.db = db
        self.deployment = deployment
        self.w3 = deployment.w3
        self.account = account

    def round(self) -> None:
        """Follows the refunds sent, then sends the ones accepted."""
        self.follow_submitted()
        self.submit_accepted()

    # --- sending ----------------------------------------------------------------------------

    def submit_accepted(self) -> None:
        with self.db.session() as session:
            accepted = session.scalars(
                select(Refund)
                .where(Refund.status == RefundStatus.ACCEPTED)
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
        # Simulated first, so that a refund the chain now refuses (its window passed while it
        # waited, the city paused, ...) costs no transaction and says why.
        refusal = chain_refusal(city, self.account, signed_refund)
        if refusal is not None:
            self._record(refund.id, RefundStatus.FAILED, failure_reason=refusal.message)
            return
        data = city.token.encode_abi("refundWithAuthorization", args=signed_refund.as_args())
        with self.db.session() as session:
            record = sign_and_record(
                session,
                self.account,
                pending=self.w3.eth.get_transaction_count(self.account.address, "pending"),
                chain_id=self.deployment.chain_id,
                to=city.token.address,
                data=data,
                gas=REFUND_GAS,
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
        broadcast(self.w3, record.raw_transaction)
        crash_point("after_refund_sent")

    # --- following ----------------------------------------------------------------------------

    def follow_submitted(self) -> None:
        with self.db.session() as session:
            submitted = session.execute(
                select(Refund, RelayTransaction.raw_transaction)
                .join(RelayTransaction, Refund.relay_transaction_id == RelayTransaction.id)
                .where(Refund.status == RefundStatus.SUBMITTED)
                .order_by(Refund.id)
            ).all()
        for refund, raw in submitted:
            try:
                receipt = self.w3.eth.get_transaction_receipt(refund.tx_hash)
            except TransactionNotFound:
                self._resend_if_lost(refund, raw)
                continue
            if receipt["status"] == 1:
                self._record(refund.id, RefundStatus.INCLUDED, block_number=receipt.blockNumber)
                continue
            city = self.deployment.city(refund.city)
            if not self._settled_elsewhere(city, refund):
                # Reverted: the state changed between the check and the block (a refund of the
                # same payment first, a pause). Nothing moved; the simulation says why.
                refusal = chain_refusal(city, self.account, refund.signed())
                reason = refusal.message if refusal else f"reverted in block {receipt.blockNumber}"
                self._record(refund.id, RefundStatus.FAILED, failure_reason=reason)

    def _resend_if_lost(self, refund: Refund, raw: str) -> None:
        try:
            self.w3.eth.get_transaction(refund.tx_hash)
        except TransactionNotFound:
            log.warning(
                "refund %s: transaction %s unknown to the node, sent again",
                refund.id,
                refund.tx_hash,
            )
            broadcast(self.w3, raw)

    def _settled_elsewhere(self, city: City, refund: Refund) -> bool:
        """Records what the chain says if the merchant's nonce is used already: by the transaction
        that refunded (another sender's, or this refund's before a restart), or cancelled."""
        token = city.token
        nonce = bytes.fromhex(refund.nonce[2:])
        if not token.functions.authorizationState(refund.merchant, nonce).call():
            return False
        used = token.events.AuthorizationUsed().get_logs(
            argument_filters={"authorizer": refund.merchant, "nonce": nonce}, from_block=0
        )
        if used:
            self._record(
                refund.id,
                RefundStatus.INCLUDED,
                tx_hash="0x" + bytes(used[0]["transactionHash"]).hex(),
                block_number=used[0]["blockNumber"],
            )
        else:
            self._record(
                refund.id,
                RefundStatus.FAILED,
                failure_reason=f"the merchant cancelled nonce {refund.nonce} on chain",
            )
        return True

    def _record(self, refund_id: int, status: RefundStatus, **fields) -> None:
        with self.db.session() as session:
            session.execute(
                update(Refund).where(Refund.id == refund_id).values(status=status, **fields)
            )
        log.info(
            "refund %s: %s",
            refund_id,
            status,
            extra={"refund_id": refund_id, "status": status.value, **fields},
        )
