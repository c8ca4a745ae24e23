"""Policy programs (정책발행): their lifecycle, exactly-once payouts, which money pays where,
refusals that say why, refunds back to the classes, resident refunds of general money only."""

from __future__ import annotations

import brownie
import pytest
from brownie import ZERO_ADDRESS, chain, web3
from eth_abi import decode
from eth_utils import keccak

from .conftest import BAKERY, GIMPO, RESTAURANT, terms, wallet

NOT_GENERAL, CATEGORY, REGION, NOT_YET, REVENUE = 1, 2, 4, 8, 16


def _breakdown_sum(programs, account) -> int:
    holdings, expired = programs.breakdownOf(account)
    return sum(h[2] for h in holdings) + expired


def _events(tx, name):
    return list(tx.events[name]) if name in tx.events else []


def _refusal_args(data: bytes):
    """CityProgramsNotEligible's arguments from revert data."""
    return decode(
        ["address", "address", "uint256", "uint256", "uint256", "uint256"], bytes(data)[4:]
    )


@pytest.fixture
def youth(create_program, pay_out, holder, shops):
    """A youth allowance of 50,000 KRW for restaurants and bakeries in Gimpo, paid to holder."""
    program_id = create_program(categories=(RESTAURANT, BAKERY), regions=(GIMPO,))
    pay_out(program_id, (holder, 50_000))
    return program_id


def test_a_payout_mints_program_money_kept_apart_from_general_money(programs, token, holder, youth):
    general = token.balanceOf(holder) - 50_000
    assert programs.holdingOf(holder, youth) == 50_000
    assert programs.programMoneyOf(holder) == 50_000
    assert programs.generalBalanceOf(holder) == general
    assert token.generalBalanceOf(holder) == general
    assert _breakdown_sum(programs, holder) == token.balanceOf(holder)
    record = programs.program(youth).dict()
    assert record["paidOut"] == 50_000 and record["funded"] == record["budget"]


def test_a_recipient_is_paid_once_whatever_the_number_of_tries(
    programs, token, holder, youth, pay_out
):
    before = token.balanceOf(holder)
    tx = pay_out(youth, (holder, 50_000))
    assert tx.return_value == 0
    (refused,) = _events(tx, "ProgramPayoutRefused")
    assert refused["recipient"] == holder
    assert (
        bytes(refused["reason"])[:4] == keccak(text="CityProgramsAlreadyPaid(uint32,address)")[:4]
    )
    assert token.balanceOf(holder) == before
    assert programs.paidTo(youth, holder)


def test_a_payout_batch_refuses_bad_entries_alone(
    programs, token, create_program, pay_out, register_resident, shops
):
    program_id = create_program(budget=1_000_000, per_recipient=100_000)
    good, unregistered = wallet("payout-good"), wallet("payout-unregistered")
    register_resident(good)
    merchant = shops[0]
    tx = pay_out(
        program_id,
        (good, 100_000),
        (unregistered, 100_000),
        (merchant, 100_000),
        (good, 1),
        (wallet("payout-zero"), 0),
        (good, 100_001),
    )
    assert tx.return_value == 1
    assert [e["recipient"] for e in _events(tx, "ProgramPaid")] == [good]
    assert len(_events(tx, "ProgramPayoutRefused")) == 5
    assert token.balanceOf(good) == 100_000
    assert token.balanceOf(unregistered) == 0 and token.balanceOf(merchant) == 0
    assert programs.program(program_id).dict()["paidOut"] == 100_000


def test_payouts_stop_at_the_funded_amount(programs, create_program, pay_out, register_resident):
    program_id = create_program(budget=1_000_000, per_recipient=100_000, fund=150_000)
    first, second = wallet("funded-1"), wallet("funded-2")
    register_resident(first)
    register_resident(second)
    tx = pay_out(program_id, (first, 100_000), (second, 100_000))
    assert tx.return_value == 1
    (refused,) = _events(tx, "ProgramPayoutRefused")
    assert refused["recipient"] == second


def test_program_money_pays_first_at_an_eligible_shop(programs, token, holder, youth, shops):
    restaurant = shops[0]
    general = programs.generalBalanceOf(holder)
    tx = token.transfer(restaurant, 30_000, {"from": holder})
    (spent,) = _events(tx, "ProgramSpent")
    assert (spent["program"], spent["amount"]) == (youth, 30_000)
    assert programs.holdingOf(holder, youth) == 20_000
    assert programs.generalBalanceOf(holder) == general
    assert programs.program(youth).dict()["spent"] == 30_000


def test_a_payment_draws_on_program_and_general_money_at_once(
    programs, token, holder, youth, shops
):
    restaurant = shops[0]
    general = programs.generalBalanceOf(holder)
    token.transfer(restaurant, 70_000, {"from": holder})
    assert programs.holdingOf(holder, youth) == 0
    assert programs.generalBalanceOf(holder) == general - 20_000
    assert token.balanceOf(restaurant) == 70_000
    assert _breakdown_sum(programs, holder) == token.balanceOf(holder)


def test_program_money_is_not_spent_outside_its_categories_or_regions(
    programs, token, holder, youth, shops
):
    bookstore = shops[2]
    general = programs.generalBalanceOf(holder)
    tx = token.transfer(bookstore, 10_000, {"from": holder})
    assert not _events(tx, "ProgramSpent")
    assert programs.holdingOf(holder, youth) == 50_000
    assert programs.generalBalanceOf(holder) == general - 10_000


def test_a_shortfall_names_what_is_held_what_is_eligible_and_why(
    programs, token, holder, youth, shops
):
    bookstore = shops[2]
    held = token.balanceOf(holder)
    value = held - 10_000
    general = held - 50_000
    data = token.paymentRefusal(holder, bookstore, value)
    payer, merchant, asked, total, eligible, reasons = _refusal_args(data)
    assert (payer, merchant, asked, total, eligible) == (holder, bookstore, value, held, general)
    assert reasons == CATEGORY | REGION
    assert not token.canTransfer(holder, bookstore, value)
    with brownie.reverts():
        token.transfer(bookstore, value, {"from": holder})
    assert token.canTransfer(holder, shops[0], value)


def test_general_money_is_refused_above_the_general_revenue_cap(
    programs, token, registry, city_admin, holder, create_program, pay_out, register_merchant
):
    big = wallet("big-store")
    register_merchant(big, revenue=1_000_000_000)
    registry.setGeneralRevenueCap(500_000_000, {"from": city_admin})
    registry.refreshGeneralExclusion(big, {"from": holder})
    data = token.paymentRefusal(holder, big, 1_000)
    assert _refusal_args(data)[5] == NOT_GENERAL
    with brownie.reverts():
        token.transfer(big, 1_000, {"from": holder})
    # A postnatal grant that may be spent anywhere, big stores included.
    grant = create_program(label="postnatal")
    pay_out(grant, (holder, 40_000))
    token.transfer(big, 40_000, {"from": holder})
    assert token.balanceOf(big) == 40_000
    assert programs.holdingOf(holder, grant) == 0
    assert _refusal_args(token.paymentRefusal(holder, big, 1))[5] == NOT_GENERAL


def test_a_program_capped_by_revenue_is_not_spent_above_its_cap(
    programs, token, holder, create_program, pay_out, register_merchant
):
    mid = wallet("mid-store")
    register_merchant(mid, revenue=800_000_000)
    capped = create_program(revenue_cap=500_000_000, label="capped")
    pay_out(capped, (holder, 20_000))
    token.transfer(mid, 5_000, {"from": holder})
    assert programs.holdingOf(holder, capped) == 20_000
    refusal = _refusal_args(token.paymentRefusal(holder, mid, token.balanceOf(holder)))
    assert refusal[5] == REVENUE


def test_a_program_is_not_spent_before_its_window(
    programs, token, holder, create_program, pay_out, shops
):
    later = create_program(spend_from=chain.time() + 10 * 86_400, label="later")
    pay_out(later, (holder, 30_000))
    tx = token.transfer(shops[0], 10_000, {"from": holder})
    assert not _events(tx, "ProgramSpent")
    assert programs.holdingOf(holder, later) == 30_000
    assert (
        _refusal_args(token.paymentRefusal(holder, shops[0], token.balanceOf(holder)))[5] == NOT_YET
    )
    chain.sleep(11 * 86_400)
    tx = token.transfer(shops[0], 10_000, {"from": holder})
    assert _events(tx, "ProgramSpent")[0]["program"] == later


def test_soonest_expiring_program_money_is_spent_first(
    programs, token, holder, create_program, pay_out, shops
):
    long_ = create_program(days=300, label="long")
    short = create_program(days=30, label="short")
    pay_out(long_, (holder, 20_000))
    pay_out(short, (holder, 20_000))
    holdings, _ = programs.breakdownOf(holder)
    assert [h[0] for h in holdings if h[0] != 0] == [short, long_]
    tx = token.transfer(shops[0], 25_000, {"from": holder})
    spent = [(e["program"], e["amount"]) for e in _events(tx, "ProgramSpent")]
    assert spent == [(short, 20_000), (long_, 5_000)]


def test_expired_program_money_goes_back_to_the_city(
    programs, token, holder, create_program, pay_out, shops, outsider
):
    short = create_program(days=10, label="relief")
    pay_out(short, (holder, 30_000))
    balance, supply = token.balanceOf(holder), token.totalSupply()
    chain.sleep(11 * 86_400)
    chain.mine()
    assert programs.expiredOf(holder) == 30_000
    assert not token.canTransfer(holder, shops[0], balance)
    tx = token.sweep(holder, {"from": outsider})
    (expired,) = _events(tx, "Expired")
    assert (expired["account"], expired["program"], expired["amount"]) == (holder, short, 30_000)
    assert token.balanceOf(holder) == balance - 30_000
    assert token.totalSupply() == supply - 30_000
    record = programs.program(short).dict()
    assert record["expired"] == 30_000
    assert programs.programMoneyOf(holder) == 0
    assert _breakdown_sum(programs, holder) == token.balanceOf(holder)


def test_a_payment_sweeps_expired_money_first_and_never_spends_it(
    programs, token, holder, create_program, pay_out, shops
):
    short = create_program(days=10, label="relief")
    pay_out(short, (holder, 30_000))
    general = programs.generalBalanceOf(holder)
    chain.sleep(11 * 86_400)
    with brownie.reverts():
        token.transfer(shops[0], general + 1, {"from": holder})
    tx = token.transfer(shops[0], general, {"from": holder})
    assert _events(tx, "Expired")[0]["amount"] == 30_000
    assert token.balanceOf(holder) == 0


def test_general_money_expires_after_the_citys_validity(
    programs, token, holder, shops, charge, outsider
):
    validity = programs.generalValidity()
    first = token.balanceOf(holder)
    chain.sleep(400 * 86_400)
    charge(holder, 20_000)
    second = token.balanceOf(holder) - first
    holdings, expired = programs.breakdownOf(holder)
    assert [h[2] for h in holdings] == [first, second] and expired == 0
    chain.sleep(validity - 400 * 86_400 + 8 * 86_400)
    chain.mine()
    assert programs.expiredOf(holder) == first
    assert programs.generalBalanceOf(holder) == second
    with brownie.reverts():
        token.transfer(shops[0], second + 1, {"from": holder})
    tx = token.sweep(holder, {"from": outsider})
    (expired,) = _events(tx, "Expired")
    assert (expired["program"], expired["amount"]) == (0, first)
    assert token.balanceOf(holder) == second
    token.transfer(shops[0], second, {"from": holder})


def test_a_refund_returns_money_to_the_classes_it_came_from(programs, token, holder, youth, shops):
    restaurant = shops[0]
    invoice = keccak(text="mixed-invoice")
    general = programs.generalBalanceOf(holder)
    token.pay(restaurant, 70_000, invoice, {"from": holder})
    assert programs.holdingOf(holder, youth) == 0
    tx = token.refund(holder, invoice, 60_000, {"from": restaurant})
    (back,) = _events(tx, "ProgramRefunded")
    assert (back["program"], back["amount"]) == (youth, 50_000)
    assert programs.holdingOf(holder, youth) == 50_000
    assert programs.generalBalanceOf(holder) == general - 20_000 + 10_000
    assert _breakdown_sum(programs, holder) == token.balanceOf(holder)


def test_a_refund_of_a_plain_transfer_returns_program_money_too(
    programs, token, holder, youth, shops
):
    restaurant = shops[0]
    token.transfer(restaurant, 30_000, {"from": holder})
    token.refund(holder, b"\x00" * 32, 30_000, {"from": restaurant})
    assert programs.holdingOf(holder, youth) == 50_000


def test_a_refund_after_the_program_expired_goes_back_to_the_city(
    programs, token, holder, create_program, pay_out, shops
):
    restaurant = shops[0]
    short = create_program(days=10, label="relief")
    pay_out(short, (holder, 30_000))
    invoice = keccak(text="late-refund")
    token.pay(restaurant, 30_000, invoice, {"from": holder})
    chain.sleep(11 * 86_400)
    balance, supply = token.balanceOf(holder), token.totalSupply()
    tx = token.refund(holder, invoice, 30_000, {"from": restaurant})
    assert _events(tx, "Expired")[0]["amount"] == 30_000
    assert token.balanceOf(holder) == balance
    assert token.totalSupply() == supply - 30_000
    assert programs.program(short).dict()["expired"] == 30_000


def test_a_resident_refund_pays_general_money_only(programs, token, treasury, holder, youth, shops):
    restaurant = shops[0]
    general = programs.generalBalanceOf(holder)
    # Use 70% of the charge in general money (the program money stays where it is).
    token.transfer(shops[2], general * 7 // 10, {"from": holder})
    left = programs.generalBalanceOf(holder)
    tx = treasury.requestResidentRefund(keccak(text="holder-bank"), {"from": holder})
    assert tx.events["RedemptionRequested"]["burned"] == left
    assert token.balanceOf(holder) == 50_000
    assert programs.holdingOf(holder, youth) == 50_000
    token.transfer(restaurant, 50_000, {"from": holder})


def test_closing_a_resident_returns_its_program_money_to_the_city(
    programs, token, registry, registrar, treasury, holder, youth
):
    registry.revoke(holder, False, {"from": registrar})
    general = programs.generalBalanceOf(holder)
    supply = token.totalSupply()
    tx = treasury.requestResidentRefund(keccak(text="holder-bank"), {"from": holder})
    assert tx.events["RedemptionRequested"]["burned"] == general
    assert token.balanceOf(holder) == 0
    assert token.totalSupply() == supply - general - 50_000
    assert programs.program(youth).dict()["expired"] == 50_000
    assert programs.programMoneyOf(holder) == 0


def test_a_recovered_wallet_keeps_its_classes(
    programs, token, holder, youth, recover_wallet, shops
):
    replacement = wallet("class-holder-new")
    balance = token.balanceOf(holder)
    recover_wallet(holder, replacement)
    assert token.balanceOf(replacement) == balance
    assert programs.holdingOf(replacement, youth) == 50_000
    tx = token.transfer(shops[0], 10_000, {"from": replacement})
    assert _events(tx, "ProgramSpent")[0]["amount"] == 10_000


def test_the_refund_ratio_is_the_citys_within_the_law(treasury, city_admin, outsider):
    with brownie.reverts():
        treasury.setRefundMinUsedBps(7_000, {"from": outsider})
    for bad in (5_999, 8_001):
        with brownie.reverts():
            treasury.setRefundMinUsedBps(bad, {"from": city_admin})
    treasury.setRefundMinUsedBps(8_000, {"from": city_admin})
    assert treasury.refundMinUsedBps() == 8_000


def test_program_terms_are_checked(programs, manager):
    # The chain's own clock: after a snapshot's revert it may be behind the host's (chain.time).
    now = web3.eth.get_block("latest").timestamp
    good = terms()
    for index, bad, field in (
        (0, b"\x00" * 32, "code"),
        (1, 0, "budget"),
        (1, 2**64, "budget"),
        (2, 0, "maxPerRecipient"),
        (4, now - 10, "expiry"),
        (3, good[4], "spendFrom"),
        (5, 0, "revenueCap"),
        (6, list(range(1, 66)), "categories"),
    ):
        changed = list(good)
        changed[index] = bad
        with brownie.reverts(revert_pattern=f".*{field}.*"):
            programs.createProgram(changed, {"from": manager})
    programs.createProgram(good, {"from": manager})
    with brownie.reverts():
        programs.createProgram(good, {"from": manager})


def test_a_closed_program_pays_no_more(programs, manager, create_program, pay_out, holder):
    program_id = create_program(label="closing")
    tx = programs.closeProgram(program_id, {"from": manager})
    assert tx.events["ProgramClosed"]["unpaidBudget"] == programs.program(program_id)["budget"]
    with brownie.reverts():
        pay_out(program_id, (holder, 1_000))
    with brownie.reverts():
        programs.closeProgram(program_id, {"from": manager})


def test_each_role_does_its_own_part_only(
    programs, token, registry, manager, funder, payer, outsider, holder
):
    t = terms()
    for caller in (outsider, funder, payer):
        with brownie.reverts():
            programs.createProgram(t, {"from": caller})
    program_id = programs.createProgram(t, {"from": manager}).return_value
    for caller in (outsider, manager, payer):
        with brownie.reverts():
            programs.fundProgram(program_id, 1_000, keccak(text="x"), {"from": caller})
    programs.fundProgram(program_id, 1_000, keccak(text="x"), {"from": funder})
    for caller in (outsider, manager, funder):
        with brownie.reverts():
            programs.payOut(program_id, [(holder, 1_000)], {"from": caller})
    for caller in (outsider, funder, payer):
        with brownie.reverts():
            programs.closeProgram(program_id, {"from": caller})
    programs.payOut(program_id, [(holder, 1_000)], {"from": payer})
    programs.closeProgram(program_id, {"from": manager})


def test_only_the_token_changes_classes_and_only_programs_mint_policy_money(
    programs, token, registry, outsider, holder
):
    origin = holder.address
    for call in (
        lambda: programs.creditGeneral(origin, 1, 1, {"from": outsider}),
        lambda: programs.draw(
            holder, origin, ZERO_ADDRESS, True, 1, 1, b"\x00" * 32, {"from": outsider}
        ),
        lambda: programs.creditRefund(holder, origin, b"\x00" * 32, 1, 1, {"from": outsider}),
        lambda: programs.clear(holder, origin, 1, {"from": outsider}),
        lambda: token.issueProgram(holder, 1, {"from": outsider}),
        lambda: token.setGeneralExcluded(holder, True, {"from": outsider}),
        lambda: registry.setGeneralRevenueCap(1, {"from": outsider}),
    ):
        with brownie.reverts():
            call()


# --- What a review found, kept fixed -----------------------------------------------------------


def test_a_payment_never_goes_through_without_its_classes_whatever_its_gas(
    programs, token, holder, youth, shops
):
    """Out of gas inside the classes is no refusal to step over: the payment fails whole."""
    restaurant = shops[0]
    for gas in range(60_000, 240_000, 6_000):
        held = programs.holdingOf(holder, youth)
        try:
            tx = token.transfer(restaurant, 1_000, {"from": holder, "gas_limit": gas})
        except (brownie.exceptions.VirtualMachineError, ValueError):
            assert programs.holdingOf(holder, youth) == held
            continue
        assert tx.status == 1
        assert programs.holdingOf(holder, youth) == held - 1_000, gas


def test_a_refund_of_program_money_is_no_charge_for_the_usage_rule(
    programs, token, treasury, holder, youth, shops
):
    restaurant = shops[0]
    general = programs.generalBalanceOf(holder)
    token.transfer(shops[2], general * 7 // 10, {"from": holder})
    treasury.requestResidentRefund(keccak(text="holder-bank"), {"from": holder})
    charged = treasury.residentTally(holder)["chargedValue"]
    invoice = keccak(text="program-only")
    token.pay(restaurant, 50_000, invoice, {"from": holder})
    token.refund(holder, invoice, 50_000, {"from": restaurant})
    assert programs.holdingOf(holder, youth) == 50_000
    assert treasury.residentTally(holder)["chargedValue"] == charged


def test_a_recovered_merchant_stays_above_the_general_cap(
    token, registry, city_admin, holder, register_merchant, recover_wallet
):
    big = wallet("big-store-recovered")
    register_merchant(big, revenue=1_000_000_000)
    registry.setGeneralRevenueCap(500_000_000, {"from": city_admin})
    registry.refreshGeneralExclusion(big, {"from": holder})
    replacement = wallet("big-store-replacement")
    recover_wallet(big, replacement)
    assert not token.canTransfer(holder, replacement, 1_000)
    with brownie.reverts():
        token.transfer(replacement, 1_000, {"from": holder})


def test_expired_programs_give_their_places_up_in_a_merchants_running_total(
    programs, token, holder, create_program, pay_out, shops
):
    """Nine programs spent at one shop by plain transfers: the expired ones make room, and a
    refund of their money goes back to the city."""
    restaurant = shops[0]
    for n in range(8):
        short = create_program(days=3, label=f"short-{n}")
        pay_out(short, (holder, 1_000))
        token.transfer(restaurant, 1_000, {"from": holder})
    chain.sleep(4 * 86_400)
    ninth = create_program(label="ninth")
    pay_out(ninth, (holder, 1_000))
    assert token.canTransfer(holder, restaurant, 1_000)
    tx = token.transfer(restaurant, 1_000, {"from": holder})
    assert _events(tx, "ProgramSpent")[0]["program"] == ninth
    supply = token.totalSupply()
    tx = token.refund(holder, b"\x00" * 32, 9_000, {"from": restaurant})
    assert programs.holdingOf(holder, ninth) == 1_000
    assert sum(e["amount"] for e in _events(tx, "Expired")) == 8_000
    assert token.totalSupply() == supply - 8_000


def test_a_person_is_paid_once_per_program_whatever_wallet_it_holds(
    programs, token, registry, registrar, register_resident, create_program, pay_out
):
    first = wallet("once-per-person")
    register_resident(first)
    program_id = create_program(label="once")
    pay_out(program_id, (first, 10_000))
    identity = registry.residentOf(first)["identityHash"]
    registry.revoke(first, False, {"from": registrar})
    second = wallet("once-per-person-again")
    registry.registerResident(second, identity, GIMPO, {"from": registrar})
    tx = pay_out(program_id, (second, 10_000))
    assert tx.return_value == 0
    assert programs.paidTo(program_id, second)
    assert token.balanceOf(second) == 0


def test_a_funding_reference_is_used_once(programs, manager, funder):
    program_id = programs.createProgram(terms(), {"from": manager}).return_value
    reference = keccak(text="budget-transfer-1")
    programs.fundProgram(program_id, 1_000, reference, {"from": funder})
    with brownie.reverts():
        programs.fundProgram(program_id, 1_000, reference, {"from": funder})


def test_a_merchants_breakdown_adds_up_to_its_balance(programs, token, holder, shops):
    restaurant = shops[0]
    token.transfer(restaurant, 5_000, {"from": holder})
    assert _breakdown_sum(programs, restaurant) == token.balanceOf(restaurant) == 5_000
