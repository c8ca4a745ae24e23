"""A bank's deposit notification: who signed it, when, and what it says.

The bank signs HMAC-SHA256(secret, f"{timestamp}.{raw body}") and sends it as
`X-Citypay-Signature: sha256=<hex>` with `X-Citypay-Timestamp: <unix seconds>`. Signing the
timestamp with the body bounds a captured notification's life to the tolerance; within it, a
replay is harmless because the same deposit is one deposit (see service.record).
"""

from __future__ import annotations

import hashlib
import hmac
import re
import time
from typing import Annotated

from fastapi.exceptions import RequestValidationError
from pydantic import Field, ValidationError

from citypay.auth.credentials import Unauthorized
from citypay.core.errors import ApiError
from citypay.core.fields import Address, RequestModel, whole_number

TIMESTAMP_HEADER = "X-Citypay-Timestamp"
SIGNATURE_HEADER = "X-Citypay-Signature"
_SIGNATURE = re.compile(r"sha256=([0-9a-f]{64})")


# "50000" or 50000.5 is a client bug, not an amount to guess at. 10^12 KRW bounds it far above
# any city's cap and well inside the contract's uint48 tallies.
DepositAmount = whole_number(
    1, 10**12, "a whole number of KRW from 1 to 1,000,000,000,000", "KRW received"
)


class DepositNotice(RequestModel):
    """What the bank says arrived: `amount` KRW for `resident`, under the bank's own deposit id."""

    depositId: Annotated[str, Field(pattern=r"^[A-Za-z0-9._:-]{1,64}$")]
    resident: Address
    amount: DepositAmount


def sign(secret: str, timestamp: int | str, body: bytes) -> str:
    """The signature header's value: what the bank computes (and the tests)."""
    digest = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256)
    return "sha256=" + digest.hexdigest()


def verify(
    secret: str,
    timestamp: str | None,
    signature: str | None,
    body: bytes,
    *,
    tolerance: int,
    now: float | None = None,
) -> None:
    """Refuses a notification without a fresh timestamp and a valid signature over it."""
    for header, value in ((TIMESTAMP_HEADER, timestamp), (SIGNATURE_HEADER, signature)):
        if not value:
            raise Unauthorized(
                "missing_signature_header",
                f"the deposit notification has no {header} header",
                field=header,
                value=value,
                accepted=_ACCEPTED[header],
            )
    if not re.fullmatch(r"[0-9]{1,12}", timestamp):
        raise ApiError(
            "invalid_timestamp",
            f"{TIMESTAMP_HEADER} is not a Unix time in seconds",
            field=TIMESTAMP_HEADER,
            value=timestamp,
            accepted=_ACCEPTED[TIMESTAMP_HEADER],
        )
    match = _SIGNATURE.fullmatch(signature)
    if match is None:
        raise ApiError(
            "invalid_signature_format",
            f"{SIGNATURE_HEADER} is not sha256=<64 lowercase hex digits>",
            field=SIGNATURE_HEADER,
            value=signature,
            accepted=_ACCEPTED[SIGNATURE_HEADER],
        )
    skew = abs((time.time() if now is None else now) - int(timestamp))
    if skew > tolerance:
        raise Unauthorized(
            "stale_notification",
            f"the notification was signed {int(skew)} s from now: replayed or the clock is off",
            field=TIMESTAMP_HEADER,
            value=timestamp,
            accepted=f"a Unix time within {tolerance} s of the server's clock",
        )
    if not hmac.compare_digest(sign(secret, timestamp, body), f"sha256={match.group(1)}"):
        raise Unauthorized(
            "invalid_signature",
            "the signature does not match the body and timestamp under the bank's secret",
            field=SIGNATURE_HEADER,
            value=signature,
            accepted=_ACCEPTED[SIGNATURE_HEADER],
        )


def parse(body: bytes) -> DepositNotice:
    """The notice, or the app's one 4xx shape naming the field, the value and what is accepted."""
    try:
        return DepositNotice.model_validate_json(body)
    except ValidationError as invalid:
        raise RequestValidationError(invalid.errors()) from None


_ACCEPTED = {
    TIMESTAMP_HEADER: "the Unix time in seconds at which the bank signed",
    SIGNATURE_HEADER: "sha256=<hex of HMAC-SHA256(webhook secret, '<timestamp>.<raw body>')>",
}
