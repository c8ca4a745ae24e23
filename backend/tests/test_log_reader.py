"""The log reader on a real chain: every log once and in order, in chunks of at most `max_logs`
logs but for a block that alone holds more, even where dense blocks follow a quiet stretch the
span was widened over (so memory does not grow with the history); and read ahead of its caller
without changing what the caller sees."""

from __future__ import annotations

import time

import pytest
from citypay.chain.log_reader import LogReader, read_ahead
from eth_utils import keccak
from platform_harness import deployed_chain, new_wallet

CITY = "gimpo"


def _key(entry: dict) -> tuple[int, int]:
    return int(entry["blockNumber"], 16), int(entry["logIndex"], 16)


@pytest.fixture
def own_chain(tmp_path_factory):
    """A chain of this test's own: it stops mining on time and mines when told, which the shared
    chain's users would not like."""
    yield from deployed_chain(tmp_path_factory.mktemp("dense-chain"))


def _mine_registrations(chain, count: int, label: str) -> int:
    """One block holding `count` resident registrations (two logs each: the registry's and the
    token's), sent without waiting and mined with evm_mine; its number."""
    city = chain.deployment.city(CITY)
    registrar = chain.signer(city.roles["registrar"])
    nonce = chain.w3.eth.get_transaction_count(registrar.address, "pending")
    for index in range(count):
        wallet = new_wallet(f"{label}:{index}").address
        call = city.registry.functions.registerResident(wallet, keccak(text=f"id:{wallet}"), 41570)
        transaction = call.build_transaction(
            {
                "from": registrar.address,
                "nonce": nonce + index,
                "gas": 1_000_000,
                "gasPrice": 0,
                "chainId": chain.chain_id,
            }
        )
        chain.w3.eth.send_raw_transaction(registrar.sign_transaction(transaction).raw_transaction)
    chain.w3.provider.make_request("evm_mine", [])
    block = chain.w3.eth.get_block("latest", full_transactions=False)
    assert len(block["transactions"]) == count
    return block["number"]


def test_dense_blocks_after_a_quiet_stretch_come_back_in_chunks_within_the_bound(own_chain):
    rpc = own_chain.deployment.gateway.rpc
    addresses = [w.address for w in own_chain.deployment.watched_contracts()]
    own_chain.w3.provider.make_request("evm_setIntervalMining", [0])
    # The deployment's blocks, 300 empty ones the reader widens its span over, three blocks of
    # 120 logs each, a few quiet blocks, one of two logs, and a quiet tail.
    own_chain.w3.provider.make_request("anvil_mine", [hex(300)])
    dense = [_mine_registrations(own_chain, 60, f"dense-{block}") for block in range(3)]
    own_chain.w3.provider.make_request("anvil_mine", [hex(20)])
    _mine_registrations(own_chain, 1, "sparse")
    own_chain.w3.provider.make_request("anvil_mine", [hex(5)])
    head = own_chain.w3.eth.block_number
    whole = rpc.request(
        "eth_getLogs", {"address": addresses, "fromBlock": "0x0", "toBlock": hex(head)}
    )
    assert len(whole) > 400

    reader = LogReader(rpc, addresses, max_logs=50)
    chunks = list(reader.read(0, head))
    read = [entry for chunk in chunks for entry in chunk.logs]
    assert [_key(e) for e in read] == [_key(e) for e in whole]
    assert [c.first for c in chunks] == [0] + [c.last + 1 for c in chunks[:-1]]
    assert chunks[-1].last == head
    for chunk in chunks:
        if len(chunk.logs) > 50:
            assert chunk.first == chunk.last, (chunk.first, chunk.last, len(chunk.logs))
    assert {(block, block) for block in dense} <= {(c.first, c.last) for c in chunks}
    # The span never narrowed (no refusal), so it was at least as wide as the quiet stretch when
    # the dense blocks came: without the bound they would have come back in one chunk.
    assert reader.narrowed == 0
    assert max(c.last - c.first + 1 for c in chunks if c.last < dense[0]) >= 300
    unbounded = LogReader(rpc, addresses, max_logs=10**9)  # a bound the gas never reaches
    assert any(c.first <= dense[0] and dense[-1] <= c.last for c in unbounded.read(0, head)), (
        "the history does not show what the bound is for"
    )


def test_reading_ahead_keeps_the_order_and_raises_where_the_reading_failed():
    def chunks():
        yield from (1, 2, 3)
        raise RuntimeError("the node went away")

    seen = []
    with pytest.raises(RuntimeError, match="the node went away"):
        for chunk in read_ahead(chunks()):
            seen.append(chunk)
    assert seen == [1, 2, 3]


def test_a_caller_that_stops_early_stops_the_reading():
    produced = []

    def endless():
        number = 0
        while True:
            number += 1
            produced.append(number)
            yield number

    for chunk in read_ahead(endless(), depth=1):
        if chunk == 3:
            break
    time.sleep(0.3)
    settled = len(produced)
    time.sleep(0.3)
    assert len(produced) == settled <= 6, "the read-ahead thread went on after its caller left"
