"""The listener's stored events as ChainEvents, for books kept from the database."""

from __future__ import annotations

from collections.abc import Iterator

from sqlalchemy import select
from sqlalchemy.orm import Session

from citypay.chain.events import ChainEvent
from citypay.listener.models import IndexedEvent

_COLUMNS = (
    IndexedEvent.city,
    IndexedEvent.contract,
    IndexedEvent.event,
    IndexedEvent.block_number,
    IndexedEvent.block_hash,
    IndexedEvent.block_time,
    IndexedEvent.tx_hash,
    IndexedEvent.log_index,
    IndexedEvent.args,
)


def events_from_db(
    session: Session,
    city: str | None = None,
    *,
    after_block: int | None = None,
    batch: int = 5_000,
) -> Iterator[ChainEvent]:
    """Every stored event in chain order (block, then log index); one city's and the directory's
    when `city` is given (the directory's CityRegistered names the city's contracts); only those
    of blocks above `after_block` when given (a reader that folded up to it)."""
    query = select(*_COLUMNS).order_by(IndexedEvent.block_number, IndexedEvent.log_index)
    if after_block is not None:
        query = query.where(IndexedEvent.block_number > after_block)
    if city is not None:
        query = query.where(IndexedEvent.city.in_((city, "")))
    # Plain rows, streamed: ORM objects cost several times more per event, and a city's history
    # need not fit in memory twice.
    for row in session.execute(query.execution_options(yield_per=batch)):
        event = ChainEvent(*row)
        if city is None or event.contract != "directory" or event.args.get("code") == city:
            yield event
