"""Expired money back to the city on a schedule (EXPIRY_SWEEP_INTERVAL): the active replica asks
the chain which residents hold expired money (`expiredOf`) and sends each one's `sweep`, which
anyone may send and which only ever burns expired money. A payment sweeps its payer first anyway;
this returns the money of those who no longer pay, so the city's books show it returned.

Who is asked: every resident the registry registered and every recipient of a program payout, by
the listener's index of the chain's events."""

from __future__ import annotations

import logging

from sqlalchemy import select

from citypay.chain.deployment import Deployment
from citypay.chain.duties import DutySenders
from citypay.db.session import Database
from citypay.listener.models import IndexedEvent

log = logging.getLogger(__name__)

# expiredOf reads in one JSON-RPC batch.
READS_A_BATCH = 500
# What registers a resident or gives one program money, and the argument that names it.
HOLDERS = (("ResidentRegistered", "wallet"), ("ProgramPaid", "recipient"))


class ExpirySweeper:
    def __init__(self, db: Database, deployment: Deployment, duties: DutySenders) -> None:
        self.db, self.deployment, self.duties = db, deployment, duties

    def holders(self, city: str) -> list[str]:
        with self.db.session() as session:
            rows = session.execute(
                select(IndexedEvent.event, IndexedEvent.args).where(
                    IndexedEvent.city == city,
                    IndexedEvent.event.in_([event for event, _ in HOLDERS]),
                )
            ).all()
        names = dict(HOLDERS)
        return sorted({args[names[event]] for event, args in rows})

    def sweep_all(self) -> int:
        """One round over every served city; how many accounts it swept."""
        swept = 0
        for code, city in self.deployment.cities.items():
            if city.programs is None:
                continue
            gateway = self.deployment.gateway
            programs = gateway.contract(city.programs.address, "programs")
            holders = self.holders(code)
            sender = self.duties.sender("program_payer", city.roles["program_payer"])
            for start in range(0, len(holders), READS_A_BATCH):
                chunk = holders[start : start + READS_A_BATCH]
                expired = gateway.read_many([(programs, "expiredOf", (a,)) for a in chunk])
                for account, amount in zip(chunk, expired, strict=True):
                    if amount == 0:
                        continue
                    record = sender.send(city.chain.token, "sweep", account, purpose="sweep")
                    log.info(
                        "expired money swept back to the city",
                        extra={"city": code, "account": account, "amount": amount,
                               "tx_hash": record.tx_hash},
                    )  # fmt: skip
                    swept += 1
        return swept
