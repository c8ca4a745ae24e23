"""A custody statement: what the bank signs, and how anyone checks it.

The bank signs CustodyStatement(bytes32 account, uint256 balance, uint64 asOf) as EIP-712 typed
data in the domain {name: "Custody Statement", version: "1"}: no chain id and no contract, so a
bank signs without knowing either; `account` (the keccak256 of the custody account's number) ties
the statement to the one city whose custody account it is (CityDirectory.setCustody refuses one
account for two cities). CityDirectory.statementHash computes the same digest on chain.
"""

from __future__ import annotations

from dataclasses import dataclass

from eth_account import Account
from eth_account.messages import encode_typed_data
from eth_keys.exceptions import BadSignature
from eth_utils import keccak

STATEMENT_DOMAIN = {"name": "Custody Statement", "version": "1"}
_TYPES = {
    "EIP712Domain": [{"name": "name", "type": "string"}, {"name": "version", "type": "string"}],
    "CustodyStatement": [
        {"name": "account", "type": "bytes32"},
        {"name": "balance", "type": "uint256"},
        {"name": "asOf", "type": "uint64"},
    ],
}


def custody_account_hash(account_number: str) -> bytes:
    """The custody account as the chain names it: the keccak256 of the bank's account number."""
    return keccak(text=account_number)


@dataclass(frozen=True)
class Statement:
    """`balance` KRW in the account (its hash) at `as_of` (unix seconds, the bank's clock)."""

    account: bytes
    balance: int
    as_of: int

    def _message(self):
        return encode_typed_data(
            full_message={
                "types": _TYPES,
                "primaryType": "CustodyStatement",
                "domain": STATEMENT_DOMAIN,
                "message": {"account": self.account, "balance": self.balance, "asOf": self.as_of},
            }
        )

    def digest(self) -> bytes:
        """The EIP-712 digest the bank signs (CityDirectory.statementHash)."""
        message = self._message()
        return keccak(b"\x19" + message.version + message.header + message.body)

    def sign(self, private_key: str | bytes) -> bytes:
        return bytes(Account.sign_message(self._message(), private_key).signature)

    def signer(self, signature: bytes) -> str | None:
        """The address that signed, or None for a signature no key could have made."""
        try:
            return Account.recover_message(self._message(), signature=signature)
        except (IndexError, ValueError, BadSignature):  # too short, out of range, no point
            return None
