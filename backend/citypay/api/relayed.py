"""What the routes that relay a wallet's signed message (payments, refunds) share: the signature
in, and the relay's progress out."""

from __future__ import annotations

from pydantic import BaseModel, Field, model_validator

from citypay.core.fields import Hex32, RequestModel, Signature65, UtcDateTime, whole_number

RecoveryId = whole_number(27, 28, "27 or 28 (the signature's v)", "the signature's v: 27 or 28")


class SignatureIn(RequestModel):
    """A signed message's signature, as v, r and s or as one 65-byte `signature`; the routes'
    models add the message's own fields."""

    v: RecoveryId | None = None
    r: Hex32 | None = None
    s: Hex32 | None = None
    signature: Signature65 | None = None

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
    final: bool = Field(
        description="its block is at or below the chain's head less CHAIN_CONFIRMATIONS: the "
        "status will not change; until then a rollback can take it back (the backend then "
        "sends it again)"
    )
    createdAt: UtcDateTime
    updatedAt: UtcDateTime

    @staticmethod
    def progress(row, final_up_to: int) -> dict:
        """The fields above, of a payment's or a refund's row: its transaction named once mined,
        with its block; final once that block is at or below `final_up_to`."""
        return {
            "status": row.status.value,
            "failureReason": row.failure_reason,
            "transactionHash": row.tx_hash if row.block_number is not None else None,
            "blockNumber": row.block_number,
            "final": row.block_number is not None and row.block_number <= final_up_to,
            "createdAt": row.created_at,
            "updatedAt": row.updated_at,
        }
