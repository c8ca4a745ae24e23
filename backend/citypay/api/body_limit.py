"""A ceiling on request bodies (MAX_REQUEST_BODY_BYTES): every body the API takes is a small JSON
object, so a larger one is refused with 413 before it is read into memory or parsed."""

from __future__ import annotations

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from citypay.core.errors import ApiError, PassedThrough


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
        declared = dict(scope["headers"]).get(b"content-length")
        if declared is not None and (not declared.isdigit() or int(declared) > self.limit):
            refused = too_large(self.limit)
            await refused.response()(scope, receive, send)
            return
        received = 0

        async def counted() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.limit:  # raised inside the route's read of the body
                    raise PassedThrough(too_large(self.limit))
            return message

        await self.app(scope, counted, send)
