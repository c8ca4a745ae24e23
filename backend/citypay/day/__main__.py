"""The platform's main job: a scripted day of Gimpo Pay (김포페이), through the HTTP API.

    make day        # or: .venv-backend/bin/python -m citypay.day [--no-serve] [--data-dir DIR]

Starts the project's chain (state kept in data/chain/), deploys the three cities (a no-op when
they are there), starts the backend, and runs a day: the city office registers residents and
merchants and issues a card; the bank notifies deposits that become charges (one over the monthly
limit is refused and listed for return); residents pay by static QR, by invoice QR and by card;
a merchant refunds a customer; merchants cash out to their bank accounts (one transfer fails and
its tokens come back); a broker stages 깡 at a shop, which the fraud rules flag. It ends with a
summary checked against the chain, the alerts, the dashboard's address and the auditor's
commands, and the platform keeps serving until Ctrl-C (--no-serve, or CITYPAY_DAY_NO_SERVE=1,
ends it there: for tests and CI).

Replicas: CITYPAY_REPLICAS (1) backend processes serve behind the one address, one of them
sending and following the chain, the others standing by for it; more than one needs PostgreSQL
(DATABASE_URL), as `make cluster` sets.

Ports and folders: the chain's port is CITY_CHAIN_PORT (8546), the backend's CITYPAY_PORT (8000),
the sandbox bank's CITYPAY_BANK_PORT (8548); the chain's state, the manifest, the bank's books and
the backend's SQLite database live under --data-dir (CITYPAY_DAY_DATA, default data/), so a
second day can run beside the first on other ports and another folder.
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import signal
import sys
import time
from pathlib import Path

from citypay.day.processes import ROOT, BackendProcess, SandboxBank, chain_tool, create_database
from citypay.day.script import Day

PORT = int(os.environ.get("CITYPAY_PORT", "8000"))
REPLICAS = os.environ.get("CITYPAY_REPLICAS", "1")
BANK_PORT = int(os.environ.get("CITYPAY_BANK_PORT", "8548"))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m citypay.day", description=__doc__)
    parser.add_argument(
        "--no-serve",
        action="store_true",
        default=os.environ.get("CITYPAY_DAY_NO_SERVE", "") not in ("", "0"),
        help="stop the backend and the bank after the summary (CITYPAY_DAY_NO_SERVE=1)",
    )
    parser.add_argument(
        "--data-dir",
        type=Path,
        default=Path(os.environ.get("CITYPAY_DAY_DATA", ROOT / "data")),
        help="the chain's state, the manifest, the bank's books, the backend's database "
        "(CITYPAY_DAY_DATA; default data/)",
    )
    args = parser.parse_args(argv)
    data = args.data_dir.resolve()
    database_url = os.environ.get(
        "DATABASE_URL", f"sqlite:///{data / 'backend' / 'citypay.sqlite3'}"
    )
    if not REPLICAS.isdigit() or not 1 <= int(REPLICAS) <= 64:
        parser.error(f"CITYPAY_REPLICAS={REPLICAS!r}: a whole number of processes, 1 to 64")
    replicas = int(REPLICAS)
    if replicas > 1 and not database_url.startswith("postgresql"):
        parser.error(
            f"CITYPAY_REPLICAS={replicas} needs PostgreSQL: SQLite runs one backend process; set "
            "DATABASE_URL=postgresql+psycopg://... (make cluster does)"
        )
    if database_url.startswith("postgresql"):
        create_database(database_url)

    # The chain tools put the manifest beside the chain's folder: <data>/deployments/.
    chain_settings = {"CITY_CHAIN_DATA": str(data / "chain")}
    chain = json.loads(chain_tool("scripts.chain", "start", "--json", env=chain_settings))
    print(f"chain: {chain['rpc_url']}, chain id {chain['chain_id']}, state {chain['state_file']}")
    print(chain_tool("scripts.deploy", env=chain_settings).strip().splitlines()[-1])
    manifest = data / "deployments" / f"{chain['chain_id']}.json"
    bank = SandboxBank(BANK_PORT, data / "bank" / "sandbox.sqlite3", data / "bank" / "bank.log")
    bank.start()
    print(f"sandbox bank: {bank.url} (books in {data / 'bank'})")
    backend = BackendProcess(
        PORT,
        {
            "DATABASE_URL": database_url,
            "RPC_URL": chain["rpc_url"],
            "MANIFEST_PATH": str(manifest),
            "BANK_URL": bank.url,
            # The day plays the bank: it must know the secret the backend checks deposits with.
            "BANK_WEBHOOK_SECRET": os.environ.get("BANK_WEBHOOK_SECRET") or secrets.token_hex(32),
        },
        data / "backend" / "backend.log",
        replicas=replicas,
    )
    (data / "backend").mkdir(parents=True, exist_ok=True)
    backend.start()
    shown = f", {replicas} replicas" if replicas > 1 else ""
    print(
        f"backend: {backend.url}{shown} (OpenAPI docs at {backend.url}/docs, "
        f"log {backend.log_path})"
    )
    # A service manager (or kill) stops the day with SIGTERM: stop the backend and the bank as
    # Ctrl-C does, rather than leaving them running without their parent.
    signal.signal(signal.SIGTERM, _interrupt)
    try:
        Day(backend, bank, manifest, run=time.strftime("%Y%m%d-%H%M%S")).run()
        if not args.no_serve:
            stop_chain = (
                "make chain-stop"
                if data == ROOT / "data"
                else f".venv/bin/python -m scripts.chain stop --data-dir {data / 'chain'}"
            )
            print(
                f"the platform keeps serving on {backend.url}; Ctrl-C stops the backend and the "
                f"bank (the chain keeps running: {stop_chain})"
            )
            while backend.process.poll() is None:
                time.sleep(1)
            print(f"the backend exited with {backend.process.returncode}: see {backend.log_path}")
            return 1
    except KeyboardInterrupt:
        pass
    finally:
        backend.stop()
        bank.stop()
    return 0


def _interrupt(_signal, _frame) -> None:
    raise KeyboardInterrupt


if __name__ == "__main__":
    sys.exit(main())
