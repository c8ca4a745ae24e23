"""A merchant's relayed refund and what became of it."""

from __future__ import annotations

from sqlalchemy import String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from citypay.authorization import SignedRefund
from citypay.chain.relayed import RelayedRow
from citypay.db.models import Base


class Refund(RelayedRow, Base):
    """(city, merchant, nonce) is the refund's identity, as on chain, where the nonce is one of
    the merchant's: posted twice it is one refund."""

    __tablename__ = "refunds"
    __table_args__ = (UniqueConstraint("city", "merchant", "nonce"),)

    merchant: Mapped[str] = mapped_column(String(42), index=True)
    payer: Mapped[str] = mapped_column(String(42), index=True)
    payment_id: Mapped[str] = mapped_column(String(66))

    def signed(self) -> SignedRefund:
        """The merchant's signed message, as refundWithAuthorization takes it."""
        return SignedRefund(
            merchant=self.merchant,
            payer=self.payer,
            payment_id=bytes.fromhex(self.payment_id[2:]),
            nonce=bytes.fromhex(self.nonce[2:]),
            value=self.value,
            valid_after=self.valid_after,
            valid_before=self.valid_before,
            v=self.v,
            r=bytes.fromhex(self.r[2:]),
            s=bytes.fromhex(self.s[2:]),
        )
