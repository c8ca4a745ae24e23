"""A program's payout from a CSV (python -m citypay.programs payout): killed with -9 in the middle
of its batches and run again, every recipient is paid exactly once and none is skipped; a recipient
the chain refuses is reported with the contract's reason; a bad list is refused whole, naming its
line, before anything is sent."""

from __future__ import annotations

import csv
import os
import signal
import subprocess
import sys
import time

import pytest
from conftest import CITY, own_database_url
from eth_utils import keccak
from platform_harness import deployed_chain, new_wallet

CODE = "PAYOUT-TEST"
RECIPIENTS = 400
BATCH = 25
AMOUNT = 70_000


@pytest.fixture(scope="module")
def own_chain(tmp_path_factory):
    yield from deployed_chain(tmp_path_factory.mktemp("payout-chain"))


def _send_all(chain, sender: str, calls) -> None:
    """Every call from `sender` under consecutive nonces, then the receipt of each."""
    account = chain.signer(sender)
    nonce = chain.w3.eth.get_transaction_count(account.address, "pending")
    hashes = []
    for offset, call in enumerate(calls):
        transaction = call.build_transaction(
            {
                "from": account.address,
                "nonce": nonce + offset,
                "gas": 1_000_000,
                "gasPrice": 0,
                "chainId": chain.chain_id,
            }
        )
        signed = account.sign_transaction(transaction)
        hashes.append(chain.w3.eth.send_raw_transaction(signed.raw_transaction))
    for tx_hash in hashes:
        receipt = chain.w3.eth.wait_for_transaction_receipt(tx_hash, timeout=60)
        assert receipt["status"] == 1


@pytest.fixture(scope="module")
def program(own_chain):
    """A funded program and RECIPIENTS registered residents."""
    chain = own_chain
    city = chain.deployment.city(CITY)
    programs, roles = city.programs, city.roles
    stamp = time.time_ns()
    wallets = [new_wallet(f"payout-{n}:{stamp}").address for n in range(RECIPIENTS)]
    register = city.registry.functions.registerResident
    _send_all(
        chain,
        roles["registrar"],
        [register(w, keccak(text=f"identity:{w}"), 41570) for w in wallets],
    )
    now = chain.w3.eth.get_block("latest")["timestamp"]
    code = CODE.encode().ljust(32, b"\0")
    budget = AMOUNT * (RECIPIENTS + 10)
    terms = (code, budget, 100_000, 0, now + 90 * 86_400, 2**64 - 1, [], [])
    chain.send(roles["program_manager"], programs.functions.createProgram(terms))
    number = programs.functions.programOfCode(code).call()
    chain.send(roles["program_funder"], programs.functions.fundProgram(number, budget, code))
    return chain, city, number, wallets


def _payout(chain, database_url, path, *, wait=True):
    env = os.environ | chain.service_settings(database_url)
    command = [sys.executable, "-m", "citypay.programs", "payout", "--city", CITY]
    command += ["--program", CODE, "--csv", str(path), "--batch", str(BATCH)]
    if not wait:
        return subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    return subprocess.run(command, env=env, capture_output=True, text=True, timeout=300)


def _write_list(path, rows) -> None:
    with path.open("w", newline="", encoding="utf-8") as file:
        writer = csv.writer(file)
        writer.writerow(("wallet", "amount"))
        writer.writerows(rows)


def _paid_events(city, number) -> dict[str, int]:
    logs = city.programs.events.ProgramPaid.get_logs(
        from_block=0, argument_filters={"program": number}
    )
    counts: dict[str, int] = {}
    for log in logs:
        counts[log.args.recipient] = counts.get(log.args.recipient, 0) + 1
    return counts


def test_killed_midway_and_run_again_pays_everyone_exactly_once(program, tmp_path):
    chain, city, number, wallets = program
    unregistered = new_wallet(f"payout-unregistered:{time.time_ns()}").address
    path = tmp_path / "youth.csv"
    _write_list(path, [(w, AMOUNT) for w in wallets] + [(unregistered, AMOUNT)])
    database_url = own_database_url(tmp_path, "payout")

    first = _payout(chain, database_url, path, wait=False)
    # Killed once some batches are paid, the rest not.
    deadline = time.monotonic() + 120
    while len(_paid_events(city, number)) < 3 * BATCH and time.monotonic() < deadline:
        time.sleep(0.2)
    first.send_signal(signal.SIGKILL)
    first.wait(timeout=30)
    paid_before = len(_paid_events(city, number))
    assert 0 < paid_before < RECIPIENTS, "the kill must fall in the middle of the payout"

    again = _payout(chain, database_url, path)
    assert again.returncode == 1, again.stdout + again.stderr  # the unregistered one is refused
    counts = _paid_events(city, number)
    assert set(counts) == set(wallets)
    assert set(counts.values()) == {1}
    for wallet in wallets:
        assert city.programs.functions.holdingOf(wallet, number).call() == AMOUNT
    with (tmp_path / "youth.result.csv").open(encoding="utf-8-sig") as file:
        results = list(csv.DictReader(file))
    assert [r["wallet"] for r in results] == [*wallets, unregistered]
    statuses = {r["wallet"]: r["status"] for r in results}
    assert {statuses[w] for w in wallets} <= {"paid", "already_paid"}
    assert sum(statuses[w] == "already_paid" for w in wallets) >= paid_before
    (refused,) = [r for r in results if r["wallet"] == unregistered]
    assert refused["status"] == "refused" and "CityToken" in refused["reason"], refused
    paid_now = sum(statuses[w] == "paid" for w in wallets)
    assert f"{paid_now:,} paid now, {RECIPIENTS - paid_now:,} paid before" in again.stdout

    # A third run has nothing left to pay but the refused one.
    third = _payout(chain, database_url, path)
    assert f"0 paid now, {RECIPIENTS:,} paid before, 1 refused" in third.stdout, third.stdout


@pytest.mark.parametrize(
    ("rows", "words"),
    [
        ([("0x123", 1_000)], ["line 2", "'0x123'", "not an address"]),
        ([("0x8626f6940E2eb28930eFb4CeF49B2d1F2C9C1199".lower(), 0)], ["line 2", "'0'", "1 to"]),
        ([("0x8626f6940e2eb28930efb4cef49b2d1f2c9c1199", 100_001)], ["line 2", "100,000"]),
        ([("0x8626f6940e2eb28930efb4cef49b2d1f2c9c1199", "1e3")], ["line 2", "'1e3'"]),
        ([("0x8626F6940e2eb28930efb4cef49b2d1f2c9c1199", 1)], ["line 2", "EIP-55"]),
        (
            [
                ("0x8626f6940e2eb28930efb4cef49b2d1f2c9c1199", 1),
                ("0x8626f6940E2eb28930eFb4CeF49B2d1F2C9C1199", 2),
            ],
            ["line 3", "already on line 2"],
        ),
        ([], ["no recipient"]),
    ],
)
def test_a_bad_list_is_refused_whole_before_anything_is_sent(program, tmp_path, rows, words):
    chain, city, number, _ = program
    path = tmp_path / "bad.csv"
    _write_list(path, rows)
    paid = city.programs.functions.program(number).call()
    done = _payout(chain, own_database_url(tmp_path, "bad"), path)
    assert done.returncode == 2, done.stdout + done.stderr
    for word in words:
        assert word in done.stderr, done.stderr
    assert "nothing was sent" in done.stderr
    assert city.programs.functions.program(number).call() == paid
