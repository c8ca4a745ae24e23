"""Schemathesis drives the running backend from its own OpenAPI document, with every check it
has: no server error, and every answer as the document says (status codes, media types,
headers, bodies), schema-valid input accepted and invalid input refused. Once without
credentials and once with each kind of API key, so that both the refusals and what lies behind
them are exercised. Its boundary values take every number to its documented bound and one past
it: 2**256 for a uint256, 2**64 for an amount, 2**31 for an id.

Bounded for CI: FUZZ_EXAMPLES examples per operation and phase (the 'examples' and 'coverage'
phases first: the boundaries; then random 'fuzzing'), one worker, a fixed seed."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time

import pytest
from conftest import bearer

EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "50"))

# Streams never end: the fuzzer would wait on each for its request timeout. Their parameters
# are the same types as their neighbours' (a city, an address, a count), fuzzed there. Recording
# a bank statement takes no input but the city, and each call would put the sandbox bank's word
# on the chain the other tests audit: test_reserve.py drives it on a chain of its own.
STREAMS = r"/payments/events$|/stream$|/reserve-statements$"

CONFIG = """
# Every run starts from nothing, as CI's fresh clone does: no cache of earlier crashes in the
# work tree; the fixed seed reproduces a failure.
[cache]
enabled = false

# A request the schema allows can still be refused by rules no schema states: a signature that
# does not recover its signer, a merchant the chain does not know, a card that does not exist,
# an invoice that expired, a locked card. The API answers those 4xx in its error shape (their
# status codes are documented per operation; status_code_conformance holds them to that), so
# they count as answers to valid data here too.
[checks.positive_data_acceptance]
expected-statuses = ["2xx", "400", "401", "403", "404", "409", "410", "422", "423"]
"""


@pytest.fixture(scope="module")
def config(tmp_path_factory):
    path = tmp_path_factory.mktemp("schemathesis") / "schemathesis.toml"
    path.write_text(CONFIG)
    return path


@pytest.mark.timeout(900)
@pytest.mark.parametrize("who", ["anonymous", "operator", "pos", "bank"])
def test_schemathesis_finds_no_server_error_and_no_nonconformance(backend, keys, config, who):
    credentials = []
    if who != "anonymous":
        credentials = ["--header", f"Authorization:{bearer(keys[who])['Authorization']}"]
    sent = config.parent / f"{who}.har"
    started = time.monotonic()
    run = subprocess.run(
        [
            sys.executable,
            "-m",
            "schemathesis.cli",
            "--config-file",
            str(config),
            "--no-color",
            "run",
            f"{backend.url}/openapi.json",
            "--checks",
            "all",
            "--mode",
            "all",
            "--phases",
            "examples,coverage,fuzzing",
            "--max-examples",
            str(EXAMPLES),
            "--seed",
            "20261124",
            "--workers",
            "1",
            "--generation-database",
            "none",
            "--request-timeout",
            "30",
            "--exclude-path-regex",
            STREAMS,
            "--output-truncate",
            "false",
            "--report",
            "har",
            "--report-har-path",
            str(sent),
            *credentials,
        ],
        cwd=config.parent,  # whatever it writes stays out of the work tree
        capture_output=True,
        text=True,
        timeout=900,
    )
    took = time.monotonic() - started
    print(f"schemathesis as {who}: {took:.0f} s\n{run.stdout[-3000:]}")
    assert run.returncode == 0, run.stdout[-20_000:] + run.stderr[-5_000:]
    # The numbers it sent went to a uint256's bound and past it.
    numbers = {int(digits) for digits in re.findall(r"(?<![0-9.])[0-9]{78,4000}", sent.read_text())}
    assert any(number >= 2**256 for number in numbers), "no number of 2**256 or more was sent"
