"""The wallet's command line.

    python -m citypay.wallet pay URI [--amount N] --key-file FILE --api URL [--city gimpo]
    python -m citypay.wallet refund --payer ADDRESS --payment-id ID --value N --key-file FILE
        --api URL [--city gimpo]
    python -m citypay.wallet address --key-file FILE

`refund` is for a merchant's wallet: it signs a RefundWithAuthorization of `--value` KRW of the
payer's payment (`--payment-id`: its invoice id or authorization nonce; 0x00..00 for its plain
transfers), signs in and posts it for the backend to relay. The key file is an eth-account
keystore JSON (password from CITYPAY_WALLET_PASSWORD, else asked for) or, for development, a file
holding a raw hex private key. Exit status: 0 included, 1 failed on chain, 2 refused (by the
wallet or the backend).
"""

from __future__ import annotations

import argparse
import getpass
import json
import os
import sys
from pathlib import Path

import httpx
from eth_account import Account
from eth_account.signers.local import LocalAccount

from citypay.wallet.client import WalletClient, WalletError


def load_account(path: Path) -> LocalAccount:
    text = path.read_text(encoding="utf-8").strip()
    if text.startswith("{"):
        try:
            keystore = json.loads(text)
        except ValueError as wrong:
            raise WalletError(f"{path} is not valid keystore JSON: {wrong}") from None
        password = os.environ.get("CITYPAY_WALLET_PASSWORD")
        if password is None:
            password = getpass.getpass(f"password for {path}: ")
        try:
            return Account.from_key(Account.decrypt(keystore, password))
        except ValueError as wrong:
            raise WalletError(f"cannot open the keystore {path}: {wrong}") from None
    try:
        return Account.from_key(text)
    except (ValueError, TypeError):
        raise WalletError(
            f"{path} is neither a keystore JSON nor a 32-byte hex private key"
        ) from None


def _arguments(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m citypay.wallet", description=__doc__.split("\n")[0]
    )
    commands = parser.add_subparsers(dest="command", required=True)
    pay = commands.add_parser("pay", help="pay an EIP-681 QR code's URI")
    pay.add_argument("uri")
    pay.add_argument("--amount", type=int, help="KRW; needed for a static QR (no amount)")
    refund = commands.add_parser("refund", help="refund (part of) a payment, as its merchant")
    refund.add_argument("--payer", required=True, help="the address that paid")
    refund.add_argument("--payment-id", required=True, help="its invoice id or nonce (0x...)")
    refund.add_argument("--value", type=int, required=True, help="KRW to refund")
    for command in (pay, refund):
        command.add_argument("--key-file", type=Path, required=True)
        command.add_argument("--api", required=True, help="the backend's URL")
        command.add_argument("--city", default="gimpo")
        command.add_argument("--no-wait", action="store_true", help="return once accepted")
        command.add_argument("--timeout", type=float, default=60)
    address = commands.add_parser("address", help="print the key file's address")
    address.add_argument("--key-file", type=Path, required=True)
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = _arguments(argv)
    try:
        account = load_account(args.key_file)
        if args.command == "address":
            print(account.address)
            return 0
        with WalletClient(args.api, account, city=args.city) as client:
            follow = {"wait": not args.no_wait, "timeout": args.timeout}
            if args.command == "pay":
                done = client.pay(args.uri, args.amount, **follow)
            else:
                done = client.refund(args.payer, args.payment_id, args.value, **follow)
    except (WalletError, OSError, httpx.HTTPError) as refused:
        print(f"error: {refused}", file=sys.stderr)
        return 2
    print(json.dumps(done, indent=2))
    return 1 if done["status"] == "failed" else 0


if __name__ == "__main__":
    sys.exit(main())
