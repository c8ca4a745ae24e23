"""A transaction sent and waited for, without the outbox: for tools that run beside the backend
(the day's city-office registrations), not for the backend's duties, which the outbox keeps."""

from __future__ import annotations

import time
from typing import Any

from eth_account.signers.local import LocalAccount

from citypay.chain.gateway import PlatformContract


def send_and_wait(
    account: LocalAccount, contract: PlatformContract, function: str, *args: Any, timeout=60
) -> dict:
    """Simulates (chain.gateway.ChainRefused with the contract's error), signs, sends, and
    returns the receipt once mined; RuntimeError if it reverted or was not mined in time."""
    contract.simulate(account.address, function, *args)
    rpc = contract.gateway.rpc
    signed = account.sign_transaction(
        {
            "to": contract.address,
            "data": contract.calldata(function, *args),
            "value": 0,
            "nonce": int(rpc.request("eth_getTransactionCount", account.address, "pending"), 16),
            "gas": 1_000_000,
            "gasPrice": 0,
            "chainId": contract.gateway.chain_id,
        }
    )
    tx_hash = rpc.request("eth_sendRawTransaction", "0x" + signed.raw_transaction.hex())
    deadline = time.monotonic() + timeout
    while (receipt := rpc.request("eth_getTransactionReceipt", tx_hash)) is None:
        if time.monotonic() > deadline:
            raise RuntimeError(f"{function} ({tx_hash}) was not mined within {timeout} s")
        time.sleep(0.1)
    if int(receipt["status"], 16) != 1:
        raise RuntimeError(f"{function} ({tx_hash}) reverted in block {receipt['blockNumber']}")
    return receipt
