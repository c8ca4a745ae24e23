"""One thread that handles, together, every request that queued up while it was busy.

What lets one database commit and one chain read serve a group of payments: a request waits
only for the group it lands in, and the busier the service, the larger the groups.
"""

from __future__ import annotations

import asyncio
import contextlib
import queue
import threading
from collections import defaultdict
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Any


@dataclass(eq=False)
class Queued:
    item: Any
    future: Future = field(default_factory=Future)
    # submit_async's: the event loop's future, told once the group is settled.
    waiter: asyncio.Future | None = None


class GroupWorker:
    """`handle(group)` settles each Queued's future. If it raises, each item it left unsettled is
    handled again alone: one request's failure is its own, never its neighbours'."""

    def __init__(self, handle: Callable[[list[Queued]], None], name: str, largest: int) -> None:
        self._handle = handle
        self._name = name
        self._largest = largest
        self._queue: queue.SimpleQueue[Queued] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._starting = threading.Lock()

    def submit(self, item: Any, timeout: float = 60) -> Any:
        """Queues the item and returns its result (or raises its error)."""
        return self._queued(item).result(timeout)

    async def submit_async(self, item: Any, timeout: float = 60) -> Any:
        """submit() for the event loop. A group's waiters on one loop are woken by one call
        into it, not one each: a wake-up is a write to the loop's pipe, and a group holds
        dozens of payments (make bench-relay)."""
        queued = Queued(item, waiter=asyncio.get_running_loop().create_future())
        self._put(queued)
        async with asyncio.timeout(timeout):
            return await queued.waiter

    def _queued(self, item: Any) -> Future:
        queued = Queued(item)
        self._put(queued)
        return queued.future

    def _put(self, queued: Queued) -> None:
        if self._thread is None:
            self._start()
        self._queue.put(queued)

    def _start(self) -> None:
        with self._starting:
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name=self._name, daemon=True)
                self._thread.start()

    def _run(self) -> None:
        while True:
            group = [self._queue.get()]
            while len(group) < self._largest:
                try:
                    group.append(self._queue.get_nowait())
                except queue.Empty:
                    break
            self._settle(group)
            _wake(group)

    def _settle(self, group: list[Queued]) -> None:
        try:
            self._handle(group)
        except Exception as failure:
            unsettled = [queued for queued in group if not queued.future.done()]
            if len(group) == 1:
                for queued in unsettled:
                    queued.future.set_exception(failure)
                return
            for queued in unsettled:
                self._settle([queued])


def _wake(group: list[Queued]) -> None:
    """Hands each settled future's outcome to its waiter on an event loop, one call a loop."""
    by_loop: dict[asyncio.AbstractEventLoop, list[Queued]] = defaultdict(list)
    for queued in group:
        if queued.waiter is not None:
            by_loop[queued.waiter.get_loop()].append(queued)
    for loop, waiting in by_loop.items():
        with contextlib.suppress(RuntimeError):  # a closed loop: nobody waits any more
            loop.call_soon_threadsafe(_pass_on, waiting)


def _pass_on(waiting: list[Queued]) -> None:
    for queued in waiting:
        if queued.waiter.done() or not queued.future.done():  # timed out, or left unsettled
            continue
        failure = queued.future.exception()
        if failure is not None:
            queued.waiter.set_exception(failure)
        else:
            queued.waiter.set_result(queued.future.result())
