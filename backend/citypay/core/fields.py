"""The field types every request and response model is built from: whole numbers with the range
the chain or the database holds, addresses, hex, PINs, and UTC timestamps.

One rule per kind of value, so a number that no column or contract can hold is refused at the
door, whichever route it comes to, with the field, the value and the range accepted (the error
handler reads `accepted` from the refusal's context). A signed message's fields take the types of
its EIP-712 struct (`Uint256` for a uint256), so adding a field is one line.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from functools import lru_cache
from typing import Annotated, Any

from eth_utils import is_checksum_address, to_checksum_address
from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field, WithJsonSchema
from pydantic_core import PydanticCustomError

UINT256_MAX = 2**256 - 1
# CityToken.MAX_SUPPLY (type(uint64).max): no balance, payment or refund can be larger.
MAX_SUPPLY = 2**64 - 1
# The largest id or position a row can hold: the tables' ids (and an event's log index) are SQL
# INTEGER, a signed 32-bit integer on PostgreSQL (64 bits on SQLite): 2**63-1, the bound this
# first had, was a 500 on PostgreSQL. Widening them is a migration for a far busier platform.
ROW_ID_MAX = 2**31 - 1


class RequestModel(BaseModel):
    """A request body: a field the schema does not list is refused, never silently dropped (a
    misspelt optional field would otherwise be a default the client did not mean)."""

    model_config = ConfigDict(extra="forbid")


# --- whole numbers ------------------------------------------------------------------------------


def refusal(kind: str, message: str, accepted: str, echo: Any = None) -> PydanticCustomError:
    """A field's refusal in the API's terms (core/errors.py answers it as invalid_field): `kind`
    names the rule broken, `accepted` what the client can send instead; `echo`, if given, is
    shown in place of the value (a secret's mask)."""
    context = {"accepted": accepted} | ({"echo": echo} if echo is not None else {})
    return PydanticCustomError(kind, message, context)


def _whole_number(low: int, high: int, accepted: str, *, from_text: bool):
    """A validator for integers in [low, high]. JSON `true`, a float (even 2.0 or 1e3), NaN,
    Infinity or a string is not a number here; `from_text` takes decimal digits, as a URL's path
    and query carry every number."""
    widest = len(str(high))

    def check(value: Any) -> int:
        if from_text and isinstance(value, str) and re.fullmatch(r"-?[0-9]+", value):
            if len(value.lstrip("-")) > widest:  # never parse a thousand digits only to refuse them
                raise refusal("out_of_range", "the number is out of range", accepted)
            value = int(value)
        if isinstance(value, bool) or not isinstance(value, int):
            raise refusal("not_an_integer", "expected a whole number", accepted)
        if not low <= value <= high:
            raise refusal("out_of_range", "the number is out of range", accepted)
        return value

    return BeforeValidator(check)


# Each bound as FastAPI's OpenAPI model writes it (a float: 2**64-1 comes out as 2**64) -> the
# exact integer, for api/openapi.py to put back.
BOUNDS: dict[float, int] = {}


def whole_number(
    low: int, high: int, accepted: str, description: str | None = None, *, from_text: bool = False
):
    """The annotated int type for [low, high], with its bounds in the schema."""
    for bound in (low, high):
        assert BOUNDS.setdefault(float(bound), bound) == bound, f"{bound} is another as a float"
    return Annotated[
        int,
        Field(ge=low, le=high, description=description),
        _whole_number(low, high, accepted, from_text=from_text),
    ]


Uint256 = whole_number(
    0, UINT256_MAX, "an integer from 0 to 2**256-1 (a uint256), as a JSON number"
)
Amount = whole_number(
    1,
    MAX_SUPPLY,
    f"a whole number of KRW from 1 to {MAX_SUPPLY:,} (the token's MAX_SUPPLY), as a JSON number",
    "KRW (whole tokens)",
)
# What one sale at a till may ask for, by invoice or card: 10 billion KRW.
SaleAmount = whole_number(
    1, 10_000_000_000, "a whole number of KRW from 1 to 10,000,000,000", "KRW (whole tokens)"
)
UnixTime = whole_number(
    0,
    UINT256_MAX,
    "unix seconds: an integer from 0 to 2**256-1 (a uint256), as a JSON number",
    "unix seconds (a uint256 in the signed message)",
)
RowId = whole_number(
    1,
    ROW_ID_MAX,
    f"an id from 1 to {ROW_ID_MAX} (2**31-1)",
    "the id it was created with",
    from_text=True,
)


def count(low: int, high: int, description: str | None = None):
    """A number in a URL's query or path (a limit, a position)."""
    return whole_number(low, high, f"an integer from {low} to {high}", description, from_text=True)


# --- addresses and hex --------------------------------------------------------------------------

ADDRESS_PATTERN = r"^0x[0-9a-fA-F]{40}$"
ADDRESS_ACCEPTED = "a 0x-prefixed 20-byte hex address (EIP-55 checksum if mixed case)"


@lru_cache(maxsize=65_536)  # the same payers and merchants come back; each check is 2 keccaks
def checked_address(value: str) -> str:
    """A 0x address, all lower or upper case or with a valid EIP-55 checksum, checksummed."""
    if not re.fullmatch(r"0x[0-9a-fA-F]{40}", value):
        raise ValueError("expected a 0x-prefixed 20-byte hex address")
    digits = value[2:]
    if digits not in (digits.lower(), digits.upper()) and not is_checksum_address(value):
        raise ValueError("mixed-case address with a wrong EIP-55 checksum")
    return to_checksum_address(value)


def _address(value: Any) -> str:
    if not isinstance(value, str):
        raise refusal("invalid_address", "expected an address as a string", ADDRESS_ACCEPTED)
    try:
        return checked_address(value)
    except ValueError as wrong:
        raise refusal("invalid_address", str(wrong), ADDRESS_ACCEPTED) from None


Address = Annotated[
    str,
    Field(
        pattern=ADDRESS_PATTERN,
        description="0x and 40 hex digits; in mixed case, its EIP-55 checksum must hold",
        examples=["0x5B38Da6a701c568545dCfcB03FcB875f56beddC4"],
    ),
    BeforeValidator(_address),
]
HEX32_PATTERN = r"^0x[0-9a-fA-F]{64}$"
Hex32 = Annotated[str, Field(pattern=HEX32_PATTERN, description="32 bytes as 0x and 64 hex digits")]
Signature65 = Annotated[
    str,
    Field(pattern=r"^0x[0-9a-fA-F]{130}$", description="65 bytes, 0x and 130 hex digits: r, s, v"),
]

# --- a card holder's secrets --------------------------------------------------------------------

PIN_PATTERN = r"^[0-9]{4,6}$"
PIN_ACCEPTED = "4 to 6 digits"
# A card number as a till types it: 16 digits, spaces or dashes anywhere between them
# (cards/numbers.py checks it, the Luhn digit included, and masks it in its errors).
CARD_NUMBER_PATTERN = r"^[ -]*(?:[0-9][ -]*){16}$"


def _pin(value: Any) -> str:
    # The PIN is never echoed back: an error shows its mask only.
    if not isinstance(value, str) or not re.fullmatch(PIN_PATTERN, value):
        raise refusal("invalid_pin", "a PIN is 4 to 6 digits", PIN_ACCEPTED, echo="****")
    return value


Pin = Annotated[str, Field(pattern=PIN_PATTERN, description=PIN_ACCEPTED), BeforeValidator(_pin)]
CardNumber = Annotated[
    str,
    Field(
        json_schema_extra={"pattern": CARD_NUMBER_PATTERN},
        description="16 digits, the last a Luhn check digit; spaces or dashes may separate groups",
        examples=["9410 1234 5678 9012"],
    ),
]

# --- time ---------------------------------------------------------------------------------------


def _utc(moment: datetime) -> datetime:
    # SQLite gives back naive datetimes: the backend stores UTC only.
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


# Every timestamp an answer carries: RFC 3339 in UTC with its offset ("...Z"), whatever the
# database returned.
UtcDateTime = Annotated[datetime, AfterValidator(_utc)]

# A moment a client gives: RFC 3339 or unix seconds, as the parser takes either; the schema says
# both, else a client sending "1767225600" sends what the document calls invalid.
MomentIn = Annotated[
    datetime,
    AfterValidator(_utc),
    WithJsonSchema(
        {
            "anyOf": [{"type": "string", "format": "date-time"}, {"type": "number"}],
            "description": "RFC 3339 (2026-01-31T09:00:00Z) or unix seconds",
        }
    ),
]
