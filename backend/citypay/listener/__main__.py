"""The listener as its own process: python -m citypay.listener (set LISTENER_IN_API=false for
the API processes then, so that one listener writes the index). With LISTENER_METRICS_PORT set
it serves its Prometheus metrics (lag, events stored, reorgs) on that port. A second one on
PostgreSQL stands by for the first's lease; on SQLite it is refused."""

from __future__ import annotations

import logging
import time

from prometheus_client import start_http_server

from citypay.chain.deployment import open_deployment
from citypay.core.config import get_settings
from citypay.core.logs import configure_logging
from citypay.db.lease import LeaseHeld, ProcessLease
from citypay.db.migrate import upgrade
from citypay.db.session import Database
from citypay.fraud.engine import fraud_engine_for
from citypay.listener.indexer import listener_for, settle_start_up
from citypay.metrics import new_registry
from citypay.metrics.listener import ListenerCollector

log = logging.getLogger("citypay.listener")


def main() -> None:
    settings = get_settings()
    configure_logging(settings, service="listener")
    deployment = open_deployment(settings)
    db = Database(settings.DATABASE_URL)
    upgrade(db.engine)
    lease = ProcessLease(db, "listener", ttl=settings.LEASE_TTL, renew=settings.LEASE_RENEW)
    _take(lease, db, settings.LEASE_RENEW)
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
    settle_start_up()
    try:
        listener.run_forever()
    finally:
        lease.release()


def _take(lease: ProcessLease, db: Database, every: float) -> None:
    """One listener per database (db/lease.py): on SQLite a second one is refused; on
    PostgreSQL it stands by and takes over when the holder's lease is free."""
    standing_by = False
    while True:
        try:
            lease.acquire()
        except LeaseHeld as held:
            if db.is_sqlite:
                log.critical("listener not started: %s", held)
                raise SystemExit(1) from None
            if not standing_by:
                log.info(
                    "standing by: the listener of this database is held by %s; this one takes "
                    "over when it is free",
                    held.holder,
                )
                standing_by = True
            time.sleep(every)
            continue
        if standing_by:
            log.warning("listener lease taken over: this process now indexes the chain")
        return


if __name__ == "__main__":
    main()
