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
  receiver's general money in order of expiry, and no month's gifts passed the caps.
"""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path

import brownie
import pytest
from brownie import CityGifts, CityPrograms, chain, web3
from brownie.exceptions import TransactionError, VirtualMachineError
from brownie.test import state_machine, strategy
from citypay.authorization import (
    GIFT_AUTHORIZATION,
    TokenDomain,
    sign_authorization,
    sign_gift_cancellation,
)
from eth_utils import keccak

from scripts.city_suite import GIMPO
from scripts.receipts import mined_after_all

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

    def setup(self):
        self.program_ids: list[int] = []
        self.payments: list[tuple] = []
        self.paid: set[tuple[int, str]] = set()
        self.general_expired = 0
        self.invoices = 0
        self.gift_caps = GIFT_CAPS[0]
        self.gifts.setMonthlyCaps(*self.gift_caps, self.roles["city_admin"])

    # --- Rules ----------------------------------------------------------------------------------

    def rule_charge(self, who="st_resident", amount="st_amount"):
        resident = self.residents[who]
        reference = keccak(text=f"machine-deposit:{chain.time()}:{who}:{amount}")
        self._try(
            self.treasury.issue, resident, AMOUNTS[amount] * 2, reference, self.roles["issuer"]
        )

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

    def rule_pay(self, who="st_resident", where="st_merchant", pct="st_pct", plain="st_flag"):
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

    def rule_refund(self, choice="st_choice", pct="st_pct"):
        if not self.payments:
            return
        payer, merchant, invoice = self.payments[choice % len(self.payments)]
        refundable = self.token.refundableAmount(payer, merchant, invoice)
        value = max(1, refundable * pct // 100)
        tx = self._try(self.token.refund, payer, invoice, value, {"from": merchant})
        if tx is not None:
            self._count_expired(tx)

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
        assert self.token.balanceOf(receiver) == before[1] + value - expired[1]
        assert self.programs.expiredOf(giver) == self.programs.expiredOf(receiver) == 0
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

    # --- Helpers --------------------------------------------------------------------------------

    def _try(self, function, *args):
        """The transaction, or None when it reverted (a refusal the rule may expect)."""
        try:
            return function(*args)
        except VirtualMachineError:
            return None
        except TransactionError as error:
            return mined_after_all(error)

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
    assert {"recordGift", "recordExpired"} <= set(re.findall(r"self\.treasury\.(\w+)", source))
