"""The chain event listener's metrics: how far behind the chain it is and what it stored."""

from __future__ import annotations

import logging
import threading
from collections import Counter as Tally
from collections.abc import Iterator

from prometheus_client import Counter
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from citypay.listener.indexer import Listener, Update

log = logging.getLogger(__name__)


class ListenerCollector(Collector):
    """Reads the listener's state at scrape time; counts events by kind as they are stored."""

    def __init__(self, listener: Listener) -> None:
        self.listener = listener
        self._lock = threading.Lock()
        self._events = Counter(
            "citypay_chain_events",
            "Events the listener stored since the process started, by city, contract and event "
            "(a rescan after a restart or a reorg counts its events again).",
            ["city", "contract", "event"],
            registry=None,
        )
        listener.subscribe(self._count)

    def _count(self, update: Update) -> None:
        tally = Tally((e.city, e.contract, e.event) for e in update.events)
        with self._lock:
            for labels, count in tally.items():
                self._events.labels(*labels).inc(count)

    def collect(self) -> Iterator[Metric]:
        listener = self.listener
        try:
            head, head_time = listener.reader.latest()
        except Exception:  # the node is unreachable: the head as the last step saw it
            log.warning("metrics: the node's head could not be read", exc_info=True)
            head, head_time = listener.head, listener.head_time
        lag_blocks, lag_seconds = listener.behind(head, head_time)
        gauges = (
            (
                "lag_blocks",
                "Blocks between the chain's head now and the last indexed block.",
                lag_blocks,
            ),
            (
                "lag_seconds",
                "Chain time between the head block now and the last indexed block, in seconds.",
                lag_seconds,
            ),
            ("head_block", "The chain's head as the scrape read it.", head),
            ("indexed_block", "The last block whose events are all stored.", listener.indexed_to),
            (
                "last_step_timestamp_seconds",
                "Unix time of the listener's last completed step (stale: the listener is stuck).",
                listener.last_step_at,
            ),
        )
        for name, documentation, value in gauges:
            if value is not None:
                yield GaugeMetricFamily(f"citypay_listener_{name}", documentation, value=value)
        yield CounterMetricFamily(
            "citypay_listener_events_stored",
            "Events the listener stored since the process started.",
            value=listener.events_stored,
        )
        yield CounterMetricFamily(
            "citypay_listener_reorgs",
            "Reorgs the listener walked back since the process started.",
            value=listener.reorgs,
        )
        with self._lock:
            yield from self._events.collect()
