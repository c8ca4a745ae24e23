"""QR codes: a merchant's static QR and dynamic invoices, as EIP-681 URIs, PNG and SVG."""

from __future__ import annotations

import os
from datetime import timedelta
from typing import Literal

from fastapi import APIRouter, Response
from pydantic import BaseModel

from citypay.api.auth import PrincipalDep, allow
from citypay.api.deps import CityDep, PlatformDep
from citypay.api.openapi import media
from citypay.auth.models import Role
from citypay.chain.enums import AccountKind
from citypay.core.errors import NotFound, Unprocessable
from citypay.core.fields import (
    Address,
    Hex32,
    RequestModel,
    SaleAmount,
    UtcDateTime,
    whole_number,
)
from citypay.db.models import utcnow
from citypay.payments.models import Invoice
from citypay.qr.eip681 import image, invoice_uri, static_uri

router = APIRouter(tags=["qr"])

Format = Literal["uri", "png", "svg"]
_MEDIA = {"png": "image/png", "svg": "image/svg+xml"}


class QrPublic(BaseModel):
    uri: str


InvoiceLifetime = whole_number(30, 86_400, "30 to 86,400 seconds", "seconds until it expires")


class InvoiceCreate(RequestModel):
    merchant: Address
    amount: SaleAmount
    expiresIn: InvoiceLifetime = 300


class InvoicePublic(BaseModel):
    invoiceId: str
    city: str
    merchant: str
    amount: int
    expiresAt: UtcDateTime
    uri: str


def _render(uri: str, format: Format):
    if format == "uri":
        return QrPublic(uri=uri)
    return Response(image(uri, format), media_type=_MEDIA[format])


def _require_active_merchant(city, merchant: str) -> None:
    token = city.chain.token
    kind, active = token.gateway.read_many(
        [(token, "accountKind", (merchant,)), (token, "isActive", (merchant,))]
    )
    if kind is not AccountKind.MERCHANT or not active:
        raise Unprocessable(
            "unknown_merchant",
            f"{merchant} is not an active merchant of {city.name}",
            field="merchant",
            value=merchant,
            accepted=f"an active merchant registered in {city.name}",
        )


@router.get(
    "/v1/cities/{city}/merchants/{merchant}/qr",
    response_model=None,
    responses={
        200: {
            "model": QrPublic,
            "content": media("image/png", "image/svg+xml"),
            "description": "format=uri: the URI as JSON; png or svg: the QR code's image",
        }
    },
)
def merchant_qr(city: CityDep, merchant: Address, platform: PlatformDep, format: Format = "uri"):
    """The merchant's static QR: any EIP-681 wallet pays it with a plain transfer."""
    _require_active_merchant(city, merchant)
    token = city.chain.token.address
    return _render(static_uri(token, platform.deployment.chain_id, merchant), format)


@router.post("/v1/cities/{city}/invoices", status_code=201, response_model=InvoicePublic)
def create_invoice(
    city: CityDep, body: InvoiceCreate, platform: PlatformDep, principal: PrincipalDep
):
    """A dynamic QR for one sale: the amount, an invoice id (the payment's nonce) and an expiry.
    For the merchant's wallet, and the city's operators and tills."""
    allow(principal, city=city.code, roles={Role.OPERATOR, Role.POS}, wallets=(body.merchant,))
    _require_active_merchant(city, body.merchant)
    invoice = Invoice(
        id="0x" + os.urandom(32).hex(),
        city=city.code,
        merchant=body.merchant,
        amount=body.amount,
        expires_at=utcnow() + timedelta(seconds=body.expiresIn),
    )
    with platform.db.session() as session:
        session.add(invoice)
    return _invoice_public(invoice, platform)


@router.get(
    "/v1/cities/{city}/invoices/{invoice_id}",
    response_model=None,
    responses={
        200: {
            "model": InvoicePublic,
            "content": media("image/png", "image/svg+xml"),
            "description": "format=json: the invoice; png or svg: its QR code's image",
        }
    },
)
def get_invoice(
    city: CityDep,
    invoice_id: Hex32,
    platform: PlatformDep,
    format: Literal["json", "png", "svg"] = "json",
):
    with platform.db.session() as session:
        invoice = session.get(Invoice, invoice_id.lower())
    if invoice is None or invoice.city != city.code:
        raise NotFound(
            "unknown_invoice",
            f"no invoice {invoice_id} in {city.name}",
            field="invoiceId",
            value=invoice_id,
        )
    public = _invoice_public(invoice, platform)
    if format == "json":
        return public
    return Response(image(public.uri, format), media_type=_MEDIA[format])


def _invoice_public(invoice: Invoice, platform) -> InvoicePublic:
    token = platform.deployment.city(invoice.city).token.address
    return InvoicePublic(
        invoiceId=invoice.id,
        city=invoice.city,
        merchant=invoice.merchant,
        amount=invoice.amount,
        expiresAt=invoice.expires_at,
        uri=invoice_uri(
            token, platform.deployment.chain_id, invoice.merchant, invoice.amount, invoice.id
        ),
    )
