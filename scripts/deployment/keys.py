"""Makes an account in an encrypted keystore file, the format the deploy and the backend read
their keys from (citypay/chain/keystore.py: one implementation for both):

    python -m scripts.deployment.keys new deployer --dir keys
"""

from __future__ import annotations

import sys
from pathlib import Path

from citypay.chain.keystore import KeyLoadError, create_keystore


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
