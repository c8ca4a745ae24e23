"""The FastAPI application: `uvicorn citypay.api.app:app` (settings from the environment)."""

from __future__ import annotations

import logging
from contextlib import asynccontextmanager

from fastapi import FastAPI
from sqlalchemy import func, select

from citypay.admin.service import DashboardService
from citypay.api.body_limit import BodySizeLimit
from citypay.api.openapi import documented, serve_openapi
from citypay.api.replica import ReplicaDuties
from citypay.api.routes import (
    admin,
    alerts,
    auth,
    balances,
    cards,
    cashback,
    cashouts,
    cities,
    deposits,
    gifts,
    health,
    metrics,
    office,
    payments,
    programs,
    qr,
    refunds,
    reserve,
)
from citypay.api.state import Platform
from citypay.api.surge import PaymentIntake, RateLimitMiddleware, RateLimits
from citypay.api.unavailable import install_unavailable_handler
from citypay.bank.adapter import HttpBank
from citypay.cashback.settler import CashbackSettler
from citypay.cashout.service import CashOutService
from citypay.chain.deployment import open_deployment
from citypay.chain.duties import DutySenders
from citypay.chain.finality import Finality
from citypay.chain.keys import DutyKeys
from citypay.chain.outbox import Outbox
from citypay.charging.service import ChargingService
from citypay.core.config import Settings, get_settings
from citypay.core.errors import install_error_handlers
from citypay.core.logs import configure_logging
from citypay.core.worker import Worker
from citypay.db.migrate import upgrade
from citypay.db.session import Database
from citypay.fraud.engine import fraud_engine_for
from citypay.gifts.service import GiftService
from citypay.listener.indexer import listener_for
from citypay.metrics import new_registry
from citypay.metrics.http import HttpMetrics
from citypay.metrics.listener import ListenerCollector
from citypay.metrics.platform import PlatformCollector
from citypay.office.service import OfficeService
from citypay.payments.models import Payment, PaymentStatus
from citypay.payments.relayer import Relayer
from citypay.payments.service import PaymentService
from citypay.programs.jobs import PayoutJobs
from citypay.programs.sweeper import ExpirySweeper
from citypay.refund.service import RefundService
from citypay.reserve.attester import ReserveAttester

log = logging.getLogger(__name__)

# Seconds between two rounds of the outbox's follower (chain/outbox.py).
FOLLOW_INTERVAL = 1.0
# Seconds between two looks for a program payout to run (a new one wakes the worker at once).
PAYOUT_INTERVAL = 2.0


def build_platform(settings: Settings, *, run_relayer: bool = True) -> Platform:
    deployment = open_deployment(settings)
    keys = DutyKeys.unlock(settings, deployment)
    db = Database(settings.DATABASE_URL)
    upgrade(db.engine)
    gateway = deployment.gateway
    outbox = Outbox(db, gateway, confirmations=settings.CHAIN_CONFIRMATIONS)
    duties = DutySenders(keys, outbox)
    # Each city's batches go out from its own relayers, the holders of its token's RELAYER_ROLE;
    # its refunds and gifts from the first of them.
    relayer_pools = {code: keys.pool(code, "relayer") for code in deployment.cities}
    relayers = {code: pool[0] for code, pool in relayer_pools.items()}
    relayer = None
    if run_relayer:
        relayer = Relayer(
            db,
            deployment,
            outbox,
            relayer_pools,
            batch_size=settings.RELAY_BATCH_SIZE,
            interval=settings.RELAY_INTERVAL,
        )
    payments = PaymentService(db, deployment, settings)
    bank = HttpBank(settings.BANK_URL, timeout=settings.BANK_TIMEOUT)
    intake = PaymentIntake(lambda: waiting_payments(db), settings.PAYMENT_INTAKE_LIMIT)
    reserve = ReserveAttester(deployment, bank, duties)
    payouts = PayoutJobs(db, deployment, outbox, duties)
    finality = Finality(gateway, settings.CHAIN_CONFIRMATIONS)
    return Platform(
        settings=settings,
        db=db,
        deployment=deployment,
        gateway=gateway,
        outbox=outbox,
        duties=duties,
        finality=finality,
        follower=Worker("chain-follower", outbox.follow, FOLLOW_INTERVAL),
        payments=payments,
        relayer=relayer,
        # A city's refunds go out from its relayer too, under its nonces (refund/sender.py).
        refunds=RefundService(
            db, deployment, settings, outbox, domain=payments.domain, relayers=relayers
        ),
        # So do its residents' gifts (gifts/sender.py).
        gifts=GiftService(db, deployment, settings, outbox, relayers=relayers),
        charging=ChargingService(db, deployment, settings, outbox, duties),
        office=OfficeService(db, deployment, duties),
        cashouts=CashOutService(
            db,
            deployment,
            settings,
            bank,
            outbox,
            duties,
        ),
        listener=listener_for(settings, db, deployment) if settings.LISTENER_IN_API else None,
        dashboard=DashboardService(db, deployment),
        # The fraud rules run on the listener's updates, wherever the listener runs.
        fraud=fraud_engine_for(settings, db, deployment) if settings.LISTENER_IN_API else None,
        reserve=reserve,
        intake=intake,
        payouts=payouts,
        payouts_worker=Worker("program-payouts", payouts.run_pending, PAYOUT_INTERVAL),
        sweep_worker=(
            Worker(
                "expiry-sweeper",
                ExpirySweeper(db, deployment, duties).sweep_all,
                settings.EXPIRY_SWEEP_INTERVAL,
                first_after_interval=True,
            )
            if settings.EXPIRY_SWEEP_INTERVAL
            else None
        ),
        cashback_worker=(
            Worker(
                "cashback-settler",
                CashbackSettler(db, deployment, duties, finality).settle_all,
                settings.CASHBACK_SETTLE_INTERVAL,
            )
            if settings.CASHBACK_SETTLE_INTERVAL
            else None
        ),
        reserve_worker=(
            Worker(
                "reserve-attester",
                reserve.attest_all,
                settings.RESERVE_ATTEST_INTERVAL,
                first_after_interval=True,
            )
            if settings.RESERVE_ATTEST_INTERVAL and reserve.cities()
            else None
        ),
    )


def rate_limits_for(settings: Settings) -> RateLimits:
    return RateLimits(
        per_key=settings.RATE_LIMIT_PER_KEY,
        per_address=settings.RATE_LIMIT_PER_ADDRESS,
        per_wallet=settings.RATE_LIMIT_PER_WALLET,
        storage=settings.RATE_LIMIT_STORAGE,
    )


def waiting_payments(db: Database) -> int:
    """Payments accepted and not yet sent by the relayer."""
    with db.session() as session:
        return session.scalar(
            select(func.count())
            .select_from(Payment)
            .where(Payment.status == PaymentStatus.ACCEPTED)
        )


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or get_settings()
    configure_logging(settings, service="backend")
    registry = new_registry()
    # One set of counters for the middleware and the payment route (api/surge.py).
    rate_limits = rate_limits_for(settings)

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        platform = build_platform(settings)
        platform.rate_limits = rate_limits
        platform.payments.wallet_limit = rate_limits.wallet_refusal
        app.state.platform = platform
        registry.register(PlatformCollector(platform.db, sorted(platform.deployment.cities)))
        if platform.listener is not None:
            registry.register(ListenerCollector(platform.listener))
        # The sending and following duties run in one replica of the database at a time; the
        # others serve requests and stand by (api/replica.py).
        duties = ReplicaDuties(platform)
        duties.start()
        platform.replica = duties
        log.info(
            "backend started",
            extra={
                "chain_id": platform.deployment.chain_id,
                "cities": sorted(platform.deployment.cities),
                "database": platform.db.engine.url.get_backend_name(),
                "listener": platform.listener is not None,
                "relayer": platform.relayer is not None,
                "duties": duties.role,
            },
        )
        yield
        duties.stop()

    app = FastAPI(
        title="City token platform",
        description=(
            "QR payments, card payments, charging and fee-free cash-out "
            "for a city's local currency."
        ),
        version="0.1.0",
        lifespan=lifespan,
        # FastAPI's OpenTelemetry hooks asked OpenTelemetry for its providers on every request
        # (2.5% of a replica's time under make bench-relay) though none is configured: the
        # backend's metrics are Prometheus' (/metrics) and its logs JSON lines.
        telemetry={"tracing": False, "metrics": False, "logs": False},
    )
    app.state.metrics = registry
    app.add_middleware(BodySizeLimit, limit=settings.MAX_REQUEST_BODY_BYTES)
    app.add_middleware(RateLimitMiddleware, limits=rate_limits)
    app.add_middleware(HttpMetrics, registry=registry)
    install_error_handlers(app)
    install_unavailable_handler(app)
    # The payment routes first: a request is matched against the routes in order, and a
    # payment is the request that comes most often, by far.
    for module in (payments, health, metrics, auth, qr, cards, cities, deposits, cashouts, admin):
        app.include_router(documented(module.router))
    app.include_router(documented(refunds.router))
    app.include_router(documented(gifts.router))
    app.include_router(documented(alerts.router))
    app.include_router(documented(office.router))
    app.include_router(documented(reserve.router))
    app.include_router(documented(balances.router))
    app.include_router(documented(programs.router))
    app.include_router(documented(cashback.router))
    serve_openapi(app)
    return app


def app() -> FastAPI:
    """Factory for `uvicorn --factory citypay.api.app:app`."""
    return create_app()
