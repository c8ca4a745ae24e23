"""One sending backend and one listener per database: a second one is refused at start naming
the holder; a holder killed with -9 on this host frees its lease at once, one on another host when
its lease expires. On the session's chain, with databases of these tests' own (an idle backend
sends nothing)."""

from __future__ import annotations

import re
import time

import pytest
from citypay.day.processes import listener_process
from citypay.db.lease import Lease
from citypay.db.session import Database
from conftest import own_database_url
from platform_harness import BackendUnderTest
from sqlalchemy import insert
from test_startup import refused_start


def _backend(chain, folder, database_url: str, name: str) -> BackendUnderTest:
    return BackendUnderTest(chain, database_url, folder / f"{name}.log")


def test_a_second_backend_on_one_database_is_refused_naming_the_first(chain, tmp_path):
    database_url = own_database_url(tmp_path, "leases-two")
    first = _backend(chain, tmp_path, database_url, "first")
    first.start()
    try:
        second = _backend(chain, tmp_path, database_url, "second")
        log = refused_start(second)
        assert "the backend lease of this database is held by" in log
        assert f":{first.process.pid}:" in log
        assert "one backend process per database" in log
        assert first.process.poll() is None  # the first serves on
    finally:
        first.stop()
    # Stopped, it gave its lease back: the second starts.
    second.start()
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
    finally:
        second.stop()


def test_a_listener_beside_a_backend_that_listens_is_refused(chain, tmp_path):
    database_url = own_database_url(tmp_path, "leases-listener")
    backend = _backend(chain, tmp_path, database_url, "backend")
    backend.start()
    try:
        log_path = tmp_path / "listener.log"
        listener = listener_process(backend.settings, log_path)
        assert listener.wait(timeout=60) == 1
        assert "the listener lease of this database is held by" in log_path.read_text()
    finally:
        backend.stop()


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
        backend.stop()
    else:
        log = refused_start(backend)
        assert re.search(
            r"held by another-host:4242:123456:abcdef \(renewed \d+ s ago\).*expires in \d+ s",
            log,
        ), log
