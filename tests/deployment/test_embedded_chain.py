"""The project's own chain: its settings, and a clear refusal of a taken port."""

import json
import socket
import time


def status(chain) -> dict:
    shown = chain.command("status", "--json")
    assert shown.returncode == 0, shown.stderr
    return json.loads(shown.stdout)


def test_status_shows_the_running_chain_with_its_chain_id_and_block(chain):
    shown = status(chain)
    assert shown["running"] is True
    assert shown["port"] == chain.port
    assert shown["chain_id"] == 58210
    assert isinstance(shown["pid"], int)
    assert shown["block_number"] >= 0


def test_chain_mines_a_block_every_second_at_zero_gas_price(chain):
    w3 = chain.w3
    first = w3.eth.block_number
    time.sleep(2.5)
    assert w3.eth.block_number >= first + 2
    latest = w3.eth.get_block("latest")
    assert latest["baseFeePerGas"] == 0
    assert latest["gasLimit"] == 100_000_000
    assert w3.eth.gas_price == 0


def test_chain_log_keeps_the_node_log_without_the_development_keys(chain):
    log = (chain.folder / "chain" / "anvil.log").read_text()
    assert "eth_chainId" in log
    assert "Private Keys" not in log


def test_starting_a_running_chain_keeps_it(chain):
    before = status(chain)["pid"]
    again = chain.command("start")
    assert again.returncode == 0, again.stderr
    assert status(chain)["pid"] == before


def test_start_refuses_a_port_taken_by_another_program(tmp_path, unused_port, chain_at):
    port = unused_port()
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as squatter:
        squatter.bind(("127.0.0.1", port))
        squatter.listen()
        started_at = time.monotonic()
        refused = chain_at(port=port, chain_id=58210, folder=tmp_path).command("start")
    assert refused.returncode == 1
    assert f"port {port} is already in use" in refused.stderr
    assert time.monotonic() - started_at < 10
