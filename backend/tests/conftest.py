"""Backend tests run against the real chain, a real deployment and the backend over HTTP.

DATABASE_URL (e.g. postgresql+psycopg://postgres@127.0.0.1:5432/test) makes them run on that
database instead of a fresh SQLite file.
"""

from __future__ import annotations

import os
import random
import re
import time
from pathlib import Path

import httpx
import pytest
from platform_harness import (
    BackendUnderTest,
    BankUnderTest,
    deployed_chain,
    new_wallet,
    serving,
)
from sqlalchemy import create_engine, text

CITY = "gimpo"


@pytest.fixture(scope="session")
def chain(tmp_path_factory):
    yield from deployed_chain(tmp_path_factory.mktemp("chain"))


def _database_url(tmp_path_factory) -> str:
    configured = os.environ.get("DATABASE_URL")
    if configured:
        # A clean schema for this run: the tests own this database.
        engine = create_engine(configured)
        with engine.begin() as connection:
            connection.execute(text("DROP SCHEMA public CASCADE"))
            connection.execute(text("CREATE SCHEMA public"))
        engine.dispose()
        return configured
    return f"sqlite:///{tmp_path_factory.mktemp('db') / 'citypay.sqlite3'}"


def own_database_url(directory: Path, name: str) -> str:
    """A database of one test's (or one extra process's) own: a SQLite file in `directory`, or a
    fresh schema on DATABASE_URL's server, named by `name`, found through the search path."""
    configured = os.environ.get("DATABASE_URL")
    if not configured:
        return f"sqlite:///{directory / f'{name}.sqlite3'}"
    # A schema name is an SQL identifier: the name's letters and digits, the rest as "_".
    schema = re.sub(r"\W", "_", f"{name}_{random.randrange(1 << 30)}".lower())
    engine = create_engine(configured)
    with engine.begin() as connection:
        connection.execute(text(f"CREATE SCHEMA {schema}"))
    engine.dispose()
    return configured + ("&" if "?" in configured else "?") + f"options=-csearch_path%3D{schema}"


@pytest.fixture(scope="session")
def bank(tmp_path_factory):
    """The sandbox bank the backend pays cash-outs through."""
    yield from serving(BankUnderTest(tmp_path_factory.mktemp("bank")))


@pytest.fixture(scope="session")
def backend(chain, bank, tmp_path_factory):
    server = BackendUnderTest(
        chain, _database_url(tmp_path_factory), tmp_path_factory.mktemp("log") / "backend.log"
    )
    server.settings["BANK_URL"] = bank.url
    yield from serving(server)


@pytest.fixture(scope="session")
def api(backend):
    with httpx.Client(base_url=backend.url, timeout=30) as client:
        yield client


@pytest.fixture(scope="session")
def city(chain):
    return chain.deployment.city(CITY)


@pytest.fixture(scope="session")
def merchant(chain):
    wallet = new_wallet("merchant")
    chain.register_merchant(CITY, wallet)
    return wallet


@pytest.fixture(scope="session")
def inactive_merchant(chain):
    wallet = new_wallet("suspended-merchant")
    chain.register_merchant(CITY, wallet)
    chain.send(
        chain.deployment.account("registrar"),
        chain.deployment.city(CITY).registry.functions.suspend(wallet.address),
    )
    return wallet


@pytest.fixture
def resident(chain, request):
    """A fresh resident with 100,000 KRW charged (plus the incentive)."""
    wallet = new_wallet(f"resident:{request.node.nodeid}:{time.time_ns()}")
    chain.register_resident(CITY, wallet)
    chain.charge(CITY, wallet, 100_000)
    return wallet


def poll_status(
    api, path: str, statuses, *, what: str, headers=None, timeout: float, every: float = 0.2
) -> dict:
    """GETs `path` every `every` seconds until its status is one of `statuses`; `what` names it
    if it never is."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = api.get(path, headers=headers).json()
        if found["status"] in statuses:
            return found
        time.sleep(every)
    raise AssertionError(f"{what} still {found['status']} after {timeout} s")


def wait_for_status(
    api, accepted: dict, statuses=("included", "failed"), timeout: float = 20
) -> dict:
    """Polls the public status of a payment the API accepted until it reaches `statuses`."""
    path = f"/v1/cities/{accepted['city']}/payments/{accepted['payer']}/{accepted['nonce']}"
    return poll_status(
        api, path, statuses, what=f"payment {accepted['id']}", timeout=timeout, every=0.1
    )


@pytest.fixture(scope="session")
def keys(backend):
    """API keys by role, for Gimpo, plus a Gongju operator key."""
    return {
        role: backend.api_key(f"test-{role}", role, CITY)
        for role in ("operator", "bank", "auditor", "pos")
    } | {"gongju-operator": backend.api_key("test-gongju-operator", "operator", "gongju")}


def bearer(token: str) -> dict:
    return {"Authorization": f"Bearer {token}"}
