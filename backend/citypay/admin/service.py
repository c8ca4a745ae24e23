"""Keeps every city's dashboard figures current and hands them to the routes.

The figures are folded once from the `chain_events` table, then kept up to date with what the
listener commits: each update adds only its own events, so a summary after a block costs the
size of the dashboard, not of the history. A rescan (the listener's restart margin, or a reorg)
replaces stored events, so the figures are folded again from the table then.

When the listener runs in its own process (LISTENER_IN_API=false), a thread follows its
checkpoint in the database instead and feeds the same updates.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from itertools import takewhile
from typing import Any

from citypay.admin.alerts import ALERTS, alerts_table
from citypay.admin.figures import DashboardFigures, day_key
from citypay.admin.summary import TABLES, build_summary, payment_row
from citypay.chain.deployment import City, Deployment
from citypay.core.errors import NotFound
from citypay.db.session import Database
from citypay.ledger import events_from_db
from citypay.listener.indexer import CHECKPOINT, Listener, Update
from citypay.listener.models import ListenerCheckpoint

log = logging.getLogger(__name__)

TABLE_KEYS = (*TABLES, ALERTS.key)


class Changes:
    """Wakes the dashboard's event streams (coroutines on the server's loop) from the thread
    that folded an update."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._waiters: set[tuple[asyncio.AbstractEventLoop, asyncio.Event]] = set()

    def notify(self) -> None:
        with self._lock:
            waiters = list(self._waiters)
        for loop, event in waiters:
            # A closed loop's stream is gone already.
            with suppress(RuntimeError):
                loop.call_soon_threadsafe(event.set)

    @contextmanager
    def listen(self) -> Iterator[asyncio.Event]:
        """An asyncio.Event set after each update, for the time of the `with` block."""
        waiter = (asyncio.get_running_loop(), asyncio.Event())
        with self._lock:
            self._waiters.add(waiter)
        try:
            yield waiter[1]
        finally:
            with self._lock:
                self._waiters.discard(waiter)


@dataclass(frozen=True)
class StreamState:
    """What a stream has not sent yet: the summary if it changed, payments after its last."""

    version: int
    summary: dict[str, Any] | None
    payments: list[dict[str, Any]]
    block: dict[str, int | None]


class DashboardService:
    def __init__(
        self, db: Database, deployment: Deployment, *, clock: Callable[[], float] = time.time
    ) -> None:
        self.db = db
        self.deployment = deployment
        self.clock = clock
        self.changes = Changes()
        self._lock = threading.RLock()
        self._figures: DashboardFigures | None = None
        self._indexed_to: int | None = None  # the last block folded in
        self._head: int | None = None
        self._versions: dict[str, int] = {}
        self._summaries: dict[str, tuple[tuple, dict[str, Any]]] = {}
        self._stop = threading.Event()
        self._follower: threading.Thread | None = None
        self._start_months: dict[str, int] | None = None

    # --- following the chain --------------------------------------------------------------------

    def follow(self, listener: Listener) -> None:
        """Folds what the in-process listener commits (on its thread)."""
        listener.subscribe(self._on_update)

    def follow_database(self, poll_interval: float) -> None:
        """Follows a listener of another process through its checkpoint in the database."""
        self._follower = threading.Thread(
            target=self._poll, args=(poll_interval,), name="dashboard", daemon=True
        )
        self._follower.start()

    def stop(self) -> None:
        self._stop.set()
        if self._follower is not None:
            self._follower.join(timeout=10)

    def _on_update(self, update: Update) -> None:
        with self._lock:
            self._head = update.head
            if self._figures is None:
                self._load()  # the first update after start: fold the table once, now
            elif update.rescanned_from is not None:
                log.info("events from block %d were replaced: folding again", update.rescanned_from)
                self._load()
            elif update.indexed_to > (self._indexed_to or -1):
                # Folded already if the table was read after this chunk was committed.
                self._fold(e for e in update.events if e.block_number > (self._indexed_to or -1))
                self._indexed_to = update.indexed_to
        self.changes.notify()

    def _poll(self, interval: float) -> None:
        while not self._stop.wait(interval):
            try:
                self._poll_once()
            except Exception:
                log.exception("following the listener's checkpoint failed; retrying")

    def _poll_once(self) -> None:
        with self.db.session() as session:
            checkpoint = session.get(ListenerCheckpoint, CHECKPOINT)
            if checkpoint is None or checkpoint.block_number == self._indexed_to:
                return
            last = checkpoint.block_number
            if self._indexed_to is None or last < self._indexed_to:
                # Nothing folded yet, or a checkpoint that went back (a reorg the listener
                # walked back): fold the table again.
                update = Update([], last, last, rescanned_from=0)
            else:
                stored = events_from_db(session, after_block=self._indexed_to)
                events = list(takewhile(lambda e: e.block_number <= last, stored))
                update = Update(events, last, last, rescanned_from=None)
        self._on_update(update)

    def _load(self) -> None:
        """Folds the whole table, up to the checkpoint read first: a chunk committed meanwhile
        reaches `_on_update` with blocks above it and is folded then, exactly once."""
        started = time.monotonic()
        figures = DashboardFigures(self._fiscal_year_start_months())
        with self.db.session() as session:
            checkpoint = session.get(ListenerCheckpoint, CHECKPOINT)
            indexed_to = checkpoint.block_number if checkpoint else -1
            figures.apply_all(
                takewhile(lambda e: e.block_number <= indexed_to, events_from_db(session))
            )
        for code, city in self.deployment.cities.items():
            # The cap as the treasury holds it now; later PolicyChanged events update it.
            figures.city(code).annual_cap = city.chain.treasury.call("policy").annualIssuanceCap
        self._figures = figures
        self._indexed_to = indexed_to if checkpoint else None
        self._versions = {code: self._versions.get(code, 0) + 1 for code in self.deployment.cities}
        log.info(
            "dashboard folded %d events up to block %s in %.2f s",
            sum(c.books.events for c in figures.cities.values()),
            self._indexed_to,
            time.monotonic() - started,
        )

    def _fold(self, events) -> None:
        touched = set()
        for event in events:
            self._figures.apply(event)
            # The directory's events name their city by its code (a bank statement, ...).
            touched.add(event.city or event.args.get("code", ""))
        for code in touched:
            self._versions[code] = self._versions.get(code, 0) + 1

    def _fiscal_year_start_months(self) -> dict[str, int]:
        if self._start_months is None:  # immutable in the treasury: read once
            self._start_months = {
                code: city.chain.treasury.call("fiscalYearStartMonth")
                for code, city in self.deployment.cities.items()
            }
        return self._start_months

    # --- what the routes read -----------------------------------------------------------------

    def _loaded(self) -> DashboardFigures:
        if self._figures is None:
            self._load()
        return self._figures

    def block(self) -> dict[str, int | None]:
        return {"indexedTo": self._indexed_to, "head": self._head}

    def summary(self, city: City) -> dict[str, Any]:
        """The city's dashboard, computed again only after its events or a new day (KST)."""
        with self._lock:
            figures = self._loaded().city(city.code)
            now = self.clock()
            key = (self._versions.get(city.code, 0), day_key(int(now)))
            cached = self._summaries.get(city.code)
            if cached is None or cached[0] != key:
                summary = build_summary(
                    figures,
                    city={
                        "code": city.code,
                        "name": city.name,
                        "localName": city.local_name,
                        "symbol": city.symbol,
                    },
                    annual_cap=figures.annual_cap,
                    now=now,
                )
                # The fraud rules follow the listener before the dashboard does (api/app.py):
                # the alerts of this block are stored by now.
                summary["tables"]["alerts"] = alerts_table(self.db, city.code)
                cached = self._summaries[city.code] = (key, summary)
            return {**cached[1], "block": self.block()}

    def reserve_statements(self, city: City) -> list[dict[str, Any]]:
        with self._lock:
            return [s.as_dict() for s in self._loaded().city(city.code).books.reserve]

    def stream_state(self, city: City, *, version: int | None, after: int) -> StreamState:
        """For a stream that sent summary `version` and payments up to `after`."""
        with self._lock:
            figures = self._loaded().city(city.code)
            current = self._versions.get(city.code, 0)
            payments = [payment_row(p) for p in figures.feed if p.seq > after]
            return StreamState(
                version=current,
                summary=self.summary(city) if current != version else None,
                payments=payments,
                block=self.block(),
            )

    def table(self, city: City, key: str) -> dict[str, Any]:
        if key not in TABLE_KEYS:
            raise NotFound(
                "unknown_table",
                f"the dashboard has no table '{key}'",
                field="table",
                value=key,
                accepted=", ".join(TABLE_KEYS),
            )
        return self.summary(city)["tables"][key]
