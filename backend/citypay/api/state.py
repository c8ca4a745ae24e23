"""What the app holds while it runs: settings, database, chain, services, the relayer."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from citypay.admin.service import DashboardService
from citypay.api.surge import PaymentIntake, RateLimits
from citypay.cashout.service import CashOutService
from citypay.chain.deployment import Deployment
from citypay.chain.duties import DutySenders
from citypay.chain.finality import Finality
from citypay.chain.gateway import ChainGateway
from citypay.chain.outbox import Outbox
from citypay.charging.service import ChargingService
from citypay.core.config import Settings
from citypay.core.worker import Worker
from citypay.db.session import Database
from citypay.fraud.engine import FraudEngine
from citypay.gifts.service import GiftService
from citypay.listener.indexer import Listener
from citypay.office.service import OfficeService
from citypay.payments.relayer import Relayer
from citypay.payments.service import PaymentService
from citypay.programs.jobs import PayoutJobs
from citypay.refund.service import RefundService
from citypay.reserve.attester import ReserveAttester

if TYPE_CHECKING:  # api/replica.py runs a Platform's duties
    from citypay.api.replica import ReplicaDuties


@dataclass
class Platform:
    settings: Settings
    db: Database
    deployment: Deployment
    gateway: ChainGateway
    outbox: Outbox
    finality: Finality
    duties: DutySenders
    # Follows the outbox once a second whatever else runs (the relayer also does, each block).
    follower: Worker
    payments: PaymentService
    relayer: Relayer | None
    charging: ChargingService | None = None
    cashouts: CashOutService | None = None
    listener: Listener | None = None
    dashboard: DashboardService | None = None
    fraud: FraudEngine | None = None
    refunds: RefundService | None = None
    gifts: GiftService | None = None
    office: OfficeService | None = None
    reserve: ReserveAttester | None = None
    rate_limits: RateLimits | None = None
    intake: PaymentIntake | None = None
    # Policy programs' payouts the operators posted, and the worker that pays them.
    payouts: PayoutJobs | None = None
    payouts_worker: Worker | None = None
    # Sends expired money back to the city every EXPIRY_SWEEP_INTERVAL seconds.
    sweep_worker: Worker | None = None
    # Settles payments and refunds for cashback every CASHBACK_SETTLE_INTERVAL seconds.
    cashback_worker: Worker | None = None
    # Records each city's bank statement every RESERVE_ATTEST_INTERVAL seconds.
    reserve_worker: Worker | None = None
    # Whether this replica runs the sending and following duties or stands by (api/replica.py).
    replica: ReplicaDuties | None = None
