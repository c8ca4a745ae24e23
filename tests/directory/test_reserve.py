"""Proof of reserve on chain: a city's admin names its custody account and bank key; a statement
the bank signed is recorded by anyone, beside the tokens outstanding; anything else is refused."""

import pytest
from brownie import ZERO_ADDRESS, accounts, web3
from citypay.reserve.statement import Statement, custody_account_hash
from eth_account import Account
from eth_utils import keccak

BANK_KEY = "0x" + keccak(text="reserve-test:bank").hex()
BANK = Account.from_key(BANK_KEY).address
GIMPO_CUSTODY = custody_account_hash("SBX-CUSTODY-GIMPO")
GONGJU_CUSTODY = custody_account_hash("SBX-CUSTODY-GONGJU")


@pytest.fixture
def custody(directory, register, suite, gongju, city_admin):
    """Both cities listed, each with its own custody account at one bank."""
    register("gimpo", "Gimpo Pay", suite)
    register("gongju", "Gongju Pay", gongju)
    directory.setCustody("gimpo", GIMPO_CUSTODY, BANK, {"from": city_admin})
    directory.setCustody("gongju", GONGJU_CUSTODY, BANK, {"from": city_admin})


def block_time() -> int:
    return web3.eth.get_block("latest").timestamp


def statement(balance: int, as_of: int | None = None, account: bytes = GIMPO_CUSTODY):
    return Statement(account, balance, block_time() - 10 if as_of is None else as_of)


def attest(directory, code: str, stated: Statement, signature: bytes | None = None, sender=None):
    return directory.attestReserve(
        code,
        stated.balance,
        stated.as_of,
        stated.sign(BANK_KEY) if signature is None else signature,
        {"from": sender or accounts[9]},
    )


def test_statement_hash_is_the_digest_the_bank_signs(directory):
    stated = statement(1_000_000, 1_700_000_000)
    assert bytes(directory.statementHash(stated.account, 1_000_000, 1_700_000_000)) == (
        stated.digest()
    )


def test_set_custody_names_the_account_and_key_evented(directory, register, suite, city_admin):
    register("gimpo", "Gimpo Pay", suite)
    tx = directory.setCustody("gimpo", GIMPO_CUSTODY, BANK, {"from": city_admin})
    assert tx.events["CustodyConfigured"].values() == [
        "gimpo",
        "0x" + keccak(text="gimpo").hex(),
        "0x" + GIMPO_CUSTODY.hex(),
        BANK,
    ]
    assert directory.custody("gimpo") == ("0x" + GIMPO_CUSTODY.hex(), BANK, 0)


def test_set_custody_refuses_anyone_but_the_city_admin(
    directory, register, suite, issuer, reverts_with
):
    register("gimpo", "Gimpo Pay", suite)
    with reverts_with("CityDirectoryNotCityAdmin", "gimpo", issuer.address):
        directory.setCustody("gimpo", GIMPO_CUSTODY, issuer, {"from": issuer})
    assert directory.custody("gimpo")[1] == ZERO_ADDRESS


def test_set_custody_refuses_an_account_another_city_holds(
    directory, custody, city_admin, reverts_with
):
    with reverts_with("CityDirectoryCustodyTaken", "gongju", GIMPO_CUSTODY):
        directory.setCustody("gongju", GIMPO_CUSTODY, BANK, {"from": city_admin})


@pytest.mark.parametrize(
    ("account", "signer"),
    [(bytes(32), BANK), (GIMPO_CUSTODY, ZERO_ADDRESS)],
    ids=["account", "key"],
)
def test_set_custody_refuses_an_empty_account_or_key(
    directory, register, suite, city_admin, reverts_with, account, signer
):
    register("gimpo", "Gimpo Pay", suite)
    with reverts_with("CityDirectoryInvalidCustody", "gimpo", account, signer):
        directory.setCustody("gimpo", account, signer, {"from": city_admin})


def test_set_custody_refuses_an_unlisted_city(directory, city_admin, reverts_with):
    with reverts_with("CityDirectoryUnknownCity", "ulsan"):
        directory.setCustody("ulsan", GIMPO_CUSTODY, BANK, {"from": city_admin})


def test_changed_custody_frees_the_old_account(directory, custody, city_admin):
    moved = custody_account_hash("SBX-CUSTODY-GIMPO-2")
    directory.setCustody("gimpo", moved, BANK, {"from": city_admin})
    directory.setCustody("gongju", GIMPO_CUSTODY, BANK, {"from": city_admin})
    assert directory.custody("gongju")[0] == "0x" + GIMPO_CUSTODY.hex()


def test_attest_reserve_records_the_statement_beside_the_supply(directory, custody, suite, city):
    stated = statement(80_000)
    signature = stated.sign(BANK_KEY)
    tx = attest(directory, "gimpo", stated, signature)
    assert tx.events["ReserveAttested"].values() == [
        "gimpo",
        "0x" + keccak(text="gimpo").hex(),
        "0x" + GIMPO_CUSTODY.hex(),
        80_000,
        stated.as_of,
        suite.token.totalSupply(),
        "0x" + stated.digest().hex(),
        BANK,
        "0x" + signature.hex(),
    ]
    assert suite.token.totalSupply() == 2 * (100_000 + 10_000)  # two charges, 10% incentive
    assert directory.custody("gimpo")[2] == stated.as_of


def test_attest_reserve_records_a_shortfall_as_it_is(directory, custody, city):
    """The record is the bank's word, short or not: the auditor's check is what fails."""
    tx = attest(directory, "gimpo", statement(1))
    assert tx.events["ReserveAttested"]["balance"] == 1
    assert tx.events["ReserveAttested"]["outstanding"] == 220_000


def test_attest_reserve_refuses_a_forged_statement(directory, custody, reverts_with):
    stated = statement(10**12)
    forged = stated.sign("0x" + keccak(text="not the bank").hex())
    with reverts_with("CityDirectoryInvalidStatement", "gimpo", stated.digest()):
        attest(directory, "gimpo", stated, forged)


def test_attest_reserve_refuses_a_changed_balance(directory, custody, reverts_with):
    signed = statement(1_000)
    raised = Statement(signed.account, 1_000_000, signed.as_of)
    with reverts_with("CityDirectoryInvalidStatement", "gimpo", raised.digest()):
        attest(directory, "gimpo", raised, signed.sign(BANK_KEY))


def test_attest_reserve_refuses_another_citys_statement(directory, custody, reverts_with):
    """Gongju's statement, from the same bank, signed for Gongju's account: never Gimpo's."""
    gongju_statement = statement(10**9, account=GONGJU_CUSTODY)
    as_gimpo = Statement(GIMPO_CUSTODY, gongju_statement.balance, gongju_statement.as_of)
    with reverts_with("CityDirectoryInvalidStatement", "gimpo", as_gimpo.digest()):
        attest(directory, "gimpo", as_gimpo, gongju_statement.sign(BANK_KEY))
    attest(directory, "gongju", gongju_statement)  # where it belongs


@pytest.mark.parametrize("signature", [b"", b"\0" * 65, b"\1" * 64], ids=["empty", "zero", "short"])
def test_attest_reserve_refuses_a_malformed_signature(directory, custody, reverts_with, signature):
    stated = statement(1_000)
    with reverts_with("CityDirectoryInvalidStatement", "gimpo", stated.digest()):
        attest(directory, "gimpo", stated, signature)


def test_attest_reserve_refuses_a_replayed_or_older_statement(directory, custody, reverts_with):
    first = statement(5_000)
    attest(directory, "gimpo", first)
    with reverts_with("CityDirectoryStaleStatement", "gimpo", first.as_of, first.as_of):
        attest(directory, "gimpo", first)
    older = statement(9_000, first.as_of - 1)
    with reverts_with("CityDirectoryStaleStatement", "gimpo", older.as_of, first.as_of):
        attest(directory, "gimpo", older)


def test_attest_reserve_refuses_a_statement_from_the_future(
    directory, custody, reverts_with, pin_next_block_time
):
    now = pin_next_block_time()
    skew = directory.STATEMENT_CLOCK_SKEW()
    ahead = statement(5_000, now + skew + 1)
    with reverts_with("CityDirectoryFutureStatement", "gimpo", now + skew + 1, now):
        attest(directory, "gimpo", ahead)


def test_attest_reserve_takes_a_statement_within_the_clock_skew(
    directory, custody, pin_next_block_time
):
    """The bank's clock a little ahead of the chain's."""
    now = pin_next_block_time()
    attest(directory, "gimpo", statement(5_000, now + directory.STATEMENT_CLOCK_SKEW()))


def test_attest_reserve_refuses_a_city_without_custody(directory, register, suite, reverts_with):
    register("gimpo", "Gimpo Pay", suite)
    with reverts_with("CityDirectoryNoCustody", "gimpo"):
        attest(directory, "gimpo", statement(1))


def test_a_new_bank_key_refuses_the_old_banks_statements(
    directory, custody, city_admin, reverts_with
):
    other_key = "0x" + keccak(text="reserve-test:new bank").hex()
    directory.setCustody(
        "gimpo", GIMPO_CUSTODY, Account.from_key(other_key).address, {"from": city_admin}
    )
    stated = statement(1_000)
    with reverts_with("CityDirectoryInvalidStatement", "gimpo", stated.digest()):
        attest(directory, "gimpo", stated)
    attest(directory, "gimpo", stated, stated.sign(other_key))
