"""Where signing keys come from, for the deploy scripts and the backend alike: an encrypted
keystore folder, or anvil's development keys on the embedded chain only. A key is never printed,
logged or written anywhere.

This module needs only eth-account and the standard library: the deploy scripts (.venv) import
it as well as the backend (.venv-backend).
"""

from __future__ import annotations

import getpass
import json
import os
import sys
from functools import cache
from pathlib import Path
from typing import Protocol

from eth_account import Account
from eth_account.hdaccount import key_from_seed, seed_from_mnemonic
from eth_account.signers.local import LocalAccount
from eth_utils import to_checksum_address

# Anvil's and Hardhat's well-known mnemonic (the same one): its keys are public, fit for a local
# chain only. Its first 20 accounts are the ones those tools fund and print.
DEVELOPMENT_MNEMONIC = "test test test test test test test test test test test junk"
DEVELOPMENT_ACCOUNTS = 20
PASSWORD_VARIABLE = "CITY_KEYSTORE_PASSWORD"


class KeyLoadError(RuntimeError):
    """A key cannot be loaded; the message says which and why (never the key itself)."""


@cache
def development_accounts() -> dict[str, LocalAccount]:
    """The development mnemonic's first accounts, by checksummed address, in index order."""
    seed = seed_from_mnemonic(DEVELOPMENT_MNEMONIC, "")
    accounts = (
        Account.from_key(key_from_seed(seed, f"m/44'/60'/0'/0/{index}"))
        for index in range(DEVELOPMENT_ACCOUNTS)
    )
    return {account.address: account for account in accounts}


def development_index(address: str) -> int | None:
    """The index of `address` among the development mnemonic's accounts, or None if it is not
    one: an address whose key anyone has."""
    addresses = list(development_accounts())
    checksummed = to_checksum_address(address)
    return addresses.index(checksummed) if checksummed in addresses else None


def public_key_warning(address: str) -> str:
    """Why a development address may not hold a role off the embedded chain, for error messages."""
    return (
        f"{address} is development account #{development_index(address)} of the public mnemonic "
        f"'{DEVELOPMENT_MNEMONIC}' (anvil's and Hardhat's): anyone has its key"
    )


class KeySource(Protocol):
    is_development: bool
    description: str

    def has(self, address: str) -> bool:
        """Whether a key for `address` is at hand (without unlocking it)."""

    def signer(self, address: str, name: str) -> LocalAccount | None:
        """The unlocked key for `address`, or None if there is none; `name` is the account's
        name in the configuration (it picks the password variable)."""


class DevKeys:
    """Anvil's first accounts of the well-known mnemonic."""

    is_development = True
    description = "anvil's development keys (accepted on the embedded chain only)"

    def has(self, address: str) -> bool:
        return address in development_accounts()

    def signer(self, address: str, name: str) -> LocalAccount | None:
        return development_accounts().get(address)


class KeystoreKeys:
    """eth-account keystore files (geth's format) in a folder, found by the address they hold.

    Each key's password comes from CITY_KEYSTORE_PASSWORD_<NAME> (the account's name in upper
    case, '-' as '_'), else CITY_KEYSTORE_PASSWORD, else a prompt when run from a terminal.
    A key is decrypted only when it is asked for, and once.
    """

    is_development = False

    def __init__(self, folder: str | Path):
        self.folder = Path(folder)
        if not self.folder.is_dir():
            raise KeyLoadError(f"keystore folder {self.folder} does not exist")
        self._files = {}
        for path in sorted(self.folder.iterdir()):
            address = _keystore_address(path)
            if address:
                self._files[address] = path
        self._unlocked: dict[str, LocalAccount] = {}
        self.description = f"keystore folder {self.folder} ({len(self._files)} key files)"

    def has(self, address: str) -> bool:
        return address in self._files

    def signer(self, address: str, name: str) -> LocalAccount | None:
        if address in self._unlocked:
            return self._unlocked[address]
        path = self._files.get(address)
        if path is None:
            return None
        password, source = password_for(name, path)
        try:
            key = Account.decrypt(json.loads(path.read_text()), password)
        except ValueError as refused:
            raise KeyLoadError(
                f"keystore {path} ({name}, {address}): wrong password ({refused}); "
                f"the password came from {source}"
            ) from None
        account = Account.from_key(key)
        if account.address != address:
            raise KeyLoadError(
                f"keystore {path} says it holds {address} but its key is {account.address}'s"
            )
        self._unlocked[address] = account
        return account


def _keystore_address(path: Path) -> str | None:
    if not path.is_file() or path.stat().st_size > 64_000:
        return None
    try:
        data = json.loads(path.read_text())
        return (
            to_checksum_address(data["address"]) if "crypto" in data or "Crypto" in data else None
        )
    except (ValueError, KeyError, TypeError):
        return None


def password_variable(name: str) -> str:
    """The environment variable of the account `name`'s own password."""
    return f"{PASSWORD_VARIABLE}_{name.upper().replace('-', '_')}"


def password_for(name: str, path: Path) -> tuple[str, str]:
    """The password for the keystore file at `path` of account `name`, and where it came from."""
    own = password_variable(name)
    for variable in (own, PASSWORD_VARIABLE):
        if os.environ.get(variable) is not None:
            return os.environ[variable], f"${variable}"
    if sys.stdin.isatty():
        return getpass.getpass(f"password for {path.name} ({name}): "), "the prompt"
    raise KeyLoadError(
        f"no password for keystore {path} ({name}): set {own} or {PASSWORD_VARIABLE}, "
        "or run from a terminal to be asked"
    )


def create_keystore(folder: str | Path, name: str) -> str:
    """A new account in `folder`/`name`.json, encrypted (scrypt) with a password from
    CITY_KEYSTORE_PASSWORD_<NAME> / CITY_KEYSTORE_PASSWORD or asked twice; returns its address."""
    path = Path(folder) / f"{name}.json"
    if path.exists():
        raise KeyLoadError(f"{path} already exists; choose another name or folder")
    password, _ = password_for(name, path)
    if sys.stdin.isatty() and getpass.getpass("the same password again: ") != password:
        raise KeyLoadError("the two passwords differ; nothing was written")
    account = Account.create()
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(Account.encrypt(account.key, password)))
    path.chmod(0o600)
    return account.address
