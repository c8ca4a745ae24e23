"""What the routes that relay a wallet's signed message (payments, refunds) share: the signature
in, and the relay's progress out."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from pydantic import BaseModel, Field, model_validator

Hex32 = Annotated[str, Field(pattern=r"^0x[0-9a-fA-F]{64}$", examples=["0x" + "ab" * 32])]


class SignatureIn(BaseModel):
    """A signed message's signature, as v, r and s or as one 65-byte `signature`; the routes'
    models add the message's own fields."""

    v: int | None = Field(default=None, ge=27, le=28)
    r: Hex32 | None = None
    s: Hex32 | None = None
    signature: str | None = Field(default=None, pattern=r"^0x[0-9a-fA-F]{130}$")

    @model_validator(mode="after")
    def _one_signature(self) -> SignatureIn:
        if self.signature is None and None in (self.v, self.r, self.s):
            raise ValueError("give the signature as v, r and s, or as one 65-byte 'signature'")
        return self

    def vrs(self) -> tuple[int, bytes, bytes]:
        """(v, r, s) whichever form came, v as 27 or 28 (a joined signature may say 0 or 1)."""
        if self.signature is not None:
            raw = bytes.fromhex(self.signature[2:])
            r, s, v = raw[:32], raw[32:64], raw[64]
        else:
            r, s, v = bytes.fromhex(self.r[2:]), bytes.fromhex(self.s[2:]), self.v
        return (v if v >= 27 else v + 27), r, s


class RelayedPublic(BaseModel):
    """Where a relayed message stands; the routes' models add what it is."""

    status: str
    failureReason: str | None
    transactionHash: str | None
    blockNumber: int | None
    createdAt: datetime
    updatedAt: datetime

    @staticmethod
    def progress(row) -> dict:
        """The fields above, of a payment's or a refund's row: its transaction named once mined,
        with its block."""
        return {
            "status": row.status.value,
            "failureReason": row.failure_reason,
            "transactionHash": row.tx_hash if row.block_number is not None else None,
            "blockNumber": row.block_number,
            "createdAt": row.created_at,
            "updatedAt": row.updated_at,
        }
