"""Transactions of the relayer's account, which two senders share: the payment batches
(relay/submitter.py) and the refunds (refund/sender.py). Both take its nonces from the same
record, relay_transactions, so a nonce is never used twice and none is skipped whichever sends.

A transaction is signed and recorded here in the caller's database transaction, and sent only
after that commits: two writers of one nonce meet the table's unique (sender, nonce) and one of
them tries again; after a restart the same signed bytes can be sent again.
"""

from __future__ import annotations

from eth_account.signers.local import LocalAccount
from sqlalchemy import func, select
from sqlalchemy.orm import Session
from web3 import Web3

from citypay.db.models import RelayTransaction, RelayTransactionStatus

# What a node answers to a transaction it has in its pool already, or mined: not a failure, as
# the transaction is followed by its hash either way.
_ALREADY_SENT = ("already", "nonce too low", "known")


def next_nonce(session: Session, sender: str, pending: int) -> int:
    """After every nonce recorded, and never below the node's pending count of the sender's
    transactions (one the key sent that no one recorded)."""
    recorded = session.scalar(
        select(func.max(RelayTransaction.nonce)).where(RelayTransaction.sender == sender)
    )
    return max(pending, -1 if recorded is None else recorded + 1)


def sign_and_record(
    session: Session,
    account: LocalAccount,
    *,
    pending: int,
    chain_id: int,
    to: str,
    data: bytes | str,
    gas: int,
) -> RelayTransaction:
    """The transaction signed under the account's next nonce and recorded as sent (flushed, so
    it has its id); the caller sends it once its database transaction commits."""
    nonce = next_nonce(session, account.address, pending)
    signed = account.sign_transaction(
        {
            "to": to,
            "data": data,
            "value": 0,
            "nonce": nonce,
            "gas": gas,
            "gasPrice": 0,  # the city's chain charges no gas
            "chainId": chain_id,
        }
    )
    record = RelayTransaction(
        sender=account.address,
        nonce=nonce,
        tx_hash="0x" + signed.hash.hex(),
        raw_transaction="0x" + signed.raw_transaction.hex(),
        status=RelayTransactionStatus.SENT,
    )
    session.add(record)
    session.flush()
    return record


def broadcast(w3: Web3, raw: str) -> None:
    """Sends signed bytes; one the node has already is no error."""
    answer = w3.provider.make_request("eth_sendRawTransaction", [raw])
    refused = str(answer.get("error", "")).lower()
    if refused and not any(known in refused for known in _ALREADY_SENT):
        raise RuntimeError(f"the node refused a relay transaction: {answer['error']}")
