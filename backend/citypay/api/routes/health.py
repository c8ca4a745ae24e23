"""Liveness and readiness for load balancers and operators.

`/health`: the chain the backend serves, 503 while its node does not answer, so a balancer sends
no payment to a backend that cannot check it. `/ready`: the same and the database too: a replica
that cannot reach the database can record nothing, so it is taken out of the balancer's pool.
Both say whether this replica runs the sending duties or stands by (api/replica.py).
"""

from __future__ import annotations

from typing import Literal

from fastapi import APIRouter
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field
from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError

from citypay.api.deps import PlatformDep
from citypay.api.state import Platform
from citypay.chain.rpc import RETRY_AFTER_SECONDS, ChainUnavailable

router = APIRouter(tags=["health"])


class ServiceState(BaseModel):
    """What /health and /ready answer, 200 or 503 alike."""

    status: Literal["ok", "ready", "chain_unavailable", "database_unavailable"]
    chainId: int
    cities: list[str]
    duties: Literal["active", "standby"] = Field(
        description="whether this replica sends and follows the chain or stands by for it"
    )
    block: int | None = Field(default=None, description="the chain's newest block (200 only)")
    chain: str | None = Field(default=None, description="why the chain node does not answer")
    database: str | None = Field(default=None, description="why the database does not answer")


def _unanswered(what: str) -> dict:
    return {
        503: {
            "model": ServiceState,
            "description": f"{what} does not answer: take this replica out of the pool",
            "headers": {
                "Retry-After": {
                    "description": "seconds to wait before asking again",
                    "schema": {"type": "integer"},
                }
            },
        }
    }


def _state(platform: Platform) -> dict:
    return {
        "chainId": platform.deployment.chain_id,
        "cities": sorted(platform.deployment.cities),
        "duties": platform.replica.role if platform.replica is not None else "standby",
    }


def _unavailable(body: dict) -> JSONResponse:
    return JSONResponse(body, status_code=503, headers={"Retry-After": str(RETRY_AFTER_SECONDS)})


def _with_chain(platform: Platform, base: dict, status: str):
    """`base` with the chain's newest block under `status`, or the 503 if its node is down."""
    try:
        block = platform.gateway.block_number()
    except ChainUnavailable as unreachable:
        return _unavailable(base | {"status": "chain_unavailable", "chain": str(unreachable)})
    return base | {"status": status, "block": block}


@router.get(
    "/health",
    response_model=ServiceState,
    response_model_exclude_none=True,
    responses=_unanswered("the chain node"),
)
def health(platform: PlatformDep):
    return _with_chain(platform, _state(platform), "ok")


@router.get(
    "/ready",
    response_model=ServiceState,
    response_model_exclude_none=True,
    responses=_unanswered("the chain node or the database"),
)
def ready(platform: PlatformDep):
    base = _state(platform)
    try:
        with platform.db.engine.connect() as connection:
            connection.execute(text("SELECT 1"))
    except SQLAlchemyError as unreachable:
        # The error's kind only: its text names the database's host, and /ready is public.
        cause = type(getattr(unreachable, "orig", None) or unreachable).__name__
        return _unavailable(
            base | {"status": "database_unavailable", "database": f"no answer ({cause})"}
        )
    return _with_chain(platform, base, "ready")
