"""The auditor against nodes that lack the past: the embedded chain stopped and restarted from
its state file (blocks and logs kept, the state of past blocks gone), the same state with its
blocks stripped (as a snapshot restore or a pruned node has it), a node that does not answer, a
node that keeps refusing eth_getLogs, and addresses that are no directory. Each either audits to
the same figures as before, or exits 2 naming why; never 1, which says "violations found"."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import requests
from conftest import CITY
from platform_harness import (
    ROOT,
    ChainUnderTest,
    _chain_settings,
    chain_tool,
    free_port,
    new_wallet,
)
from test_cashout import _send_as
from web3.exceptions import Web3RPCError

# --- the auditor's command line, as the auditor's tests run it ------------------------------


def directory_of(chain: ChainUnderTest) -> str:
    return json.loads(chain.manifest.read_text())["directory"]["address"]


def run_audit(rpc_url: str, directory: str, command: str, *args: str):
    """The auditor's command line as a person runs it, answering in JSON: the finished process."""
    return subprocess.run(
        [sys.executable, "-m", "citypay.audit", command, "--rpc-url", rpc_url,
         "--directory", directory, "--format", "json", *args],
        cwd=ROOT, capture_output=True, text=True, timeout=120,
    )  # fmt: skip


def audit(chain: ChainUnderTest, command: str, *args: str, expect: int | None = 0) -> dict:
    """The auditor's JSON answer on `chain` (exit code `expect`, or 0 or 1 when None: a finding
    is not a failure to audit)."""
    done = run_audit(chain.rpc_url, directory_of(chain), command, *args)
    assert done.returncode in ((0, 1) if expect is None else (expect,)), done.stdout + done.stderr
    return json.loads(done.stdout)


def refused(done, *words: str) -> str:
    """The reason an audit that could not be made gave: exit 2, nothing on stdout, no trace."""
    assert done.returncode == 2, done.stdout + done.stderr
    assert done.stdout == "" and "Traceback" not in done.stderr, done.stderr
    for word in words:
        assert word in done.stderr, done.stderr
    return done.stderr


def start_again(chain: ChainUnderTest) -> None:
    """The project's chain command on the chain's state folder: anvil loads its state file."""
    chain_tool("scripts.chain", "start", env=_chain_settings(chain.port, chain.data_dir))


# --- the chains --------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def restarted(tmp_path_factory):
    """A chain of this module's own with a little of everything (registrations, charges, a
    payment, a pending cash-out), audited, then stopped and started again from its state file.
    Yields (the chain, the report and check before the restart); the state file as the stop
    left it is kept beside, as state-at-restart.json."""
    chain = ChainUnderTest(tmp_path_factory.mktemp("restarted-chain"))
    chain.start_and_deploy()
    try:
        city = chain.deployment.city(CITY)
        resident, merchant = new_wallet("any-node-resident"), new_wallet("any-node-merchant")
        chain.register_resident(CITY, resident)
        chain.register_merchant(CITY, merchant)
        chain.charge(CITY, resident, 50_000)
        _send_as(chain, resident, city.token.functions.transfer(merchant.address, 12_345))
        _send_as(chain, merchant, city.treasury.functions.cashOut(2_000))
        before = audit(chain, "report"), audit(chain, "check")
        assert before[0]["cities"][CITY]["paid"] == 12_345
        chain.stop()  # anvil writes its state file on the way out
        state = (chain.data_dir / "state.json").read_text()
        (chain.data_dir / "state-at-restart.json").write_text(state)
        start_again(chain)
        yield chain, before
    finally:
        chain.stop()


@pytest.fixture(scope="module")
def stripped(restarted, tmp_path_factory):
    """The restarted chain's state with its past blocks taken out (the head block is kept, as
    anvil needs it): the contracts and balances as they are, no log of how they came to be.
    Yields (the node, the directory's address, the manifest the deployment wrote)."""
    chain, _ = restarted
    state = json.loads((chain.data_dir / "state-at-restart.json").read_text())
    head = state["best_block_number"]
    state["blocks"] = [b for b in state["blocks"] if int(b["header"]["number"], 16) == head]
    state["transactions"] = []
    node = ChainUnderTest(tmp_path_factory.mktemp("stripped-chain"))
    (node.data_dir / "state.json").write_text(json.dumps(state))
    start_again(node)
    try:
        yield node, directory_of(chain), str(chain.manifest)
    finally:
        node.stop()


# --- a restart from the state file -------------------------------------------------------------


def test_a_restarted_node_no_longer_has_the_state_of_past_blocks(restarted):
    chain, (report, _) = restarted
    with pytest.raises(Web3RPCError, match="BlockOutOfRange"):
        chain.w3.eth.get_code(directory_of(chain), block_identifier=report["first_block"])


def test_the_audit_after_a_restart_gives_the_same_figures_from_the_events(restarted):
    chain, (report, check) = restarted
    after = audit(chain, "report")
    assert after["cities"] == report["cities"]
    assert (after["first_block"], after["first_block_from"]) == (
        report["first_block"], "the contracts' first events",
    )  # fmt: skip
    assert after["block"] > report["block"]
    assert audit(chain, "check") | {"block": None} == check | {"block": None}
    assert check["violations"] == []


def test_the_manifest_or_a_start_block_give_the_same_figures_after_a_restart(restarted):
    chain, (report, _) = restarted
    by_manifest = audit(chain, "report", "--manifest", str(chain.manifest))
    manifest = json.loads(chain.manifest.read_text())
    assert by_manifest["first_block"] == manifest["directory"]["block"]
    assert by_manifest["first_block_from"] == f"the manifest {chain.manifest}"
    from_genesis = audit(chain, "report", "--from-block", "0")
    assert (from_genesis["first_block"], from_genesis["first_block_from"]) == (0, "--from-block")
    assert by_manifest["cities"] == from_genesis["cities"] == report["cities"]
    assert audit(chain, "check", "--manifest", str(chain.manifest))["violations"] == []


def test_a_start_block_after_the_listing_is_refused_not_audited_from_half_the_events(restarted):
    chain, (report, _) = restarted
    listed_after = str(report["block"])  # the block the audit before the restart reached
    done = run_audit(chain.rpc_url, directory_of(chain), "check", "--from-block", listed_after)
    refused(done, "hold no CityRegistered for them", f"the start block {listed_after}")
    beyond = run_audit(chain.rpc_url, directory_of(chain), "report", "--from-block", "999999")
    refused(beyond, "--from-block 999999 is above the node's head")


def test_a_manifest_of_another_chain_or_deployment_is_refused(restarted, tmp_path):
    chain, _ = restarted
    manifest = json.loads(chain.manifest.read_text())
    other_chain = tmp_path / "other-chain.json"
    other_chain.write_text(json.dumps(manifest | {"chain_id": 1}))
    done = run_audit(chain.rpc_url, directory_of(chain), "report", "--manifest", str(other_chain))
    refused(done, "is for chain id 1, but the node", "chain id 58210")
    other_directory = tmp_path / "other-directory.json"
    moved = manifest["directory"] | {"address": "0x" + "11" * 20}
    other_directory.write_text(json.dumps(manifest | {"directory": moved}))
    done = run_audit(
        chain.rpc_url, directory_of(chain), "report", "--manifest", str(other_directory)
    )
    refused(done, f"records the directory 0x{'11' * 20}, not {directory_of(chain)}")
    missing = run_audit(
        chain.rpc_url, directory_of(chain), "report", "--manifest", str(tmp_path / "none.json")
    )
    refused(missing, "no deployment manifest at")


# --- a node without the past ----------------------------------------------------------------


def test_a_node_without_blocks_or_logs_exits_2_naming_the_missing_history(stripped):
    node, directory, _ = stripped
    for command in ("check", "report"):
        reason = refused(run_audit(node.rpc_url, directory, command), "has no log in blocks 0-")
        assert "that would date its contracts is gone too" in reason
        assert "BlockOutOfRangeError" in reason and "archive node" in reason


def test_a_manifest_does_not_make_a_node_without_the_blocks_auditable(stripped):
    node, directory, manifest = stripped
    done = run_audit(node.rpc_url, directory, "check", "--manifest", manifest)
    refused(done, "which the node at", "does not have; the node has no block from 1 to")


# --- nodes and addresses that are not what was asked for -----------------------------------


def test_an_unreachable_rpc_url_exits_2_saying_nothing_answers_there():
    url = f"http://127.0.0.1:{free_port()}"
    done = run_audit(url, "0x" + "22" * 20, "check")
    refused(done, f"no Ethereum node answers at {url} (Connection refused)", "--rpc-url")


def test_a_wrong_directory_address_exits_2(restarted):
    chain, _ = restarted
    token = chain.deployment.city(CITY).token.address
    refused(
        run_audit(chain.rpc_url, token, "check"),
        f"{token} does not answer cities() as a CityDirectory",
    )
    nobody = new_wallet("no-directory").address
    refused(run_audit(chain.rpc_url, nobody, "report"), f"no contract at {nobody}")
    refused(run_audit(chain.rpc_url, "0x1234", "check"), "is not a 0x-prefixed 20-byte hex")


class RefusingLogs(BaseHTTPRequestHandler):
    """Passes every JSON-RPC request to the node but eth_getLogs, which it refuses as a busy
    node does (a query timeout)."""

    node_url = ""

    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        if isinstance(body, dict) and body["method"] == "eth_getLogs":
            error = {"code": -32005, "message": "query timeout exceeded"}
            answer = json.dumps({"jsonrpc": "2.0", "id": body["id"], "error": error}).encode()
        else:
            answer = requests.post(self.node_url, json=body, timeout=30).content
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(answer)))
        self.end_headers()
        self.wfile.write(answer)

    def log_message(self, *args) -> None:
        pass


def test_a_node_that_keeps_refusing_logs_exits_2_after_the_retries(restarted):
    chain, _ = restarted
    handler = type("Handler", (RefusingLogs,), {"node_url": chain.rpc_url})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}"
        done = run_audit(url, directory_of(chain), "check")
    finally:
        server.shutdown()
        server.server_close()
    refused(done, f"the node at {url} kept refusing eth_getLogs", "query timeout exceeded")
