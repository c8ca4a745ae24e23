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
# EIP-681's number: digits, an optional fraction, an optional exponent ("1.5e3" is 1500).
_NUMBER = re.compile(r"^([0-9]+)(?:\.([0-9]+))?(?:[eE]([0-9]+))?$")
UINT256_MAX = 2**256 - 1


def exact_amount(text: str) -> int:
    """An EIP-681 number as the exact whole number it must be for a uint256: scientific notation
    that names an integer (1.5e3) is that integer; a fraction (1.5005e3 is 1500.5), a sign or a
    value past 2**256-1 is refused (ValueError), never rounded."""
    match = _NUMBER.fullmatch(text)
    if match is None:
        raise ValueError(f"the amount {text!r} is not an EIP-681 number such as 1500 or 1.5e3")
    whole, fraction, exponent = match.group(1), match.group(2) or "", int(match.group(3) or 0)
    if exponent > 78:  # 2**256 has 78 digits: larger is out of range, and 10**exponent is costly
        raise ValueError(f"the amount {text!r} is larger than a uint256 holds")
    digits, scale = whole + fraction, exponent - len(fraction)
    if scale < 0:
        digits, dropped = digits[:scale], digits[scale:]
        if dropped.strip("0"):
            raise ValueError(
                f"the amount {text!r} is not a whole number of KRW: refusing to round it"
            )
    amount = int(digits or "0") * 10 ** max(scale, 0)
    if amount > UINT256_MAX:
        raise ValueError(f"the amount {text!r} is larger than a uint256 holds")
    return amount


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
        amount=exact_amount(amount) if amount is not None else None,
        invoice_id=params.get("bytes32"),
    )


def image(uri: str, kind: str) -> bytes:
    """The QR code of `uri` as PNG or SVG bytes."""
    qr = segno.make(uri, error="m")
    buffer = io.BytesIO()
    qr.save(buffer, kind=kind, scale=6, border=4)
    return buffer.getvalue()
