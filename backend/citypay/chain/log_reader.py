"""`eth_getLogs` over long block ranges, in chunks that adapt to what the node accepts.

Nodes cap a query by block span, result count or response time, each differently (geth and Besu
by result count and time, hosted nodes by span). The reader starts wide, halves the span when the
node refuses or times out, widens it again after quiet chunks, and gives up with the node's own
words only after a bounded number of attempts on one block.
"""

from __future__ import annotations

import logging
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
        initial_span: int = 2_000,
        attempts: int = 6,
        backoff: float = 0.2,
        quiet_logs: int = 2_000,
    ) -> None:
        self.rpc = rpc
        self.addresses = [to_checksum_address(a) for a in addresses]
        self.max_span = max_span
        self.span = min(initial_span, max_span)
        self.attempts = attempts
        self.backoff = backoff
        # A chunk with fewer logs than this lets the next one be twice as wide.
        self.quiet_logs = quiet_logs
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
            if len(logs) < self.quiet_logs and self.span < self.max_span:
                self.span = min(self.max_span, self.span * 2)
            start = end + 1
