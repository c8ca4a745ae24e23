"""Surge control: a sale-day rush slows people down instead of breaking anyone.

- Rate limits (the `limits` library, sliding windows): per API key or wallet session, per client
  address, and per paying wallet for payments. Over a limit, the request is refused alone with
  429 in the API's error shape and a Retry-After of the seconds until the window lets it through;
  nothing of it was done, so sending it again then is safe. The limits are RATE_LIMIT_* settings
  in the `limits` notation ("50/second;1000/minute"; empty: no limit); RATE_LIMIT_STORAGE keeps
  the counters in this process ("memory://", per replica) or in Redis ("redis://host:6379"),
  shared by every replica.
- A bounded intake: when PAYMENT_INTAKE_LIMIT payments wait for the relayer (accepted, not yet
  sent), a new payment is refused with 429 and Retry-After until the relayer catches up, rather
  than queued past what it can send before the authorizations expire.
- The bank's deposit notifications are never rate limited: each is recorded once and must not
  wait, and the bank retries what it does not see accepted. Nor are the health and metrics
  endpoints, which the load balancer and Prometheus poll.
"""

from __future__ import annotations

import hashlib
import math
import re
import threading
import time
from collections.abc import Callable

from limits import RateLimitItem
from limits.storage import storage_from_string
from limits.strategies import SlidingWindowCounterRateLimiter
from starlette.types import ASGIApp, Receive, Scope, Send

from citypay.core.config import parse_limits
from citypay.core.errors import ApiError

# Polled by load balancers and Prometheus; the bank's notifications (see the module's text).
_POLLED = re.compile(r"^/(health|ready|metrics)(/|$)")
_BANK_NOTIFICATIONS = re.compile(r"^/v1/cities/[^/]+/deposits$")


def exempt(method: str, path: str) -> bool:
    """Whether a request (or an OpenAPI operation: its path template) is never rate limited."""
    return _POLLED.match(path) is not None or (
        method == "POST" and _BANK_NOTIFICATIONS.match(path) is not None
    )


def _described(limits: list[RateLimitItem]) -> str:
    return " and ".join(
        f"{item.amount} per {item.multiples if item.multiples > 1 else ''}"
        f"{' ' if item.multiples > 1 else ''}{item.GRANULARITY.name}"
        f"{'s' if item.multiples > 1 else ''}"
        for item in limits
    )


class RateLimits:
    def __init__(
        self,
        *,
        per_key: str,
        per_address: str,
        per_wallet: str,
        storage: str = "memory://",
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.per_key = parse_limits(per_key, "RATE_LIMIT_PER_KEY")
        self.per_address = parse_limits(per_address, "RATE_LIMIT_PER_ADDRESS")
        self.per_wallet = parse_limits(per_wallet, "RATE_LIMIT_PER_WALLET")
        self._limiter = SlidingWindowCounterRateLimiter(storage_from_string(storage))
        self._clock = clock

    def refusal(
        self, limits: list[RateLimitItem], scope: str, identity: str, who: str
    ) -> ApiError | None:
        """Counts one request of `identity` against `limits`; the 429 to answer when one of them
        is spent (nothing is counted then)."""
        if not limits:
            return None
        limiter = self._limiter
        spent = [item for item in limits if not limiter.test(item, scope, identity)]
        if not spent:
            for item in limits:
                limiter.hit(item, scope, identity)
            return None
        now = self._clock()
        wait = max(limiter.get_window_stats(item, scope, identity).reset_time for item in spent)
        retry_after = max(1, math.ceil(wait - now))
        return ApiError(
            "rate_limited",
            f"too many requests from {who}: the limit is {_described(spent)}",
            accepted=f"the same request again after {retry_after} s (Retry-After)",
            status_code=429,
            headers={"Retry-After": str(retry_after)},
        )

    def wallet_refusal(self, wallet: str) -> ApiError | None:
        return self.refusal(self.per_wallet, "wallet", wallet.lower(), f"wallet {wallet}")


class RateLimitMiddleware:
    """The per-key and per-address limits, before anything of the request is read."""

    def __init__(self, app: ASGIApp, limits: RateLimits) -> None:
        self.app = app
        self.limits = limits

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or exempt(scope["method"], scope["path"]):
            await self.app(scope, receive, send)
            return
        limits = self.limits
        client = scope.get("client")
        address = client[0] if client else "unknown"
        refused = limits.refusal(limits.per_address, "address", address, f"address {address}")
        if refused is None:
            token = _bearer(scope)
            if token is not None:
                # The token's digest names it: the counters (in Redis too) never hold a secret.
                digest = hashlib.blake2b(token, digest_size=16).hexdigest()
                refused = limits.refusal(limits.per_key, "key", digest, "this API key or session")
        if refused is not None:
            await refused.response()(scope, receive, send)
            return
        await self.app(scope, receive, send)


def _bearer(scope: Scope) -> bytes | None:
    for name, value in scope["headers"]:
        if name == b"authorization" and value[:7].lower() == b"bearer ":
            return value[7:].strip() or None
    return None


class PaymentIntake:
    """How many payments wait for the relayer, counted at most every `every` seconds: the
    refusal to answer when PAYMENT_INTAKE_LIMIT of them wait."""

    def __init__(self, count: Callable[[], int], limit: int, *, every: float = 0.5) -> None:
        self._count = count
        self.limit = limit
        self._every = every
        self._lock = threading.Lock()
        self._counted_at = -math.inf
        self._waiting = 0

    def refusal(self) -> ApiError | None:
        if not self.limit:
            return None
        with self._lock:
            now = time.monotonic()
            if now - self._counted_at >= self._every:
                self._waiting, self._counted_at = self._count(), now
            waiting = self._waiting
        if waiting < self.limit:
            return None
        return ApiError(
            "intake_full",
            f"{waiting:,} payments wait for the relayer, the most it queues "
            f"(PAYMENT_INTAKE_LIMIT {self.limit:,}): nothing was recorded",
            accepted="the same payment again after Retry-After seconds",
            status_code=429,
            headers={"Retry-After": "2"},
        )
