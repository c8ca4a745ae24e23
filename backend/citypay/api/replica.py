"""What one replica of a database runs at a time, and the standing by of the others.

Every replica serves every request: what must be exact across them is kept by the database
(unique keys, and the locks of db/locks.py). The duties that work through the database on their
own run in one replica at a time, the holder of the database's `backend` lease (db/lease.py): the
relayer and the refunds' and gifts' senders, the outbox's follower, the charging, cash-out,
reserve, program payout, expiry sweep and cashback workers, and, when the listener runs in the
API, the listener and the fraud rules (under the `listener` lease too). Transactions a request
sends itself (an office action, a deposit issued at once) go out from any replica through the
outbox, whose unique (sender, nonce) keeps each account's nonces single.

On PostgreSQL a replica that finds the leases held stands by: it serves requests and tries to
take them every LEASE_RENEW seconds, so when the holder is killed (freed at once on its host, at
its expiry from another) a standing-by replica starts the duties, which pick up from the database
what the holder left. On SQLite the backend is one process: a second one is refused at start.
"""

from __future__ import annotations

import logging
import threading

from citypay.api.state import Platform
from citypay.db.lease import LeaseHeld, ProcessLease

log = logging.getLogger(__name__)


class ReplicaDuties:
    def __init__(self, platform: Platform) -> None:
        self.platform = platform
        settings = platform.settings
        names = ["backend"] + (["listener"] if platform.listener is not None else [])
        self.leases = [
            ProcessLease(platform.db, name, ttl=settings.LEASE_TTL, renew=settings.LEASE_RENEW)
            for name in names
        ]
        self.active = False
        self._stop = threading.Event()
        self._standby: threading.Thread | None = None
        self._lock = threading.Lock()  # the standby's take-over against stop()

    @property
    def role(self) -> str:
        return "active" if self.active else "standby"

    def start(self) -> None:
        """Starts the duties, or stands by for them; raises LeaseHeld on SQLite when another
        process holds them."""
        try:
            self._acquire()
        except LeaseHeld as held:
            if self.platform.db.is_sqlite:
                log.critical("backend not started: %s", held)
                raise
            log.info(
                "standing by: the duties of this database are held by %s; this replica serves "
                "requests and takes them over when they are free",
                held.holder,
            )
            # A standing-by replica's dashboard reads what the active one's listener stores.
            self.platform.dashboard.follow_database(self.platform.settings.LISTENER_POLL_INTERVAL)
            self._standby = threading.Thread(target=self._stand_by, name="standby", daemon=True)
            self._standby.start()
            return
        self._run(dashboard_follows_listener=True)

    def _acquire(self) -> None:
        """Every lease or none."""
        taken = []
        try:
            for lease in self.leases:
                lease.acquire()
                taken.append(lease)
        except LeaseHeld:
            for lease in taken:
                lease.release()
            raise

    def _stand_by(self) -> None:
        while not self._stop.wait(self.platform.settings.LEASE_RENEW):
            with self._lock:
                if self._stop.is_set():
                    return
                try:
                    self._acquire()
                except LeaseHeld:
                    continue
                except Exception:  # the database away: try again next round
                    log.exception("standing by: could not read the leases")
                    continue
                log.warning("duties taken over: this replica now sends and follows the chain")
                self._run(dashboard_follows_listener=False)
                return

    def _run(self, *, dashboard_follows_listener: bool) -> None:
        platform = self.platform
        for lease in self.leases:
            lease.start_renewing()
        self.active = True
        if platform.relayer is not None:
            platform.relayer.start()
            platform.refunds.worker.start()  # sends refunds a restart left accepted or submitted
            platform.gifts.worker.start()  # and gifts
        platform.follower.start()  # what the chain kept or lost of every account's transactions
        platform.charging.worker.start()  # issues deposits left pending, e.g. by a crash
        platform.cashouts.worker.start()  # finishes cash-outs a crash or the bank left halfway
        if platform.reserve_worker is not None:
            platform.reserve_worker.start()  # the bank's statements, on the schedule
        if platform.payouts_worker is not None:
            platform.payouts_worker.start()  # program payouts, a restart's running one too
        if platform.sweep_worker is not None:
            platform.sweep_worker.start()  # expired money back to the city, on the schedule
        if platform.cashback_worker is not None:
            platform.cashback_worker.start()  # cashback on the payments the listener indexed
        if platform.listener is not None:
            platform.fraud.attach(platform.listener)  # catches up with the stored events first
            if dashboard_follows_listener:
                # After the fraud rules: when the dashboard hears of a block, its alerts are
                # stored.
                platform.dashboard.follow(platform.listener)
            platform.listener.start()
        elif dashboard_follows_listener:  # the listener runs as its own process
            platform.dashboard.follow_database(platform.settings.LISTENER_POLL_INTERVAL)

    def stop(self) -> None:
        with self._lock:
            self._stop.set()
        if self._standby is not None:
            self._standby.join(timeout=10)
        platform = self.platform
        if self.active:
            if platform.listener is not None:
                platform.listener.stop()
            if platform.reserve_worker is not None:
                platform.reserve_worker.stop()
            if platform.payouts_worker is not None:
                platform.payouts_worker.stop()
            if platform.sweep_worker is not None:
                platform.sweep_worker.stop()
            if platform.cashback_worker is not None:
                platform.cashback_worker.stop()
            platform.cashouts.worker.stop()
            platform.charging.worker.stop()
            platform.follower.stop()
            if platform.relayer is not None:
                platform.gifts.worker.stop()
                platform.refunds.worker.stop()
                platform.relayer.stop()
        platform.dashboard.stop()
        if self.active:
            for lease in self.leases:
                lease.release()
