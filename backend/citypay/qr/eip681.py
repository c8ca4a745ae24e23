"""EIP-681 payment URIs for a city token: a merchant's static QR and an invoice's dynamic QR."""

from __future__ import annotations

import io
import re
from dataclasses import dataclass
from urllib.parse import parse_qs

import segno
from eth_utils import to_checksum_address


def static_uri(token: str, chain_id: int, merchant: str) -> str:
    """A plain ERC-20 transfer to the merchant with no amount: the wallet asks the payer for it."""
    return f"ethereum:{token}@{chain_id}/transfer?address={merchant}"


def invoice_uri(token: str, chain_id: int, merchant: str, amount: int, invoice_id: str) -> str:
    """CityToken.pay(merchant, amount, invoiceId); a gasless wallet signs an EIP-3009
    authorization with the invoice id as its nonce instead."""
    return (
        f"ethereum:{token}@{chain_id}/pay?address={merchant}&uint256={amount}&bytes32={invoice_id}"
    )


@dataclass(frozen=True)
class PaymentRequest:
    token: str
    chain_id: int
    function: str
    merchant: str
    amount: int | None
    invoice_id: str | None


_URI = re.compile(r"^ethereum:(?:pay-)?(0x[0-9a-fA-F]{40})@(\d+)/(\w+)\?(.*)$")


def parse(uri: str) -> PaymentRequest:
    """Parses the URIs above; raises ValueError naming what is wrong."""
    match = _URI.match(uri)
    if match is None:
        raise ValueError(f"not an EIP-681 token call with a chain id: {uri!r}")
    token, chain_id, function, query = match.groups()
    params = {key: values[0] for key, values in parse_qs(query).items()}
    if function not in ("transfer", "pay"):
        raise ValueError(f"unsupported function {function!r}: expected transfer or pay")
    if "address" not in params:
        raise ValueError(f"the URI names no merchant address: {uri!r}")
    amount = params.get("uint256")
    return PaymentRequest(
        token=to_checksum_address(token),
        chain_id=int(chain_id),
        function=function,
        merchant=to_checksum_address(params["address"]),
        amount=int(float(amount)) if amount is not None else None,
        invoice_id=params.get("bytes32"),
    )


def image(uri: str, kind: str) -> bytes:
    """The QR code of `uri` as PNG or SVG bytes."""
    qr = segno.make(uri, error="m")
    buffer = io.BytesIO()
    qr.save(buffer, kind=kind, scale=6, border=4)
    return buffer.getvalue()
