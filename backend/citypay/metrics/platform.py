"""What the database says about the platform's work, read when Prometheus scrapes.

Each query reads an index (payments by status, cash-outs by status, deposits by city and status)
and the open states are few rows, so a scrape costs a few milliseconds and the payment path
nothing. Every replica sharing the database reports the same figures: aggregate with max(), not
sum().
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator

from prometheus_client import Histogram
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from sqlalchemy import func, select
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session

from citypay.cashout.models import FINAL, CashOut, CashOutStatus
from citypay.chain.outbox import ChainTransaction, OutboxStatus
from citypay.charging.models import Deposit, DepositStatus
from citypay.db.session import Database
from citypay.payments.models import Payment, PaymentStatus
from citypay.payments.relayer import PURPOSE as PAYMENT_BATCH

log = logging.getLogger(__name__)

_IN_RELAY = (PaymentStatus.ACCEPTED, PaymentStatus.SUBMITTED)
_OPEN_CASH_OUTS = tuple(status for status in CashOutStatus if status not in FINAL)


class PlatformCollector(Collector):
    def __init__(self, db: Database, cities: list[str]) -> None:
        self.db = db
        # Every city's series is reported, at 0 when it has nothing open: a series that vanished
        # would leave a graph at its last value and an alert on it undecided.
        self.cities = cities
        self._lock = threading.Lock()  # two scrapes at once must not observe a batch twice
        # Batches are observed as the scrape finds them in the database; the relayer itself is
        # not touched. Those sent before this process started are left out, as a counter's
        # history starts with its process.
        self._batch_sizes = Histogram(
            "citypay_relay_batch_size",
            "Payments per relay batch transaction, as recorded.",
            buckets=(1, 2, 5, 10, 20, 50, 100, 200, 500),
            registry=None,
        )
        with db.session() as session:
            self._last_batch = session.scalar(select(func.max(ChainTransaction.id))) or 0

    def collect(self) -> Iterator[Metric]:
        up = GaugeMetricFamily(
            "citypay_database_up", "1 if the last scrape could read the database, else 0."
        )
        try:
            with self._lock, self.db.session() as session:
                gauges = list(self._gauges(session))
                self._observe_new_batches(session)
        except SQLAlchemyError:
            log.warning("metrics: the database could not be read", exc_info=True)
            up.add_metric([], 0)
            yield up
            return
        up.add_metric([], 1)
        yield up
        yield from gauges
        yield from self._batch_sizes.collect()

    def _gauges(self, session: Session) -> Iterator[Metric]:
        payments = GaugeMetricFamily(
            "citypay_payments", "Relayed and card payments recorded, by status.", labels=["status"]
        )
        counts = dict(
            session.execute(select(Payment.status, func.count()).group_by(Payment.status)).all()
        )
        for status in PaymentStatus:
            payments.add_metric([status.value], counts.get(status, 0))
        yield payments

        queue = GaugeMetricFamily(
            "citypay_relay_queue",
            "Payments in the relay, by city and stage: accepted (queued, no transaction yet) or "
            "submitted (in a batch transaction not yet mined).",
            labels=["city", "stage"],
        )
        counts = self._by_city_and_status(
            session.execute(
                select(Payment.city, Payment.status, func.count())
                .where(Payment.status.in_(_IN_RELAY))
                .group_by(Payment.city, Payment.status)
            ),
            _IN_RELAY,
        )
        for (city, status), (count, *_) in counts.items():
            queue.add_metric([city, status.value], count)
        yield queue

        yield GaugeMetricFamily(
            "citypay_relay_transactions_pending",
            "Transactions of the backend's accounts (the outbox) sent and not yet mined.",
            value=session.scalar(
                select(func.count()).where(ChainTransaction.status == OutboxStatus.SENT)
            ),
        )

        cash_outs = GaugeMetricFamily(
            "citypay_cashouts_pending",
            "Cash-outs not yet settled, returned or refused, by city and status.",
            labels=["city", "status"],
        )
        cash_out_krw = GaugeMetricFamily(
            "citypay_cashouts_pending_krw",
            "KRW of the cash-outs not yet settled, returned or refused, by city and status.",
            labels=["city", "status"],
        )
        counts = self._by_city_and_status(
            session.execute(
                select(CashOut.city, CashOut.status, func.count(), func.sum(CashOut.amount))
                .where(CashOut.status.in_(_OPEN_CASH_OUTS))
                .group_by(CashOut.city, CashOut.status)
            ),
            _OPEN_CASH_OUTS,
        )
        for (city, status), (count, amount) in counts.items():
            cash_outs.add_metric([city, status.value], count)
            cash_out_krw.add_metric([city, status.value], amount or 0)
        yield cash_outs
        yield cash_out_krw

        deposits = GaugeMetricFamily(
            "citypay_deposits_pending",
            "Bank deposits recorded and not yet issued on chain, by city.",
            labels=["city"],
        )
        deposit_krw = GaugeMetricFamily(
            "citypay_deposits_pending_krw",
            "KRW of the bank deposits not yet issued on chain, by city.",
            labels=["city"],
        )
        counts = self._by_city_and_status(
            session.execute(
                select(Deposit.city, Deposit.status, func.count(), func.sum(Deposit.amount))
                .where(Deposit.status == DepositStatus.PENDING)
                .group_by(Deposit.city, Deposit.status)
            ),
            (DepositStatus.PENDING,),
        )
        for (city, _), (count, amount) in counts.items():
            deposits.add_metric([city], count)
            deposit_krw.add_metric([city], amount or 0)
        yield deposits
        yield deposit_krw

    def _by_city_and_status(self, rows, statuses) -> dict[tuple, tuple]:
        """{(city, status): (count, ...)} for every city and status, zeros where no row is."""
        found = {(city, status): tuple(values) for city, status, *values in rows}
        return {
            (city, status): found.get((city, status), (0, 0))
            for city in self.cities
            for status in statuses
        }

    def _observe_new_batches(self, session: Session) -> None:
        # Payments join their batch in the same commit that records it, so a batch seen here
        # has all its payments (a batch that reverted whole gives them back and counts none).
        for batch, size in session.execute(
            select(ChainTransaction.id, func.count(Payment.id))
            .outerjoin(Payment, Payment.relay_transaction_id == ChainTransaction.id)
            .where(
                ChainTransaction.id > self._last_batch, ChainTransaction.purpose == PAYMENT_BATCH
            )
            .group_by(ChainTransaction.id)
            .order_by(ChainTransaction.id)
        ):
            if size:
                self._batch_sizes.observe(size)
            self._last_batch = batch
