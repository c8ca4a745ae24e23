"""Liveness and the chain the backend serves."""

from __future__ import annotations

from fastapi import APIRouter

from citypay.api.deps import PlatformDep

router = APIRouter(tags=["health"])


@router.get("/health")
def health(platform: PlatformDep) -> dict:
    return {
        "status": "ok",
        "chainId": platform.deployment.chain_id,
        "block": platform.w3.eth.block_number,
        "cities": sorted(platform.deployment.cities),
    }
