"""Fault injection for the crash tests: CITYPAY_CRASH_AT=<point> makes the backend die at that
point, as kill -9 would, so a test can crash it exactly between two steps of a cash-out.

Read from the process environment only (never from settings or a .env file), and a no-op when
unset; the points are named where they are called: after_redemption (burned on chain, not yet
recorded) and after_payout (paid by the bank, not yet recorded) in cashout/flow.py;
after_refund_recorded (a refund's transaction recorded, not yet sent) and after_refund_sent (sent,
its outcome not yet recorded), after_gift_recorded and after_gift_sent the same for a gift, in
chain/relayed.py; after_batch_recorded and after_batch_sent, the
same two for a payment batch, in payments/relayer.py; after_cashback_sent (a city's cashback
settlements mined, its cursor not yet moved) in cashback/settler.py.
"""

from __future__ import annotations

import logging
import os

CRASH_EXIT_CODE = 86
log = logging.getLogger(__name__)


def crash_point(name: str) -> None:
    if os.environ.get("CITYPAY_CRASH_AT") == name:
        log.error("CITYPAY_CRASH_AT=%s: exiting now (fault injection)", name)
        os._exit(CRASH_EXIT_CODE)  # no cleanup, no commit: like a killed process
