"""The steps of the scripted day. Everything a resident, a merchant, a till or the bank does goes
through the backend's HTTP API, the city office's registrations too (its registrar's API key)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
from eth_account import Account
from eth_utils import keccak
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table
from web3 import Web3

from citypay.audit.statutory import statutory_csv
from citypay.authorization import TokenDomain
from citypay.cashout.authorization import cash_out_body
from citypay.chain.deployment import Deployment
from citypay.charging.notifications import sign as sign_deposit
from citypay.day import cashback, gifts, kkang, programs
from citypay.day.processes import ROOT, BackendProcess, SandboxBank
from citypay.wallet.client import WalletClient
from citypay.wallet.sign_in import sign_in

CITY = "gimpo"
CHAIN_ID = 58210
RESTAURANT, BAKERY, BOOKSTORE = 5611, 4721, 4761
REGION = 41570  # 김포시

RESIDENTS = ("minji", "junho", "seoyeon", "dohyun", *kkang.RECRUITS)
MERCHANTS = {
    "Haneul Bakery": BAKERY,
    "Gimpo Noodle House": RESTAURANT,
    "Riverside Books": BOOKSTORE,
    kkang.SHOP: kkang.SHOP_CATEGORY,
}
CARD_PIN = "4826"
# What the city pays into its custody account for the incentive its charges mint (KRW).
INCENTIVE_BUDGET = 200_000
REPORTS = ROOT / "data" / "reports"


class Day:
    def __init__(
        self, backend: BackendProcess, bank: SandboxBank, manifest: Path, *, run: str
    ) -> None:
        self.backend = backend
        self.bank = bank
        self.run_id = run
        self.console = Console()
        self.w3 = Web3(Web3.HTTPProvider(backend.settings.get("RPC_URL", "http://127.0.0.1:8546")))
        self.deployment = Deployment(manifest, self.w3, chain_id=CHAIN_ID)
        self.city = self.deployment.city(CITY)
        self.http = httpx.Client(base_url=backend.url, timeout=60)
        self.secret = backend.settings["BANK_WEBHOOK_SECRET"]
        # Each run has its own people, so a day can run again on the kept chain.
        self.residents = {n: self._wallet(n) for n in RESIDENTS}
        self.merchants = {n: self._wallet(n) for n in MERCHANTS}
        self.names = {w.address: n for n, w in {**self.residents, **self.merchants}.items()}
        self.notes: list[str] = []

    def _wallet(self, name: str):
        return Account.from_key(keccak(text=f"city-day:{self.run_id}:{name}"))

    # --- the day ------------------------------------------------------------------------------

    def run(self) -> None:
        steps = [
            ("API keys for the city's staff, the bank and the tills", self.keys),
            ("The city funds its custody account with the incentive budget", self.fund_custody),
            ("The city office registers residents and merchants", self.register),
            ("The bank notifies deposits: residents are charged", self.charge),
            ("A charge over the monthly limit is refused", self.charge_over_limit),
            ("A card for a resident without a smartphone", self.issue_card),
            ("Payments by static QR, batched by the relayer", self.pay_static_qr),
            ("Payments by invoice QR", self.pay_invoices),
            ("A payment by card at the till", self.pay_by_card),
            ("A merchant refunds part of a payment", self.refund),
            ("A youth allowance (정책발행) paid out from its recipient list", self.allowance),
            ("The allowance where it pays, where it does not, and with general money", self.spend),
            ("A gift between residents (선물하기), and one over the month's cap", self.give),
            ("Cashback on payments in Ulsan (결제 캐시백), less a refund's share", self.cashback),
            ("Merchants cash out to their bank accounts", self.cash_out),
            ("A broker stages 깡 at a shop that sells nothing", lambda: kkang.stage(self)),
            ("The bank's statement of the custody account, on chain", self.prove_reserve),
            ("The half year's statutory report, from the chain alone", self.statutory_report),
            # Last: the chain's clock moves a minute forward.
            ("A short relief program expires: its money goes back to the city", self.expiry),
        ]
        with Progress(
            TextColumn("[bold]{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            console=self.console,
        ) as progress:
            task = progress.add_task("the day", total=len(steps))
            for title, step in steps:
                progress.console.rule(title)
                step()
                progress.advance(task)
        self.summary()

    def say(self, line: str) -> None:
        self.console.print(line)

    def allowance(self) -> None:
        programs.allowance(self)

    def spend(self) -> None:
        programs.spend(self)

    def expiry(self) -> None:
        programs.expiry(self)

    def give(self) -> None:
        gifts.give(self)

    def cashback(self) -> None:
        cashback.pay_with_cashback(self)

    def keys(self) -> None:
        make = self.backend.api_key
        self.operator = make(f"gimpo-office-{self.run_id}", "operator", CITY)
        self.registrar = make(f"gimpo-registrar-{self.run_id}", "registrar", CITY)
        self.bank_key = make(f"nonghyup-{self.run_id}", "bank", CITY)
        self.pos = make(f"till-{self.run_id}", "pos", CITY)
        self.auditor = make(f"gimpo-audit-{self.run_id}", "auditor", CITY)
        self.say(
            "operator, registrar, bank, till and auditor keys created "
            "(python -m citypay.auth create ...)"
        )

    def register(self) -> None:
        """Through the city office's API with the registrar's key, as the office's staff would;
        each merchant's application carries its own payout-account signature."""
        headers = {"Authorization": f"Bearer {self.registrar}"}
        for name, wallet in self.residents.items():
            body = {
                "wallet": wallet.address,
                "identityHash": "0x" + keccak(text=f"identity:{self.run_id}:{name}").hex(),
                "region": REGION,
            }
            self._office(f"/v1/cities/{CITY}/residents", body, headers)
            self.say(f"resident  {name:<20} {wallet.address}")
        for name, wallet in self.merchants.items():
            with WalletClient(self.backend.url, wallet, city=CITY) as merchant:
                body = merchant.merchant_application(
                    business_id_hash=keccak(text=f"business:{self.run_id}:{name}"),
                    payout_account_hash=keccak(text=f"bank-account:{self.run_id}:{name}"),
                    annual_revenue=250_000_000,
                    category=MERCHANTS[name],
                    region=REGION,
                )
            self._office(f"/v1/cities/{CITY}/merchants", body, headers)
            self.say(f"merchant  {name:<20} {wallet.address}")

    def _office(self, path: str, body: dict, headers: dict) -> dict:
        response = self.http.post(path, json=body, headers=headers)
        if response.status_code != 201:
            raise RuntimeError(f"the office's POST {path} answered {response.text}")
        return response.json()

    def _credit_custody(self, reference: str, amount: int, city: str = CITY) -> None:
        """The KRW reaching the city's custody account at the bank (the sandbox's books)."""
        account = self.deployment.city(city).custody_account
        response = httpx.post(
            f"{self.bank.url}/custody/{account}/credits",
            json={"reference": reference, "amount": amount},
            timeout=10,
        )
        response.raise_for_status()

    def fund_custody(self) -> None:
        """The tokens a charge mints include the city's incentive, whose KRW the city pays in."""
        self._credit_custody(f"{self.run_id}-incentive-budget", INCENTIVE_BUDGET)
        self.say(
            f"the city pays {INCENTIVE_BUDGET:,} KRW of incentive budget into its custody account "
            f"{self.city.custody_account}"
        )

    def prove_reserve(self) -> None:
        """An operator asks for the bank's signed statement; the backend records it on chain and
        the books set it against what the city owed at its time."""
        headers = {"Authorization": f"Bearer {self.operator}"}
        path = f"/v1/cities/{CITY}/reserve-statements"
        recorded = self.http.post(path, headers=headers)
        if recorded.status_code != 201:
            raise RuntimeError(f"the reserve statement was not recorded: {recorded.text}")
        done = recorded.json()
        deadline = time.monotonic() + 30
        while True:
            found = self.http.get(path).json()["statements"]
            latest = next((s for s in found if s["tx_hash"] == done["transactionHash"]), None)
            if latest is not None or time.monotonic() > deadline:
                break
            time.sleep(0.3)
        if latest is None:
            raise RuntimeError("the listener did not read the recorded statement within 30 s")
        self.reserve = latest
        self.say(
            f"the bank signs {done['balance']:,} KRW in {done['account']} "
            f"(key {done['signer']}); recorded in block {done['blockNumber']:,} beside a supply "
            f"of {done['outstanding']:,}"
        )
        self.say(
            f"owed at the statement's time {latest['owed']:,} KRW (supply plus pending payouts): "
            f"margin {latest['margin']:+,} KRW, signature verified: {latest['verified']}"
        )

    def statutory_report(self) -> None:
        """What the city reports to the ministry for this half year, by the auditor's command
        from the chain alone; its CSV (Excel, Hangul) under data/reports/."""
        moment = datetime.now(UTC) + timedelta(hours=9)
        period = f"{moment.year}H{1 if moment.month <= 6 else 2}"
        directory = self.deployment.directory.address
        command = [
            sys.executable, "-m", "citypay.audit", "report",
            "--rpc-url", self.backend.settings["RPC_URL"], "--directory", directory,
            "--period", period, "--city", CITY,
        ]  # fmt: skip
        done = subprocess.run(
            [*command, "--format", "json"],
            env=self.backend.environment(),
            capture_output=True,
            timeout=300,
        )
        if done.returncode != 0:
            raise RuntimeError(f"the statutory report failed: {done.stderr.decode()}")
        document = json.loads(done.stdout)
        figures = document["cities"][CITY]["figures"]
        csv_file = REPORTS / f"{CITY}-{period}.csv"
        csv_file.parent.mkdir(parents=True, exist_ok=True)
        # What `--format csv` writes, from the same report: the chain is read once.
        csv_file.write_text(statutory_csv(document), encoding="utf-8")
        self.say(
            f"{period}: general issue {figures['general_issued']:,} KRW (sales "
            f"{figures['sales']:,}, incentive {figures['incentive']:,}), {figures['payments']:,} "
            f"payments of {figures['paid']:,} KRW, cash-outs paid {figures['cash_outs_paid']:,} "
            f"KRW, outstanding {figures['outstanding_at_end']:,} KRW, merchants revoked "
            f"{figures['merchants_revoked']} ({figures['merchants_revoked_illegal']} for illegal "
            f"exchange), {figures['active_payers']} residents paid"
        )
        shown = " ".join([".venv-backend/bin/python", *command[1:], "--format", "csv"])
        self.say(f"as a spreadsheet: {csv_file.relative_to(ROOT)}, by {shown}")

    def _deposit(
        self, deposit_id: str, resident: str, amount: int, *, city: str = CITY, bank_key: str = ""
    ) -> dict:
        """The bank's signed notification of a deposit (Gimpo's bank but for `city`'s, whose
        `bank_key` is given)."""
        body = json.dumps(
            {"depositId": deposit_id, "resident": resident, "amount": amount}
        ).encode()
        timestamp = int(time.time())
        response = self.http.post(
            f"/v1/cities/{city}/deposits",
            content=body,
            headers={
                "Authorization": f"Bearer {bank_key or self.bank_key}",
                "Content-Type": "application/json",
                "X-Citypay-Timestamp": str(timestamp),
                "X-Citypay-Signature": sign_deposit(self.secret, timestamp, body),
            },
        )
        if response.status_code >= 400:
            raise RuntimeError(f"deposit {deposit_id} refused: {response.text}")
        deposit = response.json()
        if deposit["status"] != "refused":  # a refused one the bank sends back
            self._credit_custody(deposit_id, amount, city)
        return deposit

    def charge(self) -> None:
        amounts = {"minji": 200_000, "junho": 150_000, "seoyeon": 100_000, "dohyun": 300_000}
        for name, amount in amounts.items():
            deposit = self._deposit(f"{self.run_id}-{name}", self.residents[name].address, amount)
            self.say(
                f"{name:<10} deposit {amount:>9,} KRW -> {deposit['status']}, "
                f"incentive {deposit.get('incentive') or 0:,} KRW"
            )
        again = self._deposit(
            f"{self.run_id}-minji", self.residents["minji"].address, amounts["minji"]
        )
        self.say(f"the bank retries minji's deposit: {again['status']}, minted once")

    def charge_over_limit(self) -> None:
        deposit = self._deposit(
            f"{self.run_id}-dohyun-2", self.residents["dohyun"].address, 600_000
        )
        self.say(
            f"dohyun deposits 600,000 KRW more: {deposit['status']} ({deposit['refusal']}); "
            "listed for the bank to return"
        )

    def issue_card(self) -> None:
        response = self.http.post(
            f"/v1/cities/{CITY}/cards",
            json={
                "pin": CARD_PIN,
                "identityHash": "0x" + keccak(text=f"identity:{self.run_id}:grandma").hex(),
                "region": REGION,
            },
            headers={"Authorization": f"Bearer {self.operator}"},
        )
        if response.status_code != 201:
            raise RuntimeError(f"card refused: {response.text}")
        self.card = response.json()
        self.names[self.card["wallet"]] = "card holder"
        self._deposit(f"{self.run_id}-card", self.card["wallet"], 50_000)
        self.say(f"card {self.card['number']} for wallet {self.card['wallet']}, charged 50,000 KRW")

    def _qr(self, merchant: str) -> str:
        address = self.merchants[merchant].address
        return self.http.get(f"/v1/cities/{CITY}/merchants/{address}/qr").json()["uri"]

    def pay_static_qr(self) -> None:
        purchases = [
            ("minji", "Haneul Bakery", 6_500),
            ("junho", "Gimpo Noodle House", 9_000),
            ("seoyeon", "Riverside Books", 18_000),
            ("dohyun", "Gimpo Noodle House", 12_000),
            ("minji", "Riverside Books", 22_000),
            ("junho", "Haneul Bakery", 4_200),
        ]

        def pay(purchase):
            payer, merchant, amount = purchase
            wallet = WalletClient(self.backend.url, self.residents[payer], city=CITY)
            with wallet:
                return purchase, wallet.pay(self._qr(merchant), amount)

        with ThreadPoolExecutor(len(purchases)) as pool:
            results = list(pool.map(pay, purchases))
        self.payments = {}
        for (payer, merchant, amount), payment in results:
            self.payments[(payer, merchant)] = payment
            self.say(
                f"{payer:<10} -> {merchant:<20} {amount:>7,} KRW  {payment['status']} in block "
                f"{payment['blockNumber']}"
            )
        blocks = {p["blockNumber"] for _, p in results}
        self.say(f"{len(results)} payments settled in {len(blocks)} relayer transaction(s)")

    def pay_invoices(self) -> None:
        for payer, merchant, amount in (("seoyeon", "Haneul Bakery", 7_800),):
            invoice = self.http.post(
                f"/v1/cities/{CITY}/invoices",
                json={"merchant": self.merchants[merchant].address, "amount": amount},
                headers={"Authorization": f"Bearer {self.pos}"},
            ).json()
            with WalletClient(self.backend.url, self.residents[payer], city=CITY) as wallet:
                payment = wallet.pay(invoice["uri"])
            self.say(
                f"{merchant} shows an invoice QR for {amount:,} KRW; {payer} pays it: "
                f"{payment['status']} (invoice {invoice['invoiceId'][:10]}...)"
            )

    def pay_by_card(self) -> None:
        merchant = self.merchants["Gimpo Noodle House"].address
        wrong = self.http.post(
            f"/v1/cities/{CITY}/card-payments",
            json={
                "card": self.card["number"],
                "pin": "0000",
                "merchant": merchant,
                "amount": 8_000,
            },
            headers={"Authorization": f"Bearer {self.pos}"},
        )
        self.say(f"a wrong PIN: {wrong.status_code} {wrong.json()['error']['message']}")
        accepted = self.http.post(
            f"/v1/cities/{CITY}/card-payments",
            json={
                "card": self.card["number"],
                "pin": CARD_PIN,
                "merchant": merchant,
                "amount": 8_000,
            },
            headers={"Authorization": f"Bearer {self.pos}"},
        )
        if accepted.status_code != 202:
            raise RuntimeError(f"card payment refused: {accepted.text}")
        with WalletClient(self.backend.url, Account.create(), city=CITY) as reader:
            payment = reader.wait(accepted.json())
        self.say(f"the card pays Gimpo Noodle House 8,000 KRW: {payment['status']}")

    def refund(self) -> None:
        # The shop's phone sends no transaction (a permissioned network admits only the
        # platform's accounts): it signs the refund, and the backend's relayer sends it.
        payment = self.payments[("junho", "Gimpo Noodle House")]
        shop = self.merchants["Gimpo Noodle House"]
        with WalletClient(self.backend.url, shop, city=CITY) as wallet:
            refund = wallet.refund(payment["payer"], payment["nonce"], 3_000)
        if refund["status"] != "included":
            raise RuntimeError(f"the refund failed: {refund['failureReason']}")
        self.say(
            "Gimpo Noodle House refunds junho 3,000 KRW of his 9,000 KRW noodles: signed on the "
            f"shop's phone, relayed, included in block {refund['blockNumber']}"
        )

    def cash_out(self) -> None:
        for name, bank_fails in (("Haneul Bakery", False), ("Riverside Books", True)):
            # The bank refuses one transfer (a closed account, say): its tokens come back.
            self.bank.faults(fail_next=1 if bank_fails else 0)
            cash_out = self.cash_out_balance(name)
            self.say(
                f"{name:<20} cashes out {cash_out['amount']:>8,} KRW: {cash_out['status']}"
                + (
                    f", bank reference {cash_out['bankReference']}"
                    if cash_out["bankReference"]
                    else ""
                )
            )

    def cash_out_balance(self, name: str) -> dict:
        """The merchant signs a cash-out of its whole balance; returns it settled or returned."""
        domain = self.http.get(f"/v1/cities/{CITY}/cashout-domain").json()
        merchant = self.merchants[name]
        payout = self.http.get(
            f"/v1/cities/{CITY}/merchants/{merchant.address}/payout-account"
        ).json()
        body = cash_out_body(
            merchant.key,
            TokenDomain.from_dict(domain),
            amount=self.city.chain.token.call("balanceOf", merchant.address),
            payout_account_hash=bytes.fromhex(payout["payoutAccountHash"][2:]),
            valid_before=int(time.time()) + 600,
            nonce=os.urandom(32),
        )
        session = sign_in(self.http, merchant)
        response = self.http.post(
            f"/v1/cities/{CITY}/merchants/{merchant.address}/cashouts",
            json=body,
            headers={"Authorization": f"Bearer {session}"},
        )
        if response.status_code >= 400:
            raise RuntimeError(f"cash-out refused: {response.text}")
        return self._wait_cash_out(response.json(), session)

    def _wait_cash_out(self, cash_out: dict, session: str, timeout: float = 60) -> dict:
        path = f"/v1/cities/{CITY}/merchants/{cash_out['merchant']}/cashouts/{cash_out['id']}"
        deadline = time.monotonic() + timeout
        while cash_out["status"] not in ("settled", "returned"):
            if time.monotonic() > deadline:
                raise RuntimeError(f"cash-out {cash_out['id']} still {cash_out['status']}")
            time.sleep(0.3)
            cash_out = self.http.get(path, headers={"Authorization": f"Bearer {session}"}).json()
        return cash_out

    # --- the closing summary -------------------------------------------------------------------

    def summary(self) -> None:
        token, treasury = self.city.chain.token, self.city.chain.treasury
        table = Table(title=f"{self.city.name}: balances at the end of the day")
        table.add_column("wallet")
        table.add_column("address")
        table.add_column("balance (KRW)", justify="right")
        table.add_column("general", justify="right")
        table.add_column("programs", justify="right")
        classes = self.deployment.gateway.contract(self.city.programs.address, "programs")
        count = len(self.names)
        *read, supply, totals, program_count = self.deployment.gateway.read_many(
            [
                *((token, "balanceOf", (address,)) for address in self.names),
                *((classes, "generalBalanceOf", (address,)) for address in self.names),
                *((classes, "programMoneyOf", (address,)) for address in self.names),
                (token, "totalSupply", ()),
                (treasury, "totals", ()),
                (classes, "programCount", ()),
            ]
        )
        balances, general, program_money = read[:count], read[count : 2 * count], read[2 * count :]
        for (address, name), balance, in_general, in_programs in zip(
            self.names.items(), balances, general, program_money, strict=True
        ):
            table.add_row(name, address, f"{balance:,}", f"{in_general:,}", f"{in_programs:,}")
        self.console.print(table)
        records = self.deployment.gateway.read_many(
            [(classes, "program", (n,)) for n in range(1, program_count + 1)]
        )
        paid_out = sum(r.paidOut for r in records)
        expired = sum(r.expired for r in records)
        difference = supply - (totals.issued - totals.burned + totals.returned + paid_out - expired)
        assert difference == 0, "supply != issued - burned + returned + paid out - expired"
        self.console.print(
            f"supply {supply:,} KRW == issued {totals.issued:,} (incentive {totals.incentive:,}) "
            f"- burned {totals.burned:,} + returned {totals.returned:,} + paid out by programs "
            f"{paid_out:,} - expired {expired:,}: checked on chain"
        )
        refused = self.http.get(
            f"/v1/cities/{CITY}/deposits",
            params={"status": "refused"},
            headers={"Authorization": f"Bearer {self.operator}"},
        ).json()
        self.console.print(f"deposits refused and listed for return: {len(refused)}")
        kkang.report(self)
        self.console.print(
            f"proof of reserve: the bank's statement {self.reserve['balance']:,} KRW against "
            f"{self.reserve['owed']:,} KRW owed, margin {self.reserve['margin']:+,} KRW"
        )
        self.console.print(
            f"admin dashboard (관리자모드): {self.backend.url}/admin/{CITY}, "
            f"signed in with the office's operator key {self.operator}"
        )
