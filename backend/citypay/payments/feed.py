"""Changes of payments as they happen, for the merchants' server-sent events.

One poll of the database a tenth of a second serves every stream of the process. A payment
changes only while it is in flight (accepted or submitted), and once more when it is closed
(included or failed): the poll reads the status of the payments in flight (by the status index),
of those in flight last time that are not any more, and of those recorded since (by id), and
each stream gets the full payments whose status it has not told yet. Changes made by any process
(the acceptor of any replica, the relayer) are seen alike. "Recorded since" goes by id, and ids
are taken in insert order but committed in any order when several replicas record payments: an
id below the newest seen that the poll did not find (a gap) is asked for by name at each poll
until it appears, so a payment committed late is told even if it was already included by then.
A gap that never fills (an insert rolled back) is given up after GAP_SECONDS.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import defaultdict
from collections.abc import AsyncIterator

from sqlalchemy import func, or_, select
from starlette.concurrency import run_in_threadpool

from citypay.db.session import Database
from citypay.payments.models import Payment, PaymentStatus

log = logging.getLogger(__name__)

IN_FLIGHT = (PaymentStatus.ACCEPTED, PaymentStatus.SUBMITTED)
# A payment as the feed sends it: a plain row with the Payment's attributes (ORM objects cost
# about ten times as much to load, and a busy feed loads thousands a second).
_PAYMENT = tuple(Payment.__table__.columns)
POLL_SECONDS = 0.1
BACKLOG = 200
GAP_SECONDS = 60.0
# More missing ids than this between two polls is not a late commit but a jump of the sequence.
LARGEST_GAP = 10_000


class _Stream:
    def __init__(self, city: str, merchant: str, told: dict[int, str]) -> None:
        self.city = city
        self.merchant = merchant
        self.told = told  # status last sent, for the payments in flight
        self.queue: asyncio.Queue[list] = asyncio.Queue()


class PaymentFeed:
    def __init__(self, db: Database) -> None:
        self.db = db
        self._streams: set[_Stream] = set()
        self._poller: asyncio.Task | None = None
        self._in_flight: set[int] = set()  # at the last poll
        self._last_id: int | None = None  # the newest payment at the last poll
        self._gaps: dict[int, float] = {}  # ids below _last_id not seen yet -> when first missed

    async def changes(self, city: str, merchant: str) -> AsyncIterator[list]:
        """The merchant's latest payments, then the payments each poll found changed, as they
        are committed: a list at a time, which a stream writes in one piece (a busy till hears
        of dozens of changes a poll)."""
        backlog = await run_in_threadpool(self._backlog, city, merchant)
        if backlog:
            yield backlog
        stream = _Stream(city, merchant, {p.id: p.status.value for p in backlog})
        self._streams.add(stream)
        if self._poller is None or self._poller.done():
            self._poller = asyncio.create_task(self._poll())
        try:
            while True:
                yield await stream.queue.get()
        finally:
            self._streams.discard(stream)

    def _backlog(self, city: str, merchant: str) -> list:
        with self.db.session() as session:
            latest = session.execute(
                select(*_PAYMENT)
                .where(Payment.city == city, Payment.merchant == merchant)
                .order_by(Payment.updated_at.desc())
                .limit(BACKLOG)
            ).all()
        return list(reversed(latest))

    async def _poll(self) -> None:
        while self._streams:
            try:
                await self._deliver(await run_in_threadpool(self._changed))
            except Exception:
                log.exception("reading payment changes failed; retrying")
            await asyncio.sleep(POLL_SECONDS)

    def _changed(self) -> list:
        """(id, city, merchant, status) of every payment that may have changed since the last
        poll."""
        columns = (Payment.id, Payment.city, Payment.merchant, Payment.status)
        with self.db.session() as session:
            if self._last_id is None:
                self._last_id = session.scalar(select(func.coalesce(func.max(Payment.id), 0)))
            rows = list(
                session.execute(
                    select(*columns).where(
                        or_(Payment.status.in_(IN_FLIGHT), Payment.id > self._last_id)
                    )
                )
            )
            seen = {row.id for row in rows}
            asked = (self._in_flight | self._gaps.keys()) - seen
            if asked:
                rows += session.execute(select(*columns).where(Payment.id.in_(asked)))
        self._in_flight = {row.id for row in rows if row.status in IN_FLIGHT}
        self._note_gaps({row.id for row in rows})
        return sorted(rows, key=lambda row: row.id)

    def _note_gaps(self, seen: set[int]) -> None:
        now = time.monotonic()
        newest = max([self._last_id, *seen])
        if newest - self._last_id <= LARGEST_GAP:
            for missing in range(self._last_id + 1, newest):
                if missing not in seen:
                    self._gaps[missing] = now
        self._last_id = newest
        self._gaps = {
            i: since
            for i, since in self._gaps.items()
            if i not in seen and now - since < GAP_SECONDS
        }

    async def _deliver(self, rows: list) -> None:
        # Each poll reads every payment in flight (a thousand or more while a sale-day rush is
        # on), so the rows are sorted by merchant once rather than scanned once a stream.
        by_merchant: dict[tuple[str, str], list] = defaultdict(list)
        for row in rows:
            by_merchant[(row.city, row.merchant)].append(row)
        fresh: dict[_Stream, list[int]] = {}
        for stream in list(self._streams):
            mine = by_merchant.get((stream.city, stream.merchant), [])
            ids = [r.id for r in mine if stream.told.get(r.id) != r.status.value]
            # A closed payment does not change again.
            stream.told = {r.id: r.status.value for r in mine if r.status in IN_FLIGHT}
            if ids:
                fresh[stream] = ids
        if not fresh:
            return
        wanted = sorted({i for ids in fresh.values() for i in ids})
        payments = {p.id: p for p in await run_in_threadpool(self._payments, wanted)}
        for stream, ids in fresh.items():
            changed = [payments[i] for i in ids if i in payments]
            for payment in changed:
                if payment.status in IN_FLIGHT:
                    stream.told[payment.id] = payment.status.value
            if changed:
                stream.queue.put_nowait(changed)

    def _payments(self, ids: list[int]) -> list:
        with self.db.session() as session:
            return list(session.execute(select(*_PAYMENT).where(Payment.id.in_(ids))))
