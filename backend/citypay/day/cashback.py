"""The day's cashback (결제 캐시백) in Ulsan, which pays its incentive when a resident pays rather
than as a discount at charge: sora charges (nothing is added), pays a small noodle house in
Jung-gu (10%) and a bakery in Dong-gu, a population-decline area (12%), each by its static QR; the
backend's worker settles each payment with the city's cashback contract, which decides the
amount; the bakery refunds part of hers, and the worker takes that share of the cashback back.

Ulsan's office and bank act with keys of their own city, as Gimpo's do in the rest of the day."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING

from eth_utils import keccak

from citypay.wallet.client import WalletClient

if TYPE_CHECKING:
    from citypay.day.script import Day

CITY = "ulsan"
RESTAURANT, BAKERY = 5611, 4721
JUNG_GU, DONG_GU = 31110, 31170
RESIDENT = "sora"
# name: (category, region, annual revenue): a small shop (10%), and a mid-sized bakery whose 7%
# band Dong-gu's rate replaces.
SHOPS = {
    "Taehwa Noodles": (RESTAURANT, JUNG_GU, 250_000_000),
    "Bangeojin Bakery": (BAKERY, DONG_GU, 1_200_000_000),
}
CHARGE = 200_000
PURCHASES = {"Taehwa Noodles": 30_000, "Bangeojin Bakery": 50_000}
REFUND = ("Bangeojin Bakery", 20_000)
# What the city pays into its custody account for the cashback its payments mint (KRW).
CASHBACK_BUDGET = 50_000


def pay_with_cashback(day: Day) -> None:
    with ThreadPoolExecutor(2) as pool:
        registrar, bank = pool.map(
            lambda role: day.backend.api_key(f"ulsan-{role}-{day.run_id}", role, CITY),
            ("registrar", "bank"),
        )
    _say_terms(day)
    sora, shops = _register(day, registrar)
    day._credit_custody(f"{day.run_id}-ulsan-cashback-budget", CASHBACK_BUDGET, CITY)
    deposit = day._deposit(
        f"{day.run_id}-ulsan-{RESIDENT}", sora.address, CHARGE, city=CITY, bank_key=bank
    )
    balance = _balance(day, sora.address)
    day.say(
        f"{RESIDENT} deposits {CHARGE:,} KRW -> {deposit['status']}: {balance:,} KRW, no discount "
        "at charge (the city pays its incentive on payments)"
    )

    def pay(name: str) -> tuple[str, dict, float]:
        uri = day.http.get(f"/v1/cities/{CITY}/merchants/{shops[name].address}/qr").json()["uri"]
        with WalletClient(day.backend.url, sora, city=CITY) as wallet:
            payment = wallet.pay(uri, PURCHASES[name])
        return name, payment, time.monotonic()

    with ThreadPoolExecutor(len(PURCHASES)) as pool:
        payments = {name: (payment, at) for name, payment, at in pool.map(pay, PURCHASES)}
    earned = {}
    for name, (payment, paid_at) in payments.items():
        earned[name] = _settled(day, payment)
        day.say(
            f"{RESIDENT} -> {name:<17} {PURCHASES[name]:>7,} KRW {payment['status']}; cashback "
            f"{earned[name]['cashback']:,} KRW ({earned[name]['rateBps'] / 100:g}%), settled by "
            f"the backend within {time.monotonic() - paid_at:.1f} s"
        )
    name, value = REFUND
    payment, before = payments[name][0], earned[name]["cashback"]
    with WalletClient(day.backend.url, shops[name], city=CITY) as wallet:
        refund = wallet.refund(payment["payer"], payment["nonce"], value)
    if refund["status"] != "included":
        raise RuntimeError(f"the refund failed: {refund['failureReason']}")
    after = _settled(day, payment)["cashback"]
    day.say(
        f"{name} refunds {value:,} KRW of {RESIDENT}'s {PURCHASES[name]:,}: its cashback "
        f"{before:,} -> {after:,} KRW ({before - after:,} taken back, in proportion)"
    )
    month = day.http.get(f"/v1/cities/{CITY}/accounts/{sora.address}/cashback").json()
    counted, limit = month["incentiveThisMonth"], month["monthlyIncentiveLimit"]
    day.say(
        f"{RESIDENT}'s month: {counted:,} of {limit:,} KRW of incentive, owes {month['debt']:,}; "
        f"balance {_balance(day, sora.address):,} KRW"
    )


def _say_terms(day: Day) -> None:
    terms = day.http.get(f"/v1/cities/{CITY}/cashback").json()
    bands = ", ".join(f"{b['bps'] / 100:g}% up to {b['revenueUpTo']:,}" for b in terms["bands"])
    regions = ", ".join(f"{r['bps'] / 100:g}% in region {r['region']}" for r in terms["regions"])
    how = "as cashback on payments" if terms["mode"] == "cashback" else "as a discount at charge"
    day.say(
        f"Ulsan pays its incentive {how}: {bands} KRW of a merchant's annual revenue; {regions}; "
        f"budget left {terms['budgetLeft']:,} KRW, within {terms['monthlyIncentiveLimit']:,} KRW "
        "of incentive a resident a month"
    )


def _register(day: Day, registrar: str):
    """sora and the two shops, through Ulsan's office API."""
    headers = {"Authorization": f"Bearer {registrar}"}
    sora = day._wallet(f"ulsan-{RESIDENT}")
    shops = {name: day._wallet(f"ulsan-{name}") for name in SHOPS}
    resident = {
        "wallet": sora.address,
        "identityHash": "0x" + keccak(text=f"identity:{day.run_id}:ulsan-{RESIDENT}").hex(),
        "region": JUNG_GU,
    }

    def application(name: str) -> dict:
        category, region, revenue = SHOPS[name]
        with WalletClient(day.backend.url, shops[name], city=CITY) as merchant:
            return merchant.merchant_application(
                business_id_hash=keccak(text=f"business:{day.run_id}:{name}"),
                payout_account_hash=keccak(text=f"bank-account:{day.run_id}:{name}"),
                annual_revenue=revenue,
                category=category,
                region=region,
            )

    registrations = [(f"/v1/cities/{CITY}/residents", resident)] + [
        (f"/v1/cities/{CITY}/merchants", application(name)) for name in SHOPS
    ]
    with ThreadPoolExecutor(len(registrations)) as pool:
        list(pool.map(lambda r: day._office(*r, headers), registrations))
    day.say(f"resident  {RESIDENT:<20} {sora.address} (Jung-gu)")
    for name, wallet in shops.items():
        _, region, revenue = SHOPS[name]
        day.say(f"merchant  {name:<20} {wallet.address} (region {region}, {revenue:,} KRW a year)")
    return sora, shops


def _balance(day: Day, address: str) -> int:
    return day.http.get(f"/v1/cities/{CITY}/accounts/{address}/balance").json()["balance"]


def _settled(day: Day, payment: dict) -> dict:
    return settled_cashback(day.http, CITY, payment)


def settled_cashback(http, city: str, payment: dict, timeout: float = 60) -> dict:
    """The payment's cashback once the backend's worker has settled what the chain counts of it
    now (a refund included)."""
    key = f"{payment['payer']}/{payment['merchant']}/{payment['nonce']}"
    path = f"/v1/cities/{city}/cashback/payments/{key}"
    deadline = time.monotonic() + timeout
    while True:
        found = http.get(path).json()
        if found["unsettled"] == 0 and found["settledBase"] > 0:
            return found
        if time.monotonic() > deadline:
            raise RuntimeError(f"the cashback of {key} was not settled within {timeout} s: {found}")
        time.sleep(0.2)
