"""The auditor's read-only API: the same books, checks and errors over HTTP (GET only).

Each request first folds the blocks mined since the last one, so answers are as of the head
(less the confirmations) and cost only the new events.
"""

from __future__ import annotations

import threading
from typing import Any

from fastapi import FastAPI

from citypay.api.deps import path_address
from citypay.audit.invariants import check
from citypay.audit.report import city_report, merchant_report
from citypay.audit.source import AuditError, ChainSource
from citypay.core.errors import ApiError, NotFound, install_error_handlers


class NodeUnavailable(ApiError):
    status_code = 503


def create_audit_app(source: ChainSource) -> FastAPI:
    app = FastAPI(title="CityPay auditor", description="Read-only: every figure from the chain.")
    install_error_handlers(app)
    lock = threading.Lock()

    def current(code: str | None = None) -> ChainSource:
        with lock:
            try:
                source.catch_up()
            except AuditError as error:
                raise NodeUnavailable("node_unavailable", str(error)) from None
            except OSError as error:  # the node went away between two requests
                raise NodeUnavailable(
                    "node_unavailable", f"the node did not answer: {error}"
                ) from None
        if code is not None and code not in source.cities:
            raise NotFound(
                "unknown_city",
                f"the directory lists no city '{code}'",
                field="code",
                value=code,
                accepted=", ".join(sorted(source.cities)),
            )
        return source

    @app.get("/cities")
    def cities() -> dict[str, Any]:
        audited = current()
        return {
            "block": audited.scanned_to,
            "cities": [audited.books.city(code).summary() for code in sorted(audited.cities)],
        }

    @app.get("/cities/{code}/report")
    def report(code: str) -> dict[str, Any]:
        audited = current(code)
        return {"block": audited.scanned_to} | city_report(audited.books.city(code))

    @app.get("/cities/{code}/merchants/{address}")
    def merchant(code: str, address: str) -> dict[str, Any]:
        wallet = path_address(address, "address")
        audited = current(code)
        try:
            return {"block": audited.scanned_to} | merchant_report(audited.books.city(code), wallet)
        except AuditError as error:
            raise NotFound("unknown_merchant", str(error), field="address", value=address) from None

    @app.get("/cities/{code}/check")
    def city_check(code: str) -> dict[str, Any]:
        audited = current(code)
        with lock:
            violations = check(audited, code)
        return {"block": audited.scanned_to, "violations": [v.as_dict() for v in violations]}

    return app
