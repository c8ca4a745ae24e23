"""Check-then-write under a lock on what is checked, for any number of replicas.

A payer's amounts in flight, or what is left to refund of a payment, are read and then written
in one database transaction; two of those at once (two replicas, or two threads of one) could
both read the same amount and both write. On PostgreSQL the transaction first takes a
transaction-scoped advisory lock per key (`pg_advisory_xact_lock`, released at commit or
rollback), so whoever reads second reads after the first committed, whichever process it runs
in. SQLite runs as one process (db/lease.py refuses a second), where locks of the process do the
same.
"""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Iterable, Iterator
from contextlib import ExitStack, contextmanager
from typing import TYPE_CHECKING

from sqlalchemy import Connection, text
from sqlalchemy.orm import Session

if TYPE_CHECKING:
    from citypay.db.session import Database

# Locks taken in one statement, in key order: two transactions locking overlapping sets wait for
# each other in the same order, so they cannot deadlock. The subquery sorts before the aggregate
# calls the function row by row.
_ADVISORY_LOCKS = text(
    "SELECT count(pg_advisory_xact_lock(k)) "
    "FROM (SELECT k FROM unnest(CAST(:keys AS bigint[])) AS k ORDER BY k) AS sorted"
)

# SQLite's locks: keys share a fixed set of stripes (a lock per payer ever seen would grow
# without end); two keys on one stripe only wait for each other.
_STRIPES = [threading.Lock() for _ in range(1024)]


def lock_key(*parts: str) -> int:
    """A signed 64-bit key for `parts` (what pg_advisory_xact_lock takes)."""
    digest = hashlib.blake2b("\x1f".join(parts).encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big", signed=True)


def take_advisory_locks(connection: Connection | Session, keys: Iterable[int]) -> None:
    """PostgreSQL: a transaction-scoped advisory lock on each key, until the transaction ends."""
    ordered = sorted(set(keys))
    if ordered:
        connection.execute(_ADVISORY_LOCKS, {"keys": ordered})


@contextmanager
def locked_session(db: Database, keys: Iterable[int]) -> Iterator[Session]:
    """A unit of work (Database.session) that holds a lock on each key until it ends."""
    ordered = sorted(set(keys))
    if db.is_sqlite:
        with ExitStack() as held:
            for stripe in sorted({key % len(_STRIPES) for key in ordered}):
                held.enter_context(_STRIPES[stripe])
            with db.session() as session:
                yield session
        return
    with db.session() as session:
        take_advisory_locks(session, ordered)
        yield session
