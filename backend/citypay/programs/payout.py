"""A program's payout to its recipient list, in batches, exactly once per recipient.

Exactly-once is the chain's: CityPrograms pays a recipient at most once per program whatever the
number of transactions that name it (a second is refused, `CityProgramsAlreadyPaid`). So a run
that was killed at any point is run again as it was: it first waits for the transactions an
earlier run recorded in the outbox and left unmined (the same signed bytes are sent again if the
node lost them: no second nonce), then asks the chain which recipients are paid and sends only
the others. Nobody is paid twice; nobody is skipped, since every recipient not yet paid is sent
until the chain pays or refuses it, and a refusal (not a resident, frozen, over the funds) is
reported with the contract's own error.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from eth_utils import is_address, is_checksum_address, to_checksum_address
from sqlalchemy import select

from citypay.chain.codec import decode_revert
from citypay.chain.duty_sender import DutySender
from citypay.chain.events import decode_log
from citypay.chain.gateway import PlatformContract
from citypay.chain.outbox import ChainTransaction, Outbox, OutboxStatus

PURPOSE = "program_payout"
# CityPrograms.MAX_PAYOUT_BATCH; 100 a transaction keeps each under 11 million gas.
MAX_BATCH = 500
DEFAULT_BATCH = 100
# paidTo reads in one JSON-RPC batch.
READS_A_BATCH = 500
# Gas a payout transaction is given: a recipient's payout measured 107,543 in `make gas`
# (bench/results/gas.md, 100 a batch), a first one in a fresh word up to about 130,000.
GAS_A_RECIPIENT = 160_000
GAS_A_BATCH = 200_000
COLUMNS = ("wallet", "amount")


class RecipientListError(ValueError):
    """The recipient list cannot be paid as written: the message names the line and field."""


class PayoutStopped(RuntimeError):
    """A batch's transaction reverted in its block: none of its recipients was paid by it."""


@dataclass(frozen=True)
class Recipient:
    line: int
    wallet: str
    amount: int


@dataclass
class Outcome:
    """What the chain did for one recipient: paid (now or by an earlier run) or refused."""

    wallet: str
    amount: int
    status: str  # paid, already_paid, refused
    reason: str = ""
    tx_hash: str = ""
    block: int | None = None


def read_recipients(text: str, *, max_amount: int) -> list[Recipient]:
    """The rows of a `wallet,amount` CSV (UTF-8, a spreadsheet's BOM allowed), every one checked
    before anything is sent: each error names its line, field, value and what is accepted."""
    rows = csv.DictReader(io.StringIO(text.removeprefix("\ufeff")))
    if rows.fieldnames is None or [f.strip() for f in rows.fieldnames] != list(COLUMNS):
        raise RecipientListError(
            f"line 1: the header is {rows.fieldnames!r}; expected exactly {','.join(COLUMNS)}"
        )
    recipients, seen = [], {}
    for row in rows:
        line = rows.line_num
        if None in row or any(value is None for value in row.values()):
            raise RecipientListError(f"line {line}: expected 2 fields (wallet,amount)")
        wallet, amount = row["wallet"].strip(), row["amount"].strip()
        mixed_case = wallet[2:] not in (wallet[2:].lower(), wallet[2:].upper())
        if not is_address(wallet) or (mixed_case and not is_checksum_address(wallet)):
            raise RecipientListError(
                f"line {line}: wallet {wallet!r} is not an address (0x and 40 hex digits, "
                "EIP-55 checksummed when in mixed case)"
            )
        if not amount.isdigit() or not 1 <= int(amount) <= max_amount:
            raise RecipientListError(
                f"line {line}: amount {amount!r} is not a whole number of KRW from 1 to "
                f"{max_amount:,} (the program's most per recipient)"
            )
        wallet = to_checksum_address(wallet)
        if wallet in seen:
            raise RecipientListError(
                f"line {line}: wallet {wallet} is already on line {seen[wallet]}: a recipient "
                "is paid once per program"
            )
        seen[wallet] = line
        recipients.append(Recipient(line, wallet, int(amount)))
    if not recipients:
        raise RecipientListError("the list has no recipient")
    return recipients


def _chunks(items: list, size: int) -> Iterator[list]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


class Payout:
    def __init__(
        self,
        outbox: Outbox,
        sender: DutySender,
        programs: PlatformContract,
        program: int,
        *,
        city: str,
        batch_size: int = DEFAULT_BATCH,
    ) -> None:
        if not 1 <= batch_size <= MAX_BATCH:
            raise ValueError(f"batch size {batch_size}: from 1 to {MAX_BATCH}")
        self.outbox, self.sender, self.programs = outbox, sender, programs
        self.program, self.city, self.batch_size = program, city, batch_size

    def settle_earlier_runs(self) -> int:
        """Waits for this payer's payout transactions an earlier run left unmined."""
        with self.outbox.db.session() as session:
            left = session.scalars(
                select(ChainTransaction).where(
                    ChainTransaction.sender == self.sender.address,
                    ChainTransaction.purpose == PURPOSE,
                    ChainTransaction.status == OutboxStatus.SENT,
                )
            ).all()
        for record in left:
            self.outbox.broadcast(record.raw_transaction)
            self.outbox.wait_mined(record)
        return len(left)

    def paid(self, recipients: list[Recipient]) -> set[str]:
        paid = set()
        for chunk in _chunks(recipients, READS_A_BATCH):
            gateway = self.programs.gateway
            answers = gateway.read_many(
                [(self.programs, "paidTo", (self.program, r.wallet)) for r in chunk]
            )
            paid |= {r.wallet for r, answer in zip(chunk, answers, strict=True) if answer}
        return paid

    def run(
        self,
        recipients: list[Recipient],
        progress: Callable[[list[Outcome]], None] | None = None,
    ) -> list[Outcome]:
        """Pays every recipient not yet paid; one outcome a recipient, in the list's order.
        `progress(outcomes)` with the outcomes of those found paid, then of each batch."""
        self.settle_earlier_runs()
        already = self.paid(recipients)
        outcomes = {
            r.wallet: Outcome(r.wallet, r.amount, "already_paid")
            for r in recipients
            if r.wallet in already
        }
        if progress is not None and outcomes:
            progress(list(outcomes.values()))
        todo = [r for r in recipients if r.wallet not in already]
        for batch in _chunks(todo, self.batch_size):
            payouts = [(r.wallet, r.amount) for r in batch]
            record = self.sender.send(
                self.programs,
                "payOut",
                self.program,
                payouts,
                purpose=PURPOSE,
                gas=GAS_A_BATCH + GAS_A_RECIPIENT * len(payouts),
            )
            if not record.succeeded:
                raise PayoutStopped(
                    f"transaction {record.tx_hash} reverted in block {record.block_number}: "
                    f"none of its {len(batch)} recipients was paid by it; run the payout again"
                )
            found = self._outcomes(record)
            for r in batch:
                outcomes[r.wallet] = found.get(r.wallet) or Outcome(
                    r.wallet, r.amount, "refused", "no event for this recipient", record.tx_hash
                )
            if progress is not None:
                progress([outcomes[r.wallet] for r in batch])
        return [outcomes[r.wallet] for r in recipients]

    def _outcomes(self, record: ChainTransaction) -> dict[str, Outcome]:
        receipt = self.outbox.receipt(record.tx_hash)
        block = int(receipt["blockNumber"], 16)
        found = {}
        for raw in receipt["logs"]:
            if raw["address"].lower() != self.programs.address.lower():
                continue
            event = decode_log(raw, self.city, "programs", 0)
            args = event.args
            if event.event == "ProgramPaid":
                found[args["recipient"]] = Outcome(
                    args["recipient"], args["amount"], "paid", "", record.tx_hash, block
                )
            elif event.event == "ProgramPayoutRefused":
                reason = str(decode_revert(bytes.fromhex(args["reason"].removeprefix("0x"))))
                found[args["recipient"]] = Outcome(
                    args["recipient"], args["amount"], "refused", reason, record.tx_hash, block
                )
        return found


def write_outcomes(path: Path, outcomes: list[Outcome]) -> None:
    """One row a recipient: what the chain did, its reason, transaction and block (a CSV a
    spreadsheet opens as UTF-8)."""
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(("wallet", "amount", "status", "reason", "tx_hash", "block"))
    for o in outcomes:
        writer.writerow((o.wallet, o.amount, o.status, o.reason, o.tx_hash, o.block or ""))
    temporary = path.with_suffix(path.suffix + ".tmp")
    temporary.write_text("\ufeff" + buffer.getvalue(), encoding="utf-8")
    temporary.replace(path)
