"""The background thread of a service that finishes recorded work (refunds to send, cash-outs and
deposits left halfway): a round at start-up, so that what a restart left is picked up, then one
every interval, or at once when woken because new work was recorded."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

log = logging.getLogger(__name__)


class Worker:
    def __init__(
        self,
        name: str,
        work: Callable[[], None],
        interval: float,
        *,
        first_after_interval: bool = False,
    ) -> None:
        """`first_after_interval`: the first round an interval after start, for work on a
        schedule rather than work a restart may have left."""
        self.name = name
        self._first_after_interval = first_after_interval
        self._work = work
        self._interval = interval
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None

    @property
    def stopping(self) -> bool:
        """stop() was called: a round going through many items ends early."""
        return self._stop.is_set()

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name=self.name, daemon=True)
        self._thread.start()

    def wake(self) -> None:
        self._wake.set()

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout=30)

    def _run(self) -> None:
        if self._first_after_interval:
            self._wake.wait(self._interval)
            self._wake.clear()
        while not self._stop.is_set():
            try:
                self._work()
            except Exception:  # the node, the bank or the database away: the next round retries
                log.exception("%s: the round failed; retrying", self.name)
            self._wake.wait(self._interval)
            self._wake.clear()
