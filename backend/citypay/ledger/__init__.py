"""The books: every city's money, folded from its contracts' events."""

from citypay.ledger.books import Account, Books, CityBooks, Figures, Movement, Redemption
from citypay.ledger.stored import events_from_db

__all__ = ["Account", "Books", "CityBooks", "Figures", "Movement", "Redemption", "events_from_db"]
