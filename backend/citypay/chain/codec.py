"""The contracts' ABI codec, derived from the ABIs the backend packages (chain/abi/, `make abi`).

A function is named as the contract names it (an overloaded one by its signature,
"transferWithAuthorization(address,address,uint256,uint256,uint256,bytes32,bytes)"); its
selector is computed once. Results come back as Python reads them best: a struct as a record
with its fields' names (`redemption.status`, never `redemption[2]`), so are the several named
results of one function (`totals().burned`, `eip712Domain().name`), an enum as the IntEnum of
chain/enums.py, an address checksummed, bytesN as bytes. One revert decoder knows every error
of every contract, and Solidity's own Error(string) and Panic(uint256). Indexed event arguments
are encoded as topics here too, so a log filter is named, not built.
"""

from __future__ import annotations

from collections import namedtuple
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cache, lru_cache
from typing import Any

from eth_abi import decode, encode
from eth_utils import (
    event_abi_to_log_topic,
    function_signature_to_4byte_selector,
    keccak,
    to_checksum_address,
)

from citypay.chain.enums import ENUMS
from citypay.chain.events import CONTRACT_ABI, packaged_abi

_ERROR_STRING = function_signature_to_4byte_selector("Error(string)")
_PANIC = function_signature_to_4byte_selector("Panic(uint256)")


def abi_type(item: dict) -> str:
    """The canonical type of an ABI input or output: tuples spelled out."""
    kind = item["type"]
    if kind.startswith("tuple"):
        return "(" + ",".join(abi_type(c) for c in item["components"]) + ")" + kind[5:]
    return kind


def _signature(item: dict) -> str:
    return f"{item['name']}({','.join(abi_type(i) for i in item['inputs'])})"


@cache
def _record_type(name: str, fields: tuple[str, ...]) -> type:
    return namedtuple(name, fields)


@lru_cache(maxsize=1 << 16)
def _checksummed(address: str) -> str:
    # The same wallets come back call after call; the checksum is a keccak.
    return to_checksum_address(address)


def _word_reader(item: dict) -> Callable[[bytes], Any] | None:
    """Reads a one-word static result straight from its 32 bytes, as decode() and _reader would
    give it; None for any other type: Codec.decode's fast path (the figure is there)."""
    kind, internal = item["type"], item.get("internalType", "")
    if kind.endswith("]") or kind.startswith("tuple"):
        return None
    if internal in ENUMS:
        enum = ENUMS[internal]
        return lambda word: enum(int.from_bytes(word, "big"))
    if kind == "address":
        return lambda word: _checksummed("0x" + word[12:].hex())
    if kind == "bool":
        return lambda word: word[31] == 1
    if kind.startswith("uint"):
        return lambda word: int.from_bytes(word, "big")
    if kind.startswith("int"):
        return lambda word: int.from_bytes(word, "big", signed=True)
    if kind.startswith("bytes") and kind[5:].isdigit():
        size = int(kind[5:])
        return lambda word: word[:size]
    return None


class _NotPlain(Exception):
    """A value the word writers leave to eth_abi (which encodes it or names what is wrong)."""


def _word_writer(kind: str) -> Callable[[Any], bytes] | None:
    """Writes a one-word static argument as its 32 bytes, as eth_abi's encode() would, raising
    _NotPlain for any value it does not take as it is; None for any other type: Codec.encode's
    fast path (the figure is there)."""
    if kind == "address":

        def address(value: Any) -> bytes:
            if not isinstance(value, str) or len(value) != 42 or value[:2] != "0x":
                raise _NotPlain
            try:
                raw = bytes.fromhex(value[2:])
            except ValueError:
                raise _NotPlain from None
            if len(raw) != 20:  # fromhex skips spaces: "0x  ab..." is 42 characters too
                raise _NotPlain
            return bytes(12) + raw

        return address
    if kind == "bool":

        def boolean(value: Any) -> bytes:
            if not isinstance(value, bool):
                raise _NotPlain
            return (1 if value else 0).to_bytes(32, "big")

        return boolean
    if kind.startswith("uint") and kind[4:].isdigit():
        bound = 1 << int(kind[4:])

        def unsigned(value: Any) -> bytes:
            if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value < bound:
                raise _NotPlain
            return value.to_bytes(32, "big")

        return unsigned
    if kind.startswith("bytes") and kind[5:].isdigit():
        size = int(kind[5:])

        def fixed_bytes(value: Any) -> bytes:
            if not isinstance(value, bytes) or len(value) != size:
                raise _NotPlain
            return value + bytes(32 - size)

        return fixed_bytes
    return None


def _static_writer(kind: str) -> Callable[[Any], bytes] | None:
    """A one-word type's writer, or a tuple's of one-word types (its words in order)."""
    if not kind.startswith("("):
        return _word_writer(kind)
    if not kind.endswith(")"):
        return None
    writers = [_word_writer(part) for part in kind[1:-1].split(",")]
    if None in writers or "(" in kind[1:]:
        return None

    def record(value: Any) -> bytes:
        if not isinstance(value, tuple | list) or len(value) != len(writers):
            raise _NotPlain
        return b"".join(w(v) for w, v in zip(writers, value, strict=True))

    return record


def _arguments_writer(types: tuple[str, ...]) -> Callable[[list], bytes] | None:
    """Encodes arguments that are each a static value of one-word fields, or an array of one:
    what the hot calls take (a nonce's state, a batch of authorizations). None for others."""
    heads: list[tuple[bool, Callable[[Any], bytes]]] = []
    for kind in types:
        array = kind.endswith("[]")
        writer = _static_writer(kind[:-2] if array else kind)
        if writer is None:
            return None
        heads.append((array, writer))
    # A static tuple sits in the head whole; an array's head is the offset of its tail.
    head_size = sum(
        32 if array else 32 * (t.count(",") + 1) for (array, _), t in zip(heads, types, strict=True)
    )

    def write(args: list) -> bytes:
        if len(args) != len(heads):
            raise _NotPlain
        head, tail = [], []
        offset = head_size
        for (array, writer), value in zip(heads, args, strict=True):
            if not array:
                head.append(writer(value))
                continue
            if not isinstance(value, tuple | list):
                raise _NotPlain
            part = len(value).to_bytes(32, "big") + b"".join(writer(v) for v in value)
            head.append(offset.to_bytes(32, "big"))
            tail.append(part)
            offset += len(part)
        return b"".join(head) + b"".join(tail)

    return write


def _reader(item: dict) -> Callable[[Any], Any]:
    """How a decoded value of this ABI item becomes its Python form."""
    kind, internal = item["type"], item.get("internalType", "")
    if kind.endswith("]"):
        element = dict(item, type=kind[: kind.rindex("[")], internalType=internal.rsplit("[", 1)[0])
        read = _reader(element)
        return lambda values: [read(value) for value in values]
    if kind == "tuple":
        name = internal.split(".")[-1].split(" ")[-1] or "Record"
        names = tuple(c["name"] for c in item["components"])
        readers = [_reader(c) for c in item["components"]]
        record = _record_type(name, names)
        return lambda values: record(*(r(v) for r, v in zip(readers, values, strict=True)))
    if internal in ENUMS:
        enum = ENUMS[internal]
        return enum
    if kind == "address":
        return _checksummed
    return lambda value: value


@dataclass(frozen=True)
class Revert:
    """A contract's refusal: its custom error's name and arguments, named."""

    name: str
    args: dict[str, Any] = field(default_factory=dict)
    data: bytes = b""

    def __str__(self) -> str:
        shown = ", ".join(
            f"{key}={'0x' + value.hex() if isinstance(value, bytes) else value}"
            for key, value in self.args.items()
        )
        return f"{self.name}({shown})"


@dataclass(frozen=True)
class _Function:
    name: str
    selector: bytes
    input_types: tuple[str, ...]
    output_types: tuple[str, ...]
    readers: tuple[Callable[[Any], Any], ...]
    # The results' record (one field a named result) when there are several; None for one.
    record: type | None
    # One reader a word when every result is a one-word static value: decode()'s fast path.
    word_readers: tuple[Callable[[bytes], Any], ...] | None
    # The arguments' writer when each is a static value of words or an array of one: encode()'s.
    arguments_writer: Callable[[list], bytes] | None


def _function(item: dict) -> _Function:
    outputs = item["outputs"]
    names = tuple(o["name"] for o in outputs)
    word_readers = tuple(_word_reader(o) for o in outputs)
    input_types = tuple(abi_type(i) for i in item["inputs"])
    return _Function(
        name=item["name"],
        selector=function_signature_to_4byte_selector(_signature(item)),
        input_types=input_types,
        output_types=tuple(abi_type(o) for o in outputs),
        readers=tuple(_reader(o) for o in outputs),
        record=(_record_type(item["name"], names) if len(outputs) > 1 and all(names) else None),
        word_readers=None if None in word_readers else word_readers,  # type: ignore[arg-type]
        arguments_writer=_arguments_writer(input_types),
    )


class Codec:
    """One contract's functions and events, from its ABI."""

    def __init__(self, abi: list[dict]) -> None:
        self.abi = abi
        self._functions: dict[str, _Function] = {}
        names: dict[str, int] = {}
        for item in abi:
            if item.get("type") == "function":
                names[item["name"]] = names.get(item["name"], 0) + 1
        for item in abi:
            if item.get("type") != "function":
                continue
            function = _function(item)
            self._functions[_signature(item)] = function
            if names[item["name"]] == 1:
                self._functions[item["name"]] = function
        self._events = {item["name"]: item for item in abi if item.get("type") == "event"}
        self._topics = {
            name: "0x" + event_abi_to_log_topic(item).hex() for name, item in self._events.items()
        }

    def _function(self, name: str) -> _Function:
        try:
            return self._functions[name]
        except KeyError:
            overloads = sorted(s for s in self._functions if s.startswith(name + "("))
            hint = f": name one of {overloads}" if overloads else ""
            raise KeyError(f"no function {name!r} in this ABI{hint}") from None

    def selector(self, function: str) -> bytes:
        return self._function(function).selector

    def encode(self, function: str, *args: Any) -> bytes:
        """Calldata: the selector and the ABI-encoded arguments."""
        spec = self._function(function)
        if spec.arguments_writer is not None:
            # Straight to the words, as decode() reads them: eth_abi's encoder took 6 us for a
            # nonce's state and about 2 ms for a batch of 100 authorizations, its share of
            # make bench-relay's acceptor and relayer; this takes a fifth of that (both in
            # backend/tests/test_codec.py's comparison, which checks every byte against eth_abi).
            try:
                return spec.selector + spec.arguments_writer(list(args))
            except _NotPlain:
                pass  # eth_abi encodes it, or says what is wrong with it
        return spec.selector + encode(list(spec.input_types), list(args))

    def decode(self, function: str, data: bytes) -> Any:
        """A call's result: the one value, or the record of several (a plain tuple if some are
        unnamed), each in its Python form."""
        spec = self._function(function)
        words = spec.word_readers
        if words is not None and len(data) == 32 * len(words):
            # Straight from the words: about 1 us a one-word result where eth_abi's decoder
            # takes 5-15 us. The payment check (payments/checks.py) reads nothing else: its
            # read of 32 authorizations after a new block (289 results) took 8.3 ms of CPU
            # through eth_abi, 7.0 ms this way, 7.4 ms hand-encoded on web3 before the gateway;
            # 2.3, 2.0 and 2.3 ms within a block (32 nonces). make bench-relay's acceptor makes
            # such reads for every payment.
            read = tuple(r(data[32 * i : 32 * i + 32]) for i, r in enumerate(words))
        else:
            values = decode(list(spec.output_types), data)
            read = tuple(r(v) for r, v in zip(spec.readers, values, strict=True))
        if len(read) == 1:
            return read[0]
        return read if spec.record is None else spec.record(*read)

    def _event(self, event: str) -> dict:
        try:
            return self._events[event]
        except KeyError:
            raise KeyError(f"no event {event!r} in this ABI") from None

    def topic(self, event: str) -> str:
        """The event's first topic, as 0x-hex."""
        return self._topics[self._event(event)["name"]]

    def topics(self, event: str, *indexed: Any) -> list[str | None]:
        """An eth_getLogs filter's topics: the event's, then its indexed arguments in order, as
        many as given, each encoded as its topic (None: any value)."""
        inputs = [i for i in self._event(event)["inputs"] if i["indexed"]]
        if len(indexed) > len(inputs):
            raise TypeError(f"{event} has {len(inputs)} indexed arguments, not {len(indexed)}")
        return [
            self.topic(event),
            *(_topic(item, value) for item, value in zip(inputs, indexed, strict=False)),
        ]


def _topic(item: dict, value: Any) -> str | None:
    """An indexed argument as its topic: a static value's word, a string's or bytes' hash."""
    kind = abi_type(item)
    if value is None:
        return None
    if kind in ("string", "bytes"):
        return "0x" + keccak(value.encode() if isinstance(value, str) else value).hex()
    if kind.endswith("]") or kind.startswith("("):
        raise TypeError(f"a filter on the {kind} argument {item['name']} is not supported")
    return "0x" + encode([kind], [value]).hex()


@cache
def codec_of(contract: str) -> Codec:
    """The codec of a platform contract kind: token, registry, treasury or directory."""
    return Codec(packaged_abi(CONTRACT_ABI[contract]))


@cache
def _errors() -> dict[bytes, tuple[str, tuple[str, ...], tuple[str, ...], tuple]]:
    errors = {}
    for contract in CONTRACT_ABI:
        for item in packaged_abi(CONTRACT_ABI[contract]):
            if item.get("type") == "error":
                selector = function_signature_to_4byte_selector(_signature(item))
                errors[selector] = (
                    item["name"],
                    tuple(i["name"] for i in item["inputs"]),
                    tuple(abi_type(i) for i in item["inputs"]),
                    tuple(_reader(i) for i in item["inputs"]),
                )
    return errors


def decode_revert(data: bytes) -> Revert:
    """Revert data as the error it is; an unknown selector keeps its raw bytes."""
    data = bytes(data)
    selector, body = data[:4], data[4:]
    known = _errors().get(selector)
    try:
        if known is not None:
            name, names, types, readers = known
            values = decode(list(types), body)
            args = {n: r(v) for n, r, v in zip(names, readers, values, strict=True)}
            return Revert(name, args, data)
        if selector == _ERROR_STRING:
            return Revert("Error", {"message": decode(["string"], body)[0]}, data)
        if selector == _PANIC:
            return Revert("Panic", {"code": decode(["uint256"], body)[0]}, data)
    except Exception:  # revert data that does not decode as its selector says
        pass
    return Revert("UnknownRevert", {"data": data}, data)
