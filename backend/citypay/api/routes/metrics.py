"""GET /metrics: the platform's Prometheus metrics, in the text exposition format."""

from __future__ import annotations

import hmac

from fastapi import APIRouter, Request, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from citypay.api.deps import PlatformDep
from citypay.auth.credentials import Unauthorized

router = APIRouter(tags=["operations"])


@router.get("/metrics", include_in_schema=False)
def metrics(request: Request, platform: PlatformDep) -> Response:
    token = platform.settings.METRICS_TOKEN
    if token is not None:
        header = request.headers.get("authorization", "")
        scheme, _, given = header.partition(" ")
        if scheme.lower() != "bearer" or not hmac.compare_digest(
            given.strip().encode(), token.get_secret_value().encode()
        ):
            raise Unauthorized(
                "missing_credentials" if not header else "invalid_metrics_token",
                "GET /metrics needs the metrics token this backend was given (METRICS_TOKEN)",
                field="Authorization",
                value=f"{scheme} ***" if header else None,  # the scheme, never the secret
                accepted="'Bearer <METRICS_TOKEN>'",
            )
    return Response(generate_latest(request.app.state.metrics), media_type=CONTENT_TYPE_LATEST)
