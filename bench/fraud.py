"""The fraud rules' cost per event on a busy history: events made in memory, folded and judged
as the engine folds them (citypay.fraud.judge.Judge), no chain and no database; and, with
--stored, the engine's catch-up (FraudEngine.catch_up, run as the API process starts its
listener) over a history stored by the listener.

    make bench-fraud     # BENCH_FRAUD_PAYMENTS=20000 BENCH_FRAUD_MERCHANTS=5
    make bench-fraud BENCH_FRAUD_ARGS=--stored   # BENCH_CHAIN_PORT: the chain's, free if unset

The history: the payers and merchants registered, then two bursts, at 03:00 KST (outside the
default business hours) and at 12:00 KST: every payer charged with the incentive five minutes
before, then half the payments in blocks of BENCH_FRAUD_BLOCK, 6 s apart, payers and merchants in
turn; one payment in seven is round and just under the monthly purchase limit, and a payer
spends its charge at one merchant. Each merchant cashes out at the end. Most payments cross some
rule's thresholds, and a merchant's windows hold thousands of payments.

The stored history is bench/listener.py's: on a chain of its own, the relay benchmark's payers
charged and merchants (restaurants) registered, then BENCH_FRAUD_PAYMENTS payments as signed
authorizations settled in batches, indexed into a SQLite database by the listener; the catch-up
runs on the shipped config/fraud.yaml (whether the restaurants are open depends on the hour).

Prints µs per event (best of BENCH_FRAUD_REPEATS) and the alerts raised by rule.
"""

from __future__ import annotations

import os
import sys
import time
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "backend" / "tests"))
sys.path.insert(0, str(ROOT / "bench"))

from citypay.authorization import TokenDomain  # noqa: E402
from citypay.chain.events import ChainEvent  # noqa: E402
from citypay.db.session import Database  # noqa: E402
from citypay.fraud.config import load_fraud_config  # noqa: E402
from citypay.fraud.engine import FraudEngine  # noqa: E402
from citypay.fraud.judge import Judge  # noqa: E402
from history import sign_payments, submit  # noqa: E402
from listener import CHAIN_PORT, _value, index_from_scratch  # noqa: E402
from platform_harness import ChainUnderTest  # noqa: E402
from relay import _populate, _wallet  # noqa: E402

CITY = "gimpo"
PAYMENTS = int(os.environ.get("BENCH_FRAUD_PAYMENTS", "20000"))
MERCHANTS = int(os.environ.get("BENCH_FRAUD_MERCHANTS", "5"))
PAYERS = int(os.environ.get("BENCH_FRAUD_PAYERS", "200"))
BLOCK = int(os.environ.get("BENCH_FRAUD_BLOCK", "500"))  # payments a block
REPEATS = int(os.environ.get("BENCH_FRAUD_REPEATS", "3"))
LIMITS = {"monthly purchase limit": 500_000, "holding cap": 2_000_000}
NIGHT = 1_767_204_000  # 2026-01-01 03:00 KST
NOON = NIGHT + 9 * 3600  # 12:00 KST, the same day
CONFIG = load_fraud_config(ROOT / "config" / "fraud.yaml")  # the shipped thresholds and hours


class History:
    """Events of one city in chain order: `next_block` opens a block, `add` logs into it."""

    def __init__(self) -> None:
        self.events: list[ChainEvent] = []
        self.block, self.time, self.log = 0, NIGHT, 0

    def next_block(self, at: int) -> None:
        self.block, self.time, self.log = self.block + 1, at, 0

    def add(self, contract: str, name: str, **args) -> None:
        tx = f"0x{self.block:032x}{self.log:032x}"
        self.events.append(
            ChainEvent(
                CITY,
                contract,
                name,
                self.block,
                f"0x{self.block:064x}",
                self.time,
                tx,
                self.log,
                args,
            )
        )
        self.log += 1


def _address(kind: str, index: int) -> str:
    return "0x" + f"{kind}{index:x}".rjust(40, "0")


def synthetic_history(payments: int, merchants: int, payers: int) -> list[ChainEvent]:
    history = History()
    shops = [_address("5", i) for i in range(merchants)]
    wallets = [_address("a", i) for i in range(payers)]
    history.next_block(NIGHT - 600)
    for wallet in wallets:
        history.add("registry", "ResidentRegistered", wallet=wallet, region=1)
    for shop in shops:
        history.add("registry", "MerchantRegistered", wallet=shop, category=5411, region=1)
    half = payments // 2
    for start, indices in ((NIGHT, range(half)), (NOON, range(half, payments))):
        history.next_block(start - 300)  # charged five minutes before paying: fresh
        for wallet in wallets:
            history.add(
                "treasury",
                "Issued",
                resident=wallet,
                depositReference=f"0x{history.block:032x}{history.log:032x}",
                issuer=shops[0],
                amount=2_000_000,
                incentive=200_000,
            )
        for offset, index in enumerate(indices):
            if offset % BLOCK == 0:
                history.next_block(start + 6 * (offset // BLOCK))
            value = 490_000 if index % 7 == 0 else 1_000 + index % 97 * 100
            sender, receiver = wallets[index % payers], shops[index % merchants]
            history.add("token", "Transfer", **{"from": sender, "to": receiver, "value": value})
    history.next_block(history.time + 60)
    for index, shop in enumerate(shops):
        history.add(
            "treasury",
            "RedemptionRequested",
            id=index,
            account=shop,
            kind=0,
            burned=1_000_000,
            payout=1_000_000,
            payoutAccountHash="0x" + "00" * 32,
        )
    return history.events


def fold(events: list[ChainEvent]) -> tuple[float, Counter]:
    """(seconds, alerts by rule) folding and judging every event into a fresh judge."""
    judge = Judge(CONFIG, [CITY], lambda code: dict(LIMITS))
    started = time.perf_counter()
    findings = [finding for event in events for finding in judge.fold(event)]
    return time.perf_counter() - started, Counter(f.rule for f in findings)


def catch_up_on_stored_history() -> None:
    """Times FraudEngine.catch_up over a history the listener stored."""
    workdir = ROOT / "data" / "bench-fraud" / str(os.getpid())
    workdir.mkdir(parents=True)
    chain = ChainUnderTest(workdir / "chain", CHAIN_PORT)
    chain.start_and_deploy()
    try:
        payers = [_wallet("payer", i) for i in range(PAYERS)]
        merchants = [_wallet("merchant", i) for i in range(MERCHANTS)]
        _populate(chain, payers, merchants)
        city = chain.deployment.city(CITY)
        domain = TokenDomain(city.name, "1", chain.deployment.chain_id, city.token.address)
        entries = sign_payments(domain, payers, merchants, PAYMENTS, _value, "bench-fraud")
        submit(chain, CITY, entries, 100)
        url = f"sqlite:///{workdir / 'history.sqlite3'}"
        _, stored = index_from_scratch(url, chain, chain.w3.eth.block_number)
        db = Database(url)
        engine = FraudEngine(db, chain.deployment, CONFIG)
        started = time.perf_counter()
        engine.catch_up()
        seconds = time.perf_counter() - started
        db.engine.dispose()
    finally:
        chain.stop()
    print(
        f"catch-up over {stored:,} stored events ({PAYMENTS:,} payments to {MERCHANTS} "
        f"merchants by {PAYERS} payers): {seconds:.2f} s, {seconds / stored * 1e6:.1f} µs/event, "
        f"{engine.alerts_raised} alert(s) stored"
    )


def main() -> None:
    if "--stored" in sys.argv[1:]:
        catch_up_on_stored_history()
        return
    events = synthetic_history(PAYMENTS, MERCHANTS, PAYERS)
    runs = [fold(events) for _ in range(REPEATS)]
    seconds, alerts = min(runs, key=lambda run: run[0])
    print(
        f"{len(events):,} events ({PAYMENTS:,} payments to {MERCHANTS} merchants by {PAYERS} "
        f"payers, {BLOCK} a block): {seconds:.2f} s, {seconds / len(events) * 1e6:.1f} µs/event "
        f"(best of {REPEATS}: {', '.join(f'{run[0]:.2f}' for run in runs)} s)"
    )
    print("alerts:", dict(sorted(alerts.items())))


if __name__ == "__main__":
    main()
