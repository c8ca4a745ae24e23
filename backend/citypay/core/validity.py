"""How long a signed message (a payment's or refund's EIP-3009 window, a cash-out's validBefore)
must and may still be valid when it is posted, and the refusal naming what is wrong."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from citypay.core.errors import ApiError, Unprocessable

if TYPE_CHECKING:
    from citypay.core.config import Settings


@dataclass(frozen=True)
class Validity:
    """At least `least` seconds left (it could expire queued: RELAY_MIN_VALIDITY), at most `most`
    (RELAY_MAX_VALIDITY: a longer-lived signature is a bearer instrument the backend does not
    keep, and a time beyond it may not fit the database's 64-bit integers)."""

    least: int
    most: int

    @classmethod
    def of(cls, settings: Settings) -> Validity:
        return cls(settings.RELAY_MIN_VALIDITY, settings.RELAY_MAX_VALIDITY)

    def window_refusal(
        self, what: str, valid_after: int, valid_before: int, *, now: int, clock: str
    ) -> ApiError | None:
        """What is wrong with a window (EIP-3009's validAfter and validBefore) at `now`: too
        early, too little time left to relay it, or valid for too long. `what` names the message
        and `clock` the time `now` is (the chain's, or the server's)."""
        if valid_after >= now:
            return Unprocessable(
                "not_yet_valid",
                f"the {what} is valid only after {valid_after}; {clock} is {now}",
                field="validAfter",
                value=valid_after,
                accepted=f"a time before {now} (unix seconds)",
            )
        if valid_before < now + self.least:
            return Unprocessable(
                "expired",
                f"the {what} expires at {valid_before}, too soon to relay ({clock} is {now})",
                field="validBefore",
                value=valid_before,
                accepted=f"at least {now + self.least} ({self.least} s from now)",
            )
        return self.lifetime_refusal(what, valid_before, now=now, clock=clock)

    def lifetime_refusal(
        self, what: str, valid_before: int, *, now: int, clock: str
    ) -> ApiError | None:
        """The refusal of a validBefore further than `most` seconds from `now`."""
        if valid_before > now + self.most:
            return Unprocessable(
                "validity_too_long",
                f"the {what} stays valid until {valid_before}, more than {self.most:,} s after "
                f"{clock} ({now}): sign one that expires sooner",
                field="validBefore",
                value=valid_before,
                accepted=f"at most {now + self.most} ({self.most:,} s from now)",
            )
        return None


def span_refusal(
    what: str, valid_after: int, valid_before: int, *, most: int, contract: str
) -> ApiError | None:
    """The refusal of a window (validBefore - validAfter) longer than the `contract` takes."""
    if valid_before - valid_after <= most:
        return None
    return Unprocessable(
        "authorization_window_too_long",
        f"the {what}'s window from validAfter {valid_after} to validBefore {valid_before} is "
        f"longer than the {contract}'s {most} s",
        field="validAfter",
        value=valid_after,
        accepted=f"at least {valid_before - most} for this validBefore",
    )
