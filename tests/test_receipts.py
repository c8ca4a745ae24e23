"""A mined transaction whose receipt the node serves late is confirmed, not called dropped.

The node's window is made here: the receipt of the next transaction is "not found" for its first
LATE reads, while the sender's nonce already counts it (what anvil does at times under load).
"""

import pytest
from brownie import web3
from brownie.network.transaction import TransactionReceipt
from web3.exceptions import TransactionNotFound

from scripts import receipts

LATE = 2


@pytest.fixture
def late_receipts(monkeypatch):
    served = web3.eth._transaction_receipt
    reads = []

    def late(transaction_hash):
        reads.append(transaction_hash)
        if len(reads) <= LATE:
            raise TransactionNotFound(f"Transaction with hash: {transaction_hash!r} not found.")
        return served(transaction_hash)

    monkeypatch.setattr(web3.eth, "_transaction_receipt", late, raising=False)
    return reads


def test_every_transaction_of_the_tests_awaits_its_receipt():
    assert TransactionReceipt._await_confirmation is receipts._await_confirmation


def test_a_receipt_served_late_is_awaited(city, token, resident, merchant, late_receipts):
    tx = token.transfer(merchant, 1_000, {"from": resident})
    assert tx.status == 1
    assert len(late_receipts) > LATE
    assert token.balanceOf(merchant) == 1_000
