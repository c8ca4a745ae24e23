"""Prometheus metrics of the platform's processes (GET /metrics on the API; the listener's own
port when it runs alone). What the database knows is read at scrape time by collectors, so the
payment path pays nothing for it."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, disable_created_metrics
from prometheus_client.gc_collector import GCCollector
from prometheus_client.platform_collector import PlatformCollector
from prometheus_client.process_collector import ProcessCollector

# A `_created` series beside every counter and histogram doubles what is scraped for a start time
# that process_start_time_seconds already gives.
disable_created_metrics()


def new_registry() -> CollectorRegistry:
    """A registry of one process's metrics, with the process's CPU, memory and garbage collector:
    one per app, so that two apps in one process (tests) do not collide."""
    registry = CollectorRegistry()
    ProcessCollector(registry=registry)
    PlatformCollector(registry=registry)
    GCCollector(registry=registry)
    return registry
