"""HTTP requests by route and status, and how long each took to answer (a pure ASGI middleware:
it only wraps `send`, so streamed responses such as the POS feed pass through untouched)."""

from __future__ import annotations

import time

from prometheus_client import CollectorRegistry, Counter, Histogram
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from citypay.core.logs import request_scope

# A path no route matched is one label, not one per path a scanner tried.
UNMATCHED = "unmatched"


class HttpMetrics:
    def __init__(self, app: ASGIApp, registry: CollectorRegistry) -> None:
        self.app = app
        self.requests = Counter(
            "citypay_http_requests",
            "HTTP requests answered, by method, route template and status code.",
            ["method", "route", "status"],
            registry=registry,
        )
        self.latency = Histogram(
            "citypay_http_request_duration_seconds",
            "Seconds from a request's arrival to its response's first byte, by method and route.",
            ["method", "route"],
            registry=registry,
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        answered = False

        async def send_observed(message: Message) -> None:
            nonlocal answered
            if message["type"] == "http.response.start" and not answered:
                answered = True
                self._observe(scope, message["status"], started)
            await send(message)

        token = request_scope.set(scope)
        try:
            await self.app(scope, receive, send_observed)
        except Exception:
            if not answered:  # the server's error middleware answers 500 outside this one
                self._observe(scope, 500, started)
            raise
        finally:
            request_scope.reset(token)

    def _observe(self, scope: Scope, status: int, started: float) -> None:
        route = scope.get("route")
        template = getattr(route, "path", None) or UNMATCHED
        self.requests.labels(scope["method"], template, str(status)).inc()
        self.latency.labels(scope["method"], template).observe(time.perf_counter() - started)
