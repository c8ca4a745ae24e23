"""Card numbers: 16 digits, the last a Luhn check digit, so a mistyped digit is caught at the till
before the card is looked up."""

from __future__ import annotations

import secrets

from citypay.core.errors import Unprocessable

LENGTH = 16
# The platform's issuer prefix: a number that is not a bank card's keeps cards out of card networks.
PREFIX = "9410"


def luhn_check_digit(payload: str) -> str:
    """The digit that makes `payload + digit` pass the Luhn check."""
    total = 0
    for position, char in enumerate(reversed(payload)):
        digit = int(char)
        if position % 2 == 0:  # doubled: these are the odd positions once the check digit is added
            digit = digit * 2 - 9 if digit > 4 else digit * 2
        total += digit
    return str((10 - total % 10) % 10)


def new_card_number() -> str:
    body = PREFIX + "".join(secrets.choice("0123456789") for _ in range(LENGTH - len(PREFIX) - 1))
    return body + luhn_check_digit(body)


def checked_card_number(value: str, field: str = "card") -> str:
    """The card number without spaces or dashes; Unprocessable naming what is wrong."""
    digits = value.replace(" ", "").replace("-", "")
    if not digits.isascii() or not digits.isdigit() or len(digits) != LENGTH:
        raise Unprocessable(
            "invalid_card_number",
            f"a card number has {LENGTH} digits; got {len(digits)} characters",
            field=field,
            value=_masked(value),
            accepted=f"{LENGTH} digits, spaces or dashes between groups allowed",
        )
    if luhn_check_digit(digits[:-1]) != digits[-1]:
        raise Unprocessable(
            "invalid_card_number",
            "the card number's check digit is wrong: a digit was probably mistyped",
            field=field,
            value=_masked(value),
            accepted="a card number whose last digit is its Luhn check digit",
        )
    return digits


def masked(number: str) -> str:
    """The number as receipts and logs show it: only the last four digits."""
    return "*" * (len(number) - 4) + number[-4:]


def _masked(value: str) -> str:
    # An invalid number is still most of a real one: errors show no more than a receipt would.
    return masked(value) if len(value) > 4 else value
