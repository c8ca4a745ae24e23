"""Cashback paid after each payment, and taken back after each refund, by the active replica every
CASHBACK_SETTLE_INTERVAL seconds: the city's cashback payer sends `settleBatch` for the payments
and refunds of the blocks past the city's cursor, and CityCashback decides every amount.

Where they are found: the listener's index of the token's events (payments.py), in blocks that
are both indexed (the listener's checkpoint) and final (CHAIN_CONFIRMATIONS). Which count:
- a payment made while the city was in cashback mode, by its treasury's IncentiveModeChanged
  events, and only while it still is (incentiveMode() on chain: in discount mode the chain pays
  nothing, so a payment left unsettled when the city left cashback earns nothing);
- a refund whose payment's cashback is to be taken back (settlementOf: less counted now than was
  settled), whatever the mode now: the chain takes it back in either.
The payee must be a merchant now, as CityCashback asks.

Plain transfers are one running total per payer and merchant (id zero), so before it settles the
blocks after a switch to cashback, the cashback payer sends `baseline` for every pair with plain
transfers before the switch: the chain counts their total then as settled, paying nothing, and
only what is paid after earns. The blocks before a switch are settled first, so a baseline never
swallows what an earlier cashback period earned. A pair's plain transfers made after the switch
but before the baseline is mined earn nothing: it is sent as soon as the switch is in a final
block (late after a long stop, or again after a crash before the cursor passed the switch).

Exactly once is the chain's: a payment key settled again pays nothing more. So the cursor moves
only after its blocks' batches are mined, and a crash in between (or a batch lost with the node)
sends them again next round, to no effect but for what was not yet paid. One city's failure (a
node away, a refused batch) is logged and retried next round, from its cursor, and holds no
other city. The cursor trusts finality: a node that loses final blocks (restored from an older
backup) may mine their payments again at or below it, which nothing settles until an operator
puts the city's cursor back (cashback_cursors), as harmless as any settlement sent twice.
"""

from __future__ import annotations

import logging
from collections import Counter

from sqlalchemy import select

from citypay.cashback.models import CashbackCursor
from citypay.cashback.payments import (
    PLAIN_TRANSFERS,
    TOKEN_EVENTS,
    Found,
    Log,
    ModeHistory,
    Position,
    Settlement,
    payments_in,
    refunds_in,
)
from citypay.chain.codec import decode_revert
from citypay.chain.deployment import City, Deployment
from citypay.chain.duties import DutySenders
from citypay.chain.duty_sender import DutySender
from citypay.chain.enums import AccountKind, IncentiveMode
from citypay.chain.events import decode_log
from citypay.chain.finality import Finality
from citypay.chain.gateway import PlatformContract
from citypay.chain.outbox import ChainTransaction
from citypay.core.faults import crash_point
from citypay.db.session import Database
from citypay.listener.indexer import CHECKPOINT
from citypay.listener.models import IndexedEvent, ListenerCheckpoint

log = logging.getLogger(__name__)

PURPOSE = "cashback_settlement"
BASELINE_PURPOSE = "cashback_baseline"
# Settlements a transaction.
BATCH_SIZE = 100
# Gas a settleBatch is given: one settlement that mints, alone in its transaction, used 221,425
# (its resident's first cashback, in fresh storage), a second of that resident's in the same
# batch 79,000 more (backend/tests/test_cashback.py holds each batch it sends under 80% of this).
# Gas is free on the city's chain; a full batch stays far below its 100 million a block.
GAS_A_SETTLEMENT = 250_000
# Gas a baseline is given a pair: it reads what settling reads and writes the pair's base.
GAS_A_BASELINE = 80_000
GAS_A_BATCH = 100_000
# The blocks holding token events that one step reads and settles before the cursor moves: a
# catch-up after a long stop keeps a bounded number of events in memory.
BLOCKS_A_STEP = 50
# Views read in one JSON-RPC batch.
READS_A_BATCH = 500


class CashbackNotSettled(RuntimeError):
    """A settleBatch or a baseline reverted in its block: its blocks are settled again next
    round."""


class CashbackSettler:
    def __init__(
        self,
        db: Database,
        deployment: Deployment,
        duties: DutySenders,
        finality: Finality,
        *,
        batch_size: int = BATCH_SIZE,
    ) -> None:
        self.db, self.deployment, self.duties, self.finality = db, deployment, duties, finality
        self.batch_size = batch_size

    def settle_all(self) -> int:
        """One round over every served city with a cashback contract; how many settlements it
        sent."""
        indexed_to = self._indexed_to()
        if indexed_to is None:
            return 0  # the listener has stored nothing yet
        upto = min(indexed_to, self.finality.final_up_to())
        sent = 0
        for city in self.deployment.cities.values():
            if city.chain.cashback is None or not city.roles.get("cashback_payer"):
                continue
            try:
                sent += self.settle_city(city, upto)
            except Exception:  # the node away, a refused batch: this city's next round retries
                log.exception("cashback of %s not settled this round; retrying", city.code)
        return sent

    def settle_city(self, city: City, upto: int) -> int:
        """Settles the city's blocks past its cursor up to `upto`; how many settlements it sent."""
        cursor = self._cursor(city)
        if cursor >= upto:
            return 0
        history = self._history(city.code, upto)
        if not history.ever_cashback:  # a discount city: nothing of these blocks earns or owes
            self._move(city.code, upto)
            return 0
        mode = city.chain.treasury.call("incentiveMode")
        sent = 0
        while cursor < upto:
            last = self._step_end(city.code, cursor, upto)
            switches = history.switches_to_cashback(cursor, last)
            if switches and switches[0][0] > cursor + 1:
                last = switches[0][0] - 1  # what precedes a switch is settled before its baseline
            elif switches:
                here = [s for s in switches if s[0] == cursor + 1]
                if mode == IncentiveMode.CASHBACK:  # else a later switch back baselines anew
                    self._baseline(city, here[-1])
                if len(switches) > len(here):
                    last = switches[len(here)][0] - 1
            due = self._due(city, self._logs(city.code, cursor, last), history, mode)
            if due:
                self._send(city, "settleBatch", due)
                sent += len(due)
                crash_point("after_cashback_sent")
            self._move(city.code, last)
            cursor = last
        return sent

    # --- what is due -----------------------------------------------------------------------------

    def _due(
        self, city: City, logs: list[Log], history: ModeHistory, mode: IncentiveMode
    ) -> list[Settlement]:
        """The settlements of these blocks, each once, payments first."""
        payments: list[Found] = []
        if mode == IncentiveMode.CASHBACK:
            payments = [f for f in payments_in(logs) if history.cashback_at(f.position)]
        receivers = sorted({f.settlement.merchant for f in payments})
        kinds = self._read(city.chain.token, "accountKind", [(r,) for r in receivers])
        merchants = {r for r, k in zip(receivers, kinds, strict=True) if k == AccountKind.MERCHANT}
        paid = dict.fromkeys(f.settlement for f in payments if f.settlement.merchant in merchants)
        refunds = dict.fromkeys(f.settlement for f in refunds_in(logs))
        refunded = [s for s in refunds if s not in paid]
        states = self._read(
            city.chain.cashback, "settlementOf", [s.as_argument() for s in refunded]
        )
        owed = [s for s, now in zip(refunded, states, strict=True) if now.base < now.claim.base]
        return [*paid, *owed]

    def _plain_pairs_before(self, city: City, switch: Position) -> list[Settlement]:
        """The pairs with plain transfers before `switch`, to a payee the token holds a merchant
        now, from the first indexed block: a pair's total goes back to its first transfer."""
        pairs: dict[Settlement, None] = {}
        after = -1
        while after < switch[0]:
            last = self._step_end(city.code, after, switch[0])
            for found in payments_in(self._logs(city.code, after, last)):
                if found.settlement.payment_id == PLAIN_TRANSFERS and found.position < switch:
                    pairs[found.settlement] = None
            after = last
        receivers = sorted({s.merchant for s in pairs})
        kinds = self._read(city.chain.token, "accountKind", [(r,) for r in receivers])
        merchants = {r for r, k in zip(receivers, kinds, strict=True) if k == AccountKind.MERCHANT}
        return [s for s in pairs if s.merchant in merchants]

    def _baseline(self, city: City, switch: Position) -> None:
        pairs = self._plain_pairs_before(city, switch)
        if pairs:
            self._send(city, "baseline", pairs)

    def _read(self, contract: PlatformContract, function: str, arguments: list[tuple]) -> list:
        results = []
        for start in range(0, len(arguments), READS_A_BATCH):
            chunk = arguments[start : start + READS_A_BATCH]
            results += contract.gateway.read_many([(contract, function, a) for a in chunk])
        return results

    # --- sending ---------------------------------------------------------------------------------

    def _send(self, city: City, function: str, due: list[Settlement]) -> None:
        """`settleBatch` or `baseline` for `due`, in batches, each mined before the next."""
        sender = self.duties.sender("cashback_payer", city.roles["cashback_payer"])
        settling = function == "settleBatch"
        for start in range(0, len(due), self.batch_size):
            batch = due[start : start + self.batch_size]
            record = sender.send(
                city.chain.cashback,
                function,
                [s.as_argument() for s in batch],
                purpose=PURPOSE if settling else BASELINE_PURPOSE,
                gas=GAS_A_BATCH + (GAS_A_SETTLEMENT if settling else GAS_A_BASELINE) * len(batch),
            )
            if not record.succeeded:
                raise CashbackNotSettled(
                    f"{function} {record.tx_hash} reverted in block {record.block_number}: its "
                    f"{len(batch)} settlements are sent again next round"
                )
            self._report(city, sender, record, function, len(batch))

    def _report(
        self, city: City, sender: DutySender, record: ChainTransaction, function: str, size: int
    ) -> None:
        """Logs what the batch did: paid, taken back, refused (with each refusal's reason),
        baselined."""
        receipt = sender.outbox.receipt(record.tx_hash) or {"logs": []}
        outcomes: Counter[str] = Counter()
        refusals: Counter[str] = Counter()
        address = city.chain.cashback.address.lower()
        for raw in receipt["logs"]:
            if raw["address"].lower() != address:
                continue
            event = decode_log(raw, city.code, "cashback", 0)
            outcomes[event.event] += 1
            if event.event == "CashbackRefused":
                refusals[decode_revert(bytes.fromhex(event.args["reason"][2:])).name] += 1
        log.info(
            "cashback settled",
            extra={
                "city": city.code,
                "function": function,
                "settlements": size,
                "paid": outcomes["CashbackPaid"],
                "reversed": outcomes["CashbackReversed"],
                "baselined": outcomes["CashbackBaselined"],
                "refused": dict(refusals),
                "tx_hash": record.tx_hash,
                "block": record.block_number,
            },
        )

    # --- the index and the cursor ---------------------------------------------------------------

    def _indexed_to(self) -> int | None:
        with self.db.session() as session:
            checkpoint = session.get(ListenerCheckpoint, CHECKPOINT)
            return None if checkpoint is None else checkpoint.block_number

    def _cursor(self, city: City) -> int:
        with self.db.session() as session:
            cursor = session.get(CashbackCursor, city.code)
            if cursor is not None:
                return cursor.block_number
        # Nothing before the cashback contract can earn: the treasury goes to cashback mode
        # only once it is linked.
        return (city.deployed_at or {}).get("cashback", 1) - 1

    def _move(self, city: str, block: int) -> None:
        with self.db.session() as session:
            cursor = session.get(CashbackCursor, city)
            if cursor is None:
                session.add(CashbackCursor(city=city, block_number=block))
            else:
                cursor.block_number = block

    def _history(self, city: str, upto: int) -> ModeHistory:
        with self.db.session() as session:
            changes = session.execute(
                select(IndexedEvent.block_number, IndexedEvent.log_index, IndexedEvent.args)
                .where(
                    IndexedEvent.city == city,
                    IndexedEvent.contract == "treasury",
                    IndexedEvent.event == "IncentiveModeChanged",
                    IndexedEvent.block_number <= upto,
                )
                .order_by(IndexedEvent.block_number, IndexedEvent.log_index)
            ).all()
        return ModeHistory([((block, index), args["newMode"]) for block, index, args in changes])

    def _token_events(self, city: str, after: int, upto: int):
        return select(IndexedEvent).where(
            IndexedEvent.city == city,
            IndexedEvent.contract == "token",
            IndexedEvent.event.in_(TOKEN_EVENTS),
            IndexedEvent.block_number > after,
            IndexedEvent.block_number <= upto,
        )

    def _step_end(self, city: str, after: int, upto: int) -> int:
        """The last block of the next step: the BLOCKS_A_STEP-th block after `after` holding
        token events, or `upto` if fewer do. Whole blocks only: a block's payments are never
        split across two cursors."""
        query = self._token_events(city, after, upto).with_only_columns(IndexedEvent.block_number)
        with self.db.session() as session:
            blocks = session.scalars(
                query.distinct().order_by(IndexedEvent.block_number).limit(BLOCKS_A_STEP)
            ).all()
        return blocks[-1] if len(blocks) == BLOCKS_A_STEP else upto

    def _logs(self, city: str, after: int, upto: int) -> list[Log]:
        query = self._token_events(city, after, upto).with_only_columns(
            IndexedEvent.block_number,
            IndexedEvent.tx_hash,
            IndexedEvent.log_index,
            IndexedEvent.event,
            IndexedEvent.args,
        )
        with self.db.session() as session:
            rows = session.execute(
                query.order_by(IndexedEvent.block_number, IndexedEvent.log_index)
            ).all()
        return [Log(*row) for row in rows]
