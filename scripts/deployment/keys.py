"""Makes accounts in encrypted keystore files, the format the deploy and the backend read their
keys from (citypay/chain/keystore.py: one implementation for both), one file per account named
as the configuration names it:

    python -m scripts.deployment.keys new deployer --dir keys
    python -m scripts.deployment.keys new registrar settler gimpo-bank --dir keys/backend
"""

from __future__ import annotations

import sys
from pathlib import Path

from citypay.chain.keystore import KeyLoadError, create_keystore


def main(argv: list[str] | None = None) -> int:
    import argparse

    parser = argparse.ArgumentParser(
        prog="python -m scripts.deployment.keys",
        description="Creates accounts in encrypted keystore files; prints only their addresses.",
    )
    parser.add_argument("command", choices=["new"])
    parser.add_argument(
        "names", nargs="+", metavar="NAME", help="an account's name in the configuration"
    )
    parser.add_argument("--dir", default="keys", help="keystore folder (default keys/)")
    args = parser.parse_args(argv)
    for name in args.names:
        try:
            address = create_keystore(args.dir, name)
        except KeyLoadError as error:
            print(f"keys: error: {error}", file=sys.stderr)
            return 1
        print(f"{name}: {address} (keystore {Path(args.dir) / name}.json)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
