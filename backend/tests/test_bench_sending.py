"""The benchmarks' sender (bench/sending.py) against an anvil of the test's own: a transaction the
node drops from its pool is sent again and mined, with no more than the window in flight; one
that can never be mined fails the run within its stall time, naming its nonce, its hash and what
the node says; one the node refuses fails at once with the node's answer."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
from citypay.chain.keys import development_account
from citypay.chain.rpc import ChainUnavailable, JsonRpc
from eth_utils import keccak
from platform_harness import ROOT, free_port

sys.path.insert(0, str(ROOT / "bench"))

from sending import SendingFailed, send_signed

ANVIL = ROOT / ".toolchain" / "bin" / "anvil"
PAYER = "0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266"  # anvil's first development account
PAYEE = "0x70997970C51812dc3A010C7d01b50e0d17dc79C8"  # its second

pytestmark = pytest.mark.timeout(60)


@pytest.fixture
def node(tmp_path):
    """(JsonRpc, log path) of an anvil that mines only when told (anvil_setIntervalMining)."""
    port, log = free_port(), tmp_path / "anvil.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            [str(ANVIL), "--port", str(port), "--no-mining", "--quiet"],
            stdout=out,
            stderr=subprocess.STDOUT,
            env={**os.environ, "RUST_LOG": "info", "NO_COLOR": "1"},
        )
    rpc = JsonRpc(f"http://127.0.0.1:{port}", attempts=1)
    _wait_until(lambda: _answers(rpc), what="anvil to answer")
    yield rpc, log
    rpc.close()
    process.terminate()
    process.wait(timeout=10)


def _answers(rpc: JsonRpc) -> bool:
    try:
        rpc.request("eth_chainId")
    except ChainUnavailable:
        return False
    return True


def _wait_until(condition, what: str, timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"waited {timeout} s for {what}")
        time.sleep(0.05)


def _transfers(nonces, value: int = 1) -> list[tuple[int, bytes]]:
    payer = development_account(PAYER)
    fields = {"to": PAYEE, "value": value, "gas": 21_000, "gasPrice": 10**10, "chainId": 31337}
    return [
        (nonce, bytes(payer.sign_transaction(fields | {"nonce": nonce}).raw_transaction))
        for nonce in nonces
    ]


def _hash(raw: bytes) -> str:
    return "0x" + keccak(raw).hex()


def test_a_dropped_transaction_is_sent_again_and_mined(node):
    rpc, log = node
    signed = _transfers(range(12))
    hashes = [_hash(raw) for _, raw in signed]
    with ThreadPoolExecutor(1) as pool:
        sending = pool.submit(
            send_signed, rpc, PAYER, signed, window=4, stall_seconds=30, node_log=log
        )
        _wait_until(lambda: rpc.request("eth_getTransactionByHash", hashes[3]), what="the window")
        assert rpc.request("eth_getTransactionByHash", hashes[4]) is None  # 4 in flight at most
        rpc.request("anvil_dropTransaction", hashes[1])
        assert rpc.request("eth_getTransactionByHash", hashes[1]) is None
        rpc.request("anvil_setIntervalMining", 1)
        blocks = sending.result(timeout=40)
    # Nonce 1 left the pool before any block: mined only because it was sent again, after 0.
    assert blocks[0] < blocks[1] and blocks == sorted(blocks)
    receipts = rpc.batch_results([("eth_getTransactionReceipt", [h]) for h in hashes])
    assert [int(r["blockNumber"], 16) for r in receipts] == blocks
    assert rpc.request("eth_getTransactionCount", PAYER, "latest") == hex(12)


def test_a_transaction_that_cannot_be_mined_fails_the_run_with_the_reason(node):
    rpc, log = node
    rpc.request("anvil_setIntervalMining", 1)
    signed = _transfers([5, 6])  # nonces 0-4 never sent: the node keeps them waiting
    started = time.monotonic()
    with pytest.raises(SendingFailed) as failed:
        send_signed(rpc, PAYER, signed, stall_seconds=4, node_log=log)
    assert time.monotonic() - started < 10
    message = str(failed.value)
    assert f"nonce 5 ({_hash(signed[0][1])}), sent 1 time(s)" in message
    assert "is in the node's pool, not mined; the account's nonce is 0 mined" in message
    assert f"the node's log ({log})" in message


def test_a_transaction_the_node_refuses_fails_the_run_at_once(node):
    rpc, log = node
    signed = _transfers([0], value=10**30)  # more than the account holds
    with pytest.raises(SendingFailed, match=r"refused transaction 0 of 0x\w+ \(0x\w+\): .*funds"):
        send_signed(rpc, PAYER, signed, stall_seconds=30, node_log=log)
