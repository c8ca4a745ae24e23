"""Runs the fraud rules over the indexed events: a catch-up over what is stored at start, then
each chunk the listener commits, on the listener's thread.

Every event is folded into its city's activity in chain order and judged by the rules as it is
folded, so a catch-up finds what the live listener found; alerts are stored under deterministic
keys, so finding them again stores nothing.

A finding that overlaps in time the previous alert of the same rule and subject continues that
alert's episode (more payments of the same pattern) instead of raising another one
(citypay.fraud.judge).

Reorgs: when the listener re-reads blocks it had already delivered (`rescanned_from`), the
activity is folded again from the stored events below that block, and the rescanned events are
judged anew. An alert whose evidence the index no longer has is then dropped, not kept pointing
at events that did not happen: the pattern on the chain that stays raises its own alert.
"""

from __future__ import annotations

import logging
from itertools import takewhile

from sqlalchemy.orm import Session

from citypay.chain.deployment import Deployment
from citypay.core.config import Settings
from citypay.db.session import Database
from citypay.fraud.alerts import drop_orphans, newest_evidence_block, record
from citypay.fraud.config import FraudConfig, load_fraud_config
from citypay.fraud.judge import Judge
from citypay.fraud.rules import Finding
from citypay.ledger import events_from_db
from citypay.listener.indexer import CHECKPOINT, Listener, Update
from citypay.listener.models import ListenerCheckpoint

log = logging.getLogger(__name__)


class FraudEngine:
    def __init__(self, db: Database, deployment: Deployment, config: FraudConfig) -> None:
        self.db = db
        self.deployment = deployment
        self.config = config
        self.alerts_raised = 0  # new alerts stored by this process
        self.alerts_dropped = 0
        self.folded_to: int | None = None  # every stored event up to this block is folded
        self.judge: Judge | None = None  # made by the first catch-up
        self._unverified_from: int | None = 0  # alerts with evidence from here on to check
        self._stale = True  # the activity does not match the index: fold it again

    # --- following the listener ---------------------------------------------------------------

    def attach(self, listener: Listener) -> None:
        """Catches up with the stored events, then follows the listener's updates.

        A restarted listener first reads a margin of blocks again and delivers them with
        `rescanned_from`; folding them here too would fold the whole history twice at start
        (once now, once more when that first update asks for a rebuild below it)."""
        self.catch_up(below=listener.rescan_start())
        listener.subscribe(self.on_update)

    def catch_up(self, below: int | None = None) -> None:
        """Folds and judges the stored events (those below block `below`, or all); stores the
        alerts not stored yet and drops those whose evidence is gone."""
        with self.db.session() as session:
            findings = self._rebuild(session, below=below)
            if below is not None:
                self.folded_to = below - 1
            else:
                checkpoint = session.get(ListenerCheckpoint, CHECKPOINT)
                self.folded_to = checkpoint.block_number if checkpoint else None
            self._store(session, findings, self.folded_to)
        self._stale = False

    def on_update(self, update: Update) -> None:
        """The listener committed a chunk: judge its events."""
        if self._stale:
            self.catch_up()  # the chunk's events are stored: the catch-up judges them
            return
        try:
            with self.db.session() as session:
                rescanned = update.rescanned_from
                if rescanned is not None:
                    if self._unverified_from is None or rescanned < self._unverified_from:
                        self._unverified_from = rescanned
                    if self.folded_to is not None and rescanned <= self.folded_to:
                        self._rebuild(session, below=rescanned)
                findings = [f for event in update.events for f in self.judge.fold(event)]
                self.folded_to = update.indexed_to
                self._store(session, findings, update.indexed_to)
        except Exception:
            self._stale = True  # half an update folded: start over from the index next time
            raise

    # --- folding --------------------------------------------------------------------------------

    def _rebuild(self, session: Session, *, below: int | None) -> list[Finding]:
        """Folds the stored events below block `below` (all if None) into a fresh judge."""
        self.judge = Judge(self.config, self.deployment.cities, self._limits)
        events = events_from_db(session)
        if below is not None:
            events = takewhile(lambda event: event.block_number < below, events)
        return [f for event in events for f in self.judge.fold(event)]

    def _limits(self, code: str) -> dict[str, int]:
        """The city's limits a payment could be kept under, as the treasury has them now."""
        policy = self.deployment.city(code).chain.treasury.call("policy")
        return {
            "monthly purchase limit": policy.monthlyPurchaseLimit,
            "holding cap": policy.holdingCap,
        }

    # --- storing ------------------------------------------------------------------------------

    def _store(self, session: Session, findings: list[Finding], indexed_to: int | None) -> None:
        new = record(session, findings)
        self.alerts_raised += new
        if new:
            log.warning(
                "fraud: %d new alert(s): %s",
                new,
                "; ".join(f"{f.city} {f.rule} {f.subject}" for f in findings),
            )
        if self._unverified_from is None or indexed_to is None:
            return
        dropped = drop_orphans(session, self._unverified_from, indexed_to)
        if dropped:
            self.alerts_dropped += dropped
            log.warning("fraud: %d alert(s) dropped: a reorg removed their evidence", dropped)
        # Evidence above the indexed block waits until the listener reads that far again.
        newest = newest_evidence_block(session)
        pending = newest is not None and newest > indexed_to
        self._unverified_from = max(indexed_to + 1, self._unverified_from) if pending else None


def fraud_engine_for(settings: Settings, db: Database, deployment: Deployment) -> FraudEngine:
    """The engine with the rules' configuration at FRAUD_CONFIG_PATH, checked against the
    deployment's cities."""
    config = load_fraud_config(settings.FRAUD_CONFIG_PATH)
    config.check_cities(list(deployment.cities), str(settings.FRAUD_CONFIG_PATH))
    return FraudEngine(db, deployment, config)
