"""`eth_getLogs` over long block ranges, in chunks that adapt to what the node accepts.

Nodes cap a query by block span, result count or response time, each differently (geth and Besu
by result count and time, hosted nodes by span). The reader starts narrow, halves the span when
the node refuses or times out, narrows it to about `target_logs` a chunk after a dense one (a
busy city's blocks hold thousands of payments: a chunk's size, and so the reader's memory, is
bounded however long the history), widens it again after quiet chunks, and gives up with the
node's own words only after a bounded number of attempts on one block. `read_ahead` asks for the
next chunk while the caller works on the last, so the node's time and the caller's overlap.
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


class LogReadError(RuntimeError):
    """The node kept refusing a range the reader could not narrow further."""


@dataclass
class Chunk:
    first: int
    last: int
    logs: list[dict]  # raw entries, hex strings as the node sent them, blockTimestamp filled


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
        target_logs: int = 20_000,
    ) -> None:
        self.rpc = rpc
        self.addresses = [to_checksum_address(a) for a in addresses]
        self.max_span = max_span
        self.span = min(initial_span, max_span)
        self.attempts = attempts
        self.backoff = backoff
        # A chunk with fewer logs than this lets the next one be twice as wide; one with more
        # than target_logs makes the next one as narrow as should hold about that many.
        self.quiet_logs = quiet_logs
        self.target_logs = max(target_logs, quiet_logs)
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

    def _get_logs(self, first: int, last: int) -> list[dict]:
        query = {"address": self.addresses, "fromBlock": hex(first), "toBlock": hex(last)}
        return self.rpc.request("eth_getLogs", query)

    def read(self, first: int, last: int) -> Iterator[Chunk]:
        """Every log of the watched addresses in [first, last], one chunk at a time, in order."""
        start = first
        failures = 0
        while start <= last:
            end = min(start + self.span - 1, last)
            try:
                logs = self._get_logs(start, end)
            except ChainError as refusal:  # refused, or no answer in time
                # Narrowing is bounded by log2(span); only at one block are attempts counted.
                if self.span > 1:
                    self.span = max(1, self.span // 2)
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
            yield Chunk(start, end, logs)
            if len(logs) > self.target_logs:
                self.span = max(1, (end - start + 1) * self.target_logs // len(logs))
            elif len(logs) < self.quiet_logs and self.span < self.max_span:
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
