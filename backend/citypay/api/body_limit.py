"""A ceiling on request bodies (MAX_REQUEST_BODY_BYTES): every body the API takes is a small JSON
object, so a larger one is refused with 413 before it is read into memory or parsed. A program's
recipient list (POST .../programs/{code}/payouts, CSV) is the one large body: it has a ceiling of
its own (LARGE_BODIES)."""

from __future__ import annotations

import re

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from citypay.core.errors import ApiError, PassedThrough

# (path, ceiling in bytes) of the routes that take a larger body: 100,000 recipients of a program
# payout are about 5 MB.
LARGE_BODIES = ((re.compile(r"^/v1/cities/[^/]+/programs/[^/]+/payouts$"), 8 * 1024 * 1024),)


def limit_for(path: str, default: int) -> int:
    return next((ceiling for route, ceiling in LARGE_BODIES if route.match(path)), default)


def too_large(limit: int) -> ApiError:
    return ApiError(
        "request_too_large",
        f"the request body is larger than {limit:,} bytes",
        accepted=f"a body of at most {limit:,} bytes",
        status_code=413,
    )


class BodySizeLimit:
    """Refuses a body whose Content-Length is over the limit at once; one sent without a length
    (chunked) is counted as it is read, and refused as soon as it passes the limit."""

    def __init__(self, app: ASGIApp, limit: int) -> None:
        self.app = app
        self.limit = limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = limit_for(scope["path"], self.limit)
        declared = dict(scope["headers"]).get(b"content-length")
        if declared is not None and (not declared.isdigit() or int(declared) > limit):
            refused = too_large(limit)
            await refused.response()(scope, receive, send)
            return
        received = 0

        async def counted() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:  # raised inside the route's read of the body
                    raise PassedThrough(too_large(limit))
            return message

        await self.app(scope, counted, send)
