"""The platform's main job: a scripted day of Gimpo Pay (김포페이), through the HTTP API.

    make day        # or: .venv-backend/bin/python -m citypay.day [--keep-serving]

Starts the project's chain (state kept in data/chain/), deploys the three cities (a no-op when
they are there), starts the backend, and runs a day: the city office registers residents and
merchants and issues a card; the bank notifies deposits that become charges (one over the monthly
limit is refused and listed for return); residents pay by static QR, by invoice QR and by card;
a merchant refunds a customer; merchants cash out to their bank accounts (one transfer fails and
its tokens come back). It ends with a summary checked against the chain.
"""

from __future__ import annotations

import argparse
import os
import secrets
import sys
import time

from citypay.day.processes import ROOT, BackendProcess, SandboxBank, chain_tool
from citypay.day.script import Day

PORT = int(os.environ.get("CITYPAY_PORT", "8000"))
BANK_PORT = int(os.environ.get("CITYPAY_BANK_PORT", "8548"))
DATA = ROOT / "data"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m citypay.day", description=__doc__)
    parser.add_argument(
        "--keep-serving", action="store_true", help="leave the backend running after the day"
    )
    args = parser.parse_args(argv)

    print(chain_tool("scripts.chain", "start").strip())
    print(chain_tool("scripts.deploy").strip().splitlines()[-1])
    manifest = DATA / "deployments" / "58210.json"
    bank = SandboxBank(BANK_PORT, DATA / "bank" / "sandbox.sqlite3", DATA / "bank" / "bank.log")
    bank.start()
    print(f"sandbox bank: {bank.url} (books in {DATA / 'bank'})")
    backend = BackendProcess(
        PORT,
        {
            "DATABASE_URL": os.environ.get(
                "DATABASE_URL", f"sqlite:///{DATA / 'backend' / 'citypay.sqlite3'}"
            ),
            "MANIFEST_PATH": str(manifest),
            "BANK_URL": bank.url,
            # The day plays the bank: it must know the secret the backend checks deposits with.
            "BANK_WEBHOOK_SECRET": os.environ.get("BANK_WEBHOOK_SECRET") or secrets.token_hex(32),
        },
        DATA / "backend" / "backend.log",
    )
    (DATA / "backend").mkdir(parents=True, exist_ok=True)
    backend.start()
    print(f"backend: {backend.url} (OpenAPI docs at {backend.url}/docs, log {backend.log_path})")
    try:
        Day(backend, bank, manifest, run=time.strftime("%Y%m%d-%H%M%S")).run()
        if args.keep_serving:
            print("the platform keeps serving; Ctrl-C stops the backend (the chain keeps running)")
            while backend.process.poll() is None:
                time.sleep(1)
    except KeyboardInterrupt:
        pass
    finally:
        backend.stop()
        bank.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
