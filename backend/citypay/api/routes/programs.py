"""Policy programs' payouts for the city's operators: post a recipient list (CSV), follow its
progress, read each recipient's result. The list is checked whole before anything is recorded;
the active replica's worker pays it (programs/jobs.py), exactly once per recipient."""

from __future__ import annotations

import csv
import io
from typing import Annotated

from fastapi import APIRouter, Path, Request, Response
from fastapi.concurrency import run_in_threadpool
from pydantic import BaseModel, Field

from citypay.admin.export import BOM
from citypay.api.auth import PrincipalDep, allow
from citypay.api.deps import CityDep, PlatformDep
from citypay.api.openapi import errors, media
from citypay.auth.models import Role
from citypay.core.errors import ApiError
from citypay.core.fields import RowId, UtcDateTime
from citypay.programs.models import ProgramPayout

router = APIRouter(tags=["programs"])

_READERS = frozenset({Role.OPERATOR, Role.AUDITOR})
ProgramCode = Annotated[
    str,
    Path(
        min_length=1,
        max_length=32,
        pattern=r"^[\x21-\x7e]{1,32}$",
        description="the program's code, e.g. YOUTH-2026H1 (printable ASCII, up to 32 bytes)",
    ),
]


class UnsupportedMedia(ApiError):
    status_code = 415


class PayoutPublic(BaseModel):
    id: int
    city: str
    program: int
    code: str
    status: str = Field(description="pending, running, done or stopped (see error)")
    total: int = Field(description="recipients in the list")
    settled: int = Field(description="recipients the chain has answered for")
    paid: int
    alreadyPaid: int = Field(description="paid before this payout (by an earlier list or run)")
    refused: int = Field(description="refused by the chain: each one's reason in the results")
    error: str | None
    requestedBy: str
    createdAt: UtcDateTime


def _public(platform, job: ProgramPayout) -> PayoutPublic:
    counts = platform.payouts.counts(job.id)
    return PayoutPublic(
        id=job.id,
        city=job.city,
        program=job.program,
        code=job.code,
        status=job.status.value,
        total=job.total,
        settled=job.settled,
        paid=counts["paid"],
        alreadyPaid=counts["already_paid"],
        refused=counts["refused"],
        error=job.error,
        requestedBy=job.requested_by,
        createdAt=job.created_at,
    )


@router.post(
    "/v1/cities/{city}/programs/{code}/payouts",
    status_code=202,
    response_model=PayoutPublic,
    responses=errors(409, 415),
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {
                "text/csv": {
                    "schema": {
                        "type": "string",
                        "description": "a header `wallet,amount`, then one recipient a line: an "
                        "address (EIP-55 when in mixed case) and a whole number of KRW up to the "
                        "program's most per recipient; each wallet once; UTF-8 (a BOM is fine)",
                    }
                }
            },
        }
    },
)
async def post_payout(
    city: CityDep, code: ProgramCode, request: Request, platform: PlatformDep, who: PrincipalDep
):
    """An operator's payout of a program to a recipient list: 202 once recorded; the backend
    pays it in batches, each recipient once whatever the number of lists or restarts."""
    allow(who, city=city.code, roles={Role.OPERATOR})
    media_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if media_type != "text/csv":
        raise UnsupportedMedia(
            "unsupported_media_type",
            f"the list is {media_type or 'untyped'}",
            field="content-type",
            value=media_type,
            accepted="text/csv",
        )
    body = await request.body()
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        raise UnsupportedMedia(
            "not_utf8", "the list is not UTF-8", field="body", accepted="text/csv in UTF-8"
        ) from None
    job = await run_in_threadpool(platform.payouts.submit, city, code, text, who.name)
    if platform.payouts_worker is not None:
        platform.payouts_worker.wake()
    return _public(platform, job)


@router.get("/v1/cities/{city}/programs/{code}/payouts/{payout}", response_model=PayoutPublic)
def get_payout(
    city: CityDep, code: ProgramCode, payout: RowId, platform: PlatformDep, who: PrincipalDep
):
    """A payout's progress: how many recipients the chain answered for, and how."""
    allow(who, city=city.code, roles=_READERS)
    return _public(platform, platform.payouts.get(city, code, payout))


@router.get(
    "/v1/cities/{city}/programs/{code}/payouts/{payout}/results",
    response_class=Response,
    responses={200: {"content": media("text/csv"), "description": "one row a recipient"}},
)
def payout_results(
    city: CityDep, code: ProgramCode, payout: RowId, platform: PlatformDep, who: PrincipalDep
):
    """Each recipient's result as CSV (UTF-8 with a BOM, which Excel opens): line, wallet,
    amount, status (pending, paid, already_paid, refused), the contract's reason, transaction
    and block."""
    allow(who, city=city.code, roles=_READERS)
    job = platform.payouts.get(city, code, payout)
    out = io.StringIO()
    out.write(BOM)
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(("line", "wallet", "amount", "status", "reason", "tx_hash", "block"))
    for r in platform.payouts.results(job.id):
        writer.writerow(
            (
                r.line,
                r.wallet,
                r.amount,
                r.status,
                r.reason or "",
                r.tx_hash or "",
                r.block_number or "",
            )
        )
    return Response(out.getvalue(), media_type="text/csv; charset=utf-8")
