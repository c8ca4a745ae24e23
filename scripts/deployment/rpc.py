"""The deployment's view of a chain: connect and check it, send transactions in waves, read code.

Why not Brownie's accounts: Brownie waits for each transaction's confirmation before it sends the
next, which costs a whole block per transaction on a chain with 1-second blocks (QBFT-like): about
a minute for three cities. Here the independent transactions of a step are signed locally, sent
together and mined in one block, so a deployment takes one block per step.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from urllib.parse import urlsplit

import requests
from eth_abi import decode
from eth_account.signers.local import LocalAccount
from eth_utils import function_signature_to_4byte_selector, keccak, to_checksum_address
from web3 import Web3
from web3.exceptions import ContractLogicError, TimeExhausted, Web3Exception

from scripts.deployment import DeploymentError

RECEIPT_TIMEOUT_SECONDS = 90
# Estimates can fall short when a later transaction of the same sender changes gas costs.
GAS_MARGIN = 1.25

# PUSH1 32 PUSH0 PUSH0 MCOPY; PUSH0 TLOAD POP; PUSH1 1 PUSH0 MSTORE; PUSH1 32 PUSH0 RETURN:
# init code that returns 1 only where Shanghai's PUSH0 and Cancun's MCOPY and TLOAD exist.
CANCUN_PROBE = bytes.fromhex("60205f5f5e5f5c5060015f5260205ff3")


def redact(url: str) -> str:
    """The URL without credentials or query (an RPC URL may carry an API key)."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    port = f":{parts.port}" if parts.port else ""
    return f"{parts.scheme}://{host}{port}{parts.path}"


def connect(rpc_url: str, expected_chain_id: int) -> Web3:
    """A connection to the node, after checking it answers with the expected chain id."""
    if urlsplit(rpc_url).scheme not in ("http", "https"):
        raise DeploymentError(
            f"RPC URL {redact(rpc_url)!r}: only http:// and https:// are accepted"
        )
    w3 = Web3(Web3.HTTPProvider(rpc_url, request_kwargs={"timeout": 30}))
    try:
        chain_id = w3.eth.chain_id
    except (requests.RequestException, Web3Exception, OSError, ValueError) as unreachable:
        reason = type(unreachable).__name__
        raise DeploymentError(
            f"cannot reach a chain at {redact(rpc_url)} ({reason}): is the node running and the "
            "URL right? (for the embedded chain: python -m scripts.chain status)"
        ) from None
    if chain_id != expected_chain_id:
        raise DeploymentError(
            f"the chain at {redact(rpc_url)} has chain id {chain_id}, expected "
            f"{expected_chain_id}: wrong URL or wrong --chain-id; nothing was sent"
        )
    return w3


def code_hash(w3: Web3, address: str) -> str | None:
    """keccak256 of the runtime code at `address`, or None where there is no code."""
    code = w3.eth.get_code(to_checksum_address(address))
    return "0x" + keccak(code).hex() if code else None


def require_cancun(w3: Web3) -> None:
    """The contracts are compiled for Cancun (PUSH0, MCOPY): a chain without it cannot run them."""
    try:
        answer = w3.eth.call({"data": CANCUN_PROBE})
    except (Web3Exception, ValueError) as refused:
        answer, reason = b"", str(refused)
    else:
        reason = f"the probe returned {answer.hex() or 'nothing'}"
    if int.from_bytes(answer or b"\0", "big") != 1:
        raise DeploymentError(
            "this chain does not run Cancun bytecode (PUSH0, MCOPY, TLOAD), which the contracts "
            f"are compiled for ({reason}). On Besu, activate shanghaiTime and cancunTime in the "
            "genesis (docs/deploy-besu.md); nothing was sent"
        )


@dataclass
class Transaction:
    label: str
    sender: LocalAccount
    to: str | None  # None: a contract creation
    data: str


class RevertDecoder:
    """Names a revert by the project's custom errors: `CityDirectoryCodeTaken('gimpo')`."""

    def __init__(self, abis: Iterable[list[dict]]):
        self._errors: dict[bytes, tuple[str, list[str]]] = {
            function_signature_to_4byte_selector("Error(string)"): ("Error", ["string"]),
            function_signature_to_4byte_selector("Panic(uint256)"): ("Panic", ["uint256"]),
        }
        for abi in abis:
            for item in abi:
                if item.get("type") == "error":
                    types = [i["type"] for i in item["inputs"]]
                    selector = function_signature_to_4byte_selector(
                        f"{item['name']}({','.join(types)})"
                    )
                    self._errors[selector] = (item["name"], types)

    def describe(self, data: str | bytes | None) -> str:
        raw = (
            bytes.fromhex(data[2:] if data.startswith("0x") else data)
            if isinstance(data, str)
            else data
        )
        if not raw:
            return "reverted without a reason"
        name, types = self._errors.get(raw[:4], (None, None))
        if name is None:
            return f"reverted with unknown error 0x{raw.hex()}"
        try:
            values = decode(types, raw[4:])
        except Exception:  # malformed revert data: show the name alone
            return f"reverted: {name}(...)"
        shown = ", ".join("0x" + v.hex() if isinstance(v, bytes) else repr(v) for v in values)
        return f"reverted: {name}({shown})"


class Sender:
    """Sends waves of independent transactions: each wave is estimated in full before anything
    of it is sent, sent at once, and mined before the next wave is built."""

    def __init__(
        self, w3: Web3, decoder: RevertDecoder, gas_price: int, log: Callable[[str], None]
    ):
        self.w3 = w3
        self.decoder = decoder
        self.gas_price = gas_price
        self.log = log
        self.chain_id = w3.eth.chain_id
        self.sent = 0

    def send_wave(self, title: str, transactions: list[Transaction]) -> list[dict]:
        if not transactions:
            return []
        block_gas_limit = self.w3.eth.get_block("latest")["gasLimit"]
        gas = [min(int(self._estimate(tx) * GAS_MARGIN), block_gas_limit) for tx in transactions]
        fees = self._fees()
        nonces: dict[str, int] = {}
        hashes = []
        for tx, limit in zip(transactions, gas, strict=True):
            address = tx.sender.address
            if address not in nonces:
                nonces[address] = self.w3.eth.get_transaction_count(address, "pending")
            fields = {
                "chainId": self.chain_id,
                "nonce": nonces[address],
                "gas": limit,
                "data": tx.data,
                "value": 0,
                **fees,
            }
            if tx.to is not None:
                fields["to"] = tx.to
            nonces[address] += 1
            signed = tx.sender.sign_transaction(fields)
            hashes.append(self.w3.eth.send_raw_transaction(signed.raw_transaction))
        self.sent += len(hashes)
        receipts = [self._receipt(tx, h) for tx, h in zip(transactions, hashes, strict=True)]
        blocks = sorted({r["blockNumber"] for r in receipts})
        where = f"block {blocks[0]}" if len(blocks) == 1 else f"blocks {blocks[0]}-{blocks[-1]}"
        self.log(f"  {title}: {len(receipts)} transaction(s) mined in {where}")
        return receipts

    def _estimate(self, tx: Transaction) -> int:
        call = {"from": tx.sender.address, "data": tx.data}
        if tx.to is not None:
            call["to"] = tx.to
        try:
            return self.w3.eth.estimate_gas(call)
        except ContractLogicError as refused:
            reason = self.decoder.describe(refused.data)
        except (Web3Exception, ValueError) as refused:
            reason = str(refused)
        raise DeploymentError(f"{tx.label} would fail, so this step was not sent: {reason}")

    def _fees(self) -> dict:
        """Legacy gas price where the chain has no EIP-1559 fee market, else dynamic fees that
        cover the base fee (zero on the embedded chain and on a Besu free-gas network)."""
        latest = self.w3.eth.get_block("latest")
        base_fee = latest.get("baseFeePerGas")
        if base_fee is None:
            return {"gasPrice": self.gas_price}
        return {
            "maxFeePerGas": 2 * base_fee + self.gas_price,
            "maxPriorityFeePerGas": self.gas_price,
        }

    def _receipt(self, tx: Transaction, tx_hash: bytes) -> dict:
        try:
            receipt = self.w3.eth.wait_for_transaction_receipt(
                tx_hash, timeout=RECEIPT_TIMEOUT_SECONDS, poll_latency=0.2
            )
        except TimeExhausted:
            raise DeploymentError(
                f"{tx.label}: transaction 0x{tx_hash.hex()} not mined after "
                f"{RECEIPT_TIMEOUT_SECONDS} s. A node whose minimum gas price is above "
                f"{self.gas_price} wei drops it silently (Besu: --min-gas-price=0 on every node "
                "of a free-gas network); run the deployment again once it is fixed"
            ) from None
        if receipt["status"] != 1:
            call = {"from": tx.sender.address, "data": tx.data, "to": tx.to}
            try:
                self.w3.eth.call({k: v for k, v in call.items() if v is not None})
                reason = "reverted (the reason could not be replayed)"
            except ContractLogicError as refused:
                reason = self.decoder.describe(refused.data)
            raise DeploymentError(
                f"{tx.label}: transaction 0x{tx_hash.hex()} in block {receipt['blockNumber']} "
                f"{reason}; the deployment stopped (run it again to continue)"
            )
        return receipt
