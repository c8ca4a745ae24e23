"""The wallet's command line.

    python -m citypay.wallet new --key-file FILE
    python -m citypay.wallet address --key-file FILE
    python -m citypay.wallet pay URI [--amount N] --key-file FILE --api URL [--city gimpo]
    python -m citypay.wallet refund --payer ADDRESS --payment-id ID --value N --key-file FILE
        --api URL [--city gimpo]
    python -m citypay.wallet qr --key-file FILE --api URL [--city gimpo]
    python -m citypay.wallet merchant-application --business-id-hash H --payout-account-hash H
        --annual-revenue N --category N --region N --key-file FILE --api URL [--city gimpo]
    python -m citypay.wallet cash-out --amount N --key-file FILE --api URL [--city gimpo]
    python -m citypay.wallet balance --key-file FILE --api URL [--city gimpo]
    python -m citypay.wallet gift --to ADDRESS --amount N --key-file FILE --api URL [--city gimpo]
    python -m citypay.wallet cashback --key-file FILE --api URL [--city ulsan]

`new` makes a wallet: a new key in an encrypted keystore file; it prints the address. `balance`
prints the wallet's balance as JSON with what it is made of: general money by expiry, each policy
program's money with its code and expiry, and expired money awaiting the sweep. `gift` signs a
GiftAuthorization of `--amount` KRW of money bought with KRW to another resident (`--to`), posts
it for the backend to relay and follows it, signed in, to inclusion. `cashback` prints, in a city
that pays its incentive as cashback on payments, the incentive counted this month against the
monthly limit and what the wallet owes from cashback a refund took back. The other commands are a
merchant's: `qr` prints its static QR code's EIP-681 URI (what a payer's wallet reads);
`merchant-application` prints the body the city's registrar posts to register it
(POST /v1/cities/{city}/merchants), with the wallet's own PayoutAccount signature naming
`--payout-account-hash` (bytes32: what its bank pays by) as where its cash-outs go; `refund` signs
a RefundWithAuthorization of `--value` KRW of the payer's payment (`--payment-id`: its invoice id
or authorization nonce; 0x00..00 for its plain transfers), signs in and posts it for the backend
to relay; `cash-out` signs a CashOutAuthorization of `--amount` KRW to the payout account the
registry holds, signs in, posts it and waits until the bank's payout is settled on chain.

The key file is an eth-account keystore JSON (password from CITYPAY_WALLET_PASSWORD, else asked
for) or, for development, a file holding a raw hex private key. Exit status: 0 done (included,
settled), 1 failed on chain (a payment, refund or gift failed, a cash-out returned, refused or
held), 2 refused (by the wallet or the backend).
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

from citypay.wallet.client import WalletClient, WalletError, parse_bytes32

PASSWORD_VARIABLE = "CITYPAY_WALLET_PASSWORD"
# What a followed record ends in when the chain or the bank did not do it.
FAILED = ("failed", "returned", "refused", "held")


def new_account(path: Path) -> LocalAccount:
    """A new key, written to `path` encrypted (scrypt) with the wallet password."""
    if path.exists():
        raise WalletError(f"{path} already exists: a wallet's key is never overwritten")
    password = os.environ.get(PASSWORD_VARIABLE)
    if password is None:
        password = getpass.getpass(f"password for {path}: ")
        if getpass.getpass("the same password again: ") != password:
            raise WalletError("the two passwords differ; nothing was written")
    account = Account.create()
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(Account.encrypt(account.key, password)))
    path.chmod(0o600)
    return account


def load_account(path: Path) -> LocalAccount:
    text = path.read_text(encoding="utf-8").strip()
    if text.startswith("{"):
        try:
            keystore = json.loads(text)
        except ValueError as wrong:
            raise WalletError(f"{path} is not valid keystore JSON: {wrong}") from None
        password = os.environ.get(PASSWORD_VARIABLE)
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
    new = commands.add_parser("new", help="make a wallet: a new key in a keystore file")
    address = commands.add_parser("address", help="print the key file's address")
    pay = commands.add_parser("pay", help="pay an EIP-681 QR code's URI")
    pay.add_argument("uri")
    pay.add_argument("--amount", type=int, help="KRW; needed for a static QR (no amount)")
    refund = commands.add_parser("refund", help="refund (part of) a payment, as its merchant")
    refund.add_argument("--payer", required=True, help="the address that paid")
    refund.add_argument("--payment-id", required=True, help="its invoice id or nonce (0x...)")
    refund.add_argument("--value", type=int, required=True, help="KRW to refund")
    qr = commands.add_parser("qr", help="print the merchant's static QR code's URI")
    balance = commands.add_parser(
        "balance", help="the balance by class: general money by expiry, programs, expired"
    )
    application = commands.add_parser(
        "merchant-application", help="print the merchant's signed registration, for the registrar"
    )
    application.add_argument("--business-id-hash", required=True, help="bytes32 (0x...)")
    application.add_argument(
        "--payout-account-hash", required=True, help="bytes32 (0x...): what the bank pays by"
    )
    application.add_argument("--annual-revenue", type=int, required=True, help="KRW")
    application.add_argument("--category", type=int, required=True, help="business category")
    application.add_argument("--region", type=int, required=True, help="the city's region code")
    cash_out = commands.add_parser("cash-out", help="cash out to the merchant's payout account")
    cash_out.add_argument("--amount", type=int, required=True, help="KRW to cash out")
    gift = commands.add_parser("gift", help="give money bought with KRW to another resident")
    gift.add_argument("--to", required=True, help="the receiver's wallet address")
    gift.add_argument("--amount", type=int, required=True, help="KRW to give")
    cashback = commands.add_parser(
        "cashback", help="this month's incentive against the limit, and any cashback owed"
    )
    for command in (new, address, pay, refund, qr, application, cash_out, balance, gift, cashback):
        command.add_argument("--key-file", type=Path, required=True)
    for command in (pay, refund, qr, application, cash_out, balance, gift, cashback):
        command.add_argument("--api", required=True, help="the backend's URL")
        command.add_argument("--city", default="gimpo")
    for command in (pay, refund, cash_out, gift):
        command.add_argument("--no-wait", action="store_true", help="return once accepted")
        command.add_argument("--timeout", type=float, default=60)
    return parser.parse_args(argv)


def _run(args: argparse.Namespace, client: WalletClient):
    """What the command prints: a URI, or a record as JSON."""
    if args.command == "qr":
        return client.qr_uri()
    if args.command == "balance":
        return client.balance()
    if args.command == "cashback":
        return client.cashback()
    if args.command == "merchant-application":
        return client.merchant_application(
            business_id_hash=parse_bytes32(args.business_id_hash, "business id hash"),
            payout_account_hash=parse_bytes32(args.payout_account_hash, "payout account hash"),
            annual_revenue=args.annual_revenue,
            category=args.category,
            region=args.region,
        )
    follow = {"wait": not args.no_wait, "timeout": args.timeout}
    if args.command == "pay":
        return client.pay(args.uri, args.amount, **follow)
    if args.command == "refund":
        return client.refund(args.payer, args.payment_id, args.value, **follow)
    if args.command == "gift":
        return client.gift(args.to, args.amount, **follow)
    return client.cash_out(args.amount, **follow)


def main(argv: list[str] | None = None) -> int:
    args = _arguments(argv)
    try:
        if args.command == "new":
            print(new_account(args.key_file).address)
            return 0
        account = load_account(args.key_file)
        if args.command == "address":
            print(account.address)
            return 0
        with WalletClient(args.api, account, city=args.city) as client:
            done = _run(args, client)
    except (WalletError, OSError, httpx.HTTPError) as refused:
        print(f"error: {refused}", file=sys.stderr)
        return 2
    if isinstance(done, str):
        print(done)
        return 0
    print(json.dumps(done, indent=2))
    return 1 if done.get("status") in FAILED else 0


if __name__ == "__main__":
    sys.exit(main())
