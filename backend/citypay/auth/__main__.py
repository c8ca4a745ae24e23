"""API keys for operators, banks, auditors and tills:

    python -m citypay.auth create NAME --role bank --city gimpo
    python -m citypay.auth revoke NAME

The key is printed once; only its hash is stored. Settings (DATABASE_URL) from the environment.
"""

from __future__ import annotations

import argparse
import sys

from citypay.auth.credentials import create_api_key, revoke_api_key
from citypay.auth.models import Role
from citypay.core.config import get_settings
from citypay.db.migrate import upgrade
from citypay.db.session import Database


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m citypay.auth", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    create = commands.add_parser("create", help="create an API key and print it")
    create.add_argument("name")
    create.add_argument("--role", required=True, choices=[r.value for r in Role])
    create.add_argument("--city", help="the city code it acts for (default: every city)")
    revoke = commands.add_parser("revoke", help="revoke every key with this name")
    revoke.add_argument("name")
    args = parser.parse_args(argv)

    db = Database(get_settings().DATABASE_URL)
    upgrade(db.engine)
    if args.command == "create":
        print(create_api_key(db, args.name, Role(args.role), args.city))
        return 0
    revoked = revoke_api_key(db, args.name)
    print(f"revoked {revoked} key(s) named {args.name}", file=sys.stderr)
    return 0 if revoked else 1


if __name__ == "__main__":
    sys.exit(main())
