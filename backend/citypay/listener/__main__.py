"""The listener as its own process: python -m citypay.listener (set LISTENER_IN_API=false for
the API processes then, so that one listener writes the index). With LISTENER_METRICS_PORT set
it serves its Prometheus metrics (lag, events stored, reorgs) on that port."""

from __future__ import annotations

import logging

from prometheus_client import start_http_server

from citypay.chain.deployment import open_deployment
from citypay.core.config import get_settings
from citypay.core.logs import configure_logging
from citypay.db.lease import LeaseHeld, ProcessLease
from citypay.db.migrate import upgrade
from citypay.db.session import Database
from citypay.fraud.engine import fraud_engine_for
from citypay.listener.indexer import listener_for
from citypay.metrics import new_registry
from citypay.metrics.listener import ListenerCollector

log = logging.getLogger("citypay.listener")


def main() -> None:
    settings = get_settings()
    configure_logging(settings, service="listener")
    deployment = open_deployment(settings)
    db = Database(settings.DATABASE_URL)
    upgrade(db.engine)
    lease = ProcessLease(db, "listener")
    try:
        lease.acquire()  # one listener per database (db/lease.py)
    except LeaseHeld as held:
        log.critical("listener not started: %s", held)
        raise SystemExit(1) from None
    lease.start_renewing()
    listener = listener_for(settings, db, deployment)
    fraud_engine_for(settings, db, deployment).attach(listener)
    if settings.LISTENER_METRICS_PORT is not None:
        registry = new_registry()
        registry.register(ListenerCollector(listener))
        start_http_server(settings.LISTENER_METRICS_PORT, registry=registry)
    log.info(
        "listener started",
        extra={
            "chain_id": deployment.chain_id,
            "from_block": listener.start_block,
            "metrics_port": settings.LISTENER_METRICS_PORT,
        },
    )
    try:
        listener.run_forever()
    finally:
        lease.release()


if __name__ == "__main__":
    main()
