"""The books: every city's money, folded from its contracts' events."""

from citypay.ledger.books import Account, Books, CityBooks, Figures, Movement, Redemption

__all__ = ["Account", "Books", "CityBooks", "Figures", "Movement", "Redemption", "events_from_db"]


def __getattr__(name: str):
    # The database's events need SQLAlchemy and every table: the auditor, which reads a node and
    # not a database, starts about 0.4 s sooner without them.
    if name == "events_from_db":
        from citypay.ledger.stored import events_from_db

        return events_from_db
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
