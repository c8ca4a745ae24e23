"""Transactions of one duty account (issuer, settler, registrar): simulated first, so a refusal
comes back as the contract's own error before anything is sent; then signed, sent and waited for,
one at a time, so the duty's nonces never collide or leave a gap.

Exactly-once is the caller's: each duty's contract call is idempotent on chain (a deposit
reference mints once, a redemption closes once), and callers check that state before a retry.
"""

from __future__ import annotations

import threading

from eth_account.signers.local import LocalAccount
from web3 import Web3
from web3.contract.contract import ContractFunction
from web3.exceptions import ContractCustomError, ContractLogicError
from web3.types import TxReceipt

from citypay.relay.submitter import describe_revert, error_decoder


class ChainRefusal(RuntimeError):
    """The contract refused the call; `reason` is its decoded custom error."""

    def __init__(self, function: str, reason: str) -> None:
        super().__init__(f"{function} was refused: {reason}")
        self.function = function
        self.reason = reason


class DutySender:
    def __init__(self, w3: Web3, account: LocalAccount, chain_id: int, abis: list[list]) -> None:
        self.w3 = w3
        self.account = account
        self.chain_id = chain_id
        self._errors = {}
        for abi in abis:
            self._errors |= error_decoder(abi)
        self._lock = threading.Lock()

    @property
    def address(self) -> str:
        return self.account.address

    def simulate(self, call: ContractFunction):
        """The call's return value, or ChainRefusal with the contract's error."""
        try:
            return call.call({"from": self.address})
        except ContractCustomError as refused:
            data = refused.data if isinstance(refused.data, str) else refused.message
            raise ChainRefusal(call.fn_name, describe_revert(self._errors, _bytes(data))) from None
        except ContractLogicError as refused:
            raise ChainRefusal(call.fn_name, str(refused)) from None

    def send(
        self, call: ContractFunction, *, gas: int = 1_000_000, timeout: float = 60
    ) -> TxReceipt:
        """Simulates, then sends and waits for the receipt; ChainRefusal if either refuses."""
        with self._lock:
            self.simulate(call)
            transaction = call.build_transaction(
                {
                    "from": self.address,
                    "nonce": self.w3.eth.get_transaction_count(self.address, "pending"),
                    "gas": gas,
                    "gasPrice": 0,
                    "chainId": self.chain_id,
                }
            )
            signed = self.account.sign_transaction(transaction)
            tx_hash = self.w3.eth.send_raw_transaction(signed.raw_transaction)
            receipt = self.w3.eth.wait_for_transaction_receipt(
                tx_hash, timeout=timeout, poll_latency=0.1
            )
        if receipt["status"] != 1:
            raise ChainRefusal(call.fn_name, f"reverted in block {receipt['blockNumber']}")
        return receipt


def _bytes(data: str) -> bytes:
    return bytes.fromhex(data[2:] if data.startswith("0x") else data)
