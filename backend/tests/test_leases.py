"""One sending backend and one listener per database: on SQLite a second backend is refused at
start naming the holder, on PostgreSQL it serves and stands by (test_replicas.py); a holder
killed with -9 on this host frees its lease at once, one on another host when its lease expires.
On the session's chain, with databases of these tests' own (an idle backend sends nothing)."""

from __future__ import annotations

import os
import re
import time

import httpx
import pytest
from citypay.day.processes import listener_process
from citypay.db.lease import Lease
from citypay.db.session import Database
from conftest import own_database_url
from platform_harness import BackendUnderTest
from sqlalchemy import insert
from test_startup import refused_start

ON_SQLITE = "postgresql" not in os.environ.get("DATABASE_URL", "")


def _backend(chain, folder, database_url: str, name: str) -> BackendUnderTest:
    return BackendUnderTest(chain, database_url, folder / f"{name}.log")


def duties(backend: BackendUnderTest) -> str:
    """Whether the backend runs the duties ("active") or stands by, as its /health says."""
    return httpx.get(f"{backend.url}/health", timeout=10).json()["duties"]


def held_elsewhere(backend: BackendUnderTest) -> str:
    """Starts `backend` while another holds the lease: refused on SQLite, standing by on
    PostgreSQL; its log, which names the holder either way."""
    if ON_SQLITE:
        return refused_start(backend)
    backend.start()
    try:
        assert duties(backend) == "standby"
    finally:
        backend.stop()
    return backend.log_path.read_text()


def test_a_second_backend_on_one_database_waits_for_the_first_naming_it(chain, tmp_path):
    database_url = own_database_url(tmp_path, "leases-two")
    first = _backend(chain, tmp_path, database_url, "first")
    first.start()
    try:
        second = _backend(chain, tmp_path, database_url, "second")
        log = held_elsewhere(second)
        if ON_SQLITE:
            assert "the backend lease of this database is held by" in log
            assert "one backend process per database" in log
        else:
            assert "standing by: the duties of this database are held by" in log
        assert f":{first.process.pid}:" in log
        assert first.process.poll() is None  # the first serves on
        assert duties(first) == "active"
    finally:
        first.stop()
    # Stopped, it gave its lease back: the second starts with the duties.
    second.start()
    try:
        assert duties(second) == "active"
    finally:
        second.stop()


def test_a_backend_killed_on_this_host_frees_its_lease_at_once(chain, tmp_path):
    database_url = own_database_url(tmp_path, "leases-kill")
    first = _backend(chain, tmp_path, database_url, "first")
    first.start()
    first.kill()  # kill -9: its lease stays in the table, unexpired
    second = _backend(chain, tmp_path, database_url, "second")
    started = time.monotonic()
    second.start()
    try:
        assert time.monotonic() - started < 15  # not the lease's ttl: its holder is gone
        assert duties(second) == "active"
    finally:
        second.stop()


def test_a_listener_beside_a_backend_that_listens_is_refused_or_stands_by(chain, tmp_path):
    database_url = own_database_url(tmp_path, "leases-listener")
    backend = _backend(chain, tmp_path, database_url, "backend")
    backend.start()
    log_path = tmp_path / "listener.log"
    listener = listener_process(backend.settings, log_path)
    try:
        if ON_SQLITE:
            assert listener.wait(timeout=60) == 1
            assert "the listener lease of this database is held by" in log_path.read_text()
            return
        _wait_for_line(log_path, "standing by: the listener of this database is held by")
        assert listener.poll() is None
        backend.stop()  # gives its leases back: the standing-by listener takes over
        _wait_for_line(log_path, "listener started")
    finally:
        backend.stop()
        if listener.poll() is None:
            listener.terminate()
            listener.wait(timeout=30)


def _wait_for_line(log_path, text: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if log_path.exists() and text in log_path.read_text():
            return
        time.sleep(0.2)
    raise AssertionError(f"{text!r} not in {log_path} after {timeout} s")


@pytest.mark.parametrize(("expired", "starts"), [(True, True), (False, False)])
def test_another_hosts_lease_holds_until_it_expires(chain, tmp_path, expired, starts):
    database_url = own_database_url(tmp_path, f"leases-host-{expired}")
    backend = _backend(chain, tmp_path, database_url, "backend")
    backend.start()  # creates the schema
    backend.stop()
    now = time.time()
    db = Database(database_url)
    try:
        with db.session() as session:
            session.execute(
                insert(Lease).values(
                    name="backend",
                    holder="another-host:4242:123456:abcdef",
                    expires_at=now - 1 if expired else now + 600,
                    renewed_at=now - 20,
                )
            )
    finally:
        db.engine.dispose()
    if starts:
        backend.start()
        try:
            assert duties(backend) == "active"
        finally:
            backend.stop()
    else:
        log = held_elsewhere(backend)
        held = r"held by another-host:4242:123456:abcdef"
        if ON_SQLITE:
            held += r" \(renewed \d+ s ago\).*expires in \d+ s"
        assert re.search(held, log), log
