"""The day's policy programs (정책발행): a youth allowance for bakeries and restaurants, paid out
from a recipient list by the operators' payout command, spent where it may be, refused where it
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

from eth_abi import decode
from eth_utils import keccak

from citypay.chain.codec import decode_revert
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


def _send(day: Day, address: str, call) -> dict:
    """A city office's own transaction, signed with its key."""
    account = development_account(address)
    transaction = call.build_transaction(
        {
            "from": account.address,
            "nonce": day.w3.eth.get_transaction_count(account.address, "pending"),
            "gas": 2_000_000,
            "gasPrice": 0,
            "chainId": day.deployment.chain_id,
        }
    )
    signed = account.sign_transaction(transaction)
    tx_hash = day.w3.eth.send_raw_transaction(signed.raw_transaction)
    receipt = day.w3.eth.wait_for_transaction_receipt(tx_hash, timeout=60, poll_latency=0.1)
    if receipt["status"] != 1:
        raise RuntimeError(f"{call.fn_name} reverted")
    return receipt


def _create(day: Day, label: str, terms: tuple, budget: int) -> int:
    programs, roles = day.city.programs, day.city.roles
    _send(day, roles["program_manager"], programs.functions.createProgram(terms))
    number = programs.functions.programOfCode(terms[0]).call()
    reference = keccak(text=f"city budget transfer:{label}:{day.run_id}")
    # The finance office moves the budget into the custody account, then records the funding:
    # the program's tokens are backed as charged ones are.
    day._credit_custody(f"{label}-{day.run_id}", budget)
    _send(day, roles["program_funder"], programs.functions.fundProgram(number, budget, reference))
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


def _figures(day: Day, number: int) -> str:
    p = day.city.programs.functions.program(number).call()
    # ICityPrograms.Program: code, budget, funded, spendFrom, expiry, paidOut, spent, revenueCap,
    # anyCategory, anyRegion, closed, refunded, expired, maxPerRecipient
    return (
        f"budget {p[1]:,}, funded {p[2]:,}, paid out {p[5]:,}, spent {p[6]:,}, refunded "
        f"{p[11]:,}, expired {p[12]:,}, outstanding {p[5] - p[6] + p[11] - p[12]:,} KRW"
    )


def allowance(day: Day) -> None:
    """The youth allowance: created, funded and paid to minji and junho from a CSV."""
    now = day.w3.eth.get_block("latest")["timestamp"]
    code = _code(YOUTH, day.run_id)
    expires = now + 90 * 86_400
    terms = (code, 1_000_000, ALLOWANCE, 0, expires, ANY_MERCHANT, [BAKERY, RESTAURANT], [REGION])
    day.youth = _create(day, YOUTH, terms, 1_000_000)
    text = code.rstrip(b"\0").decode()
    day.say(f"{text}: youth allowance of {ALLOWANCE:,} KRW for bakeries and restaurants in Gimpo")
    day.say(_pay_out(day, text, [("minji", ALLOWANCE), ("junho", ALLOWANCE)]))
    again = _pay_out(day, text, [("minji", ALLOWANCE), ("junho", ALLOWANCE)])
    day.say(f"the same list run again: {again}")
    day.say(f"{text}: {_figures(day, day.youth)}")


def spend(day: Day) -> None:
    """Where the allowance pays, where it does not and why, and a payment drawing on both."""
    programs, token = day.city.programs.functions, day.city.token.functions
    minji, junho = day.residents["minji"], day.residents["junho"]
    with WalletClient(day.backend.url, minji, city=CITY) as wallet:
        paid = wallet.pay(day._qr("Haneul Bakery"), 12_000)
    left = programs.holdingOf(minji.address, day.youth).call()
    day.say(
        f"minji pays Haneul Bakery 12,000 KRW: {paid['status']}, from her allowance "
        f"({left:,} KRW of it left)"
    )
    books = day.merchants["Riverside Books"].address
    general = programs.generalBalanceOf(minji.address).call()
    value = general + 5_000
    refusal = bytes(token.paymentRefusal(minji.address, books, value).call())
    revert = decode_revert(refusal)
    held, eligible, reasons = (revert.args.get(k) for k in ("held", "eligible", "reasons"))
    day.say(
        f"minji asks before paying Riverside Books {value:,} KRW: {revert.name}, she holds "
        f"{held:,} KRW, {eligible:,} of it eligible there (reasons {reasons}: the allowance is "
        "for bakeries and restaurants)"
    )
    with WalletClient(day.backend.url, minji, city=CITY) as wallet:
        refused = wallet.pay(day._qr("Riverside Books"), value)
    day.say(f"she pays anyway: {refused['status']} ({refused.get('failureReason')})")
    before = programs.holdingOf(junho.address, day.youth).call()
    with WalletClient(day.backend.url, junho, city=CITY) as wallet:
        mixed = wallet.pay(day._qr("Gimpo Noodle House"), before + 10_000)
    day.say(
        f"junho pays Gimpo Noodle House {before + 10_000:,} KRW: {mixed['status']}, "
        f"{before:,} from his allowance and 10,000 from his general money"
    )


def expiry(day: Day) -> None:
    """A relief program that ends in under a minute: its money goes back to the city."""
    now = day.w3.eth.get_block("latest")["timestamp"]
    code = _code(RELIEF, day.run_id)
    terms = (code, 100_000, RELIEF_AMOUNT, 0, now + RELIEF_SECONDS, ANY_MERCHANT, [], [])
    number = _create(day, RELIEF, terms, 100_000)
    text = code.rstrip(b"\0").decode()
    day.say(_pay_out(day, text, [("seoyeon", RELIEF_AMOUNT)]))
    seoyeon = day.residents["seoyeon"].address
    supply = day.city.token.functions.totalSupply().call()
    # The embedded chain moves its clock past the program's end (a city's network never does).
    expires = day.city.programs.functions.program(number).call()[4]
    ahead = max(0, expires - day.w3.eth.get_block("latest")["timestamp"]) + 1
    day.w3.provider.make_request("evm_increaseTime", [ahead])
    day.w3.provider.make_request("evm_mine", [])
    time.sleep(0.1)
    receipt = _send(day, day.city.roles["program_manager"], day.city.token.functions.sweep(seoyeon))
    expired = sum(
        decode(["uint256"], bytes(log["data"]))[0]
        for log in receipt["logs"]
        if log["topics"][0] == keccak(text="Expired(address,uint32,uint256)")
    )
    after = day.city.token.functions.totalSupply().call()
    day.say(
        f"{text} ended; the chain's clock moved {ahead} s: {expired:,} KRW of seoyeon's relief "
        f"money swept back to the city (supply {supply:,} -> {after:,} KRW)"
    )
    day.say(f"{text}: {_figures(day, number)}")
