"""One thread that handles, together, every request that queued up while it was busy.

What lets one database commit and one chain read serve a group of payments: a request waits
only for the group it lands in, and the busier the service, the larger the groups.
"""

from __future__ import annotations

import asyncio
import queue
import threading
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Any


@dataclass(eq=False)
class Queued:
    item: Any
    future: Future = field(default_factory=Future)


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
        """submit() for the event loop."""
        return await asyncio.wait_for(asyncio.wrap_future(self._queued(item)), timeout)

    def _queued(self, item: Any) -> Future:
        if self._thread is None:
            self._start()
        queued = Queued(item)
        self._queue.put(queued)
        return queued.future

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
