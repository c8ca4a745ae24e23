"""Gifts (선물하기): general money bought with KRW, from one resident to another of the same city,
under the city's monthly caps, each part keeping its expiry."""

from __future__ import annotations

import brownie
from brownie import chain, web3
from citypay.authorization import sign_gift_cancellation

from .conftest import DAY, VALIDITY, wallet


def _pass(moment: int) -> None:
    """Moves the chain's clock to at least `moment` (from its own latest block: after a
    snapshot's revert it may be behind the host's) and mines a block there."""
    chain.sleep(max(0, moment - web3.eth.get_block("latest").timestamp))
    chain.mine()


# GIMPO: 10% incentive, so a charge of 100,000 KRW is 110,000 of money, 10,000 of it incentive.
CHARGE = 100_000
MONEY = 110_000


def test_a_gift_moves_money_between_residents_and_their_tallies(
    gifts, token, treasury, new_resident
):
    giver, receiver = new_resident(CHARGE), new_resident()
    tx = gifts.gift(receiver, 30_000, {"from": giver})

    assert token.balanceOf(giver) == MONEY - 30_000
    assert token.balanceOf(receiver) == 30_000
    assert tx.events["Gifted"][0]["from"] == giver
    assert tx.events["Gifted"][0]["to"] == receiver
    assert tx.events["Gifted"][0]["value"] == 30_000
    transfers = [(e["from"], e["to"], e["value"]) for e in tx.events["Transfer"]]
    assert transfers == [(giver, receiver, 30_000)]
    # The giver's charges shrink with the money given; its incentive stays with what it keeps.
    assert treasury.residentTally(giver)["chargedValue"] == MONEY - 30_000
    assert treasury.residentTally(giver)["incentiveCharged"] == 10_000
    # The receiver bought nothing.
    assert treasury.residentTally(receiver)["chargedValue"] == 0
    assert gifts.giftTallyOf(giver)["sent"] == 30_000
    assert gifts.giftTallyOf(receiver)["received"] == 30_000


def test_only_money_bought_with_krw_is_giftable(gifts, new_resident, reverts_with):
    giver, receiver = new_resident(CHARGE), new_resident()
    assert gifts.giftableOf(giver) == CHARGE
    with reverts_with("CityGiftsNotCashFunded", giver, CHARGE, CHARGE + 1):
        gifts.gift(receiver, CHARGE + 1, {"from": giver})
    gifts.gift(receiver, CHARGE, {"from": giver})
    # What is left is the incentive: nothing more to give.
    assert gifts.giftableOf(giver) == 0
    with reverts_with("CityGiftsNotCashFunded", giver, 0, 1):
        gifts.gift(receiver, 1, {"from": giver})


def test_gifting_is_not_a_use_toward_a_refund(gifts, treasury, new_resident, reverts_with):
    giver, receiver = new_resident(CHARGE), new_resident()
    gifts.gift(receiver, 90_000, {"from": giver})
    # 110,000 charged, 90,000 given: the 20,000 left were not used, whatever the gift.
    with reverts_with("CityTreasuryRefundBelowUsage", giver, 0, 20_000, 6_000):
        treasury.requestResidentRefund(b"\x01" * 32, {"from": giver})


def test_gifted_money_is_for_spending_not_a_refund(
    gifts, token, treasury, new_resident, register_merchant, reverts_with
):
    giver, receiver = new_resident(CHARGE), new_resident(CHARGE)
    shop = wallet("shop")
    register_merchant(shop)
    gifts.gift(receiver, 50_000, {"from": giver})
    token.transfer(shop, MONEY, {"from": receiver})
    # 110,000 spent, but 50,000 of it was the gift: 60,000 of its own 110,000 used (54.5%).
    with reverts_with("CityTreasuryRefundBelowUsage", receiver, 60_000, MONEY, 6_000):
        treasury.requestResidentRefund(b"\x02" * 32, {"from": receiver})
    token.transfer(shop, 6_000, {"from": receiver})
    tx = treasury.requestResidentRefund(b"\x02" * 32, {"from": receiver})
    # 44,000 left, 4,000 of it the incentive it got with its charge: clawed back.
    assert tx.events["RedemptionRequested"][0]["payout"] == 40_000


def test_a_giver_cannot_turn_its_incentive_into_cash(
    gifts, token, treasury, new_resident, register_merchant, reverts_with
):
    """The incentive stays with what the giver keeps: neither given on nor paid out."""
    giver, receiver = new_resident(CHARGE), new_resident()
    shop = wallet("shop")
    register_merchant(shop)
    token.transfer(shop, 66_000, {"from": giver})
    # 44,000 left: 40,000 bought with KRW and 4,000 of incentive.
    assert gifts.giftableOf(giver) == 40_000
    gifts.gift(receiver, 40_000, {"from": giver})
    assert gifts.giftableOf(giver) == 0
    with reverts_with("CityGiftsNotCashFunded", giver, 0, 1):
        gifts.gift(receiver, 1, {"from": giver})
    tx = treasury.requestResidentRefund(b"\x03" * 32, {"from": giver})
    # 60% used, as before the gift; the 4,000 left is all incentive: nothing paid out.
    assert tx.events["RedemptionRequested"][0]["burned"] == 4_000
    assert tx.events["RedemptionRequested"][0]["payout"] == 0


def test_expired_money_is_no_use_toward_a_refund(
    gifts, programs, token, treasury, new_resident, charge, reverts_with
):
    resident = new_resident(300_000)
    chain.sleep(21 * DAY)
    charge(resident, 100_000)
    old = programs.breakdownOf(resident)[0][0]
    _pass(old[1] + 1)
    tx = token.sweep(resident, {"from": resident})
    assert tx.events["Expired"][0]["amount"] == 330_000
    # What is left is the second charge, unused: its 110,000 counted, none of it used.
    tally = treasury.residentTally(resident)
    assert (tally["chargedValue"], tally["incentiveCharged"]) == (MONEY, 10_000)
    with reverts_with("CityTreasuryRefundBelowUsage", resident, 0, MONEY, 6_000):
        treasury.requestResidentRefund(b"\x04" * 32, {"from": resident})


def test_policy_money_is_never_gifted(
    gifts, programs, token, new_resident, city_admin, reverts_with
):
    manager = payer = funder = city_admin
    for role in ("PROGRAM_MANAGER_ROLE", "PROGRAM_FUNDER_ROLE", "PROGRAM_PAYER_ROLE"):
        programs.grantRole(getattr(programs, role)(), city_admin, {"from": city_admin})
    terms = (b"GIFT-TEST".ljust(32, b"\0"), 1_000_000, 100_000, 0, chain.time() + 90 * DAY,
             2**64 - 1, [], [])  # fmt: skip
    program = programs.createProgram(terms, {"from": manager}).return_value
    programs.fundProgram(program, 1_000_000, b"\x07" * 32, {"from": funder})
    holder, receiver = new_resident(), new_resident()
    programs.payOut(program, [(holder, 100_000)], {"from": payer})
    assert token.balanceOf(holder) == 100_000
    assert gifts.giftableOf(holder) == 0
    with reverts_with("CityGiftsNotCashFunded", holder, 0, 1):
        gifts.gift(receiver, 1, {"from": holder})


def test_each_part_keeps_its_expiry_and_expired_money_is_never_gifted(
    gifts, programs, token, new_resident, reverts_with
):
    giver = new_resident(CHARGE)
    chain.sleep(21 * DAY)
    receiver = new_resident(CHARGE)
    own_expiry = programs.breakdownOf(receiver)[0][0][1]
    gift_expiry = programs.breakdownOf(giver)[0][0][1]
    assert gift_expiry < own_expiry

    gifts.gift(receiver, 40_000, {"from": giver})
    holdings, expired = programs.breakdownOf(receiver)
    # Oldest first: the gift's part, then the receiver's own.
    assert [(h[1], h[2]) for h in holdings] == [(gift_expiry, 40_000), (own_expiry, MONEY)]
    assert expired == 0

    _pass(gift_expiry + 1)
    assert programs.expiredOf(receiver) == 40_000
    assert programs.generalBalanceOf(receiver) == MONEY
    # The giver's money of the same week has expired too: nothing left to give.
    assert gifts.giftableOf(giver) == 0
    with reverts_with("CityGiftsNotCashFunded", giver, 0, 1):
        gifts.gift(receiver, 1, {"from": giver})
    tx = gifts.gift(giver, 10_000, {"from": receiver})
    # The receiver's expired gift went back to the city first.
    assert tx.events["Expired"][0]["amount"] == 40_000
    assert token.balanceOf(receiver) == MONEY - 10_000


def test_a_gift_of_newer_money_than_the_receivers_lies_after_it(gifts, programs, new_resident):
    receiver = new_resident(CHARGE)
    chain.sleep(14 * DAY)
    giver = new_resident(CHARGE)
    gifts.gift(receiver, 20_000, {"from": giver})
    gifts.gift(receiver, 5_000, {"from": giver})
    expiries = [h[1] for h in programs.breakdownOf(receiver)[0]]
    assert expiries == sorted(expiries) and len(expiries) == 2
    assert [h[2] for h in programs.breakdownOf(receiver)[0]] == [MONEY, 25_000]


def test_monthly_send_and_receive_caps(gifts, city_admin, new_resident, reverts_with):
    gifts.setMonthlyCaps(50_000, 60_000, {"from": city_admin})
    giver, other, receiver = new_resident(CHARGE), new_resident(CHARGE), new_resident()
    gifts.gift(receiver, 50_000, {"from": giver})
    with reverts_with("CityGiftsSendCapExceeded", giver, 50_000, 1, 50_000):
        gifts.gift(other, 1, {"from": giver})
    gifts.gift(receiver, 10_000, {"from": other})
    with reverts_with("CityGiftsReceiveCapExceeded", receiver, 60_000, 1, 60_000):
        gifts.gift(receiver, 1, {"from": other})
    assert gifts.giftableOf(giver) == 0
    # A new month (KST) starts both counts again.
    chain.sleep(32 * DAY)
    chain.mine()
    assert gifts.giftTallyOf(receiver)["received"] == 0
    gifts.gift(receiver, 1, {"from": other})
    gifts.gift(other, 1, {"from": giver})


def test_a_gift_never_lifts_the_receiver_over_the_holding_cap(
    gifts, treasury, city_admin, new_resident, reverts_with
):
    cap = treasury.policy()["holdingCap"]
    giver, receiver = new_resident(CHARGE), new_resident(CHARGE)
    treasury.setHoldingCap(MONEY + 5_000, {"from": city_admin})
    with reverts_with("CityGiftsHoldingCapExceeded", receiver, MONEY, 5_001, MONEY + 5_000):
        gifts.gift(receiver, 5_001, {"from": giver})
    gifts.gift(receiver, 5_000, {"from": giver})
    treasury.setHoldingCap(cap, {"from": city_admin})


def test_only_between_two_active_residents(
    gifts, token, registry, new_resident, register_merchant, compliance, pauser, reverts_with
):
    giver, receiver = new_resident(CHARGE), new_resident()
    shop, stranger = wallet("shop"), wallet("stranger")
    register_merchant(shop)
    with reverts_with("CityGiftsNotActiveResident", shop):
        gifts.gift(shop, 1, {"from": giver})
    with reverts_with("CityGiftsNotActiveResident", stranger):
        gifts.gift(stranger, 1, {"from": giver})
    with reverts_with("CityGiftsNotActiveResident", shop):
        gifts.gift(receiver, 1, {"from": shop})
    with reverts_with("CityGiftsToSelf", giver):
        gifts.gift(giver, 1, {"from": giver})
    with reverts_with("CityGiftsZeroValue"):
        gifts.gift(receiver, 0, {"from": giver})
    token.freeze(receiver, {"from": compliance})
    with reverts_with("CityGiftsNotActiveResident", receiver):
        gifts.gift(receiver, 1, {"from": giver})
    token.unfreeze(receiver, {"from": compliance})
    token.pause({"from": pauser})
    with brownie.reverts():
        gifts.gift(receiver, 1, {"from": giver})
    token.unpause({"from": pauser})
    gifts.gift(receiver, 1, {"from": giver})


def test_a_relayed_gift_is_the_givers_signature_once(
    gifts, token, new_resident, sign_gift, relay_gift, reverts_with
):
    giver, receiver = new_resident(CHARGE), new_resident()
    signed = sign_gift(giver, receiver, 25_000)
    tx = relay_gift(signed)
    assert tx.events["Gifted"][0]["nonce"] == "0x" + signed.nonce.hex()
    assert token.balanceOf(receiver) == 25_000
    assert gifts.authorizationState(giver, signed.nonce) == 1
    with reverts_with("CityGiftsAuthorizationUsed", giver, signed.nonce):
        relay_gift(signed)


def test_a_relayed_gift_refuses_forgeries_windows_and_other_cities(
    gifts, token, new_resident, sign_gift, relay_gift, gifts_domain, reverts_with
):
    giver, receiver, thief = new_resident(CHARGE), new_resident(), new_resident()
    # Signed by another key for the giver's money.
    forged = sign_gift(thief, receiver, 1_000)
    forged = type(forged)(**{**forged.__dict__, "from_": giver.address})
    with reverts_with("CityGiftsInvalidSignature", giver, forged.nonce):
        relay_gift(forged)
    # Its value changed after signing.
    signed = sign_gift(giver, receiver, 1_000)
    altered = type(signed)(**{**signed.__dict__, "value": 2_000})
    with reverts_with("CityGiftsInvalidSignature", giver, signed.nonce):
        relay_gift(altered)
    # Signed for another city's gifts contract (another domain).
    other_city = type(gifts_domain)("Gongju Pay Gifts", "1", gifts_domain.chain_id, token.address)
    from citypay.authorization import GIFT_AUTHORIZATION, sign_authorization

    elsewhere = sign_authorization(
        giver.private_key, other_city, to=receiver.address, value=1_000,
        valid_after=web3.eth.get_block("latest").timestamp - 60,
        valid_before=chain.time() + 3600,
        primary_type=GIFT_AUTHORIZATION,
    )  # fmt: skip
    with reverts_with("CityGiftsInvalidSignature", giver, elsewhere.nonce):
        relay_gift(elsewhere)
    now = chain.time()
    late = sign_gift(giver, receiver, 1_000, valid_after=now - 7200, valid_before=now - 3600)
    with brownie.reverts():
        relay_gift(late)
    early = sign_gift(giver, receiver, 1_000, valid_after=now + 3600, valid_before=now + 7200)
    with brownie.reverts():
        relay_gift(early)
    standing = sign_gift(giver, receiver, 1_000, valid_after=now - 60, valid_before=now + 2 * DAY)
    with brownie.reverts():
        relay_gift(standing)
    assert token.balanceOf(receiver) == 0


def test_a_canceled_authorization_is_never_used(
    gifts, new_resident, sign_gift, relay_gift, gifts_domain, outsider, reverts_with
):
    giver, receiver = new_resident(CHARGE), new_resident()
    signed = sign_gift(giver, receiver, 1_000)
    cancellation = sign_gift_cancellation(giver.private_key, gifts_domain, signed.nonce)
    gifts.cancelGiftAuthorization(giver, signed.nonce, cancellation, {"from": outsider})
    assert gifts.authorizationState(giver, signed.nonce) == 2
    with reverts_with("CityGiftsAuthorizationCanceled", giver, signed.nonce):
        relay_gift(signed)
    # Someone else's signature cannot cancel it.
    other = sign_gift(giver, receiver, 1_000)
    forged = sign_gift_cancellation(receiver.private_key, gifts_domain, other.nonce)
    with reverts_with("CityGiftsInvalidSignature", giver, other.nonce):
        gifts.cancelGiftAuthorization(giver, other.nonce, forged, {"from": outsider})


def test_gift_refusal_answers_before_signing(gifts, new_resident):
    giver, receiver = new_resident(CHARGE), new_resident()
    assert gifts.giftRefusal(giver, receiver, CHARGE) == "0x"
    assert gifts.giftRefusal(giver, receiver, CHARGE + 1) != "0x"
    assert gifts.giftRefusal(giver, giver, 1) != "0x"


def test_the_gifts_link_is_set_once(programs, gifts, city_admin, outsider, reverts_with):
    with reverts_with("CityProgramsGiftsAlreadyLinked", gifts):
        programs.linkGifts(outsider, {"from": city_admin})
    assert programs.gifts() == gifts


def test_a_recovered_wallet_keeps_its_months_gift_count(
    gifts, new_resident, recover_wallet, city_admin
):
    gifts.setMonthlyCaps(50_000, 1_500_000, {"from": city_admin})
    giver, receiver = new_resident(CHARGE), new_resident()
    gifts.gift(receiver, 50_000, {"from": giver})
    replacement = wallet("replacement")
    recover_wallet(giver, replacement)
    assert gifts.giftTallyOf(replacement)["sent"] == 50_000
    assert gifts.giftableOf(replacement) == 0


def test_validity_is_the_citys(programs):
    assert programs.generalValidity() == VALIDITY
