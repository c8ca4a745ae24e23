"""Liveness and the chain the backend serves: 503 while the chain node does not answer, so a
load balancer sends no payment to a backend that cannot check it."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import JSONResponse

from citypay.api.deps import PlatformDep
from citypay.chain.rpc import RETRY_AFTER_SECONDS, ChainUnavailable

router = APIRouter(tags=["health"])


@router.get(
    "/health",
    responses={503: {"description": "the chain node does not answer"}},
)
def health(platform: PlatformDep):
    base = {"chainId": platform.deployment.chain_id, "cities": sorted(platform.deployment.cities)}
    try:
        block = platform.gateway.block_number()
    except ChainUnavailable as unreachable:
        return JSONResponse(
            base | {"status": "chain_unavailable", "chain": str(unreachable)},
            status_code=503,
            headers={"Retry-After": str(RETRY_AFTER_SECONDS)},
        )
    return base | {"status": "ok", "block": block}
