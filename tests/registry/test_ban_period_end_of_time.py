"""A ban period past the end of time bans for good instead of overflowing (issue 9, item 5):
`setBanPeriod(type(uint64).max)` then `revoke(m, true)` used to panic in `block.timestamp +
banPeriod`."""

import pytest
from brownie import web3

from scripts.city_suite import signed_application

END_OF_TIME = 2**64 - 1
YEAR = 365 * 86_400


@pytest.fixture
def banned_for_good(registry, city_admin, registrar, city, merchant):
    """The merchant revoked for illegal exchange under the longest ban period: the revoking tx."""
    registry.setBanPeriod(END_OF_TIME, {"from": city_admin})
    return registry.revoke(merchant, True, {"from": registrar})


def test_set_ban_period_takes_the_largest_uint64_and_emits_old_and_new(registry, city_admin):
    tx = registry.setBanPeriod(END_OF_TIME, {"from": city_admin})
    assert tx.events["BanPeriodChanged"].values() == [YEAR, END_OF_TIME]
    assert registry.banPeriod() == END_OF_TIME


def test_revoke_for_illegal_exchange_under_the_longest_ban_period_bans_until_the_end_of_time(
    merchant, helpers, banned_for_good, as_hex
):
    assert banned_for_good.events["BusinessBanned"].values() == [
        as_hex(helpers.business_hash(merchant.address)),
        END_OF_TIME,
    ]


def test_the_business_stays_banned_until_the_end_of_time(
    registry, merchant, helpers, banned_for_good
):
    assert registry.bannedUntil(helpers.business_hash(merchant.address)) == END_OF_TIME


def test_a_business_banned_for_good_cannot_register_a_new_wallet(
    registry, registrar, merchant, new_wallet, helpers, banned_for_good, reverts_with
):
    successor = new_wallet("banned-for-good:successor")
    business = helpers.business_hash(merchant.address)
    application = (business, helpers.account_hash("successor"), 100_000_000, 5611, 41570)
    with reverts_with("CityRegistryBusinessBanned", business, END_OF_TIME):
        registry.registerMerchant(
            *signed_application(registry, successor, application), {"from": registrar}
        )


@pytest.mark.parametrize(
    ("past_the_end", "until"),
    [(-1, END_OF_TIME - 1), (0, END_OF_TIME), (1, END_OF_TIME)],
    ids=["a-second-before-the-end", "at-the-end", "a-second-past-the-end"],
)
def test_a_ban_ends_when_its_period_says_or_at_the_end_of_time(
    registry, city_admin, registrar, city, merchant, pin_next_block_time, past_the_end, until
):
    revoked_at = pin_next_block_time() + 10
    registry.setBanPeriod(END_OF_TIME - revoked_at + past_the_end, {"from": city_admin})
    web3.provider.make_request("evm_setNextBlockTimestamp", [revoked_at])
    tx = registry.revoke(merchant, True, {"from": registrar})
    assert tx.events["BusinessBanned"]["until"] == until
