"""A chain node that is down is a 503, not a 500: in the API's error shape, with Retry-After.

Nothing is marked failed because the node did not answer: the routes that reached for it stop
before recording anything, and the workers leave their work for the next round.
"""

from __future__ import annotations

import logging

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from citypay.chain.rpc import RETRY_AFTER_SECONDS, ChainUnavailable
from citypay.core.errors import ApiError

log = logging.getLogger(__name__)


def chain_unavailable_response(error: Exception) -> JSONResponse:
    body = ApiError(
        "chain_unavailable",
        "the chain node does not answer; nothing was recorded: try again shortly",
        accepted=f"the same request again after {RETRY_AFTER_SECONDS} s",
    ).body()
    return JSONResponse(body, status_code=503, headers={"Retry-After": str(RETRY_AFTER_SECONDS)})


def install_unavailable_handler(app: FastAPI) -> None:
    async def unavailable(request: Request, error: Exception) -> JSONResponse:
        log.warning(
            "%s %s: the chain node does not answer: %s",
            request.method,
            request.url.path,
            error,
        )
        return chain_unavailable_response(error)

    app.add_exception_handler(ChainUnavailable, unavailable)
