"""One holder at a time of a duty over a database: the backend that sends (its relayer, outbox,
workers), or the listener that writes the chain's index. Two of either at once would send the
same payments twice or index the same blocks twice. A second backend on PostgreSQL stands by for
the lease (api/replica.py); on SQLite, and for a second listener process, it is refused at start
with who holds the duty.

A lease is a row (`leases`) naming its holder and when it expires. The holder renews it every
`renew` seconds for `ttl` seconds; a holder that stops renewing (killed, its host down) loses it
when it expires, and a holder on this host whose process is gone loses it at once (its process id
and start time name it). Taking a lease is one conditional write, so two processes starting
together cannot both win. A holder that finds its lease taken (it stalled past the ttl) stops its
process: it must not send as if it held it.
"""

from __future__ import annotations

import logging
import os
import signal
import socket
import threading
import time
import uuid
from dataclasses import dataclass
from typing import TYPE_CHECKING

from sqlalchemy import Float, String, delete, insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Mapped, mapped_column

from citypay.db.models import Base

if TYPE_CHECKING:  # db/session.py imports every table, this one too
    from citypay.db.session import Database

log = logging.getLogger(__name__)


class Lease(Base):
    __tablename__ = "leases"

    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    holder: Mapped[str] = mapped_column(String(200))
    expires_at: Mapped[float] = mapped_column(Float)  # unix seconds
    renewed_at: Mapped[float] = mapped_column(Float)


class LeaseHeld(RuntimeError):
    """Another live process holds the lease (`holder`, as the leases table names it)."""

    def __init__(self, message: str, holder: str) -> None:
        super().__init__(message)
        self.holder = holder


@dataclass(frozen=True)
class Holder:
    host: str
    pid: int
    started: str  # the process's start time (/proc/<pid>/stat), so a reused pid is not it
    nonce: str

    def __str__(self) -> str:
        return f"{self.host}:{self.pid}:{self.started}:{self.nonce}"

    @classmethod
    def parse(cls, text: str) -> Holder | None:
        parts = text.rsplit(":", 3)
        if len(parts) != 4 or not parts[1].isdigit():
            return None
        return cls(parts[0], int(parts[1]), parts[2], parts[3])

    @classmethod
    def this_process(cls) -> Holder:
        return cls(
            socket.gethostname(), os.getpid(), _start_time(os.getpid()) or "", uuid.uuid4().hex
        )

    def gone(self) -> bool:
        """Whether this holder is a process of this host that no longer runs (or a zombie)."""
        if self.host != socket.gethostname():
            return False  # another host's: only its lease's expiry tells
        return _start_time(self.pid) != self.started or self.started == ""


def _start_time(pid: int) -> str | None:
    """The process's start time in clock ticks since boot, or None if it is gone or a zombie."""
    try:
        with open(f"/proc/{pid}/stat") as stat:
            fields = stat.read().rsplit(")", 1)[1].split()
    except (FileNotFoundError, ProcessLookupError, IndexError):
        return None
    # After the name: state is field 3 and starttime field 22 of the whole line.
    return None if fields[0] == "Z" else fields[19]


class ProcessLease:
    def __init__(self, db: Database, name: str, *, ttl: float = 15.0, renew: float = 5.0) -> None:
        self.db = db
        self.name = name
        self.ttl = ttl
        self.renew = renew
        self.holder = Holder.this_process()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def acquire(self) -> None:
        """Takes the lease, or raises LeaseHeld naming its live holder."""
        now = time.time()
        me = str(self.holder)
        with self.db.session() as session:
            current = session.execute(
                select(Lease).where(Lease.name == self.name)
            ).scalar_one_or_none()
            if current is None:
                try:
                    session.execute(
                        insert(Lease).values(
                            name=self.name, holder=me, expires_at=now + self.ttl, renewed_at=now
                        )
                    )
                    session.flush()
                except IntegrityError:
                    raise self._held_by("another process", 0.0, self.ttl) from None
                return
            holder = Holder.parse(current.holder)
            free = current.expires_at < now or (holder is not None and holder.gone())
            if not free:
                renewed_ago, expires_in = now - current.renewed_at, current.expires_at - now
                raise self._held_by(current.holder, renewed_ago, expires_in)
            # Taken from the holder read, and only if nobody took it meanwhile.
            taken = session.execute(
                update(Lease)
                .where(Lease.name == self.name, Lease.holder == current.holder)
                .values(holder=me, expires_at=now + self.ttl, renewed_at=now)
            ).rowcount
            if taken != 1:
                raise self._held_by("another process", 0.0, self.ttl)
        log.info("%s lease taken over from %s", self.name, current.holder)

    def _held_by(self, holder: str, renewed_ago: float, expires_in: float) -> LeaseHeld:
        message = (
            f"the {self.name} lease of this database is held by {holder} (renewed "
            f"{renewed_ago:.0f} s ago): one {self.name} process per database. Stop it "
            f"first; if it was killed on another host, its lease expires in {expires_in:.0f} s "
            "unless renewed"
        )
        return LeaseHeld(message, holder)

    def start_renewing(self) -> None:
        self._thread = threading.Thread(
            target=self._renew_loop, name=f"{self.name}-lease", daemon=True
        )
        self._thread.start()

    def _renew_loop(self) -> None:
        while not self._stop.wait(self.renew):
            try:
                now = time.time()
                with self.db.session() as session:
                    kept = session.execute(
                        update(Lease)
                        .where(Lease.name == self.name, Lease.holder == str(self.holder))
                        .values(expires_at=now + self.ttl, renewed_at=now)
                    ).rowcount
            except Exception:  # the database away: the next round tries again within the ttl
                log.exception("%s lease: renewal failed; retrying", self.name)
                continue
            if kept != 1:
                log.critical("%s lease lost to another process: stopping", self.name)
                os.kill(os.getpid(), signal.SIGTERM)
                return

    def release(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
        with self.db.session() as session:
            session.execute(
                delete(Lease).where(Lease.name == self.name, Lease.holder == str(self.holder))
            )
