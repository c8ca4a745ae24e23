"""The merchants' payment events when replicas commit payments out of id order: a payment whose
id is below one the feed has seen, committed after that poll and included before the next, is
still told (on the test's own database, SQLite or PostgreSQL)."""

from __future__ import annotations

import asyncio

from citypay.db.migrate import upgrade
from citypay.db.session import Database
from citypay.payments.feed import PaymentFeed
from citypay.payments.models import Payment, PaymentStatus
from conftest import own_database_url

MERCHANT = "0x" + "22" * 20


def _payment(payment_id: int, status: PaymentStatus) -> Payment:
    return Payment(
        id=payment_id,
        city="gimpo",
        payer="0x" + "11" * 20,
        merchant=MERCHANT,
        value=1_000,
        valid_after=0,
        valid_before=2**40,
        nonce="0x" + f"{payment_id:064x}",
        v=27,
        r="0x" + "33" * 32,
        s="0x" + "44" * 32,
        status=status,
    )


def test_a_payment_committed_late_under_a_lower_id_is_told_even_if_already_included(tmp_path):
    db = Database(own_database_url(tmp_path, "feed"))
    upgrade(db.engine)

    async def watch() -> list[tuple[int, str]]:
        feed = PaymentFeed(db)
        told: list[tuple[int, str]] = []
        events = feed.changes("gimpo", MERCHANT)

        async def collect() -> None:
            async for payments in events:
                told.extend((payment.id, payment.status.value) for payment in payments)

        collector = asyncio.create_task(collect())
        await asyncio.sleep(0.3)
        # Replica A took id 1 and has not committed; replica B commits id 2, and the feed sees it.
        with db.session() as session:
            session.add(_payment(2, PaymentStatus.ACCEPTED))
        await asyncio.sleep(0.3)
        # A commits id 1, and the relayer includes it, before the feed's next poll.
        with db.session() as session:
            session.add(_payment(1, PaymentStatus.INCLUDED))
        await asyncio.sleep(0.5)
        collector.cancel()
        return told

    try:
        told = asyncio.run(watch())
    finally:
        db.engine.dispose()
    assert (2, "accepted") in told
    assert (1, "included") in told
    assert len(told) == len(set(told)), told  # each change told once
