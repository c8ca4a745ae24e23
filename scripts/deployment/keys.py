"""Where the deployment's signing keys come from: an encrypted keystore, or anvil's development
keys on the embedded chain only. A key is never printed, logged or written anywhere.
"""

from __future__ import annotations

import getpass
import json
import os
import sys
from pathlib import Path
from typing import Protocol

from eth_account import Account
from eth_account.hdaccount import key_from_seed, seed_from_mnemonic
from eth_account.signers.local import LocalAccount
from eth_utils import to_checksum_address

from scripts.deployment import DeploymentError

# Anvil's (and Hardhat's) well-known mnemonic: its keys are public, fit for a local chain only.
DEV_MNEMONIC = "test test test test test test test test test test test junk"
DEV_ACCOUNT_COUNT = 20
PASSWORD_VARIABLE = "CITY_KEYSTORE_PASSWORD"


class KeyLoadError(DeploymentError):
    """A key cannot be loaded; the message says which and why (never the key itself)."""


class KeySource(Protocol):
    is_development: bool
    description: str

    def has(self, address: str) -> bool:
        """Whether a key for `address` is at hand (without unlocking it)."""

    def signer(self, address: str, name: str) -> LocalAccount | None:
        """The unlocked key for `address`, or None if there is none."""


class DevKeys:
    """Anvil's first accounts of the well-known mnemonic."""

    is_development = True
    description = "anvil's development keys (accepted on the embedded chain only)"

    def __init__(self, count: int = DEV_ACCOUNT_COUNT):
        seed = seed_from_mnemonic(DEV_MNEMONIC, "")
        accounts = (
            Account.from_key(key_from_seed(seed, f"m/44'/60'/0'/0/{i}")) for i in range(count)
        )
        self._accounts = {account.address: account for account in accounts}

    def has(self, address: str) -> bool:
        return address in self._accounts

    def signer(self, address: str, name: str) -> LocalAccount | None:
        return self._accounts.get(address)


class KeystoreKeys:
    """eth-account keystore files (geth's format) in a folder, found by the address they hold.

    Each key's password comes from CITY_KEYSTORE_PASSWORD_<NAME> (the account's name in upper
    case, '-' as '_'), else CITY_KEYSTORE_PASSWORD, else a prompt when run from a terminal.
    A key is decrypted only when the deployment needs it to sign.
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
        password, source = _password_for(name, path)
        try:
            key = Account.decrypt(json.loads(path.read_text()), password)
        except ValueError as refused:
            raise KeyLoadError(
                f"keystore {path} ({name}, {address}): wrong password ({refused}); "
                f"the password came from {source}"
            ) from None
        self._unlocked[address] = Account.from_key(key)
        return self._unlocked[address]


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


def _password_for(name: str, path: Path) -> tuple[str, str]:
    own = f"{PASSWORD_VARIABLE}_{name.upper().replace('-', '_')}"
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
    password, _ = _password_for(name, path)
    if sys.stdin.isatty() and getpass.getpass("the same password again: ") != password:
        raise KeyLoadError("the two passwords differ; nothing was written")
    account = Account.create()
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(Account.encrypt(account.key, password)))
    path.chmod(0o600)
    return account.address


def main(argv: list[str] | None = None) -> int:
    import argparse

    parser = argparse.ArgumentParser(
        prog="python -m scripts.deployment.keys",
        description="Creates an account in an encrypted keystore file; prints only its address.",
    )
    parser.add_argument("command", choices=["new"])
    parser.add_argument("name", help="the account's name in the configuration, e.g. deployer")
    parser.add_argument("--dir", default="keys", help="keystore folder (default keys/)")
    args = parser.parse_args(argv)
    try:
        address = create_keystore(args.dir, args.name)
    except KeyLoadError as error:
        print(f"keys: error: {error}", file=sys.stderr)
        return 1
    print(f"{args.name}: {address} (keystore {Path(args.dir) / args.name}.json)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
