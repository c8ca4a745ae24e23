"""`eth_getLogs` over long block ranges, in chunks that adapt to what the node accepts and that
hold a bounded number of logs however long and dense the history.

Nodes cap a query by block span, result count or response time, each differently (geth and Besu
by result count and time, hosted nodes by span). The reader starts narrow, halves the span when
the node refuses or times out, widens it again after quiet chunks, and gives up with the node's
own words only after a bounded number of attempts on one block.

What a chunk may hold is known before it is asked for: a block's header says how much gas it
used, and gas pays for logs, so a chunk of more than one block ends before its blocks' gas could
pay for more than `max_logs` logs. A span widened over quiet blocks therefore shrinks to one
block on a busy city's blocks of thousands of payments, and the reader's memory (a chunk at a
time) does not grow with the history. Only a block that alone holds more than `max_logs` logs
comes back as a bigger chunk: a block is the smallest range eth_getLogs takes (splitting its
logs by address or topic would still leave one contract's logs of the block in one answer, out
of order with the others').

The bound is the worst case (logs that cost nothing but their 375 gas), so chunks of payments,
about 20,000 gas a log, hold about a hundredth of `max_logs`; and it costs a header for every
block read in chunks of more than one, which on long empty stretches is most of the read (anvil:
34 µs a header, where eth_getLogs takes 2 µs an empty block). A chunk of one block asks for its
header only for its hash: each chunk carries the hash its last block had before its logs were
read, which the caller compares with the hash after (a reorg under the read, even where the last
block has no log).

`read_ahead` asks for the next chunk while the caller works on the last, so the node's time and
the caller's overlap.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass

from eth_utils import to_checksum_address

from citypay.chain.rpc import ChainError, JsonRpc

log = logging.getLogger(__name__)

# A log costs at least 375 gas (LOG0: no topic, no data), and refunds give back at most half of a
# transaction's gas (a fifth since London): a block that used g gas holds at most 2g / 375 logs,
# whoever emitted them.
LOG_GAS = 375
# Headers asked for in one JSON-RPC batch: Erigon refuses batches of more than 100 calls by
# default (geth 1,000, Besu 1,024).
HEADERS_PER_BATCH = 100


class LogReadError(RuntimeError):
    """The node kept refusing a range the reader could not narrow further."""


@dataclass
class Chunk:
    first: int
    last: int
    logs: list[dict]  # raw entries, hex strings as the node sent them, blockTimestamp filled
    # The hash of the last block as read before the logs (None: not there yet). The same hash
    # read after them says the chain did not change under the read, below it either: a block's
    # hash commits to its parent's.
    last_hash: str | None


class LogReader:
    def __init__(
        self,
        rpc: JsonRpc,
        addresses: list[str],
        *,
        max_span: int = 10_000,
        initial_span: int = 16,
        attempts: int = 6,
        backoff: float = 0.2,
        quiet_logs: int = 2_000,
        max_logs: int = 20_000,
    ) -> None:
        if max_logs < 1:
            raise ValueError(f"max_logs={max_logs}: a chunk must be allowed at least one log")
        self.rpc = rpc
        self.addresses = [to_checksum_address(a) for a in addresses]
        self.max_span = max_span
        self.span = min(initial_span, max_span)
        self.attempts = attempts
        self.backoff = backoff
        # A chunk with fewer logs than this lets the next one be twice as wide (the node's limits
        # are far); one with more keeps the span, so a node that refuses answers over its result
        # limit is not asked for one again and again.
        self.quiet_logs = quiet_logs
        self.max_logs = max_logs
        self.narrowed = 0  # times a span was halved: the node's limits, seen from here

    def head(self) -> int:
        return int(self.rpc.request("eth_blockNumber"), 16)

    def latest(self) -> tuple[int, int]:
        """The head's number and timestamp, in one call."""
        block = self.rpc.request("eth_getBlockByNumber", "latest", False)
        return int(block["number"], 16), int(block["timestamp"], 16)

    def headers(self, numbers: list[int]) -> dict[int, dict | None]:
        """Block headers by height in one JSON-RPC batch; None above the head."""
        blocks = self.rpc.batch_results(
            [("eth_getBlockByNumber", [hex(number), False]) for number in numbers]
        )
        return dict(zip(numbers, blocks, strict=True))

    def block_hashes(self, numbers: list[int]) -> dict[int, str | None]:
        """The chain's block hash at each height (None above the head)."""
        return {
            number: (block["hash"] if block else None)
            for number, block in self.headers(numbers).items()
        }

    def _fill_timestamps(self, logs: list[dict]) -> None:
        # anvil and recent geth put blockTimestamp in each log; others need the block headers.
        missing = sorted({int(e["blockNumber"], 16) for e in logs if "blockTimestamp" not in e})
        blocks = self.headers(missing)
        for entry in logs:
            if "blockTimestamp" not in entry:
                entry["blockTimestamp"] = blocks[int(entry["blockNumber"], 16)]["timestamp"]

    def _gas_used(self, first: int, last: int) -> dict[int, tuple[int, str | None]]:
        """The gas each block in [first, last] used (0 above the head: no block, no logs) and
        its hash."""
        return {
            number: (int(block["gasUsed"], 16), block["hash"]) if block else (0, None)
            for number, block in self.headers(list(range(first, last + 1))).items()
        }

    def _chunk_end(
        self, start: int, end: int, ahead: dict[int, tuple[int, str | None]]
    ) -> tuple[int, str | None]:
        """The last block of the chunk that starts at `start` and its hash: `end`, or the block
        before the one whose gas could pay for more than max_logs logs in the chunk (`start`
        itself whatever it used: a block cannot be split). `ahead` holds the gas and hash of
        blocks fetched but not yet in a chunk; the chunk's own are taken out of it."""
        if start == end:  # one block: nothing to bound, its header only for its hash
            if end in ahead:
                return end, ahead.pop(end)[1]
            return end, self.block_hashes([end])[end]
        budget = self.max_logs * LOG_GAS // 2
        spent = 0
        last_hash = None
        for number in range(start, end + 1):
            if number not in ahead:
                ahead.update(self._gas_used(number, min(end, number + HEADERS_PER_BATCH - 1)))
            gas, block_hash = ahead[number]
            spent += gas
            if spent > budget and number > start:
                return number - 1, last_hash
            del ahead[number]
            last_hash = block_hash
        return end, last_hash

    def _get_logs(self, first: int, last: int) -> list[dict]:
        query = {"address": self.addresses, "fromBlock": hex(first), "toBlock": hex(last)}
        return self.rpc.request("eth_getLogs", query)

    def read(self, first: int, last: int) -> Iterator[Chunk]:
        """Every log of the watched addresses in [first, last], one chunk at a time, in order."""
        start = first
        failures = 0
        ahead: dict[int, tuple[int, str | None]] = {}  # blocks past the last chunk, by height
        while start <= last:
            end, end_hash = self._chunk_end(start, min(start + self.span - 1, last), ahead)
            try:
                logs = self._get_logs(start, end)
            except ChainError as refusal:  # refused, or no answer in time
                # Narrowing is bounded by log2(span); only at one block are attempts counted.
                if end > start:
                    self.span = max(1, (end - start + 1) // 2)
                    self.narrowed += 1
                else:
                    failures += 1
                    if failures >= self.attempts:
                        raise LogReadError(
                            f"eth_getLogs for block {start} failed {failures} times at a span "
                            f"of one block; the node said: {refusal}"
                        ) from refusal
                log.warning(
                    "eth_getLogs %d-%d refused (%s); retrying with span %d",
                    start,
                    end,
                    refusal,
                    self.span,
                )
                time.sleep(self.backoff * failures)
                continue
            failures = 0
            self._fill_timestamps(logs)
            yield Chunk(start, end, logs, end_hash)
            if len(logs) < self.quiet_logs and self.span < self.max_span:
                self.span = min(self.max_span, self.span * 2)
            start = end + 1


_DONE = object()


def read_ahead(chunks: Iterator[Chunk], depth: int = 1) -> Iterator[Chunk]:
    """`chunks`, read up to `depth` chunks ahead in a thread of their own: while the caller
    decodes one chunk, the node serves the next (the thread mostly waits on its socket). What the
    reading raised is raised here, in order; a caller that stops early stops the thread."""
    ready: queue.Queue = queue.Queue(maxsize=depth)
    stop = threading.Event()

    def put(item) -> bool:
        while not stop.is_set():
            try:
                ready.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def read() -> None:
        try:
            for chunk in chunks:
                if not put(chunk):
                    return
        except BaseException as failure:  # handed to the caller, raised there
            put(failure)
            return
        put(_DONE)

    reader = threading.Thread(target=read, name="log-read-ahead", daemon=True)
    reader.start()
    try:
        while True:
            item = ready.get()
            if item is _DONE:
                return
            if isinstance(item, BaseException):
                raise item
            yield item
    finally:
        stop.set()
        reader.join(timeout=5)
