"""The platform's contract events, decoded from raw logs with the packaged ABIs.

One decoder serves the listener (which stores events) and the auditor (which reads them straight
from a node): both see the same `ChainEvent`. Decoding is done here with eth-abi rather than
web3's contract event objects, which build a contract per address and cost several times more
per log; the listener's throughput is mostly this function.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from functools import cache
from importlib import resources
from typing import Any

from eth_abi import decode
from eth_utils import event_abi_to_log_topic, to_checksum_address

# The kinds of contract a city has, and the directory; each names its packaged ABI.
CONTRACT_ABI = {
    "token": "CityToken",
    "registry": "CityRegistry",
    "treasury": "CityTreasury",
    "directory": "CityDirectory",
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


@dataclass(frozen=True)
class _EventShape:
    name: str
    indexed: tuple[tuple[str, str], ...]  # (name, type) of the topics after the first
    data_names: tuple[str, ...]
    data_types: tuple[str, ...]

    def decode_args(self, topics: list[bytes], data: bytes) -> dict[str, Any]:
        args: dict[str, Any] = {}
        for (name, abi_type), topic in zip(self.indexed, topics[1:], strict=True):
            if abi_type in ("string", "bytes") or abi_type.endswith("]"):
                args[name] = "0x" + topic.hex()  # a dynamic value's topic is only its hash
            else:
                args[name] = _json_value(abi_type, decode([abi_type], topic)[0])
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
            data_types=tuple(i["type"] for i in inputs if not i["indexed"]),
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


def decode_log(log: dict, city: str, contract: str, block_time: int) -> ChainEvent:
    """A raw `eth_getLogs` entry (hex strings, as the node sent it) as a ChainEvent."""
    topics = [_bytes(topic) for topic in log["topics"]]
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
