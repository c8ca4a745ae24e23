"""One account's transactions sent to the node and followed to their blocks, for every benchmark
that sends a history (bench/history.py's payment batches, bench/relay.py's registrations and
charges, which the audit, listener and fraud benchmarks use too).

Sent all at once, the 334 batches of a 100,000-payment history hung `make bench-audit` for ten
minutes, twice: anvil dropped one from its pool ("Skipping invalid tx ... nonce 333 too high,
expected 54" in its log) and its receipt never came. So here:
- at most `window` transactions are in flight (sent, not yet in a block); the next are signed and
  sent as receipts come;
- the receipts of those in flight are asked for in one JSON-RPC batch a round;
- when no receipt has come for RECHECK_SECONDS, those still in flight are looked up
  (eth_getTransactionByHash): one that the node no longer knows and that has no receipt was
  dropped, and its same bytes are sent again;
- a transaction the node refuses, or that reverts, ends the run at once, and when no receipt has
  come for `stall_seconds` SendingFailed names the lowest nonce still waiting, its hash, what the
  node says of it and of the account, and the end of the node's log: a benchmark fails within a
  minute with the reason instead of waiting ten.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from itertools import islice
from pathlib import Path

from citypay.chain.keys import development_account
from citypay.chain.rpc import ChainError, JsonRpc, NodeRefused
from eth_utils import keccak

# In flight at once: enough to fill several 1-second blocks of payment batches (five or six of
# 300 payments fit in one), few enough that the node's pool never holds hundreds of one account.
WINDOW = 64
ROUND_SECONDS = 0.25  # between two receipt batches
RECHECK_SECONDS = 3.0  # without a receipt before those in flight are looked up
STALL_SECONDS = 60.0  # without a receipt before the run fails
# Of signed transactions in one eth_sendRawTransaction batch: anvil refuses a request over 2 MB
# ("LengthLimitError" in its log), and hex doubles them.
SEND_BATCH_BYTES = 1 << 19
LOG_LINES = 12  # of the node's log in a failure's message
# A line of anvil's log that only names the RPC method it answered.
_RPC_CALL = re.compile(r"node::user: [a-z0-9]+_\w+\s*$")


class SendingFailed(RuntimeError):
    """A transaction will not be mined: refused, reverted, or nothing mined for too long."""


@dataclass
class _InFlight:
    index: int  # its place among the transactions sent
    nonce: int
    raw: bytes
    hash: str
    sends: int = 0
    answer: str = "not sent"  # what the node said to its last eth_sendRawTransaction


def send_from(
    chain,
    sender: str,
    transactions: Iterable[dict],
    *,
    window: int = WINDOW,
    stall_seconds: float = STALL_SECONDS,
) -> list[int]:
    """Signs each transaction (to, data, gas) with the development account `sender` under
    consecutive nonces from its pending count, at gas price 0 on the chain's id, and sends them
    with send_signed on the ChainUnderTest `chain`; the block of each, in order."""
    account = development_account(sender)
    rpc = JsonRpc(chain.rpc_url, timeout=30)
    try:
        first = int(rpc.request("eth_getTransactionCount", account.address, "pending"), 16)
        fields = {"gasPrice": 0, "chainId": chain.deployment.chain_id}
        signed = (
            (nonce, bytes(account.sign_transaction(tx | fields | {"nonce": nonce}).raw_transaction))
            for nonce, tx in enumerate(transactions, start=first)
        )
        return send_signed(
            rpc,
            account.address,
            signed,
            window=window,
            stall_seconds=stall_seconds,
            node_log=chain.data_dir / "anvil.log",
        )
    finally:
        rpc.close()


def send_signed(
    rpc: JsonRpc,
    sender: str,
    signed: Iterable[tuple[int, bytes]],
    *,
    window: int = WINDOW,
    stall_seconds: float = STALL_SECONDS,
    node_log: Path | None = None,
) -> list[int]:
    """Sends `signed`, (nonce, raw transaction) of `sender` in nonce order, with at most `window`
    in flight, sending again any the node drops; the block of each, in order. SendingFailed when
    one is refused or reverts, or when none is mined for `stall_seconds`."""
    waiting: Iterator[tuple[int, bytes]] = iter(signed)
    in_flight: dict[str, _InFlight] = {}  # by hash, in nonce order
    blocks: list[int] = []
    last_receipt = last_lookup = time.monotonic()
    try:
        while True:
            fresh = [
                _InFlight(len(blocks) + offset, nonce, raw, "0x" + keccak(raw).hex())
                for offset, (nonce, raw) in enumerate(islice(waiting, window - len(in_flight)))
            ]
            blocks += [-1] * len(fresh)
            in_flight |= {tx.hash: tx for tx in fresh}
            _send(rpc, sender, fresh, again=False, node_log=node_log)
            if not in_flight:
                return blocks
            time.sleep(ROUND_SECONDS)
            now = time.monotonic()
            receipts = rpc.batch_results(
                [("eth_getTransactionReceipt", [tx_hash]) for tx_hash in in_flight]
            )
            for tx_hash, receipt in zip(list(in_flight), receipts, strict=True):
                if receipt is None:
                    continue
                tx = in_flight.pop(tx_hash)
                block = int(receipt["blockNumber"], 16)
                if receipt["status"] != "0x1":
                    raise SendingFailed(
                        f"transaction {tx.nonce} of {sender} ({tx.hash}) reverted in block {block}"
                    )
                blocks[tx.index] = block
                last_receipt = now
            if not in_flight:
                continue
            if now - last_receipt > stall_seconds:
                raise SendingFailed(_stalled(rpc, sender, in_flight, now - last_receipt, node_log))
            if now - max(last_receipt, last_lookup) >= RECHECK_SECONDS:
                last_lookup = now
                *found, mined = rpc.batch_results(
                    [("eth_getTransactionByHash", [tx_hash]) for tx_hash in in_flight]
                    + [("eth_getTransactionCount", [sender, "latest"])]
                )
                # One the node no longer knows but whose nonce is already used was mined (its
                # receipt comes next round): sent again, it would sit in the pool as "nonce too
                # low", which anvil tries again at every block.
                dropped = [
                    tx
                    for tx, known in zip(in_flight.values(), found, strict=True)
                    if not known and tx.nonce >= int(mined, 16)
                ]
                for tx in dropped:
                    print(f"sending: the node dropped nonce {tx.nonce} ({tx.hash}); sent again")
                _send(rpc, sender, dropped, again=True, node_log=node_log)
    except ChainError as unreachable:
        raise SendingFailed(f"{unreachable}{_log_tail(node_log)}") from unreachable


def _send(
    rpc: JsonRpc, sender: str, transactions: list[_InFlight], *, again: bool, node_log: Path | None
) -> None:
    """eth_sendRawTransaction of each, in batches of about SEND_BATCH_BYTES. A first send the
    node refuses ends the run; a refused send again (its block may have come meanwhile) is kept
    as the node's answer, for the stall's message."""
    for chunk in _batches(transactions):
        answers = rpc.batch([("eth_sendRawTransaction", ["0x" + tx.raw.hex()]) for tx in chunk])
        for tx, answer in zip(chunk, answers, strict=True):
            tx.sends += 1
            if not isinstance(answer, NodeRefused):
                tx.answer = "accepted again" if again else "accepted"
            elif "already" in answer.message.lower():  # "already imported", "already known"
                tx.answer = answer.message
            elif again:
                tx.answer = f"refused: {answer.message}"
            else:
                raise SendingFailed(
                    f"the node refused transaction {tx.nonce} of {sender} ({tx.hash}): "
                    f"{answer.message}{_log_tail(node_log)}"
                )


def _batches(transactions: list[_InFlight]) -> Iterator[list[_InFlight]]:
    chunk: list[_InFlight] = []
    size = 0
    for tx in transactions:
        chunk.append(tx)
        size += len(tx.raw)
        if size >= SEND_BATCH_BYTES:
            yield chunk
            chunk, size = [], 0
    if chunk:
        yield chunk


def _stalled(
    rpc: JsonRpc, sender: str, in_flight: dict[str, _InFlight], idle: float, node_log: Path | None
) -> str:
    """What is known of the lowest transaction still waiting, its account and the node."""
    lowest = next(iter(in_flight.values()))
    try:
        known, mined, pending = rpc.batch_results(
            [
                ("eth_getTransactionByHash", [lowest.hash]),
                ("eth_getTransactionCount", [sender, "latest"]),
                ("eth_getTransactionCount", [sender, "pending"]),
            ]
        )
        node = (
            "in the node's pool, not mined" if known else "not known to the node"
        ) + f"; the account's nonce is {int(mined, 16)} mined, {int(pending, 16)} with its pool"
    except ChainError as unreachable:
        node = f"the node did not say more: {unreachable}"
    return (
        f"no transaction of {sender} mined for {idle:.0f} s, {len(in_flight)} waiting; the lowest, "
        f"nonce {lowest.nonce} ({lowest.hash}), sent {lowest.sends} time(s) (the node's last "
        f"answer: {lowest.answer}), is {node}{_log_tail(node_log, lowest.hash)}"
    )


def _log_tail(node_log: Path | None, tx_hash: str = "") -> str:
    """The node's warnings and last lines (its lines that only name an RPC method left out, as
    the receipts asked for every round fill the log with them), for a failure's message."""
    if node_log is None or not node_log.exists():
        return ""
    with node_log.open("rb") as log:
        start = max(0, log.seek(0, 2) - (1 << 20))
        log.seek(start)
        lines = log.read().decode(errors="replace").splitlines()[1 if start else 0 :]
    said = [line for line in lines if not _RPC_CALL.search(line)]
    notable = [
        number
        for number, line in enumerate(said)
        if " WARN " in line or " ERROR " in line or (tx_hash and tx_hash[2:] in line.lower())
    ]
    shown = sorted({*notable[-LOG_LINES // 2 :], *range(len(said))[-LOG_LINES // 2 :]})
    return f"\nthe node's log ({node_log}), its warnings and last lines:\n" + "\n".join(
        said[number] for number in shown
    )
