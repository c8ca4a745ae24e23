"""Brownie made to wait for a mined transaction it would call dropped.

Brownie reads the sender's nonce before the receipt; on a loaded machine anvil at times already
counts a mined transaction in the nonce but does not serve its receipt yet, and Brownie then
raises "Tx dropped without known replacement" for a transaction that was mined (a contract test
failed so in CI). Every user of Brownie here (the tests, the deployment, the gas benchmark)
installs this once: each transaction's receipt is awaited, up to RECEIPT_TIMEOUT, before Brownie's
own wait looks at the nonce. One really lost or replaced is still found so by Brownie.
"""

from __future__ import annotations

import contextlib

from brownie import web3
from brownie.network.transaction import TransactionReceipt
from web3.exceptions import TimeExhausted

RECEIPT_TIMEOUT = 30  # seconds

_brownies_await_confirmation = TransactionReceipt._await_confirmation


def _await_confirmation(self, block_number=None, required_confs: int = 1) -> None:
    # Brownie's sending thread waits on `_confirmed`, which Brownie's own wait sets together with
    # the dropped status: the receipt has to be there before Brownie looks.
    # Not mined by then: Brownie's own wait decides whether replaced, dropped or still pending.
    with contextlib.suppress(TimeExhausted):
        web3.eth.wait_for_transaction_receipt(self.txid, timeout=RECEIPT_TIMEOUT)
    _brownies_await_confirmation(self, block_number, required_confs)


def await_receipts_brownie_calls_dropped() -> None:
    """Installs the wait (idempotent)."""
    TransactionReceipt._await_confirmation = _await_confirmation
