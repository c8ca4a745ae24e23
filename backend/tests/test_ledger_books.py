"""The books on hand-made event sequences: each figure as the events mean it."""

from __future__ import annotations

import time
from itertools import count

from citypay.chain.events import ChainEvent
from citypay.ledger import Books, Figures
from citypay.ledger.books import ZERO_ADDRESS, fiscal_year
from citypay.reserve.statement import Statement, custody_account_hash
from eth_account import Account
from eth_utils import keccak

RESIDENT = "0x" + "a1" * 20
OTHER_RESIDENT = "0x" + "a2" * 20
MERCHANT = "0x" + "b1" * 20
REPLACEMENT = "0x" + "c1" * 20
T0 = 1_767_225_600  # 2026-01-01 00:00 UTC


class Chain:
    """Events numbered as a node would: one per log, blocks one second apart."""

    def __init__(self) -> None:
        self.log_index = count()
        self.block = 100
        self.events: list[ChainEvent] = []

    def __call__(self, contract: str, event: str, **args) -> None:
        self.block += 1
        self.events.append(
            ChainEvent(
                city="gimpo", contract=contract, event=event, block_number=self.block,
                block_hash=f"0x{self.block:064x}", block_time=T0 + self.block,
                tx_hash=f"0x{self.block:064x}", log_index=next(self.log_index), args=args,
            )
        )  # fmt: skip

    def register(self, wallet: str, kind: int) -> None:
        self("token", "AccountStatusSet", account=wallet, kind=kind, active=True)
        if kind == 1:
            self("registry", "ResidentRegistered", wallet=wallet, identityHash="0x01", region=7)
        else:
            self("registry", "MerchantRegistered", wallet=wallet, businessIdHash="0x02",
                 category=5411, region=7, annualRevenue=1, payoutAccountHash="0x03")  # fmt: skip

    def charge(self, resident: str, amount: int, incentive: int) -> None:
        self(
            "token",
            "Transfer",
            **{"from": ZERO_ADDRESS, "to": resident, "value": amount + incentive},
        )
        self("treasury", "Issued", resident=resident, depositReference="0x04", issuer=ZERO_ADDRESS,
             amount=amount, incentive=incentive)  # fmt: skip

    def pay(self, payer: str, merchant: str, value: int) -> None:
        self("token", "Transfer", **{"from": payer, "to": merchant, "value": value})

    def redeem(self, number: int, account: str, kind: int, burned: int, payout: int) -> None:
        self("token", "Transfer", **{"from": account, "to": ZERO_ADDRESS, "value": burned})
        self("treasury", "RedemptionRequested", id=number, account=account, kind=kind,
             burned=burned, payout=payout, payoutAccountHash="0x05")  # fmt: skip


def _day() -> Chain:
    chain = Chain()
    chain.register(RESIDENT, 1)
    chain.register(OTHER_RESIDENT, 1)
    chain.register(MERCHANT, 2)
    chain.charge(RESIDENT, 100_000, 10_000)
    chain.charge(OTHER_RESIDENT, 50_000, 5_000)
    chain.pay(RESIDENT, MERCHANT, 30_000)
    chain.pay(RESIDENT, MERCHANT, 12_345)
    chain.pay(OTHER_RESIDENT, MERCHANT, 40_000)
    chain.pay(RESIDENT, MERCHANT, 0)
    # A refund moves tokens merchant -> resident and says so with Refunded.
    chain.pay(MERCHANT, RESIDENT, 2_345)
    chain("token", "Refunded", merchant=MERCHANT, payer=RESIDENT, paymentId="0x06", value=2_345)
    chain.redeem(0, MERCHANT, 0, 50_000, 50_000)
    chain.redeem(1, MERCHANT, 0, 20_000, 20_000)
    chain.redeem(2, MERCHANT, 0, 1_000, 1_000)
    chain("treasury", "RedemptionSettled", id=0, account=MERCHANT, payout=50_000,
          bankReference="0x07")  # fmt: skip
    chain("token", "Transfer", **{"from": ZERO_ADDRESS, "to": MERCHANT, "value": 20_000})
    chain("treasury", "RedemptionReturned", id=1, account=MERCHANT, restored=20_000, reason="0x08")
    return chain


def test_city_figures_follow_charges_payments_refunds_and_cash_outs():
    books = Books().apply_all(_day().events)
    city = books.cities["gimpo"].summary()
    assert {k: city[k] for k in ("charged", "incentive", "issued", "paid", "payments")} == {
        "charged": 150_000, "incentive": 15_000, "issued": 165_000,
        "paid": 82_345, "payments": 4,
    }  # fmt: skip
    assert (city["refunded"], city["refunds"]) == (2_345, 1)
    assert (city["cashed_out"], city["burned"], city["settled"]) == (71_000, 71_000, 50_000)
    assert (city["returned"], city["outstanding"], city["redemptions_pending"]) == (
        20_000,
        1_000,
        1,
    )
    # supply from Transfers == issued - burned + returned
    assert city["supply"] == 165_000 - 71_000 + 20_000
    assert books.anomalies == []


def test_merchant_and_resident_figures_are_seen_from_their_side():
    gimpo = Books().apply_all(_day().events).cities["gimpo"]
    merchant = gimpo.accounts[MERCHANT].as_dict()
    assert merchant["kind"] == "merchant" and merchant["category"] == 5411
    assert (merchant["received"], merchant["payments"], merchant["refunded"]) == (82_345, 4, 2_345)
    assert (merchant["cashed_out"], merchant["settled"], merchant["returned"]) == (
        71_000,
        50_000,
        20_000,
    )
    assert merchant["outstanding"] == 1_000
    assert merchant["balance"] == 82_345 - 2_345 - 71_000 + 20_000
    resident = gimpo.accounts[RESIDENT].as_dict()
    assert (resident["charged"], resident["paid"], resident["payments"]) == (100_000, 42_345, 3)
    assert resident["refunded"] == 2_345
    assert resident["balance"] == 110_000 - 42_345 + 2_345
    statuses = {r.id: (r.status, r.closed_at is not None) for r in gimpo.redemptions.values()}
    assert statuses == {0: ("settled", True), 1: ("returned", True), 2: ("pending", False)}


def test_a_resident_refund_claws_back_the_unused_incentive_unless_returned():
    chain = Chain()
    chain.register(RESIDENT, 1)
    chain.charge(RESIDENT, 100_000, 10_000)
    chain.redeem(0, RESIDENT, 1, 40_000, 36_364)
    figures = Books().apply_all(chain.events).cities["gimpo"].figures
    assert (figures.resident_refunded, figures.outstanding, figures.clawed_back) == (
        40_000,
        36_364,
        3_636,
    )
    chain("token", "Transfer", **{"from": ZERO_ADDRESS, "to": RESIDENT, "value": 40_000})
    chain("treasury", "RedemptionReturned", id=0, account=RESIDENT, restored=40_000, reason="0x08")
    figures = Books().apply_all(chain.events).cities["gimpo"].figures
    assert (figures.returned, figures.outstanding, figures.clawed_back) == (40_000, 0, 0)


def test_a_recovered_wallet_is_no_payment_and_its_replacement_takes_over():
    chain = Chain()
    chain.register(RESIDENT, 1)
    chain.register(MERCHANT, 2)
    chain.charge(RESIDENT, 10_000, 0)
    chain.pay(RESIDENT, REPLACEMENT, 10_000)  # the recovery's movement, to a fresh wallet
    chain("token", "AccountRecovered", lost=RESIDENT, replacement=REPLACEMENT, balance=10_000)
    chain.pay(REPLACEMENT, MERCHANT, 4_000)
    gimpo = Books().apply_all(chain.events).cities["gimpo"]
    assert (gimpo.figures.paid, gimpo.figures.payments) == (4_000, 1)
    assert gimpo.accounts[RESIDENT].status == "recovered"
    assert gimpo.accounts[REPLACEMENT].kind == "resident"
    assert gimpo.current_wallet(RESIDENT) == REPLACEMENT


def test_contradicting_events_are_kept_as_anomalies():
    chain = _day()
    chain("treasury", "RedemptionSettled", id=0, account=MERCHANT, payout=50_000,
          bankReference="0x09")  # fmt: skip
    chain("treasury", "RedemptionSettled", id=9, account=MERCHANT, payout=1, bankReference="0x09")
    chain.pay(OTHER_RESIDENT, MERCHANT, 10**9)
    books = Books().apply_all(chain.events)
    assert [a.code for a in books.anomalies] == [
        "redemption_closed_twice", "redemption_unknown", "negative_balance",
    ]  # fmt: skip


def test_movements_reach_subscribers_with_their_block_time():
    books = Books()
    seen = []
    books.subscribe(seen.append)
    books.apply_all(_day().events)
    kinds = [m.kind for m in seen]
    assert kinds.count("payment") == 4 and kinds.count("charge") == 2
    assert {"refund", "redemption", "settlement", "return"} <= set(kinds)
    assert all(m.block_time > T0 for m in seen)


def test_fiscal_years_turn_at_korean_midnight():
    # 2025-12-31 15:00 UTC is 2026-01-01 00:00 in Korea.
    assert fiscal_year(1_767_193_199, 1) == 2025
    assert fiscal_year(1_767_193_200, 1) == 2026
    assert fiscal_year(1_767_193_200, 3) == 2025


def test_a_hundred_thousand_payments_fold_in_seconds():
    chain = Chain()
    chain.register(RESIDENT, 1)
    chain.register(MERCHANT, 2)
    chain.charge(RESIDENT, 100_000_000, 0)
    for _ in range(100_000):
        chain.pay(RESIDENT, MERCHANT, 1_000)
    started = time.perf_counter()
    books = Books().apply_all(chain.events)
    elapsed = time.perf_counter() - started
    assert books.cities["gimpo"].figures.payments == 100_000
    assert elapsed < 5, f"folding 100,000 payments took {elapsed:.1f} s"


def test_the_word_by_word_decoder_gives_what_eth_abi_gives():
    """decode_log reads one-word values itself; eth_abi must agree on every type the ABIs use."""
    from citypay.chain.events import _json_value, _shapes, decode_log
    from eth_abi import decode, encode

    samples = {
        "address": MERCHANT, "uint256": 2**256 - 1, "uint8": 3, "uint16": 5411, "uint32": 41570,
        "uint64": 2**64 - 1, "bool": True, "bytes32": b"\x07" * 32, "int256": -5,
    }  # fmt: skip
    for contract in ("token", "registry", "treasury", "directory"):
        for topic, shape in _shapes(contract).items():
            types = [t for _, t in shape.indexed] + list(shape.data_types)
            if not all(t in samples for t in types):
                continue  # dynamic values go through eth_abi itself
            topics = ["0x" + topic.hex()] + [
                "0x" + encode([t], [samples[t]]).hex() for _, t in shape.indexed
            ]
            data = encode(list(shape.data_types), [samples[t] for t in shape.data_types])
            log = {"topics": topics, "data": "0x" + data.hex(), "blockNumber": "0x1",
                   "blockHash": "0x" + "ab" * 32, "transactionHash": "0x" + "cd" * 32,
                   "logIndex": "0x0", "address": ZERO_ADDRESS}  # fmt: skip
            expected = {
                name: _json_value(t, decode([t], encode([t], [samples[t]]))[0])
                for name, t in [
                    *shape.indexed,
                    *zip(shape.data_names, shape.data_types, strict=True),
                ]
            }
            assert decode_log(log, "gimpo", contract, 1).args == expected, shape.name


def test_the_books_leave_unread_only_what_nothing_reads():
    """What the auditor may count without decoding: events no handler reads, and a payment's
    AuthorizationUsed while no subscriber wants its payment id."""
    books = Books()
    unread = books.unread("token")
    assert "AuthorizationUsed" in unread and "Transfer" not in unread
    assert "Issued" not in books.unread("treasury")
    assert books.unread("directory") == set()
    books.subscribe(lambda movement: None)
    assert "AuthorizationUsed" not in books.unread("token")
    books.observe(lambda city, event: None)
    assert books.unread("token") == set()


def test_a_tallied_event_counts_as_a_read_one():
    tallied = Books()
    tallied.tally("gimpo", 7)
    tallied.tally("gimpo", 9)
    summary = tallied.city("gimpo").summary()
    assert (summary["events"], summary["first_block"], summary["last_block"]) == (2, 7, 9)


def test_tokens_minted_after_a_statements_time_are_not_owed_by_it():
    """The bank's balance at the statement's time against the supply then: a deposit minted
    after it, before the statement was recorded, is no shortfall (its KRW reached the bank
    after the statement)."""
    key = "0x" + keccak(text="books-test:bank").hex()
    bank = Account.from_key(key).address
    account = custody_account_hash("SBX-CUSTODY-GIMPO")
    chain = Chain()
    chain("directory", "CustodyConfigured", code="gimpo", account="0x" + account.hex(), signer=bank)
    chain.charge(RESIDENT, 1_000, 0)
    as_of = T0 + chain.block  # the first charge's last block
    chain.charge(RESIDENT, 500, 0)  # in blocks after the statement's time
    statement = Statement(account, 1_000, as_of)
    chain(
        "directory", "ReserveAttested", code="gimpo", account="0x" + account.hex(),
        balance=1_000, asOf=as_of, outstanding=1_500,
        statementHash="0x" + statement.digest().hex(), signer=bank,
        signature="0x" + statement.sign(key).hex(),
    )  # fmt: skip
    [recorded] = Books().apply_all(chain.events).city("gimpo").reserve
    assert (recorded.owed, recorded.margin, recorded.supply_at_record) == (1_000, 0, 1_500)
    assert recorded.as_dict()["verified"] is True


def _cashback(chain: Chain, resident: str, minted: int, from_debt: int = 0) -> None:
    """A payment's cashback settled: the mint's Transfer, then the cashback contract's event."""
    if minted:
        chain("token", "Transfer", **{"from": ZERO_ADDRESS, "to": resident, "value": minted})
    chain("cashback", "CashbackPaid", payer=resident, merchant=MERCHANT, paymentId="0x06",
          resident=resident, base=minted * 10, bps=1_000, minted=minted,
          fromDebt=from_debt)  # fmt: skip


def _reversal(chain: Chain, resident: str, amount: int, burned: int) -> None:
    if burned:
        chain("token", "Transfer", **{"from": resident, "to": ZERO_ADDRESS, "value": burned})
    chain("cashback", "CashbackReversed", payer=resident, merchant=MERCHANT, paymentId="0x06",
          resident=resident, base=amount * 10, amount=amount, burned=burned)  # fmt: skip


def _cashback_city() -> Chain:
    """A cashback city's day: 10% back on a payment of 50,000, a refund of 30,000 of it whose
    cashback the resident, having spent the rest, covers only in part."""
    chain = Chain()
    chain("cashback", "CashbackBudgetChanged", oldBudget=0, newBudget=1_000_000)
    chain("treasury", "IncentiveModeChanged", oldMode=0, newMode=1)
    chain.register(RESIDENT, 1)
    chain.register(MERCHANT, 2)
    chain.charge(RESIDENT, 50_000, 0)
    chain.pay(RESIDENT, MERCHANT, 50_000)
    _cashback(chain, RESIDENT, 5_000)
    chain.pay(MERCHANT, RESIDENT, 30_000)
    chain("token", "Refunded", merchant=MERCHANT, payer=RESIDENT, paymentId="0x06", value=30_000)
    chain.pay(RESIDENT, MERCHANT, 33_000)
    _reversal(chain, RESIDENT, 3_000, 2_000)
    return chain


def test_cashback_is_incentive_minted_and_a_reversal_burns_what_it_can_and_owes_the_rest():
    books = Books().apply_all(_cashback_city().events)
    city = books.cities["gimpo"]
    figures = city.figures
    assert (figures.charged, figures.incentive, figures.issued) == (50_000, 5_000, 55_000)
    assert (figures.cashback, figures.cashbacks) == (5_000, 1)
    assert (figures.cashback_reversed, figures.burned, figures.clawed_back) == (2_000,) * 3
    assert figures.cashback_owed == 1_000
    # supply == issued - burned + returned, as the treasury's totals() count cashback
    assert city.supply == figures.issued - figures.burned == 53_000
    assert (city.incentive_mode, city.cashback_budget) == ("cashback", 1_000_000 - 5_000 + 3_000)
    resident = city.accounts[RESIDENT]
    assert resident.figures.as_dict() == Figures(
        charged=50_000, incentive=5_000, issued=55_000, paid=83_000, payments=2,
        refunded=30_000, refunds=1, burned=2_000, clawed_back=2_000, cashback=5_000,
        cashbacks=1, cashback_reversed=2_000, cashback_owed=1_000,
    ).as_dict()  # fmt: skip
    assert resident.balance == 0
    assert city.issued_by_fiscal_year(1) == {2026: 55_000}
    assert books.anomalies == []


def test_a_cashback_debt_follows_a_recovered_wallet_and_is_set_against_its_next_cashback():
    chain = _cashback_city()
    chain.pay(RESIDENT, REPLACEMENT, 0)  # the recovery's movement of an empty wallet
    chain("token", "AccountRecovered", lost=RESIDENT, replacement=REPLACEMENT, balance=0)
    chain.charge(REPLACEMENT, 20_000, 0)
    chain.pay(REPLACEMENT, MERCHANT, 20_000)
    _cashback(chain, REPLACEMENT, 1_200, from_debt=800)  # 2,000 earned, 800 of it owed
    books = Books().apply_all(chain.events)
    city = books.cities["gimpo"]
    assert city.accounts[RESIDENT].figures.cashback_owed == 0
    replacement = city.accounts[REPLACEMENT].figures
    assert (replacement.cashback, replacement.cashback_owed) == (1_200, 200)
    assert (city.figures.cashback, city.figures.cashback_owed) == (6_200, 200)
    assert city.cashback_budget == 1_000_000 - 5_000 + 3_000 - 2_000
    assert {city.current_wallet(w) for w in city.cashback_debtors} == {REPLACEMENT}
    assert books.anomalies == []


def test_cashback_set_against_a_debt_the_events_never_owed_is_an_anomaly():
    chain = Chain()
    chain.register(RESIDENT, 1)
    _cashback(chain, RESIDENT, 0, from_debt=700)
    books = Books().apply_all(chain.events)
    [anomaly] = books.anomalies
    assert anomaly.code == "cashback_debt_unknown" and "700 won" in anomaly.message


def test_the_auditor_counts_only_the_cashback_events_it_does_not_read():
    unread = Books().unread("cashback")
    assert {"CashbackPaid", "CashbackReversed", "CashbackBudgetChanged"}.isdisjoint(unread)
    assert {"CashbackRefused", "CashbackTermsChanged"} <= unread
