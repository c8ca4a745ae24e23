"""The one way the backend reaches the chain: a JSON-RPC client (chain/rpc.py), the contracts'
codec (chain/codec.py) and one way to check a call before sending it.

`PlatformContract` is a platform contract at its address: `call` reads it (a struct comes back
as a record with named fields), `simulate` runs a transaction as `sender` would send it and
raises `ChainRefused` with the contract's own error, decoded, so each domain maps one error type
to its API error, and `logs` finds its events by their indexed arguments. `read_many` asks many
reads of one block in one JSON-RPC batch; `read_at_head` asks them with the head's number.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from citypay.chain.codec import Codec, Revert, codec_of, decode_revert
from citypay.chain.rpc import ChainError, JsonRpc, NodeRefused


class ChainRefused(ChainError):
    """The contract refused the call; `revert` is its error, decoded."""

    def __init__(self, function: str, revert: Revert) -> None:
        super().__init__(f"{function} was refused: {revert}")
        self.function = function
        self.revert = revert

    @property
    def reason(self) -> str:
        return str(self.revert)


def revert_of(refused: NodeRefused) -> Revert | None:
    """The revert data a node attached to a refused eth_call or estimate, decoded; None when the
    refusal is not a revert (a bad parameter, an unknown block)."""
    data = refused.data
    if isinstance(data, dict):  # some nodes nest it: {"data": "0x..."}
        data = data.get("data")
    if isinstance(data, str) and data.startswith("0x"):
        return decode_revert(bytes.fromhex(data[2:]))
    if "revert" in refused.message.lower():
        return Revert("Reverted", {"message": refused.message})
    return None


@dataclass(frozen=True)
class PlatformContract:
    gateway: ChainGateway
    address: str
    kind: str  # token, registry, treasury or directory

    @property
    def codec(self) -> Codec:
        return codec_of(self.kind)

    def call(self, function: str, *args: Any, block: str | int = "latest") -> Any:
        """A view's result; ChainRefused if it reverts."""
        return self.gateway.read_many([(self, function, args)], block=block)[0]

    def simulate(self, sender: str, function: str, *args: Any) -> Any:
        """What a transaction of `sender` calling `function` would return now; ChainRefused with
        the contract's error if it would revert."""
        return self.gateway.read_many([(self, function, args)], sender=sender)[0]

    def calldata(self, function: str, *args: Any) -> bytes:
        return self.codec.encode(function, *args)

    def logs(
        self, event: str, *indexed: Any, from_block: int, to_block: int | str = "latest"
    ) -> list[dict]:
        """The contract's `event` logs in [from_block, to_block] whose first indexed arguments
        are `indexed` (None: any), as the node sends them (hex strings). An indexed argument is
        a topic, so the node answers from its log index rather than by scanning every block."""
        return self.gateway.rpc.request(
            "eth_getLogs",
            {
                "address": self.address,
                "fromBlock": hex(from_block),
                "toBlock": to_block if isinstance(to_block, str) else hex(to_block),
                "topics": self.codec.topics(event, *indexed),
            },
        )


Read = tuple[PlatformContract, str, Sequence[Any]]


class ChainGateway:
    def __init__(self, rpc: JsonRpc, chain_id: int) -> None:
        self.rpc = rpc
        self.chain_id = chain_id

    def contract(self, address: str, kind: str) -> PlatformContract:
        return PlatformContract(self, address, kind)

    def read_many(
        self, reads: Sequence[Read], *, block: str | int = "latest", sender: str | None = None
    ) -> list[Any]:
        """Each read's result, all at one block in one JSON-RPC batch; the first that reverts
        raises ChainRefused."""
        return self._results(reads, self.rpc.batch(self._calls(reads, block, sender)))

    def read_at_head(self, reads: Sequence[Read]) -> tuple[int, list[Any]]:
        """The head's number and each read's result at the newest block, in one JSON-RPC
        batch. The node may mine between its answers: a caller that needs the reads of that
        very block asks read_many(block=head) for what it must not mix."""
        head, *answers = self.rpc.batch([("eth_blockNumber", []), *self._calls(reads)])
        if isinstance(head, NodeRefused):
            raise head
        return int(head, 16), self._results(reads, answers)

    @staticmethod
    def _calls(
        reads: Sequence[Read], block: str | int = "latest", sender: str | None = None
    ) -> list[tuple[str, list]]:
        tag = block if isinstance(block, str) else hex(block)
        calls = []
        for contract, function, args in reads:
            call = {"to": contract.address, "data": "0x" + contract.calldata(function, *args).hex()}
            if sender is not None:
                call["from"] = sender
            calls.append(("eth_call", [call, tag]))
        return calls

    @staticmethod
    def _results(reads: Sequence[Read], answers: Sequence[Any]) -> list[Any]:
        results = []
        for (contract, function, _), answer in zip(reads, answers, strict=True):
            if isinstance(answer, NodeRefused):
                revert = revert_of(answer)
                if revert is None:
                    raise answer
                raise ChainRefused(function, revert)
            results.append(contract.codec.decode(function, bytes.fromhex(answer[2:])))
        return results

    def block_number(self) -> int:
        return int(self.rpc.request("eth_blockNumber"), 16)

    def block(self, number: int | str = "latest") -> dict | None:
        """A block header as the node sends it (hex fields), or None if the node has none."""
        tag = number if isinstance(number, str) else hex(number)
        return self.rpc.request("eth_getBlockByNumber", tag, False)

    def timestamp(self) -> int:
        """The newest block's time: the chain's clock, which every time-bound check uses."""
        return int(self.block("latest")["timestamp"], 16)

    def code(self, address: str, block: int | str = "latest") -> bytes:
        """The contract code at `address` (empty if none) in `block`."""
        tag = block if isinstance(block, str) else hex(block)
        return bytes.fromhex(self.rpc.request("eth_getCode", address, tag)[2:])
