"""The day's staged 깡 (상품권깡, turning vouchers into cash): a broker's recruits charge with the
city's incentive and spend all of it at a shop that sells nothing, and the shop cashes the lot
out minutes later. The fraud rules are to catch it; the closing summary shows what they raised,
the dashboard and the auditor's commands.
"""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Protocol

import httpx
from rich.console import Console
from rich.table import Table

from citypay.chain.deployment import City, Deployment
from citypay.day.processes import BackendProcess
from citypay.wallet.client import WalletClient


class Day(Protocol):
    """What the staging needs of the day that runs it (day/script.py's Day)."""

    run_id: str
    residents: dict[str, Any]
    merchants: dict[str, Any]
    names: dict[str, str]
    city: City
    deployment: Deployment
    backend: BackendProcess
    http: httpx.Client
    console: Console
    auditor: str

    def say(self, line: str) -> None: ...
    def _deposit(self, deposit_id: str, resident: str, amount: int) -> dict: ...
    def _qr(self, merchant: str) -> str: ...
    def cash_out_balance(self, name: str) -> dict: ...


SHOP, SHOP_CATEGORY = "Sinseong Gift Shop", 5947  # gifts and souvenirs
RECRUITS = ("recruit-1", "recruit-2", "recruit-3")
CHARGE = 300_000  # each, plus the 10% incentive


def stage(day: Day) -> None:
    for name in RECRUITS:
        deposit = day._deposit(f"{day.run_id}-{name}", day.residents[name].address, CHARGE)
        day.say(
            f"{name:<10} deposit {CHARGE:>9,} KRW -> {deposit['status']}, "
            f"incentive {deposit.get('incentive') or 0:,} KRW"
        )
    uri, token = day._qr(SHOP), day.city.chain.token

    def spend_all(name: str) -> tuple[str, dict]:
        wallet = day.residents[name]
        balance = token.call("balanceOf", wallet.address)
        with WalletClient(day.backend.url, wallet, city=day.city.code) as client:
            return name, client.pay(uri, balance)

    with ThreadPoolExecutor(len(RECRUITS)) as pool:
        for name, payment in pool.map(spend_all, RECRUITS):
            day.say(
                f"{name:<10} spends all {payment['value']:>7,} KRW at {SHOP}, buying nothing: "
                f"{payment['status']}"
            )
    cash_out = day.cash_out_balance(SHOP)
    day.say(
        f"{SHOP} cashes out {cash_out['amount']:,} KRW, what it has just received: "
        f"{cash_out['status']}"
    )


def _expected(day: Day) -> set[tuple[str, str]]:
    shop = day.merchants[SHOP].address
    return {("quick_cash_out", shop), ("fresh_wallet_feed", shop)} | {
        ("incentive_spend_all", day.residents[name].address) for name in RECRUITS
    }


def _alerts_of_the_day(day: Day, timeout: float = 60) -> list[dict]:
    """The alerts about this day's people, once those of the staged pattern are all there (the
    rules judge each block as the listener indexes it)."""
    expected = _expected(day)
    deadline = time.monotonic() + timeout
    while True:
        listed = day.http.get(
            f"/v1/cities/{day.city.code}/alerts",
            params={"limit": 1000},
            headers={"Authorization": f"Bearer {day.auditor}"},
        )
        listed.raise_for_status()
        alerts = [a for a in listed.json() if a["subject"] in day.names]
        missing = expected - {(a["rule"], a["subject"]) for a in alerts}
        if not missing:
            return sorted(alerts, key=lambda a: (a["blockNumber"], a["id"]))
        if time.monotonic() > deadline:
            raise RuntimeError(
                "the fraud rules did not flag the staged 깡: no "
                + ", ".join(f"{rule} for {day.names[who]}" for rule, who in sorted(missing))
            )
        time.sleep(0.5)


def report(day: Day) -> None:
    alerts = _alerts_of_the_day(day)
    table = Table(title="Fraud alerts (상품권깡 patterns) raised today")
    table.add_column("rule")
    table.add_column("who")
    table.add_column("what the rule saw")
    table.add_column("events", justify="right")
    for alert in alerts:
        message = alert["message"]
        for address, name in day.names.items():
            message = message.replace(address, name)
        table.add_row(
            alert["rule"], day.names[alert["subject"]], message, str(len(alert["events"]))
        )
    day.console.print(table)
    day.console.print(
        f"the staged 깡 at {SHOP} was flagged: all {len(_expected(day))} expected alerts, each "
        "linking to its events"
    )
    settings = day.backend.settings
    directory = day.deployment.directory.address
    chain = f"--rpc-url {settings['RPC_URL']} --directory {directory}"
    audit = ".venv-backend/bin/python -m citypay.audit"
    day.console.print(
        "the auditor's commands:\n"
        f"  curl -H 'Authorization: Bearer {day.auditor}' "
        f"{day.backend.url}/v1/cities/{day.city.code}/alerts\n"
        f"  {audit} report {chain} --city {day.city.code} "
        f"--merchant {day.merchants[SHOP].address}\n"
        f"  {audit} check {chain}\n"
        f"  {audit} reconcile {chain} --database-url {settings['DATABASE_URL']}",
        soft_wrap=True,
    )
