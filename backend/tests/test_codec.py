"""The codec's own encoder (chain/codec.py, the fast path of the relay's hot calls) writes every
byte eth_abi writes, for every function of every platform contract whose arguments it takes, and
leaves to eth_abi whatever it does not take as it is (eth_abi then encodes it or refuses it)."""

from __future__ import annotations

import pytest
from citypay.chain.codec import codec_of
from citypay.chain.events import CONTRACT_ABI
from eth_abi import encode
from eth_abi.exceptions import EncodingError
from eth_utils import to_checksum_address
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

_FUNCTIONS = sorted(
    (contract, signature)
    for contract in CONTRACT_ABI
    for signature, spec in codec_of(contract)._functions.items()
    if "(" in signature and spec.arguments_writer is not None
)


def _value(kind: str) -> st.SearchStrategy:
    if kind.endswith("[]"):
        return st.lists(_value(kind[:-2]), max_size=4)
    if kind.startswith("("):
        return st.tuples(*(_value(part) for part in kind[1:-1].split(",")))
    if kind == "address":
        raw = st.binary(min_size=20, max_size=20)
        # Checksummed, as the backend holds addresses, all lower case, and in any case (eth_abi
        # does not check a checksum).
        return st.one_of(
            raw.map(lambda b: to_checksum_address(b)),
            raw.map(lambda b: "0x" + b.hex()),
            raw.map(lambda b: "0x" + b.hex().upper()),
        )
    if kind == "bool":
        return st.booleans()
    if kind.startswith("uint"):
        return st.integers(0, 2 ** int(kind[4:]) - 1)
    size = int(kind[5:])
    return st.binary(min_size=size, max_size=size)


def test_the_hot_calls_take_the_fast_path():
    # Without it, the relay's acceptor and relayer pay eth_abi's price again.
    names = {signature.split("(")[0] for contract, signature in _FUNCTIONS if contract == "token"}
    assert {"authorizationState", "transferWithAuthorizationBatch", "balanceOf"} <= names


@pytest.mark.parametrize(("contract", "signature"), _FUNCTIONS)
@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_every_byte_is_eth_abis(contract, signature, data):
    codec = codec_of(contract)
    spec = codec._functions[signature]
    args = [data.draw(_value(kind)) for kind in spec.input_types]
    assert codec.encode(signature, *args) == spec.selector + encode(list(spec.input_types), args)


@pytest.mark.parametrize(
    ("function", "args"),
    [
        ("balanceOf", ["0x" + "ab" * 19]),  # too short
        ("balanceOf", ["0x" + "zz" * 20]),  # not hex
        ("balanceOf", ["0x  " + "ab" * 19]),  # 42 characters, 19 bytes
        ("authorizationState", ["0x" + "ab" * 20, b"\x01" * 33]),  # 33 bytes for a bytes32
        ("transfer", ["0x" + "ab" * 20, -1]),
        ("transfer", ["0x" + "ab" * 20, 2**256]),
        ("transfer", ["0x" + "ab" * 20, "100"]),
    ],
)
def test_a_value_eth_abi_refuses_is_refused_alike(function, args):
    with pytest.raises(EncodingError):
        codec_of("token").encode(function, *args)


def test_a_shorter_bytes32_is_padded_as_eth_abi_pads_it():
    # The fast path takes exactly 32 bytes; eth_abi pads a shorter one on the right.
    codec = codec_of("token")
    assert codec.encode("authorizationState", "0x" + "ab" * 20, b"\x01") == codec._function(
        "authorizationState"
    ).selector + encode(["address", "bytes32"], ["0x" + "ab" * 20, b"\x01"])
