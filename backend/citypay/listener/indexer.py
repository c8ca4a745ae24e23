"""Indexes every event of every city's contracts into the database, once, in block order.

Safe at any moment of a kill -9: each chunk's events and the checkpoint that covers them are
written in one database transaction, so a restart never finds events past its checkpoint that
it would store again, nor a checkpoint past events it never stored. A restart still rescans a
margin of blocks below its checkpoint, deleting what it rescans in the same transaction as it
stores it again: a reorg that happened while it was down is then corrected too.

While running, each step compares the checkpoint's block hash with the chain's. If they differ
(a reorg, or an anvil evm_revert in the tests), it walks back through the stored events' block
hashes to the newest block the chain still has, deletes everything above it and reads again.
A chunk is stored only if the chain did not change while it was read (its last block's hash the
same before its logs and after) and it lies on what is stored (the block below it still has the
hash stored for it); otherwise the step stops, and the next finds the change.
"""

from __future__ import annotations

import gc
import itertools
import json
import logging
import threading
import time
from collections.abc import Callable, Generator, Iterator
from dataclasses import dataclass, fields
from sqlite3 import SQLITE_LIMIT_VARIABLE_NUMBER
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from citypay.chain.deployment import Deployment, WatchedContract
from citypay.chain.events import ChainEvent, decode_log, event_shape
from citypay.chain.log_reader import Chunk, LogReader, read_ahead
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
        self._decoder = _ChunkDecoder({w.address.lower(): (w.city, w.kind) for w in watched})
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
        # (block, hash) of the newest block whose events are stored, as the chain had it: the
        # next chunk's block below must still have that hash. None while rescanning.
        self._stored_end: tuple[int, str] | None = None
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
        if first <= target:
            reads = self._reads(first, target)
            try:
                for read in reads:
                    stored += self._store(read, rescan_from)
                    rescan_from = None
                    # Resumed once the restart's rescan is stored: until then (confirmations
                    # pending), the next step rescans from the same block, as `rescan_start`
                    # told subscribers.
                    self._resumed = True
            finally:
                reads.close()  # the read-ahead threads stop, whatever _store raised
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
        self._stored_end = None
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
        self._stored_end = (number, block_hash)
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

    def _reads(self, first: int, last: int) -> Generator[_Read, None, None]:
        """The chunks of [first, last], read and decoded ahead of their storing: one thread
        waits on the node and parses its answers, another decodes, while this one stores (the
        database's work runs mostly without the GIL, the node's in its own process)."""
        return read_ahead(self._decoded(read_ahead(self._read(first, last))))

    def _read(self, first: int, last: int) -> Iterator[tuple[Chunk, dict | None, dict | None]]:
        for chunk in self.reader.read(first, last):
            # The headers of the chunk's last block and of the block below it, read after its
            # logs: _store's checks that the chain did not move under the read, nor under the
            # chunks stored before it, and the checkpoint's hash.
            below, end = chunk.first - 1, chunk.last
            headers = self.reader.headers([below, end] if below >= 0 else [end])
            yield chunk, headers.get(below), headers[end]

    def _decoded(self, reads: Iterator[tuple[Chunk, dict | None, dict | None]]) -> Iterator[_Read]:
        # map(), not a loop: nothing here holds a chunk's parsed logs once they are decoded.
        return map(self._decode, reads)

    def _decode(self, read: tuple[Chunk, dict | None, dict | None]) -> _Read:
        chunk, below, end = read
        return _Read(
            chunk.first,
            chunk.last,
            chunk.last_hash,
            below["hash"] if below else None,
            end,
            *self._decoder.decode(chunk.logs),
        )

    def _store(self, read: _Read, rescan_from: int | None) -> int:
        last, end, events = read.last, read.end, read.events
        end_hash = end["hash"] if end else None
        if (
            end_hash is None
            or end_hash != read.last_hash
            or any(number == last and block_hash != end_hash for number, block_hash in read.blocks)
        ):
            # The chain moved under the read (a reorg at the tip): store nothing, read again.
            raise _ChunkRaced(last)
        if self._stored_end is not None and self._stored_end != (read.first - 1, read.below_hash):
            # The blocks stored last changed since: nothing more on top of them. The next step
            # finds the checkpoint's block changed and walks back to where the chains agree.
            raise _ChunkRaced(read.first - 1)
        with self.db.session() as session:
            if rescan_from is not None:
                session.execute(
                    delete(IndexedEvent).where(IndexedEvent.block_number >= rescan_from)
                )
            if read.rows:
                _insert(session, read.rows)
            checkpoint = session.get(ListenerCheckpoint, CHECKPOINT)
            if checkpoint is None:
                session.add(
                    ListenerCheckpoint(name=CHECKPOINT, block_number=last, block_hash=end_hash)
                )
            else:
                checkpoint.block_number, checkpoint.block_hash = last, end_hash
        self.indexed_to = last
        self._stored_end = (last, end_hash)
        self._indexed_time = (last, int(end["timestamp"], 16))
        self.events_stored += len(events)
        update = Update(events, last, self.head or last, rescan_from)
        for callback in self._subscribers:
            try:
                callback(update)
            except Exception:
                log.exception("a listener subscriber failed on block %d", last)
        return len(events)

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


@dataclass(frozen=True)
class _Read:
    """A chunk as read and decoded ahead of its storing; not its parsed logs, let go once
    decoded."""

    first: int  # the chunk's first block
    last: int  # the chunk's last block
    last_hash: str | None  # the hash of the chunk's last block, read before its logs
    below_hash: str | None  # the hash of the block below the chunk, read after its logs
    end: dict | None  # the header of the chunk's last block, read after its logs
    events: list[ChainEvent]
    rows: list[tuple]  # the events as chain_events rows (_COLUMNS)
    blocks: list[tuple[int, str]]  # (number, hash) of the blocks the logs name, each once


# The columns of chain_events but its id, args last (as JSON text).
_SCALARS = tuple(field.name for field in fields(ChainEvent) if field.name != "args")
_COLUMNS = ", ".join((*_SCALARS, "args"))


def _row(event: ChainEvent) -> tuple:
    # vars(), not dataclasses.astuple or asdict: those deep-copy every args dict.
    values = vars(event)
    return (*(values[name] for name in _SCALARS), json.dumps(event.args))


def _json_slot(abi_type: str, value: str) -> str | None:
    """How a value that events.py reads from one word shows in json.dumps' text, as an f-string
    field of the local `value`: the checksummed address or 0x-hex of bytesN in quotes, a number
    as is; None for a bool (True, not true)."""
    if abi_type == "address" or abi_type.startswith("bytes"):
        return f'"{{{value}}}"'  # 0x and hex digits: nothing for JSON to escape
    if abi_type.startswith(("uint", "int")):
        return f"{{{value}}}"  # an int's str is its repr, as json.dumps writes it
    return None


# What the generated decoders name each column of chain_events (but args) by.
_LOCALS = {
    "city": "CITY",
    "contract": "KIND",
    "event": "NAME",
    "block_number": "number",
    "block_hash": "block_hash",
    "block_time": "block_time",
    "tx_hash": "tx_hash",
    "log_index": "log_index",
}

# A log decoder of _decoder_source: (entry, topics, block, add_event, add_row) -> whether it
# decoded the log (False: not of its event's shape, decode_log's to decide).
LogDecoder = Callable[[dict, list[str], tuple[int, str, int], Callable, Callable], bool]


def _log_decoder(city: str, kind: str, shape) -> LogDecoder | None:
    """For a contract's event whose values are all one-word static ones (all of the platform's
    payment events; None for others): a function that appends the log's ChainEvent, equal to
    decode_log's, and its chain_events row, args as json.dumps would write them.

    It is written out for the event's own fields, as namedtuple and dataclass write theirs, and
    reads each value with events.py's reader of its type. In the listener benchmark's profile
    (41,000 logs), decode_log and a row from its event took 8 µs a log, a third of the listener's
    time; a loop over the fields, zip and json.dumps still took 2.5 µs a Transfer's arguments,
    these lines 1.2. The event is made without the frozen dataclass's __init__, which sets its
    nine fields through object.__setattr__ (1.5 µs, against 0.5); and every object made a log is
    an object the garbage collector walks (half the decoding time was its, with the chunk's
    parsed logs alive): here an event, its dict and a row. tests/test_listener.py checks the
    events and rows against decode_log's for every event of the ABIs."""
    readers = shape.hex_readers
    if readers is None:
        return None
    topic_readers, data_readers = readers
    names = (*(name for name, _ in shape.indexed), *shape.data_names)
    if not all(name.isidentifier() for name in names):
        return None  # unnamed: decode_log's way
    types = (*(abi_type for _, abi_type in shape.indexed), *shape.data_types)
    values = [f"v{index}" for index in range(len(names))]
    sources = [f"topics[{at}][2:]" for at in range(1, 1 + len(topic_readers))]
    sources += [f"data[{2 + 64 * at}:{66 + 64 * at}]" for at in range(len(data_readers))]
    slots = [_json_slot(t, v) for t, v in zip(types, values, strict=True)]
    if None in slots or len(set(names)) < len(names):  # a bool, or one key twice
        text = "dumps(args, ensure_ascii=True)"  # json.dumps' default, as _row writes it
    else:
        pairs = (f'"{name}": {slot}' for name, slot in zip(names, slots, strict=True))
        text = "f" + repr("{{" + ", ".join(pairs) + "}}")
    args = ", ".join(f"{name!r}: {v}" for name, v in zip(names, values, strict=True))
    event = ", ".join(f"{name!r}: {_LOCALS[name]}" for name in _SCALARS)
    row = ", ".join(_LOCALS[name] for name in _SCALARS)
    source = "\n".join(
        [
            "def decode(entry, topics, block, add_event, add_row):",
            '    data = entry["data"]',
            f"    if len(topics) != {len(topic_readers) + 1} or len(data) != "
            f"{2 + 64 * len(data_readers)}:",
            "        return False",
            *(
                f"    {v} = read{index}({where})"
                for index, (v, where) in enumerate(zip(values, sources, strict=True))
            ),
            f"    args = {{{args}}}",
            "    number, block_hash, block_time = block",
            '    tx_hash = entry["transactionHash"].lower()',
            '    log_index = int(entry["logIndex"], 16)',
            "    event = new(ChainEvent)",
            f"    event.__dict__.update({{{event}, 'args': args}})",
            "    add_event(event)",
            f"    add_row(({row}, {text}))",
            "    return True",
        ]
    )
    namespace: dict[str, Any] = {
        "CITY": city,
        "KIND": kind,
        "NAME": shape.name,
        "ChainEvent": ChainEvent,
        "new": object.__new__,
        "dumps": json.dumps,
    }
    namespace |= {f"read{i}": read for i, read in enumerate((*topic_readers, *data_readers))}
    exec(compile(source, f"<log decoder of {kind} {shape.name}>", "exec"), namespace)
    return namespace["decode"]


class _ChunkDecoder:
    """A chunk's logs as ChainEvents (for subscribers) and chain_events rows (for the insert), each
    log decoded once, by the decoder of its (contract, first topic) made at its first log
    (_log_decoder); the block's fields read once a block. Logs of other shapes go through
    decode_log."""

    def __init__(self, where: dict[str, tuple[str, str]]) -> None:
        self._where = where  # lower-case address -> (city, contract kind)
        # address as the node writes it -> first topic -> its decoder, or None: decode_log's
        self._decoders: dict[str, dict[str, LogDecoder | None]] = {}

    def _decoder_for(self, address: str, topic: str) -> LogDecoder | None:
        city, kind = self._where[address.lower()]
        shape = event_shape(kind, topic) if topic else None
        decoder = _log_decoder(city, kind, shape) if shape is not None else None
        self._decoders.setdefault(address, {})[topic] = decoder
        return decoder

    def decode(self, logs: list[dict]) -> tuple[list[ChainEvent], list[tuple], list[tuple]]:
        """(events, rows, blocks): blocks as (number, hash), each once."""
        events: list[ChainEvent] = []
        rows: list[tuple] = []
        add_event, add_row = events.append, rows.append
        blocks: dict[str, tuple[int, str, int]] = {}
        decoders = self._decoders
        for entry in logs:
            block = blocks.get(entry["blockHash"])
            if block is None:
                block = blocks[entry["blockHash"]] = (
                    int(entry["blockNumber"], 16),
                    entry["blockHash"].lower(),
                    int(entry["blockTimestamp"], 16),
                )
            topics = entry["topics"]
            topic = topics[0] if topics else ""
            try:
                decoder = decoders[entry["address"]][topic]
            except KeyError:
                decoder = self._decoder_for(entry["address"], topic)
            if decoder is None or not decoder(entry, topics, block, add_event, add_row):
                city, kind = self._where[entry["address"].lower()]
                event = decode_log(entry, city, kind, block[2])
                add_event(event)
                add_row(_row(event))
        return events, rows, [(number, block_hash) for number, block_hash, _ in blocks.values()]


# Rows of one INSERT statement on SQLite, at most (and at most the connection's limit of
# parameters allows).
SQLITE_ROWS_PER_INSERT = 2_000


def _insert(session: Session, rows: list[tuple]) -> None:
    """Stores a chunk's rows in the session's transaction: by COPY on PostgreSQL (about six
    times the rows a second of an executemany), by multi-row INSERT statements on SQLite.

    Not executemany on SQLite: the sqlite3 module lets go of the GIL for each row's step, and
    while the read-ahead thread parses or decodes the next chunk, getting it back waits for that
    thread's switch interval (5 ms): the benchmark's 41,000 rows took 0.6 s that way, against
    0.18 s alone. One statement of up to SQLITE_ROWS_PER_INSERT rows lets go of it once (and
    costs 0.15 s alone)."""
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
    width = len(_SCALARS) + 1
    limit = connection.connection.driver_connection.getlimit(SQLITE_LIMIT_VARIABLE_NUMBER)
    per = max(1, min(SQLITE_ROWS_PER_INSERT, limit // width))
    values = "(" + ", ".join("?" * width) + ")"  # SQLite's parameter style
    for start in range(0, len(rows), per):
        part = rows[start : start + per]
        connection.exec_driver_sql(
            f"INSERT INTO {table} ({_COLUMNS}) VALUES {', '.join([values] * len(part))}",
            tuple(itertools.chain.from_iterable(part)),
        )


def wait_until_indexed(listener: Listener, block: int, timeout: float = 30.0) -> None:
    """Blocks until the listener has indexed `block` (tests and the day's summary)."""
    deadline = time.monotonic() + timeout
    while (listener.indexed_to or -1) < block:
        if time.monotonic() > deadline:
            raise TimeoutError(f"the listener has not indexed block {block} in {timeout} s")
        time.sleep(0.05)


def settle_start_up() -> None:
    """For the listener's own process, once started: what it holds for good by then (modules,
    ABIs, the ORM's mappers, the deployment; some 150,000 objects) out of the garbage
    collector's walks. A catch-up keeps chunks of events alive across collections, so the
    collector runs a full collection every few chunks, and each walked all of that: 60 ms a
    collection, 0.15 to 0.2 s of the 0.65 s the listener benchmark's 41,000 events took, and
    0.02 to 0.08 s once frozen. The garbage of the start-up is collected first."""
    gc.collect()
    gc.freeze()


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
