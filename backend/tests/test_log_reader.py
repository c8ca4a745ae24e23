"""The log reader on the session's chain: a dense range is read in chunks narrowed to about the
target (so memory does not grow with the history), every log once and in order, and read ahead
of its caller without changing what the caller sees."""

from __future__ import annotations

import time
from itertools import pairwise

import pytest
from citypay.chain.log_reader import LogReader, read_ahead


def _key(entry: dict) -> tuple[int, int]:
    return int(entry["blockNumber"], 16), int(entry["logIndex"], 16)


def test_a_dense_range_is_read_in_chunks_near_the_target_every_log_once_in_order(chain):
    rpc = chain.deployment.gateway.rpc
    addresses = [w.address for w in chain.deployment.watched_contracts()]
    head = chain.w3.eth.block_number
    whole = rpc.request(
        "eth_getLogs", {"address": addresses, "fromBlock": "0x0", "toBlock": hex(head)}
    )
    assert len(whole) > 60, "the deployment leaves a history of its roles and cities"
    # The deployment's first blocks hold dozens of logs: with a target of 20 a chunk, the reader
    # starts at 16 blocks and narrows.
    reader = LogReader(rpc, addresses, target_logs=20, quiet_logs=20)
    chunks = list(reader.read(0, head))
    read = [entry for chunk in chunks for entry in chunk.logs]
    assert [_key(e) for e in read] == [_key(e) for e in whole]
    assert [c.first for c in chunks] == [0] + [c.last + 1 for c in chunks[:-1]]
    assert chunks[-1].last == head
    dense = [c for c in chunks if len(c.logs) > 20]
    for chunk, following in pairwise(chunks):
        if len(chunk.logs) > 20:
            # The next chunk is as narrow as should hold about 20 of the last one's logs.
            span = chunk.last - chunk.first + 1
            assert following.last - following.first + 1 <= max(1, span * 20 // len(chunk.logs))
    assert dense, "no chunk was over the target: nothing was narrowed"


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
