"""The backend's signing keys: configured, or anvil's development keys on the embedded chain."""

from __future__ import annotations

from eth_account import Account
from eth_account.signers.local import LocalAccount
from pydantic import SecretStr

from citypay.core.config import EMBEDDED_CHAIN_ID

Account.enable_unaudited_hdwallet_features()
# anvil's well-known development mnemonic: its keys are public, so they sign only on the embedded
# chain, never on a network that holds real value.
DEVELOPMENT_MNEMONIC = "test test test test test test test test test test test junk"
DEVELOPMENT_ACCOUNTS = 20


class SigningKeyError(RuntimeError):
    """A duty has no usable key."""


def development_account(address: str) -> LocalAccount:
    """The anvil development account with this address."""
    for index in range(DEVELOPMENT_ACCOUNTS):
        account = Account.from_mnemonic(
            DEVELOPMENT_MNEMONIC, account_path=f"m/44'/60'/0'/0/{index}"
        )
        if account.address.lower() == address.lower():
            return account
    raise SigningKeyError(
        f"{address} is not one of anvil's {DEVELOPMENT_ACCOUNTS} development accounts"
    )


def signer_for(
    duty: str, configured: SecretStr | None, address: str, chain_id: int
) -> LocalAccount:
    """The account that signs for `duty`: its configured key, which must be `address`'s, or the
    development key of `address` on the embedded chain."""
    if configured is not None:
        account = Account.from_key(configured.get_secret_value())
        if account.address.lower() != address.lower():
            raise SigningKeyError(
                f"the key configured for {duty} belongs to {account.address}, "
                f"but the deployment names {address} for {duty}"
            )
        return account
    if chain_id != EMBEDDED_CHAIN_ID:
        raise SigningKeyError(
            f"no key configured for {duty} on chain id {chain_id}: development keys are accepted "
            f"on the embedded chain ({EMBEDDED_CHAIN_ID}) only"
        )
    return development_account(address)
