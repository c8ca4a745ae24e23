"""Gasless payments: a payer-signed EIP-3009 authorization in, its status out."""

from __future__ import annotations

from fastapi import APIRouter, HTTPException, Request, Response
from fastapi.routing import APIRoute
from pydantic import ConfigDict, Field, ValidationError
from sse_starlette import ServerSentEvent
from sse_starlette.sse import EventSourceResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from citypay.api.auth import PrincipalDep, allow
from citypay.api.deps import CityDep, PlatformDep, get_city, get_platform
from citypay.api.openapi import errors, media
from citypay.api.relayed import RelayedPublic, SignatureIn
from citypay.api.state import Platform
from citypay.auth.models import Role
from citypay.authorization import SignedAuthorization
from citypay.chain.deployment import City
from citypay.core.fields import Address, Amount, Hex32, RowId, UnixTime
from citypay.payments.models import Payment

router = APIRouter(tags=["payments"])


class AuthorizationIn(SignatureIn):
    """A TransferWithAuthorization as the wallet signed it: v, r, s or a 65-byte signature."""

    model_config = ConfigDict(populate_by_name=True, extra="forbid")

    from_: Address = Field(alias="from")  # the payer
    to: Address  # the merchant
    value: Amount
    validAfter: UnixTime
    validBefore: UnixTime = Field(
        description="unix seconds (a uint256 in the signed message); the relay takes an "
        "authorization valid for at least RELAY_MIN_VALIDITY (30 s) and at most "
        "RELAY_MAX_VALIDITY (1 day) from now, and refuses any other with 422"
    )
    nonce: Hex32

    def signed(self) -> SignedAuthorization:
        v, r, s = self.vrs()
        return SignedAuthorization(
            from_=self.from_,
            to=self.to,
            value=self.value,
            valid_after=self.validAfter,
            valid_before=self.validBefore,
            nonce=bytes.fromhex(self.nonce[2:]),
            v=v,
            r=r,
            s=s,
        )


class PaymentPublic(RelayedPublic):
    id: int
    city: str
    payer: str
    merchant: str
    value: int
    nonce: str
    invoiceId: str | None

    @classmethod
    def of(cls, payment: Payment, final_up_to: int) -> PaymentPublic:
        return cls(
            id=payment.id,
            city=payment.city,
            payer=payment.payer,
            merchant=payment.merchant,
            value=payment.value,
            nonce=payment.nonce,
            invoiceId=payment.invoice_id,
            **cls.progress(payment, final_up_to),
        )


class _PaymentRoute(APIRoute):
    """The payment route, the one request that comes by the thousand a second: a well-formed
    JSON body is read straight into AuthorizationIn and relayed, without FastAPI's dependency
    solving and response validation (together about a sixth of a busy replica's time in
    make bench-relay's profile). Anything else (another media type, a body the model refuses)
    goes the documented way, so every refusal is FastAPI's own."""

    def get_route_handler(self):
        documented_way = super().get_route_handler()

        async def handler(request: Request) -> Response:
            content_type = request.headers.get("content-type", "")
            if content_type.split(";")[0].strip().lower() == "application/json":
                try:
                    raw = await request.body()
                except StarletteHTTPException:
                    raise  # the body's size limit (api/body_limit.py)
                except Exception as failure:  # the client gone mid-body: as FastAPI answers it
                    raise HTTPException(400, "There was an error parsing the body") from failure
                try:
                    body = AuthorizationIn.model_validate_json(raw)
                except ValidationError:
                    pass
                else:
                    platform = await get_platform(request)
                    city = await get_city(request.path_params["city"], platform)
                    return await _relay(city, body, platform)
            return await documented_way(request)

        return handler


async def relay_payment(city: CityDep, body: AuthorizationIn, platform: PlatformDep):
    """Checks the authorization against the chain and queues it for the relayer. Posting the
    same authorization again returns the same payment (200). Async: the request waits for the
    acceptor's group without holding a thread of the pool. 429 with Retry-After when the payer's
    wallet signs more than RATE_LIMIT_PER_WALLET, or PAYMENT_INTAKE_LIMIT payments wait for the
    relayer."""
    return await _relay(city, body, platform)


router.add_api_route(
    "/v1/cities/{city}/payments",
    relay_payment,
    methods=["POST"],
    status_code=202,
    response_model=PaymentPublic,
    responses={200: {"model": PaymentPublic, "description": "posted before: the same payment"}}
    | errors(409, 410),
    route_class_override=_PaymentRoute,
)


async def _relay(city: City, body: AuthorizationIn, platform: Platform) -> Response:
    refused = platform.intake.refusal()
    if refused is not None:
        raise refused
    payment, created = await platform.payments.accept(city, body.signed())
    if created and platform.relayer is not None:
        platform.relayer.wake()
    return Response(
        PaymentPublic.of(payment, platform.finality.final_up_to()).model_dump_json(),
        status_code=202 if created else 200,
        media_type="application/json",
    )


_READERS = frozenset({Role.OPERATOR, Role.AUDITOR, Role.POS})


@router.get("/v1/payments/{payment_id}", response_model=PaymentPublic)
def get_payment(payment_id: RowId, platform: PlatformDep, principal: PrincipalDep):
    """For the payer, the merchant, and the city's operators, auditors and tills."""
    payment = platform.payments.get(payment_id)
    allow(principal, city=payment.city, roles=_READERS, wallets=(payment.payer, payment.merchant))
    return PaymentPublic.of(payment, platform.finality.final_up_to())


@router.get("/v1/cities/{city}/payments/{payer}/{nonce}", response_model=PaymentPublic)
def get_payment_by_authorization(
    city: CityDep, payer: Address, nonce: Hex32, platform: PlatformDep
):
    """Public: whoever holds the signed authorization (payer, merchant, relayer) knows its payer
    and its 256-bit nonce, and once settled both are on chain anyway."""
    return PaymentPublic.of(
        platform.payments.find(city, payer, nonce), platform.finality.final_up_to()
    )


@router.get(
    "/v1/cities/{city}/merchants/{merchant}/payments/events",
    response_class=EventSourceResponse,
    responses={200: {"content": media("text/event-stream"), "description": "payment events"}},
)
async def merchant_payment_events(
    city: CityDep, merchant: Address, platform: PlatformDep, principal: PrincipalDep
):
    """Server-sent events for a POS: each change of a payment to this merchant, as it happens
    (its latest payments first). For the merchant's wallet and the city's operators and tills."""
    allow(principal, city=city.code, roles={Role.OPERATOR, Role.POS}, wallets=(merchant,))

    async def changes():
        # The changes of one poll in one write: a write per event cost a busy replica more
        # than the events themselves (make bench-relay).
        async for payments in platform.payments.feed.changes(city.code, merchant):
            final_up_to = platform.finality.final_up_to()
            yield b"".join(
                ServerSentEvent(
                    event="payment", data=PaymentPublic.of(payment, final_up_to).model_dump_json()
                ).encode()
                for payment in payments
            )

    return EventSourceResponse(changes())
