"""The platform's contract events, decoded from raw logs with the packaged ABIs.

One decoder serves the listener (which stores events) and the auditor (which reads them straight
from a node): both see the same `ChainEvent`. Decoding is done here with eth-abi rather than
web3's contract event objects, which build a contract per address and cost several times more
per log; the listener's throughput is mostly this function.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cache, cached_property, lru_cache
from importlib import resources
from typing import Any

from eth_abi import decode
from eth_utils import event_abi_to_log_topic, to_checksum_address
from eth_utils.abi import collapse_if_tuple

# The kinds of contract a city has, and the directory; each names its packaged ABI.
CONTRACT_ABI = {
    "token": "CityToken",
    "registry": "CityRegistry",
    "treasury": "CityTreasury",
    "directory": "CityDirectory",
    "programs": "CityPrograms",
    "gifts": "CityGifts",
    "cashback": "CityCashback",
}


@cache
def packaged_abi(name: str) -> list[dict]:
    """A contract's ABI as the backend package carries it (written by `make abi`)."""
    text = resources.files("citypay.chain").joinpath("abi", f"{name}.json").read_text("utf-8")
    return json.loads(text)


@dataclass(frozen=True)
class ChainEvent:
    """One log of a platform contract. (block_number, tx_hash, log_index) is its identity."""

    city: str  # the city's code; "" for the directory
    contract: str  # token, registry, treasury or directory
    event: str
    block_number: int
    block_hash: str
    block_time: int  # unix seconds
    tx_hash: str
    log_index: int
    args: dict[str, Any] = field(default_factory=dict)

    @property
    def key(self) -> tuple[int, str, int]:
        return (self.block_number, self.tx_hash, self.log_index)


def _json_value(abi_type: str, value: Any) -> Any:
    """A decoded value as JSON keeps it: addresses checksummed, bytes as 0x-hex, numbers as is."""
    if abi_type == "address":
        return to_checksum_address(value)
    if isinstance(value, bytes):
        return "0x" + value.hex()
    if isinstance(value, tuple | list):
        element = abi_type[: abi_type.rindex("[")] if abi_type.endswith("]") else abi_type
        return [_json_value(element, item) for item in value]
    return value


@lru_cache(maxsize=1 << 16)
def _checksummed(address: str) -> str:
    # A city's logs name the same few thousand wallets over and over; the checksum is a keccak.
    return to_checksum_address(address)


def _hex_word_reader(abi_type: str) -> Callable[[str], Any] | None:
    """Reads a one-word static value straight from its 64 hex digits (no 0x), as _json_value
    would give it (eth_abi's decoder costs about 30 us a call, most of a log's decoding); None
    for others. The auditor and the listener read logs as the node's JSON text, and slicing the
    text saves converting it to bytes and back (about a third of a log's decoding)."""
    if abi_type == "address":
        return lambda word: _checksummed("0x" + word[24:])
    if abi_type.startswith("uint") and not abi_type.endswith("]"):
        return lambda word: int(word, 16)
    if abi_type.startswith("int") and not abi_type.endswith("]"):
        return lambda word: int.from_bytes(bytes.fromhex(word), "big", signed=True)
    if abi_type == "bool":
        return lambda word: int(word, 16) == 1
    if abi_type.startswith("bytes") and abi_type[5:].isdigit():
        digits = 2 * int(abi_type[5:])
        return lambda word: "0x" + word[:digits].lower()
    return None


def _word_reader(abi_type: str) -> Callable[[bytes], Any] | None:
    """The same reader for a word of 32 bytes (a log given as bytes: a receipt's)."""
    read = _hex_word_reader(abi_type)
    return None if read is None else lambda word: read(word.hex())


@dataclass(frozen=True)
class _EventShape:
    name: str
    indexed: tuple[tuple[str, str], ...]  # (name, type) of the topics after the first
    data_names: tuple[str, ...]
    data_types: tuple[str, ...]

    @cached_property
    def _topic_readers(self) -> tuple[Callable[[bytes], Any] | None, ...]:
        return tuple(_word_reader(abi_type) for _, abi_type in self.indexed)

    @cached_property
    def _data_readers(self) -> tuple[Callable[[bytes], Any], ...] | None:
        """One reader a data word, when every data value is a one-word static one."""
        readers = tuple(_word_reader(abi_type) for abi_type in self.data_types)
        return None if None in readers else readers  # type: ignore[return-value]

    @cached_property
    def _hex_readers(self) -> tuple[tuple[Callable[[str], Any], ...], ...] | None:
        """(topic readers, data readers) on hex text, when every value is a one-word static one
        (the platform's events are, but for a few admin ones); None otherwise."""
        topics = tuple(_hex_word_reader(abi_type) for _, abi_type in self.indexed)
        data = tuple(_hex_word_reader(abi_type) for abi_type in self.data_types)
        return None if None in topics or None in data else (topics, data)  # type: ignore[return-value]

    @property
    def hex_readers(self) -> tuple[tuple[Callable[[str], Any], ...], ...] | None:
        """(topic readers, data readers), each reading 64 hex digits (no 0x) as decode_hex_args
        does, when every value is a one-word static one; None otherwise."""
        return self._hex_readers

    def decode_hex_args(self, topics: list[str], data: str) -> dict[str, Any] | None:
        """The arguments read from the log's hex text; None when this event or this log needs
        the general decoder."""
        readers = self._hex_readers
        if readers is None:
            return None
        topic_readers, data_readers = readers
        if len(data) != 2 + 64 * len(data_readers) or len(topics) != 1 + len(topic_readers):
            return None
        args: dict[str, Any] = {}
        for (name, _), read, topic in zip(self.indexed, topic_readers, topics[1:], strict=True):
            args[name] = read(topic[2:])
        at = 2
        for name, read in zip(self.data_names, data_readers, strict=True):
            args[name] = read(data[at : at + 64])
            at += 64
        return args

    def decode_args(self, topics: list[bytes], data: bytes) -> dict[str, Any]:
        args: dict[str, Any] = {}
        for (name, abi_type), read, topic in zip(
            self.indexed, self._topic_readers, topics[1:], strict=True
        ):
            if read is not None and len(topic) == 32:
                args[name] = read(topic)
            elif abi_type in ("string", "bytes") or abi_type.endswith("]"):
                args[name] = "0x" + topic.hex()  # a dynamic value's topic is only its hash
            else:
                args[name] = _json_value(abi_type, decode([abi_type], topic)[0])
        readers = self._data_readers
        if readers is not None and len(data) == 32 * len(readers):
            for index, (name, read) in enumerate(zip(self.data_names, readers, strict=True)):
                args[name] = read(data[32 * index : 32 * index + 32])
            return args
        values = decode(list(self.data_types), data) if self.data_types else ()
        for name, abi_type, value in zip(self.data_names, self.data_types, values, strict=True):
            args[name] = _json_value(abi_type, value)
        return args


@cache
def _shapes(contract: str) -> dict[bytes, _EventShape]:
    shapes = {}
    for item in packaged_abi(CONTRACT_ABI[contract]):
        if item.get("type") != "event":
            continue
        inputs = item["inputs"]
        shapes[event_abi_to_log_topic(item)] = _EventShape(
            name=item["name"],
            indexed=tuple((i["name"], i["type"]) for i in inputs if i["indexed"]),
            data_names=tuple(i["name"] for i in inputs if not i["indexed"]),
            # A struct is its components' tuple type, as eth-abi reads it.
            data_types=tuple(collapse_if_tuple(i) for i in inputs if not i["indexed"]),
        )
    return shapes


def _bytes(value: Any) -> bytes:
    return bytes.fromhex(value[2:]) if isinstance(value, str) else bytes(value)


def _hex(value: Any) -> str:
    return value.lower() if isinstance(value, str) else "0x" + bytes(value).hex()


def _int(value: Any) -> int:
    return int(value, 16) if isinstance(value, str) else int(value)


class UnknownEvent(ValueError):
    """A log whose first topic no event of that contract's ABI has: a stale packaged ABI."""


@cache
def _shapes_by_hex(contract: str) -> dict[str, _EventShape]:
    return {"0x" + topic.hex(): shape for topic, shape in _shapes(contract).items()}


def event_shape(contract: str, topic: str) -> _EventShape | None:
    """The event of a contract kind's packaged ABI whose first topic is `topic` (0x hex); None
    when it has none."""
    return _shapes_by_hex(contract).get(topic.lower())


def event_names(contract: str) -> list[str]:
    """The names of the events of a contract kind's packaged ABI."""
    return [shape.name for shape in _shapes(contract).values()]


def topics_of(contract: str, names: set[str]) -> set[str]:
    """The first topics (0x and lower-case hex, as nodes send them) of the named events."""
    return {topic for topic, shape in _shapes_by_hex(contract).items() if shape.name in names}


def decode_log(log: dict, city: str, contract: str, block_time: int) -> ChainEvent:
    """A raw `eth_getLogs` entry (hex strings, as the node sent it) as a ChainEvent."""
    raw_topics, data = log["topics"], log["data"]
    if raw_topics and isinstance(data, str) and isinstance(raw_topics[0], str):
        shape = _shapes_by_hex(contract).get(raw_topics[0].lower())
        args = shape.decode_hex_args(raw_topics, data) if shape is not None else None
        if args is not None:
            return ChainEvent(
                city=city,
                contract=contract,
                event=shape.name,
                block_number=int(log["blockNumber"], 16),
                block_hash=log["blockHash"].lower(),
                block_time=block_time,
                tx_hash=log["transactionHash"].lower(),
                log_index=int(log["logIndex"], 16),
                args=args,
            )
    topics = [_bytes(topic) for topic in raw_topics]
    shape = _shapes(contract).get(topics[0]) if topics else None
    if shape is None:
        raise UnknownEvent(
            f"log {_hex(log['transactionHash'])}:{_int(log['logIndex'])} of the {contract} at "
            f"{log['address']} has topic {topics[0].hex() if topics else 'none'}, which is no "
            f"event of {CONTRACT_ABI[contract]}: the packaged ABIs are stale (make abi)"
        )
    return ChainEvent(
        city=city,
        contract=contract,
        event=shape.name,
        block_number=_int(log["blockNumber"]),
        block_hash=_hex(log["blockHash"]),
        block_time=block_time,
        tx_hash=_hex(log["transactionHash"]),
        log_index=_int(log["logIndex"]),
        args=shape.decode_args(topics, _bytes(log["data"])),
    )
