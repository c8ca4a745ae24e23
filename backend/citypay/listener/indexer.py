"""Indexes every event of every city's contracts into the database, once, in block order.

Safe at any moment of a kill -9: each chunk's events and the checkpoint that covers them are
written in one database transaction, so a restart never finds events past its checkpoint that
it would store again, nor a checkpoint past events it never stored. A restart still rescans a
margin of blocks below its checkpoint, deleting what it rescans in the same transaction as it
stores it again: a reorg that happened while it was down is then corrected too.

While running, each step compares the checkpoint's block hash with the chain's. If they differ
(a reorg, or an anvil evm_revert in the tests), it walks back through the stored events' block
hashes to the newest block the chain still has, deletes everything above it and reads again.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, fields

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from citypay.chain.deployment import Deployment, WatchedContract
from citypay.chain.events import ChainEvent, decode_log
from citypay.chain.log_reader import LogReader
from citypay.chain.rpc import JsonRpc
from citypay.core.config import Settings
from citypay.db.session import Database
from citypay.listener.models import IndexedEvent, ListenerCheckpoint

log = logging.getLogger(__name__)

CHECKPOINT = "events"


@dataclass(frozen=True)
class Update:
    """What one chunk changed, for those who follow the listener (dashboard, fraud rules)."""

    events: list[ChainEvent]
    indexed_to: int
    head: int
    rescanned_from: int | None  # events from this block on were deleted and read again


class Listener:
    def __init__(
        self,
        db: Database,
        rpc: JsonRpc,
        watched: list[WatchedContract],
        *,
        confirmations: int = 0,
        rescan_margin: int = 12,
        poll_interval: float = 0.25,
        max_span: int = 10_000,
    ) -> None:
        if not watched:
            raise ValueError("the listener has no contract to watch: the manifest names none")
        self.db = db
        self.reader = LogReader(rpc, [w.address for w in watched], max_span=max_span)
        self._where = {w.address.lower(): (w.city, w.kind) for w in watched}
        self.start_block = min(w.deployed_at for w in watched)
        self.confirmations = confirmations
        self.rescan_margin = rescan_margin
        self.poll_interval = poll_interval
        self.head: int | None = None
        self.head_time: int | None = None  # the head block's timestamp
        self.indexed_to: int | None = None
        self._indexed_time: tuple[int, int] | None = None  # (block, its timestamp)
        self.last_step_at: float | None = None  # unix time the last step finished
        self.events_stored = 0
        self.reorgs = 0
        self._resumed = False
        self._subscribers: list[Callable[[Update], None]] = []
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    # --- what others read -----------------------------------------------------------------

    @property
    def lag(self) -> int | None:
        """Blocks between the chain's head, as of the last step, and the last indexed block."""
        return self.behind(self.head, self.head_time)[0]

    @property
    def lag_seconds(self) -> float | None:
        """Seconds of chain time between the head, as of the last step, and the last indexed
        block."""
        return self.behind(self.head, self.head_time)[1]

    def behind(self, head: int | None, head_time: int | None) -> tuple[int | None, float | None]:
        """(blocks, seconds of chain time) between a head and the last indexed block; None where
        not known yet. The metrics ask with the head of the moment: a listener that is stuck
        falls behind there, not in the figures of its last step."""
        if head is None or self.indexed_to is None:
            return None, None
        blocks = max(0, head - self.indexed_to)
        if blocks == 0:
            return 0, 0.0
        known = self._indexed_time
        if head_time is None or known is None or known[0] != self.indexed_to:
            return blocks, None
        return blocks, float(max(0, head_time - known[1]))

    def subscribe(self, callback: Callable[[Update], None]) -> None:
        """`callback(update)` after every committed chunk, on the listener's thread."""
        self._subscribers.append(callback)

    # --- one pass ----------------------------------------------------------------------------

    def step(self) -> int:
        """Indexes up to the head less the confirmations; returns how many events it stored."""
        self.head, self.head_time = self.reader.latest()
        target = self.head - self.confirmations
        first, rescan_from = self._next_range()
        stored = 0
        for chunk in self.reader.read(first, target) if first <= target else ():
            stored += self._store(chunk, rescan_from)
            rescan_from = None
            # Resumed once the restart's rescan is stored: until then (confirmations pending),
            # the next step rescans from the same block, as `rescan_start` told subscribers.
            self._resumed = True
        if self.indexed_to is None:
            self._resumed = True  # nothing stored before this start: nothing to rescan
        if self.lag and (self._indexed_time or (None,))[0] != self.indexed_to:
            # Resumed with nothing to read yet (confirmations pending): the lag in seconds
            # needs the checkpoint block's time, once.
            header = self.reader.headers([self.indexed_to])[self.indexed_to]
            if header is not None:
                self._indexed_time = (self.indexed_to, int(header["timestamp"], 16))
        self.last_step_at = time.time()
        return stored

    def _checkpoint(self) -> tuple[int, str] | None:
        with self.db.session() as session:
            row = session.get(ListenerCheckpoint, CHECKPOINT)
            return (row.block_number, row.block_hash) if row else None

    def _next_range(self) -> tuple[int, int | None]:
        """(first block to read, block from which stored events are to be replaced or None)."""
        checkpoint = self._checkpoint()
        if checkpoint is None:
            return self.start_block, None
        number, block_hash = checkpoint
        self.indexed_to = number
        if not self._resumed:
            first = self._resume_block(number)
            return first, first
        if number > self.head or self.reader.block_hashes([number])[number] != block_hash:
            fork = self._fork_point()
            self.reorgs += 1
            log.warning("reorg: block %d changed; re-indexing from block %d", number, fork + 1)
            return fork + 1, fork + 1
        return number + 1, None

    def _resume_block(self, checkpoint: int) -> int:
        return max(self.start_block, checkpoint - self.rescan_margin + 1)

    def rescan_start(self) -> int | None:
        """The block from which this listener's first step replaces stored events (its
        checkpoint less the rescan margin), delivered again with `rescanned_from` set; None when
        nothing is stored yet or the rescan is done. Subscribers catching up from the database
        need fold only what lies below it."""
        if self._resumed:
            return None
        checkpoint = self._checkpoint()
        return None if checkpoint is None else self._resume_block(checkpoint[0])

    def _fork_point(self) -> int:
        """The newest block whose stored hash the chain still has (all below it is the same)."""
        page, offset = 256, 0
        while True:
            with self.db.session() as session:
                stored = session.execute(
                    select(IndexedEvent.block_number, IndexedEvent.block_hash)
                    .distinct()
                    .order_by(IndexedEvent.block_number.desc())
                    .limit(page)
                    .offset(offset)
                ).all()
            if not stored:
                return self.start_block - 1
            chain = self.reader.block_hashes([number for number, _ in stored])
            for number, block_hash in stored:
                if chain[number] == block_hash:
                    return number
            offset += page

    def _store(self, chunk, rescan_from: int | None) -> int:
        events = [self._decode(entry) for entry in chunk.logs]
        end = self.reader.headers([chunk.last])[chunk.last]
        end_hash = end["hash"] if end else None
        if end_hash is None or any(
            e.block_number == chunk.last and e.block_hash != end_hash for e in events
        ):
            # The chain moved under the read (a reorg at the tip): store nothing, read again.
            raise _ChunkRaced(chunk.last)
        with self.db.session() as session:
            if rescan_from is not None:
                session.execute(
                    delete(IndexedEvent).where(IndexedEvent.block_number >= rescan_from)
                )
            if events:
                _insert(session, events)
            checkpoint = session.get(ListenerCheckpoint, CHECKPOINT)
            if checkpoint is None:
                session.add(
                    ListenerCheckpoint(
                        name=CHECKPOINT, block_number=chunk.last, block_hash=end_hash
                    )
                )
            else:
                checkpoint.block_number, checkpoint.block_hash = chunk.last, end_hash
        self.indexed_to = chunk.last
        self._indexed_time = (chunk.last, int(end["timestamp"], 16))
        self.events_stored += len(events)
        update = Update(events, chunk.last, self.head or chunk.last, rescan_from)
        for callback in self._subscribers:
            try:
                callback(update)
            except Exception:
                log.exception("a listener subscriber failed on block %d", chunk.last)
        return len(events)

    def _decode(self, entry: dict) -> ChainEvent:
        city, kind = self._where[entry["address"].lower()]
        return decode_log(entry, city, kind, int(entry["blockTimestamp"], 16))

    # --- the thread -------------------------------------------------------------------------

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="listener", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)

    def _run(self) -> None:
        failures = 0
        while not self._stop.is_set():
            try:
                self.step()
                failures = 0
                self._stop.wait(self.poll_interval)
            except _ChunkRaced as raced:
                log.info("block %d changed while read; reading again", raced.block)
            except Exception:
                failures += 1
                log.exception("listener step failed (%d in a row); retrying", failures)
                self._stop.wait(min(30.0, self.poll_interval * 2**failures))

    def run_forever(self) -> None:
        """The listener as its own process (python -m citypay.listener)."""
        self._run()


class _ChunkRaced(Exception):
    def __init__(self, block: int) -> None:
        super().__init__(f"block {block} changed while it was read")
        self.block = block


# The columns of chain_events but its id, args last (as JSON text).
_SCALARS = tuple(field.name for field in fields(ChainEvent) if field.name != "args")
_COLUMNS = ", ".join((*_SCALARS, "args"))


def _row(event: ChainEvent) -> tuple:
    # vars(), not dataclasses.astuple or asdict: those deep-copy every args dict.
    values = vars(event)
    return (*(values[name] for name in _SCALARS), json.dumps(event.args))


def _insert(session: Session, events: list[ChainEvent]) -> None:
    """Stores a chunk's events in the session's transaction: by COPY on PostgreSQL (about six
    times the rows a second of an executemany), by the driver's executemany on SQLite (through
    SQLAlchemy's per-row parameter handling, let alone the ORM's bulk insert, a chunk took two to
    three times as long)."""
    rows = [_row(event) for event in events]
    table = IndexedEvent.__tablename__
    connection = session.connection()
    if connection.dialect.name == "postgresql":
        with (
            connection.connection.driver_connection.cursor() as cursor,
            cursor.copy(f"COPY {table} ({_COLUMNS}) FROM STDIN") as copy,
        ):
            for row in rows:
                copy.write_row(row)
        return
    placeholders = ", ".join("?" * (len(_SCALARS) + 1))  # SQLite's parameter style
    connection.exec_driver_sql(f"INSERT INTO {table} ({_COLUMNS}) VALUES ({placeholders})", rows)


def wait_until_indexed(listener: Listener, block: int, timeout: float = 30.0) -> None:
    """Blocks until the listener has indexed `block` (tests and the day's summary)."""
    deadline = time.monotonic() + timeout
    while (listener.indexed_to or -1) < block:
        if time.monotonic() > deadline:
            raise TimeoutError(f"the listener has not indexed block {block} in {timeout} s")
        time.sleep(0.05)


def listener_for(settings: Settings, db: Database, deployment: Deployment) -> Listener:
    """The listener of the deployment's contracts, configured by the LISTENER_* settings."""
    return Listener(
        db,
        # Its own client: a wide eth_getLogs may take long, and the reader narrows the range
        # and tries again itself rather than repeat a request the node found too heavy.
        JsonRpc(deployment.gateway.rpc.url, timeout=30, attempts=1),
        deployment.watched_contracts(),
        confirmations=settings.LISTENER_CONFIRMATIONS,
        rescan_margin=settings.LISTENER_RESCAN_MARGIN,
        poll_interval=settings.LISTENER_POLL_INTERVAL,
        max_span=settings.LISTENER_MAX_SPAN,
    )
