"""Charging (충전): the bank's signed deposit notification, and the deposits to pay back."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response
from fastapi.concurrency import run_in_threadpool
from pydantic import BaseModel, Field

from citypay.api.auth import PrincipalDep, allow
from citypay.api.deps import CityDep, PlatformDep
from citypay.api.openapi import API_KEY, BANK_SIGNATURE, BANK_TIMESTAMP, errors, security
from citypay.auth.models import Role
from citypay.charging import notifications
from citypay.charging.models import Deposit, DepositStatus
from citypay.core.fields import UtcDateTime, count

router = APIRouter(tags=["charging"])

DepositLimit = count(1, 1000, "how many, oldest first")


class DepositPublic(BaseModel):
    city: str
    bank: str
    depositId: str
    resident: str
    amount: int
    reference: str
    status: DepositStatus
    incentive: int | None
    txHash: str | None
    blockNumber: int | None
    # Why the chain refused the charge: the amount is to be returned to the resident.
    refusal: str | None
    final: bool = Field(
        description="refused, or issued in a block at or below the chain's head less "
        "CHAIN_CONFIRMATIONS: the status will not change"
    )
    createdAt: UtcDateTime

    @classmethod
    def of(cls, deposit: Deposit, final_up_to: int) -> DepositPublic:
        return cls(
            city=deposit.city,
            bank=deposit.bank,
            depositId=deposit.deposit_id,
            resident=deposit.resident,
            amount=deposit.amount,
            reference=deposit.reference,
            status=deposit.status,
            incentive=deposit.incentive,
            txHash=deposit.tx_hash,
            blockNumber=deposit.block_number,
            refusal=deposit.refusal,
            final=deposit.status is DepositStatus.REFUSED
            or (deposit.block_number is not None and deposit.block_number <= final_up_to),
            createdAt=deposit.created_at,
        )


@router.post(
    "/v1/cities/{city}/deposits",
    response_model=DepositPublic,
    responses={
        202: {"model": DepositPublic, "description": "recorded; issuance is pending, retried"}
    }
    | errors(409),
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {
                "application/json": {"schema": notifications.DepositNotice.model_json_schema()}
            },
        }
    }
    | security([API_KEY, BANK_SIGNATURE, BANK_TIMESTAMP]),
)
async def notify_deposit(
    city: CityDep, request: Request, response: Response, platform: PlatformDep, bank: PrincipalDep
):
    """A bank's deposit notification, signed with the webhook secret (see charging.notifications):
    200 with the deposit, issued or refused (to be returned); 202 while issuance is pending. The
    same deposit posted again answers the same."""
    allow(bank, city=city.code, roles={Role.BANK})
    body = await request.body()
    notifications.verify(
        platform.settings.BANK_WEBHOOK_SECRET.get_secret_value(),
        request.headers.get(notifications.TIMESTAMP_HEADER),
        request.headers.get(notifications.SIGNATURE_HEADER),
        body,
        tolerance=platform.settings.DEPOSIT_TIMESTAMP_TOLERANCE,
    )
    notice = notifications.parse(body)
    deposit = await run_in_threadpool(platform.charging.charge, city, bank, notice)
    if deposit.status is DepositStatus.PENDING:
        response.status_code = 202
    return DepositPublic.of(deposit, platform.finality.final_up_to())


@router.get(
    "/v1/cities/{city}/deposits",
    response_model=list[DepositPublic],
    openapi_extra=security([API_KEY]),
)
def list_deposits(
    city: CityDep,
    platform: PlatformDep,
    principal: PrincipalDep,
    status: DepositStatus | None = None,
    limit: DepositLimit = 100,
):
    """The city's deposits, oldest first; `status=refused` lists the KRW to return. A bank sees
    the deposits it notified; the city's operators see every bank's."""
    allow(principal, city=city.code, roles={Role.BANK, Role.OPERATOR})
    bank = principal.name if principal.role is Role.BANK else None
    deposits = platform.charging.deposits(city.code, status, limit, bank=bank)
    final_up_to = platform.finality.final_up_to()
    return [DepositPublic.of(deposit, final_up_to) for deposit in deposits]
