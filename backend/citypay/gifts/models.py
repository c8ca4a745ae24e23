"""A resident's relayed gift and what became of it."""

from __future__ import annotations

from sqlalchemy import String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from citypay.authorization import SignedAuthorization
from citypay.chain.relayed import RelayedRow
from citypay.db.models import Base


class Gift(RelayedRow, Base):
    """(city, giver, nonce) is the gift's identity, as on chain, where the nonce is one of the
    giver's: posted twice it is one gift."""

    __tablename__ = "gifts"
    __table_args__ = (UniqueConstraint("city", "giver", "nonce"),)

    giver: Mapped[str] = mapped_column(String(42), index=True)
    receiver: Mapped[str] = mapped_column(String(42), index=True)

    def signed(self) -> SignedAuthorization:
        """The giver's signed GiftAuthorization."""
        return SignedAuthorization(
            from_=self.giver,
            to=self.receiver,
            value=self.value,
            valid_after=self.valid_after,
            valid_before=self.valid_before,
            nonce=bytes.fromhex(self.nonce[2:]),
            v=self.v,
            r=bytes.fromhex(self.r[2:]),
            s=bytes.fromhex(self.s[2:]),
        )
