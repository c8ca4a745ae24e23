"""The day's policy programs (정책발행): a youth allowance for bakeries and restaurants, paid out
from a recipient list by the operators' payout command (and posted again over HTTP: nobody is
paid twice), spent where it may be, refused where it
may not with the reason a wallet shows before signing, drawn on together with general money; and
a short relief program that expires (the embedded chain's clock moved a minute forward) with its
money returned to the city.

The policy office creates a program and the finance office funds it with their own keys (here
anvil's development keys), as their staff would from the city's wallet; the backend's program
payer pays it out."""

from __future__ import annotations

import csv
import subprocess
import sys
import time
from typing import TYPE_CHECKING

from eth_utils import keccak

from citypay.chain.codec import decode_revert
from citypay.chain.events import decode_log
from citypay.chain.keys import development_account
from citypay.day.processes import ROOT
from citypay.wallet.client import WalletClient

if TYPE_CHECKING:
    from citypay.day.script import Day

CITY = "gimpo"
BAKERY, RESTAURANT = 4721, 5611
REGION = 41570
YOUTH = "YOUTH-2026"
RELIEF = "RELIEF-2026"
ALLOWANCE = 50_000
RELIEF_AMOUNT = 30_000
# How long the relief program lasts, and how far the day moves the chain's clock past it: a
# minute keeps every wallet's signed window (10 minutes) valid on the chain.
RELIEF_SECONDS = 45
ANY_MERCHANT = 2**64 - 1
LISTS = ROOT / "data" / "reports" / "programs"


def _code(text: str, run: str) -> bytes:
    return f"{text}-{run[-6:]}".encode().ljust(32, b"\0")


def _programs(day: Day):
    return day.deployment.gateway.contract(day.city.programs.address, "programs")


def _send(day: Day, address: str, contract, function: str, *args) -> dict:
    """A city office's own transaction, signed with its key; its receipt once mined."""
    rpc = day.deployment.gateway.rpc
    account = development_account(address)
    signed = account.sign_transaction(
        {
            "to": contract.address,
            "data": contract.calldata(function, *args),
            "value": 0,
            "nonce": int(rpc.request("eth_getTransactionCount", account.address, "pending"), 16),
            "gas": 2_000_000,
            "gasPrice": 0,
            "chainId": day.deployment.chain_id,
        }
    )
    tx_hash = rpc.request("eth_sendRawTransaction", "0x" + signed.raw_transaction.hex())
    deadline = time.monotonic() + 60
    while (receipt := rpc.request("eth_getTransactionReceipt", tx_hash)) is None:
        if time.monotonic() > deadline:
            raise RuntimeError(f"{function} not mined within 60 s")
        time.sleep(0.1)
    if int(receipt["status"], 16) != 1:
        raise RuntimeError(f"{function} reverted")
    return receipt


def _create(day: Day, label: str, terms: tuple, budget: int) -> int:
    programs, roles = _programs(day), day.city.roles
    _send(day, roles["program_manager"], programs, "createProgram", terms)
    number = programs.call("programOfCode", terms[0])
    reference = keccak(text=f"city budget transfer:{label}:{day.run_id}")
    # The finance office moves the budget into the custody account, then records the funding:
    # the program's tokens are backed as charged ones are.
    day._credit_custody(f"{label}-{day.run_id}", budget)
    _send(day, roles["program_funder"], programs, "fundProgram", number, budget, reference)
    return number


def _pay_out(day: Day, code: str, rows: list[tuple[str, int]]) -> str:
    """The operators' payout command on a recipient list, as an operator runs it."""
    path = LISTS / f"{code}.csv"
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="", encoding="utf-8") as file:
        writer = csv.writer(file)
        writer.writerow(("wallet", "amount"))
        writer.writerows((day.residents[name].address, amount) for name, amount in rows)
    command = [sys.executable, "-m", "citypay.programs", "payout", "--city", CITY]
    command += ["--program", code, "--csv", str(path)]
    done = subprocess.run(
        command, env=day.backend.environment(), capture_output=True, text=True, timeout=300
    )
    if done.returncode != 0:
        raise RuntimeError(f"the payout of {code} failed: {done.stdout}{done.stderr}")
    return done.stdout.strip()


def _pay_out_over_http(day: Day, code: str, rows: list[tuple[str, int]]) -> str:
    """The same list posted by an operator to the backend, followed to its end."""
    body = "wallet,amount\n" + "".join(
        f"{day.residents[name].address},{amount}\n" for name, amount in rows
    )
    headers = {"Authorization": f"Bearer {day.operator}"}
    path = f"/v1/cities/{CITY}/programs/{code}/payouts"
    posted = day.http.post(
        path, content=body.encode(), headers=headers | {"Content-Type": "text/csv"}
    )
    if posted.status_code != 202:
        raise RuntimeError(f"the payout of {code} was refused: {posted.text}")
    payout = posted.json()
    deadline = time.monotonic() + 60
    while payout["status"] not in ("done", "stopped"):
        if time.monotonic() > deadline:
            raise RuntimeError(f"payout {payout['id']} still {payout['status']}")
        time.sleep(0.3)
        payout = day.http.get(f"{path}/{payout['id']}", headers=headers).json()
    return (
        f"POST {path}: payout {payout['id']} {payout['status']}, {payout['paid']} paid now, "
        f"{payout['alreadyPaid']} paid before, {payout['refused']} refused"
    )


def _figures(day: Day, number: int) -> str:
    p = _programs(day).call("program", number)
    outstanding = p.paidOut - p.spent + p.refunded - p.expired
    return (
        f"budget {p.budget:,}, funded {p.funded:,}, paid out {p.paidOut:,}, spent {p.spent:,}, "
        f"refunded {p.refunded:,}, expired {p.expired:,}, outstanding {outstanding:,} KRW"
    )


def _now(day: Day) -> int:
    return int(day.deployment.gateway.block("latest")["timestamp"], 16)


def allowance(day: Day) -> None:
    """The youth allowance: created, funded and paid to minji and junho from a CSV."""
    now = _now(day)
    code = _code(YOUTH, day.run_id)
    expires = now + 90 * 86_400
    terms = (code, 1_000_000, ALLOWANCE, 0, expires, ANY_MERCHANT, [BAKERY, RESTAURANT], [REGION])
    day.youth = _create(day, YOUTH, terms, 1_000_000)
    text = code.rstrip(b"\0").decode()
    day.say(f"{text}: youth allowance of {ALLOWANCE:,} KRW for bakeries and restaurants in Gimpo")
    day.say(_pay_out(day, text, [("minji", ALLOWANCE), ("junho", ALLOWANCE)]))
    again = _pay_out_over_http(day, text, [("minji", ALLOWANCE), ("junho", ALLOWANCE)])
    day.say(f"the same list posted again by the office's operator key: {again}")
    day.say(f"{text}: {_figures(day, day.youth)}")


def spend(day: Day) -> None:
    """Where the allowance pays, where it does not and why, and a payment drawing on both."""
    programs, token = _programs(day), day.city.chain.token
    minji, junho = day.residents["minji"], day.residents["junho"]
    with WalletClient(day.backend.url, minji, city=CITY) as wallet:
        paid = wallet.pay(day._qr("Haneul Bakery"), 12_000)
    left = programs.call("holdingOf", minji.address, day.youth)
    day.say(
        f"minji pays Haneul Bakery 12,000 KRW: {paid['status']}, from her allowance "
        f"({left:,} KRW of it left)"
    )
    books = day.merchants["Riverside Books"].address
    general = programs.call("generalBalanceOf", minji.address)
    value = general + 5_000
    revert = decode_revert(token.call("paymentRefusal", minji.address, books, value))
    held, eligible, reasons = (revert.args.get(k) for k in ("held", "eligible", "reasons"))
    day.say(
        f"minji asks before paying Riverside Books {value:,} KRW: {revert.name}, she holds "
        f"{held:,} KRW, {eligible:,} of it eligible there (reasons {reasons}: the allowance is "
        "for bakeries and restaurants)"
    )
    with WalletClient(day.backend.url, minji, city=CITY) as wallet:
        refused = wallet.pay(day._qr("Riverside Books"), value)
    day.say(f"she pays anyway: {refused['status']} ({refused.get('failureReason')})")
    before = programs.call("holdingOf", junho.address, day.youth)
    with WalletClient(day.backend.url, junho, city=CITY) as wallet:
        mixed = wallet.pay(day._qr("Gimpo Noodle House"), before + 10_000)
    day.say(
        f"junho pays Gimpo Noodle House {before + 10_000:,} KRW: {mixed['status']}, "
        f"{before:,} from his allowance and 10,000 from his general money"
    )


def expiry(day: Day) -> None:
    """A relief program that ends in under a minute: its money goes back to the city."""
    now = _now(day)
    code = _code(RELIEF, day.run_id)
    terms = (code, 100_000, RELIEF_AMOUNT, 0, now + RELIEF_SECONDS, ANY_MERCHANT, [], [])
    number = _create(day, RELIEF, terms, 100_000)
    text = code.rstrip(b"\0").decode()
    day.say(_pay_out(day, text, [("seoyeon", RELIEF_AMOUNT)]))
    seoyeon = day.residents["seoyeon"].address
    token, rpc = day.city.chain.token, day.deployment.gateway.rpc
    supply = token.call("totalSupply")
    # The embedded chain moves its clock past the program's end (a city's network never does).
    expires = _programs(day).call("program", number).expiry
    ahead = max(0, expires - _now(day)) + 1
    rpc.request("evm_increaseTime", ahead)
    rpc.request("evm_mine")
    receipt = _send(day, day.city.roles["program_manager"], token, "sweep", seoyeon)
    events = [
        decode_log(log, CITY, "programs", 0)
        for log in receipt["logs"]
        if log["address"].lower() == day.city.programs.address.lower()
    ]
    expired = sum(e.args["amount"] for e in events if e.event == "Expired")
    after = token.call("totalSupply")
    day.say(
        f"{text} ended; the chain's clock moved {ahead} s: {expired:,} KRW of seoyeon's relief "
        f"money swept back to the city (supply {supply:,} -> {after:,} KRW)"
    )
    day.say(f"{text}: {_figures(day, number)}")
