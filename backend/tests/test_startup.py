"""The backend refuses to start when it could not do its duties, and says which and why."""

from __future__ import annotations

import pytest
from eth_account import Account
from platform_harness import BackendUnderTest


def test_a_key_of_another_address_stops_the_start_naming_the_duty(chain, tmp_path):
    stranger = Account.from_key(b"\x07" * 32)
    log_path = tmp_path / "backend.log"
    server = BackendUnderTest(chain, f"sqlite:///{tmp_path / 'db.sqlite3'}", log_path)
    server.settings["SETTLER_PRIVATE_KEY"] = "0x" + stranger.key.hex().removeprefix("0x")
    with pytest.raises(RuntimeError, match="exited"):
        server.start(timeout=60)
    log = log_path.read_text()
    assert "SETTLER_PRIVATE_KEY" in log
    assert stranger.address in log
    assert "RELAYER_PRIVATE_KEY" not in log  # the duties whose keys are fine are not blamed


def test_the_wrong_chain_stops_the_start(chain, tmp_path):
    log_path = tmp_path / "backend.log"
    server = BackendUnderTest(chain, f"sqlite:///{tmp_path / 'db.sqlite3'}", log_path)
    server.settings["CHAIN_ID"] = "1337"
    with pytest.raises(RuntimeError, match="exited"):
        server.start(timeout=60)
    assert "runs chain id 58210, not CHAIN_ID 1337" in log_path.read_text()
