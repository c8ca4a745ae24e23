"""The money classes under random operations: programs created, funded, paid out (and paid again),
closed; residents charging, paying at merchants of every kind (plain transfers and invoices),
refunded, sweeping, refunding their general money; roles lost and regained; time passing over
program and general expiries. After every step, what users depend on:

- each resident's breakdown (general money by expiry, each program's money, expired money) adds
  up to its balance;
- a program never pays out more than it was funded, nor is funded over its budget, and its money
  outstanding (paid out - spent + refunded - expired) is exactly what residents hold of it;
- the supply is what the treasury issued less what it burned plus what it restored, plus what the
  programs paid out, less what expired or was returned to the city;
- every payment went through exactly when `canTransfer` said it would, took no program money
  outside the program's categories, regions, revenue cap and window, and left nothing expired
  with its payer (expired money is swept before anything is spent);
- a recipient is paid once per program;
- a gift (the giver's own or relayed from its signature) went through exactly when
  `giftRefusal` said it would, moved exactly its value, never moved expired money, left the
  receiver's general money in order of expiry (its own expired money stays until its next
  payment or sweep), and no month's gifts passed the caps;
- cashback (the city switching between discount and cashback, its rates and budget changing):
  a payment settled by the cashback payer went through exactly when `settleRefusal` said it
  would and earned exactly its rate on the general money added since its last settlement, cut to
  the budget, the resident's debt first and the treasury's limits; a refund's settlement, by
  anyone, took back its share; no payment was paid more than its rate on its general money, nor
  twice for the same money; the cashback minted and the reversals burned are what the treasury
  counted as incentive and clawed back, each resident's debt is what was reversed and not burned
  less what later cashback paid off, and the budget is what was set less what was paid plus what
  was taken back.
"""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path

import brownie
import pytest
from brownie import CityCashback, CityGifts, CityPrograms, accounts, chain, web3
from brownie.exceptions import VirtualMachineError
from brownie.test import state_machine, strategy
from citypay.authorization import (
    GIFT_AUTHORIZATION,
    TokenDomain,
    sign_authorization,
    sign_gift_cancellation,
)
from eth_utils import keccak
from hexbytes import HexBytes
from hypothesis import event

from scripts.city_suite import GIMPO

from .conftest import BAKERY, BOOKSTORE, GONGJU, RESTAURANT, wallet
from .conftest import GIMPO as GIMPO_REGION

DAY = 86_400
RESIDENTS = 4
# (category, region, annual revenue): a restaurant and a bakery in Gimpo, a bookstore in Gongju,
# and a big store above the general revenue cap.
MERCHANTS = (
    (RESTAURANT, GIMPO_REGION, 300_000_000),
    (BAKERY, GIMPO_REGION, 300_000_000),
    (BOOKSTORE, GONGJU, 300_000_000),
    (RESTAURANT, GIMPO_REGION, 1_000_000_000),
)
GENERAL_CAP = 500_000_000
# (categories, regions, revenue cap, days to expiry, days before spending starts)
PROGRAM_TERMS = (
    ((RESTAURANT, BAKERY), (GIMPO_REGION,), 2**64 - 1, 40, 0),
    ((), (), 2**64 - 1, 10, 0),
    ((BOOKSTORE,), (), 500_000_000, 90, 0),
    ((), (GIMPO_REGION,), 500_000_000, 60, 5),
)
DURATIONS = (3_600, DAY, 4 * DAY, 16 * DAY)
AMOUNTS = (1, 5_000, 20_000, 60_000)
# (send, receive) caps a month the city's admin moves between.
GIFT_CAPS = ((500_000, 1_500_000), (30_000, 50_000), (0, 0))
ZERO_ID = b"\x00" * 32
MAX_BPS = 10_000
DISCOUNT, CASHBACK = 0, 1
# The city's cashback terms its admin moves between: (bands, regions). The first: 10% at the
# small shops, 5% up to 500 million, 15% in Gongju, nothing for the big store.
CASHBACK_TERMS = (
    (((300_000_000, 1_000), (500_000_000, 500)), ((GONGJU, 1_500),)),
    (((100_000_000, 3_000),), ()),
    ((), ()),
    (((2**64 - 1, 3_000),), ((GIMPO_REGION, 100),)),
)
REFUSED_TERMS = (
    (((300_000_000, 3_001),), ()),
    (((300_000_000, 1_000), (300_000_000, 500)), ()),
    ((), ((GONGJU, 3_001),)),
)
CASHBACK_BUDGETS = (10**9, 5_000, 0)
# Low enough that a few payments reach it (a discount charge of 120,000 takes 12,000 of it).
MONTHLY_INCENTIVE_LIMIT = 20_000


def _events(tx, name):
    return list(tx.events[name]) if name in tx.events else []


class ClassesMachine:
    st_resident = strategy("uint8", max_value=RESIDENTS - 1)
    st_merchant = strategy("uint8", max_value=len(MERCHANTS) - 1)
    st_terms = strategy("uint8", max_value=len(PROGRAM_TERMS) - 1)
    st_amount = strategy("uint8", max_value=len(AMOUNTS) - 1)
    st_pct = strategy("uint8", min_value=1, max_value=100)
    st_duration = strategy("uint8", max_value=len(DURATIONS) - 1)
    st_choice = strategy("uint8")
    st_choices = strategy("uint8[]", min_length=1, max_length=4)
    st_flag = strategy("bool")

    def __init__(cls, suite, roles):
        cls.token, cls.registry, cls.treasury = suite.token, suite.registry, suite.treasury
        cls.programs, cls.gifts = suite.programs, suite.gifts
        _, name, version, chain_id, contract, _, _ = cls.gifts.eip712Domain()
        cls.gifts_domain = TokenDomain(name, version, chain_id, contract)
        cls.roles = roles
        admin = roles["city_admin"]
        for role in ("PROGRAM_MANAGER_ROLE", "PROGRAM_FUNDER_ROLE", "PROGRAM_PAYER_ROLE"):
            cls.programs.grantRole(getattr(cls.programs, role)(), roles[role]["from"], admin)
        cls.registry.setGeneralRevenueCap(GENERAL_CAP, admin)
        cls.residents = [wallet(f"machine-resident-{i}") for i in range(RESIDENTS)]
        cls.merchants = [wallet(f"machine-merchant-{i}") for i in range(len(MERCHANTS))]
        for resident in cls.residents:
            cls.registry.registerResident(
                resident, keccak(text=f"id:{resident.address}"), GIMPO_REGION, roles["registrar"]
            )
            cls.treasury.issue(resident, 100_000, keccak(text=resident.address), roles["issuer"])
        for merchant, (category, region, revenue) in zip(cls.merchants, MERCHANTS, strict=True):
            roles["register_merchant"](merchant, category=category, revenue=revenue, region=region)
        cls.merchant_index = {m.address: i for i, m in enumerate(cls.merchants)}
        # The residents were charged with the discount; from here the city pays cashback.
        cls.cashback = CityCashback.at(cls.treasury.cashback())
        cls.cashback_payer = roles["CASHBACK_PAYER_ROLE"]
        cls.cashback.grantRole(
            cls.cashback.CASHBACK_PAYER_ROLE(), cls.cashback_payer["from"], admin
        )
        cls.cashback.setTerms(*CASHBACK_TERMS[0], admin)
        cls.cashback.setBudget(CASHBACK_BUDGETS[0], admin)
        cls.treasury.setMonthlyIncentiveLimit(MONTHLY_INCENTIVE_LIMIT, admin)
        cls.treasury.setIncentiveMode(CASHBACK, admin)
        cls.totals_before = cls.treasury.totals()

    def setup(self):
        self.program_ids: list[int] = []
        self.payments: list[tuple] = []
        self.paid: set[tuple[int, str]] = set()
        self.general_expired = 0
        self.invoices = 0
        self.gift_caps = GIFT_CAPS[0]
        self.gifts.setMonthlyCaps(*self.gift_caps, self.roles["city_admin"])
        # Cashback as the treasury and the events tell it, from the snapshot on.
        self.incentive_mode = CASHBACK
        self.cashback_terms = CASHBACK_TERMS[0]
        self.budget = CASHBACK_BUDGETS[0]
        self.charge_incentive = 0
        self.refund_clawed_back = 0
        self.cashback_minted = 0
        self.cashback_burned = 0
        self.debts = {resident.address: 0 for resident in self.residents}
        # By payment key: [general money settled, cashback paid on it, highest rate it earned].
        self.claims: dict[tuple, list[int]] = {}

    # --- Rules ----------------------------------------------------------------------------------

    def rule_charge(self, who="st_resident", amount="st_amount"):
        resident = self.residents[who]
        reference = keccak(text=f"machine-deposit:{chain.time()}:{who}:{amount}")
        tx = self._try(
            self.treasury.issue, resident, AMOUNTS[amount] * 2, reference, self.roles["issuer"]
        )
        if tx is not None:
            assert self.incentive_mode == DISCOUNT or tx.events["Issued"]["incentive"] == 0
            self.charge_incentive += tx.events["Issued"]["incentive"]

    def rule_create_program(self, which="st_terms", fund="st_flag"):
        categories, regions, cap, days, delay = PROGRAM_TERMS[which]
        now = web3.eth.get_block("latest").timestamp
        code = keccak(text=f"machine-program:{len(self.program_ids)}:{now}")
        terms = (
            code,
            300_000,
            60_000,
            now + delay * DAY,
            now + days * DAY,
            cap,
            categories,
            regions,
        )
        tx = self._try(self.programs.createProgram, terms, self.roles["PROGRAM_MANAGER_ROLE"])
        program_id = tx.return_value
        self.program_ids.append(program_id)
        if fund:
            self.rule_fund_program(len(self.program_ids) - 1, 3)

    def rule_fund_program(self, choice="st_choice", amount="st_amount"):
        if not self.program_ids:
            return
        program_id = self.program_ids[choice % len(self.program_ids)]
        self._try(
            self.programs.fundProgram,
            program_id,
            AMOUNTS[amount] * 5,
            keccak(text=f"machine-budget:{program_id}:{chain.time()}:{amount}"),
            self.roles["PROGRAM_FUNDER_ROLE"],
        )

    def rule_pay_out(self, choice="st_choice", amount="st_amount", first="st_resident"):
        if not self.program_ids:
            return
        program_id = self.program_ids[choice % len(self.program_ids)]
        recipients = [*self.residents[first:], self.merchants[0]]
        payouts = [(r, AMOUNTS[amount]) for r in recipients]
        tx = self._try(self.programs.payOut, program_id, payouts, self.roles["PROGRAM_PAYER_ROLE"])
        if tx is None:
            return
        for paid in _events(tx, "ProgramPaid"):
            key = (program_id, paid["recipient"])
            assert key not in self.paid, f"{key} paid twice"
            self.paid.add(key)

    def rule_close_program(self, choice="st_choice"):
        if self.program_ids:
            program_id = self.program_ids[choice % len(self.program_ids)]
            self._try(self.programs.closeProgram, program_id, self.roles["PROGRAM_MANAGER_ROLE"])

    def rule_pay(
        self,
        who="st_resident",
        where="st_merchant",
        pct="st_pct",
        plain="st_flag",
        settle="st_flag",
    ):
        payer, merchant = self.residents[who], self.merchants[where]
        value = max(1, self.token.balanceOf(payer) * pct // 100)
        expected = self.token.canTransfer(payer, merchant, value)
        self.invoices += 1
        invoice = ZERO_ID if plain else keccak(text=f"machine-invoice:{self.invoices}")
        if plain:
            tx = self._try(self.token.transfer, merchant, value, {"from": payer})
        else:
            tx = self._try(self.token.pay, merchant, value, invoice, {"from": payer})
        assert (tx is not None) == expected, f"canTransfer said {expected}"
        if tx is None:
            return
        self.payments.append((payer, merchant, invoice))
        category, region, revenue = MERCHANTS[where]
        for spent in _events(tx, "ProgramSpent"):
            record = self.programs.program(spent["program"]).dict()
            assert record["spendFrom"] <= tx.timestamp < record["expiry"]
            assert self.programs.isEligible(spent["program"], category, region, revenue)
        assert self.programs.expiredOf(payer) == 0
        self._count_expired(tx)
        if settle:
            # The backend settles each payment it sees as it is made.
            self._settle(payer, merchant, invoice, self.cashback_payer)

    def rule_refund(self, choice="st_choice", pct="st_pct", settle="st_flag"):
        if not self.payments:
            return
        payer, merchant, invoice = self.payments[choice % len(self.payments)]
        refundable = self.token.refundableAmount(payer, merchant, invoice)
        value = max(1, refundable * pct // 100)
        tx = self._try(self.token.refund, payer, invoice, value, {"from": merchant})
        if tx is not None:
            self._count_expired(tx)
            if settle:
                # Anyone may take the refund's cashback back: here the merchant.
                self._settle(payer, merchant, invoice, {"from": merchant})

    def rule_sweep(self, who="st_resident"):
        tx = self._try(self.token.sweep, self.residents[who], {"from": self.merchants[0]})
        if tx is not None:
            assert self.programs.expiredOf(self.residents[who]) == 0
            self._count_expired(tx)

    def rule_resident_refund(self, who="st_resident"):
        resident = self.residents[who]
        program_money = self.programs.programMoneyOf(resident)
        tx = self._try(self.treasury.requestResidentRefund, keccak(text="bank"), {"from": resident})
        if tx is not None:
            self._count_expired(tx)
            requested = tx.events["RedemptionRequested"]
            self.refund_clawed_back += requested["burned"] - requested["payout"]
            assert self.token.balanceOf(resident) == self.programs.programMoneyOf(resident)
            assert self.programs.programMoneyOf(resident) <= program_money

    def rule_gift(self, who="st_resident", to="st_resident", amount="st_amount", relayed="st_flag"):
        giver, receiver = self.residents[who], self.residents[to]
        value = AMOUNTS[amount]
        before = (self.token.balanceOf(giver), self.token.balanceOf(receiver))
        expired = (self.programs.expiredOf(giver), self.programs.expiredOf(receiver))
        refusal = self.gifts.giftRefusal(giver, receiver, value)
        bought = self._bought_with_krw(giver)
        if relayed:
            now = web3.eth.get_block("latest").timestamp
            signed = sign_authorization(
                giver.private_key, self.gifts_domain, to=receiver.address, value=value,
                valid_after=now - 60, valid_before=now + 3_600, primary_type=GIFT_AUTHORIZATION,
            )  # fmt: skip
            tx = self._try(
                self.gifts.giftWithAuthorization, giver, receiver, value, signed.valid_after,
                signed.valid_before, signed.nonce, signed.signature, {"from": self.merchants[0]},
            )  # fmt: skip
        else:
            tx = self._try(self.gifts.gift, receiver, value, {"from": giver})
        assert (tx is not None) == (refusal == "0x"), (refusal, who, to, value)
        if tx is None:
            return
        self._count_expired(tx)
        # Never incentive, policy or expired money: at most what the giver bought with KRW.
        assert value <= bought, (value, bought)
        assert self.token.balanceOf(giver) == before[0] - value - expired[0]
        assert self.programs.expiredOf(giver) == 0
        # The receiver's own expired money stays, before the gift's parts, until its next
        # payment or sweep.
        assert self.token.balanceOf(receiver) == before[1] + value
        assert self.programs.expiredOf(receiver) == expired[1]
        expiries = [h[1] for h in self.programs.breakdownOf(receiver)[0] if h[0] == 0]
        assert expiries == sorted(expiries) and len(set(expiries)) == len(expiries)
        assert self.gifts.giftTallyOf(giver)["sent"] <= self.gift_caps[0]
        assert self.gifts.giftTallyOf(receiver)["received"] <= self.gift_caps[1]

    def rule_cancel_gift(self, who="st_resident", amount="st_amount"):
        """A signed gift canceled by its giver is never relayed."""
        giver, receiver = self.residents[who], self.residents[(who + 1) % RESIDENTS]
        now = web3.eth.get_block("latest").timestamp
        signed = sign_authorization(
            giver.private_key, self.gifts_domain, to=receiver.address, value=AMOUNTS[amount],
            valid_after=now - 60, valid_before=now + 3_600, primary_type=GIFT_AUTHORIZATION,
        )  # fmt: skip
        cancellation = sign_gift_cancellation(giver.private_key, self.gifts_domain, signed.nonce)
        self.gifts.cancelGiftAuthorization(giver, signed.nonce, cancellation, {"from": receiver})
        with brownie.reverts():
            self.gifts.giftWithAuthorization(
                giver, receiver, signed.value, signed.valid_after, signed.valid_before,
                signed.nonce, signed.signature, {"from": receiver},
            )  # fmt: skip

    def rule_gift_caps(self, choice="st_choice", delegate="st_flag"):
        """The city's admin (or an admin it names, then drops) moves the monthly caps."""
        admin = self.roles["city_admin"]
        caps = GIFT_CAPS[choice % len(GIFT_CAPS)]
        role = self.gifts.DEFAULT_ADMIN_ROLE()
        if delegate:
            deputy = self.merchants[1]
            self.gifts.grantRole(role, deputy, admin)
            self.gifts.setMonthlyCaps(*caps, {"from": deputy})
            if choice % 2:
                self.gifts.renounceRole(role, deputy, {"from": deputy})
            else:
                self.gifts.revokeRole(role, deputy, admin)
        else:
            self.gifts.setMonthlyCaps(*caps, admin)
        with brownie.reverts():
            self.gifts.setMonthlyCaps(10**9, 10**9, {"from": self.merchants[1]})
        self.gift_caps = caps

    def rule_settle_cashback(self, choice="st_choice"):
        """The backend settles a payment: paid, taken back or nothing, as the chain counts it."""
        if self.payments:
            payment = self.payments[choice % len(self.payments)]
            self._settle(*payment, self.cashback_payer)

    def rule_settle_refund(self, choice="st_choice", who="st_resident"):
        """Anyone settles a payment: a refund's share is taken back, a payment is not paid."""
        if self.payments:
            payment = self.payments[choice % len(self.payments)]
            self._settle(*payment, {"from": self.residents[who]})

    def rule_spend_before_a_refund_is_settled(self, choice="st_choice", where="st_merchant"):
        """A payment that earned cashback is refunded, and the resident spends what it holds
        before anyone settles the refund: what its general money no longer covers is owed."""
        earned = [p for p in self.payments if self.claims.get(self._key(p), (0, 0))[1]]
        if not earned:
            return
        payer, merchant, invoice = earned[choice % len(earned)]
        refundable = self.token.refundableAmount(payer, merchant, invoice)
        tx = self._try(self.token.refund, payer, invoice, refundable, {"from": merchant})
        if tx is None:
            return
        self._count_expired(tx)
        shop = self.merchants[where]
        balance = self.token.balanceOf(payer)
        if self.token.canTransfer(payer, shop, balance):
            self._count_expired(self.token.transfer(shop, balance, {"from": payer}))
            self.payments.append((payer, shop, ZERO_ID))
        self._settle(payer, merchant, invoice, {"from": shop})

    def rule_settle_cashback_batch(self, choices="st_choices"):
        """The backend's batch: refused payments are evented, the others settled in order."""
        if not self.payments:
            return
        entries = [self.payments[c % len(self.payments)] for c in choices]
        refused = []
        # A payment the batch refuses is left as it was, so it is refused again further on.
        for payer, merchant, invoice in entries:
            base, (settled, _) = self.cashback.settlementOf(payer, merchant, invoice)
            refusal = self.cashback.settleRefusal(payer, merchant, invoice)
            if base > settled and refusal != "0x":
                refused.append((payer.address, merchant.address, HexBytes(invoice), refusal))
        tx = self.cashback.settleBatch(entries, self.cashback_payer)
        assert tx.return_value == len(entries) - len(refused)
        events = _events(tx, "CashbackRefused")
        assert [
            (e["payer"], e["merchant"], HexBytes(e["paymentId"]), e["reason"]) for e in events
        ] == refused
        self._record_cashback(tx, entries)

    def rule_cashback_baseline(self, choices="st_choices"):
        """The backend counts payments' general money as settled without paying it (plain
        transfers made before the city went to cashback): only ever up, never past a refund."""
        if not self.payments:
            return
        entries = [self.payments[c % len(self.payments)] for c in choices]
        moving = set()
        for payment in entries:
            base, (settled, _) = self.cashback.settlementOf(*payment)
            if base > settled:
                moving.add(self._key(payment))
        tx = self.cashback.baseline(entries, self.cashback_payer)
        assert tx.return_value == len(moving)
        assert {self._key(e) for e in _events(tx, "CashbackBaselined")} == moving
        self._record_cashback(tx, entries)

    def rule_cashback_terms(self, choice="st_choice", refused="st_flag"):
        """The admin changes the rates; rates out of bounds are refused and change nothing."""
        admin = self.roles["city_admin"]
        if refused:
            with brownie.reverts():
                self.cashback.setTerms(*REFUSED_TERMS[choice % len(REFUSED_TERMS)], admin)
        else:
            self.cashback_terms = CASHBACK_TERMS[choice % len(CASHBACK_TERMS)]
            self.cashback.setTerms(*self.cashback_terms, admin)
        for index, merchant in enumerate(self.merchants):
            assert self.cashback.rateOf(merchant) == self._rate(index)

    def rule_cashback_budget(self, choice="st_choice"):
        self.budget = CASHBACK_BUDGETS[choice % len(CASHBACK_BUDGETS)]
        self.cashback.setBudget(self.budget, self.roles["city_admin"])

    def rule_incentive_mode(self):
        """The city switches between a discount at charge and cashback on payments."""
        admin = self.roles["city_admin"]
        if self.incentive_mode == CASHBACK:
            self.treasury.setIncentiveMode(DISCOUNT, admin)
            self.treasury.setIncentiveBps(GIMPO.policy.incentive_bps, admin)
            self.incentive_mode = DISCOUNT
        else:
            self.treasury.setIncentiveMode(CASHBACK, admin)
            assert self.treasury.policy()["incentiveBps"] == 0
            with brownie.reverts():
                self.treasury.setIncentiveBps(1, admin)
            self.incentive_mode = CASHBACK

    def rule_cashback_payer_churn(self, renounce="st_flag"):
        """The cashback payer loses its role, cannot settle a batch, and gets it back."""
        payer = self.cashback_payer["from"]
        role = self.cashback.CASHBACK_PAYER_ROLE()
        if renounce:
            self.cashback.renounceRole(role, payer, {"from": payer})
        else:
            self.cashback.revokeRole(role, payer, self.roles["city_admin"])
        with brownie.reverts():
            self.cashback.settleBatch([], self.cashback_payer)
        self.cashback.grantRole(role, payer, self.roles["city_admin"])

    def rule_time_passes(self, duration="st_duration"):
        chain.sleep(DURATIONS[duration])
        chain.mine()

    def rule_role_churn(self, choice="st_choice", renounce="st_flag"):
        """The payer loses its role, cannot pay out, and gets it back."""
        payer = self.roles["PROGRAM_PAYER_ROLE"]["from"]
        role = self.programs.PROGRAM_PAYER_ROLE()
        if renounce:
            self._try(self.programs.renounceRole, role, payer, {"from": payer})
        else:
            self._try(self.programs.revokeRole, role, payer, self.roles["city_admin"])
        if self.program_ids:
            program_id = self.program_ids[choice % len(self.program_ids)]
            with brownie.reverts():
                self.programs.payOut(program_id, [(self.residents[0], 1)], {"from": payer})
        self._try(self.programs.grantRole, role, payer, self.roles["city_admin"])

    def rule_forbidden_call(self, choice="st_choice"):
        """What only the token may do, tried by a holder of every program role."""
        caller = self.roles["city_admin"]
        resident = self.residents[0]
        calls = (
            (self.programs.creditGeneral, resident, 1, 1),
            (self.programs.draw, resident, resident, self.merchants[0], True, 1, 1, ZERO_ID),
            (self.programs.creditRefund, resident, resident, ZERO_ID, 1, 1),
            (self.programs.clear, resident, resident, 1),
            (self.programs.moveGeneral, resident, self.residents[1], 1),
            (self.programs.linkGifts, self.merchants[0]),
            (self.token.gift, resident, self.residents[1], 1, 0),
            (self.treasury.recordGift, resident, 10_000, 1),
            (self.treasury.recordExpired, resident, 10_000, 1),
            (self.token.issueProgram, resident, 1),
            (self.token.setGeneralExcluded, self.merchants[0], False),
            (self.treasury.issueCashback, resident, 1),
            (self.treasury.reverseCashback, resident, 1),
        )
        function, *args = calls[choice % len(calls)]
        with brownie.reverts():
            function(*args, caller)

    # --- Invariants -----------------------------------------------------------------------------

    def invariant_breakdowns_add_up_to_balances(self):
        for resident in self.residents:
            holdings, expired = self.programs.breakdownOf(resident)
            assert sum(h[2] for h in holdings) + expired == self.token.balanceOf(resident)
            programs = sum(h[2] for h in holdings if h[0] != 0)
            expired_programs = self.programs.programMoneyOf(resident) - programs
            assert expired_programs >= 0

    def invariant_programs_within_budget_and_outstanding_held(self):
        for program_id in self.program_ids:
            p = self.programs.program(program_id).dict()
            assert p["paidOut"] <= p["funded"] <= p["budget"]
            outstanding = p["paidOut"] - p["spent"] + p["refunded"] - p["expired"]
            held = sum(self.programs.holdingOf(r, program_id) for r in self.residents)
            assert outstanding == held, (program_id, p)

    def invariant_supply_equation(self):
        issued, _, burned, returned, _, _ = self.treasury.totals()
        paid_out = expired = 0
        for program_id in self.program_ids:
            p = self.programs.program(program_id).dict()
            paid_out += p["paidOut"]
            expired += p["expired"]
        expected = issued - burned + returned + paid_out - expired - self.general_expired
        assert self.token.totalSupply() == expected

    def invariant_cashback_is_what_the_treasury_counted(self):
        _, incentive, _, _, _, clawed_back = self.treasury.totals()
        assert incentive - self.totals_before[1] == self.charge_incentive + self.cashback_minted
        assert clawed_back - self.totals_before[5] == self.refund_clawed_back + self.cashback_burned
        assert self.cashback.budget() == self.budget
        for resident in self.residents:
            assert self.debts[resident.address] >= 0
            assert self.cashback.debtOf(resident) == self.debts[resident.address]

    def invariant_no_payment_paid_past_its_rate(self):
        for base, paid, bps in self.claims.values():
            assert base >= 0 and paid >= 0
            assert paid * MAX_BPS <= base * bps

    # --- Helpers --------------------------------------------------------------------------------

    def _settle(self, payer, merchant, invoice, sender):
        """Settles one payment and checks what it did against what the chain said beforehand."""
        base, (settled, paid) = self.cashback.settlementOf(payer, merchant, invoice)
        refusal = self.cashback.settleRefusal(payer, merchant, invoice)
        by_payer = sender == self.cashback_payer
        if base > settled:
            expected = self._expected_cashback(payer, merchant, base - settled)
        tx = self._try(self.cashback.settle, payer, merchant, invoice, sender)
        # A refund's settlement goes through for anyone; a payment's for the payer, unrefused.
        assert (tx is not None) == (base <= settled or (by_payer and refusal == "0x"))
        if tx is None:
            event(f"cashback: payment refused{'' if by_payer else ' without the role'}")
            return
        self._record_cashback(tx, [(payer, merchant, invoice)])
        if base > settled:
            paid_now = tx.events["CashbackPaid"]
            assert (paid_now["minted"], paid_now["fromDebt"]) == expected
            assert tx.return_value == sum(expected)
            cut = sum(expected) < paid_now["base"] * paid_now["bps"] // MAX_BPS
            event(
                f"cashback: paid{', cut' if cut else ''}{', against a debt' if expected[1] else ''}"
            )
        elif base < settled and paid == 0:
            taken = tx.events["CashbackReversed"]
            assert (taken["amount"], taken["burned"], tx.return_value) == (0, 0, 0)
            event("cashback: refund of a payment that earned nothing")
        elif base < settled:
            taken = tx.events["CashbackReversed"]
            share = -(-paid * (settled - base) // settled)
            assert taken["amount"] == share and tx.return_value == -share
            # All of it, or what general money the resident had: the rest is owed.
            owed = taken["burned"] < share
            assert not owed or self.programs.generalBalanceOf(taken["resident"]) == 0
            event(f"cashback: taken back{', owed' if owed else ''}")
        else:
            assert "CashbackPaid" not in tx.events and "CashbackReversed" not in tx.events
            event("cashback: nothing to settle")

    def _expected_cashback(self, payer, merchant, added: int) -> tuple[int, int]:
        """(minted, set against the debt) for `added` general money of a payment, read now."""
        rate = self._rate(self.merchant_index[merchant.address])
        gross = min(added * rate // MAX_BPS, self.budget)
        from_debt = min(gross, self.debts[payer.address])
        policy = self.treasury.policy().dict()
        tally = self.treasury.residentTally(payer).dict()
        room = min(
            policy["monthlyIncentiveLimit"] - tally["incentiveThisMonth"],
            policy["holdingCap"] - self.token.balanceOf(payer),
            policy["annualIssuanceCap"] - self.treasury.issuedThisFiscalYear(),
        )
        return min(gross - from_debt, max(room, 0)), from_debt

    def _rate(self, merchant_index: int) -> int:
        """The rate the city's terms give a merchant: its band's, or its region's where higher."""
        _, region, revenue = MERCHANTS[merchant_index]
        bands, regions = self.cashback_terms
        bps = next((rate for up_to, rate in bands if revenue <= up_to), 0)
        return max(bps, dict(regions).get(region, 0)) if bps else 0

    def _record_cashback(self, tx, settled):
        """Counts a settlement's (or a baseline's) cashback, then checks the claims it settled
        against the chain: each is what its events add up to and counts the payment's general
        money as it is now."""
        for paid_now in _events(tx, "CashbackPaid"):
            claim = self.claims.setdefault(self._key(paid_now), [0, 0, 0])
            paid = paid_now["minted"] + paid_now["fromDebt"]
            assert paid * MAX_BPS <= paid_now["base"] * paid_now["bps"]
            assert paid_now["bps"] == self._rate(self.merchant_index[paid_now["merchant"]])
            claim[0] += paid_now["base"]
            claim[1] += paid
            claim[2] = max(claim[2], paid_now["bps"])
            self.cashback_minted += paid_now["minted"]
            self.debts[paid_now["payer"]] -= paid_now["fromDebt"]
            self.budget -= paid
        for counted in _events(tx, "CashbackBaselined"):
            self.claims.setdefault(self._key(counted), [0, 0, 0])[0] = counted["base"]
        for taken in _events(tx, "CashbackReversed"):
            claim = self.claims[self._key(taken)]
            claim[0] -= taken["base"]
            claim[1] -= taken["amount"]
            self.cashback_burned += taken["burned"]
            self.debts[taken["payer"]] += taken["amount"] - taken["burned"]
            self.budget += taken["amount"]
        self._count_expired(tx)
        refused = {self._key(e) for e in _events(tx, "CashbackRefused")}
        for payer, merchant, invoice in settled:
            key = self._key((payer, merchant, invoice))
            base, claim = self.cashback.settlementOf(payer, merchant, invoice)
            if key in self.claims:
                assert list(claim) == self.claims[key][:2]
            if key not in refused:
                assert claim[0] == base

    @staticmethod
    def _key(settlement) -> tuple:
        """A payment's key, from a cashback event or a (payer, merchant, paymentId) tuple."""
        if isinstance(settlement, tuple):
            settlement = dict(zip(("payer", "merchant", "paymentId"), settlement, strict=True))
        return (
            str(settlement["payer"]),
            str(settlement["merchant"]),
            HexBytes(settlement["paymentId"]).hex(),
        )

    def _try(self, function, *args):
        """The transaction, or None when it reverted (a refusal the rule may expect)."""
        try:
            return function(*args)
        except VirtualMachineError:
            return None

    def _bought_with_krw(self, resident) -> int:
        """Its unexpired general money less the incentive its charges hold in it (rounded up)."""
        general = self.programs.generalBalanceOf(resident)
        tally = self.treasury.residentTally(resident).dict()
        charged, incentive = tally["chargedValue"], tally["incentiveCharged"]
        if incentive == 0:
            return general
        if charged == 0:
            return 0
        held = min(incentive, -(-general * incentive // charged))
        return max(0, general - held)

    def _count_expired(self, tx):
        self.general_expired += sum(
            e["amount"] for e in _events(tx, "Expired") if e["program"] == 0
        )


@pytest.fixture(scope="module")
def city_terms():
    """Gimpo Pay whose general money is valid 30 days: runs reach its expiry."""
    policy = dataclasses.replace(GIMPO.policy, general_validity=30 * DAY)
    return dataclasses.replace(GIMPO, policy=policy)


def test_money_classes_hold_under_random_operations(
    suite, city_admin, issuer, registrar, register_merchant, manager, funder, payer
):
    roles = {
        "city_admin": {"from": city_admin},
        "issuer": {"from": issuer},
        "registrar": {"from": registrar},
        "register_merchant": register_merchant,
        "PROGRAM_MANAGER_ROLE": {"from": manager},
        "PROGRAM_FUNDER_ROLE": {"from": funder},
        "PROGRAM_PAYER_ROLE": {"from": payer},
        "CASHBACK_PAYER_ROLE": {"from": accounts[12]},
    }
    state_machine(
        ClassesMachine,
        suite,
        roles,
        settings={"max_examples": 25, "stateful_step_count": 30},
    )


def test_every_state_changing_function_of_the_classes_has_a_rule():
    source = Path(__file__).read_text()
    sent = set(re.findall(r"self\.programs\.(\w+)", source))
    changing = {
        item["name"]
        for item in CityPrograms.abi
        if item["type"] == "function" and item["stateMutability"] == "nonpayable"
    }
    assert changing - sent == set()
    assert {"sweep", "issueProgram", "setGeneralExcluded", "gift"} <= set(
        re.findall(r"self\.token\.(\w+)", source)
    )
    gifts_sent = set(re.findall(r"self\.gifts\.(\w+)", source))
    gifts_changing = {
        item["name"]
        for item in CityGifts.abi
        if item["type"] == "function" and item["stateMutability"] == "nonpayable"
    }
    assert gifts_changing - gifts_sent == set()
    treasury_sent = set(re.findall(r"self\.treasury\.(\w+)", source))
    assert {"recordGift", "recordExpired", "issueCashback", "reverseCashback"} <= treasury_sent
    assert {"setIncentiveMode", "setIncentiveBps"} <= treasury_sent
    cashback_sent = set(re.findall(r"self\.cashback\.(\w+)", source))
    cashback_changing = {
        item["name"]
        for item in CityCashback.abi
        if item["type"] == "function" and item["stateMutability"] == "nonpayable"
    }
    assert cashback_changing - cashback_sent == set()
