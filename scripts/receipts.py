"""A transaction Brownie gave up on as dropped, found again.

Brownie reads the sender's nonce before the receipt; on a loaded machine anvil at times already
counts a mined transaction in the nonce but does not serve its receipt yet, and Brownie then calls
it dropped. The transaction was mined: wait for its receipt. One really lost fails here.
"""

from __future__ import annotations

import re

from brownie import web3
from brownie.exceptions import TransactionError
from brownie.network.transaction import TransactionReceipt

_DROPPED = "Tx dropped without known replacement"


def mined_after_all(error: TransactionError) -> TransactionReceipt:
    found = re.search(r"0x[0-9a-fA-F]{64}", str(error))
    if not str(error).startswith(_DROPPED) or found is None:
        raise error
    web3.eth.wait_for_transaction_receipt(found.group(), timeout=30)
    return TransactionReceipt(found.group(), silent=True)
