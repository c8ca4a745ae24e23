"""A long chain history for the benchmarks that read one: many payments as payer-signed EIP-3009
authorizations, settled by `transferWithAuthorizationBatch` as the relayer sends them; and the
raw read of it that those benchmarks measure against.

The authorizations are signed with coincurve over the digest worked out word by word
(citypay.authorization.authorization_digest; eth-account's typed-data signing takes about 2 ms
each), and the batches are encoded with eth-abi and sent by bench/sending.py: a window of them in
flight, any the node drops sent again, a failure with its reason within a minute.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import NamedTuple

import coincurve
from citypay.authorization import TokenDomain, authorization_digest
from citypay.chain.events import decode_log
from citypay.chain.log_reader import LogReader
from eth_abi import encode
from eth_utils import function_signature_to_4byte_selector, keccak
from relay import _populate, _wallet
from sending import send_from

ENTRY = "(address,address,uint256,uint256,uint256,bytes32,uint8,bytes32,bytes32)"
SELECTOR = function_signature_to_4byte_selector(f"transferWithAuthorizationBatch({ENTRY}[])")
# Gas a batch entry may use (about 40,000 is typical): anvil packs a block by the gas limits.
GAS_PER_ENTRY = 60_000


class _Terms(NamedTuple):
    """What authorization_digest reads of an authorization."""

    from_: str
    to: str
    value: int
    valid_after: int
    valid_before: int
    nonce: bytes


def people(chain, payers: int, merchants: int) -> tuple[list, list]:
    """The relay benchmark's payers (registered and charged) and merchants (registered)."""
    payer_wallets = [_wallet("payer", i) for i in range(payers)]
    merchant_wallets = [_wallet("merchant", i) for i in range(merchants)]
    _populate(chain, payer_wallets, merchant_wallets)
    return payer_wallets, merchant_wallets


def make_history(
    chain, city_code: str, payers: list, merchants: list, count: int, value, *, label, batch
) -> dict:
    """sign_payments in the city's token domain, then submit; how long each took and the blocks
    that hold the payments."""
    city = chain.deployment.city(city_code)
    domain = TokenDomain(city.name, "1", chain.deployment.chain_id, city.token.address)
    started = time.perf_counter()
    entries = sign_payments(domain, payers, merchants, count, value, label)
    signing = time.perf_counter() - started
    started = time.perf_counter()
    first, last = submit(chain, city_code, entries, batch)
    mining = time.perf_counter() - started
    print(f"history: signed in {signing:.1f} s, mined in blocks {first}-{last} in {mining:.1f} s")
    return {"signing_seconds": signing, "mining_seconds": mining, "payment_blocks": [first, last]}


def read_raw(rpc, where: dict, first: int, last: int, **reader) -> tuple[float, list, int]:
    """(seconds, logs, chunks): eth_getLogs of `where`'s addresses over [first, last], with the
    LogReader the backend reads with (`reader`: its options) and nothing else."""
    started = time.perf_counter()
    chunks = list(LogReader(rpc, list(where), **reader).read(first, last))
    seconds = time.perf_counter() - started
    return seconds, [entry for chunk in chunks for entry in chunk.logs], len(chunks)


def count_raw(rpc, where: dict, first: int, last: int) -> tuple[float, int, tuple[int, int, int]]:
    """(seconds, logs, widest chunk as (logs, first block, last block)): read_raw's read of a
    long history, keeping none of the logs (a million payments' two million would outweigh what
    is measured). A reader holds about its widest chunk at once."""
    started = time.perf_counter()
    logs, widest = 0, (0, first, first)
    for chunk in LogReader(rpc, list(where)).read(first, last):
        logs += len(chunk.logs)
        widest = max(widest, (len(chunk.logs), chunk.first, chunk.last))
    return time.perf_counter() - started, logs, widest


def decode_all(logs: list, where: dict) -> tuple[float, list]:
    """(seconds, events): every log through decode_log, `where` naming each address's (city,
    contract kind)."""
    started = time.perf_counter()
    events = [
        decode_log(entry, *where[entry["address"].lower()], int(entry["blockTimestamp"], 16))
        for entry in logs
    ]
    return time.perf_counter() - started, events


def sign_payments(
    domain: TokenDomain,
    payers: list,
    merchants: list,
    count: int,
    value: Callable[[int], int],
    label: str,
) -> list[tuple]:
    """`count` authorizations, payer and merchant in turn, each worth `value(index)`, as batch
    entries (from, to, value, after, before, nonce, v, r, s); nonces are keccak(label:index)."""
    keys = [coincurve.PrivateKey(bytes(p.key)) for p in payers]
    valid_before = int(time.time()) + 24 * 3600
    entries = []
    for index in range(count):
        payer = index % len(payers)
        terms = _Terms(
            payers[payer].address,
            merchants[index % len(merchants)].address,
            value(index),
            0,
            valid_before,
            keccak(text=f"{label}:{index}"),
        )
        signature = keys[payer].sign_recoverable(authorization_digest(domain, terms), hasher=None)
        entries.append((*terms, 27 + signature[64], signature[:32], signature[32:64]))
    return entries


def submit(chain, city_code: str, entries: list[tuple], batch: int) -> tuple[int, int]:
    """Sends the entries in batches from the relayer's account and waits for every one;
    (first block, last block) that holds them."""
    city = chain.deployment.city(city_code)
    batches = (
        {
            "to": city.token.address,
            "data": SELECTOR + encode([f"{ENTRY}[]"], [entries[start : start + batch]]),
            "gas": GAS_PER_ENTRY * len(entries[start : start + batch]) + 100_000,
        }
        for start in range(0, len(entries), batch)
    )
    blocks = send_from(chain, chain.deployment.account("relayer"), batches)
    return min(blocks), max(blocks)
