"""The auditor's read-only API: the same books, checks and errors over HTTP (GET only).

Each request first folds the blocks mined since the last one, so answers are as of the head
(less the confirmations) and cost only the new events.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

from fastapi import FastAPI

from citypay.api.deps import path_address
from citypay.audit.invariants import check
from citypay.audit.report import city_report, merchant_report
from citypay.audit.source import AuditError, ChainSource, cannot_audit
from citypay.core.errors import ApiError, NotFound, install_error_handlers
from citypay.ledger import CityBooks


class NodeUnavailable(ApiError):
    status_code = 503


def create_audit_app(source: ChainSource) -> FastAPI:
    app = FastAPI(title="CityPay auditor", description="Read-only: every figure from the chain.")
    install_error_handlers(app)
    lock = threading.Lock()

    def answer(code: str | None, build: Callable[[CityBooks | None], dict]) -> dict[str, Any]:
        """`build`'s answer from the books caught up to the head; one request at a time, so no
        answer reads books another request is folding into."""
        with lock:
            try:
                source.catch_up()
                if code is not None and code not in source.cities:
                    raise NotFound(
                        "unknown_city",
                        f"the directory lists no city '{code}'",
                        field="code",
                        value=code,
                        accepted=", ".join(sorted(source.cities)),
                    )
                books = source.books.city(code) if code is not None else None
                return {"block": source.scanned_to} | build(books)
            except Exception as error:
                # The node, its history or the contracts (a check reads their views too): 503.
                reason = cannot_audit(error, source.rpc_url)
                if reason is None:
                    raise
                raise NodeUnavailable("node_unavailable", str(reason)) from None

    @app.get("/cities")
    def cities() -> dict[str, Any]:
        return answer(
            None,
            lambda _: {"cities": [source.books.city(c).summary() for c in sorted(source.cities)]},
        )

    @app.get("/cities/{code}/report")
    def report(code: str) -> dict[str, Any]:
        return answer(code, city_report)

    @app.get("/cities/{code}/merchants/{address}")
    def merchant(code: str, address: str) -> dict[str, Any]:
        wallet = path_address(address, "address")

        def build(books: CityBooks) -> dict[str, Any]:
            try:
                return merchant_report(books, wallet)
            except AuditError as error:
                raise NotFound(
                    "unknown_merchant", str(error), field="address", value=address
                ) from None

        return answer(code, build)

    @app.get("/cities/{code}/check")
    def city_check(code: str) -> dict[str, Any]:
        return answer(code, lambda _: {"violations": [v.as_dict() for v in check(source, code)]})

    return app
