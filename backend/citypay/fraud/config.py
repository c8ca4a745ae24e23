"""The fraud rules' thresholds (config/fraud.yaml): defaults for every city, and each city's own.

    defaults:
      quick_cash_out: {window_minutes: 30, max_customers: 3}
    cities:
      gimpo:
        outside_business_hours: {categories: {5611: "10:00-22:00"}}

A city's section is laid over the defaults key by key (mappings merged, other values replaced),
then checked like the defaults. Every error names the key, the value and what is accepted, e.g.
`cities.gimpo.quick_cash_out.window_minutes = 0: must be greater than 0`.

Merchants' business hours have no field on chain: they are set here per business category or per
merchant address, over a default.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

import yaml
from eth_utils import is_checksum_address, to_checksum_address
from pydantic import (
    BeforeValidator,
    Field,
    PlainSerializer,
    ValidationError,
    field_validator,
    model_validator,
)

from citypay.core.strict_config import StrictSection

log = logging.getLogger(__name__)

DAY_MINUTES = 24 * 60


class FraudConfigError(ValueError):
    """The fraud configuration is invalid; the message lists every problem found."""


@dataclass(frozen=True)
class BusinessHours:
    """Opening hours as minutes of the day in Korean time; closing before opening runs overnight."""

    opens: int
    closes: int

    def __contains__(self, minute_of_day: int) -> bool:
        if self.opens < self.closes:
            return self.opens <= minute_of_day < self.closes
        return minute_of_day >= self.opens or minute_of_day < self.closes

    def __str__(self) -> str:
        return f"{_clock(self.opens)}-{_clock(self.closes)}"


def _clock(minutes: int) -> str:
    return f"{minutes // 60:02d}:{minutes % 60:02d}"


def _parse_hours(value: Any) -> BusinessHours:
    if isinstance(value, BusinessHours):
        return value
    match = re.fullmatch(r"(\d\d):(\d\d)-(\d\d):(\d\d)", value) if isinstance(value, str) else None
    if match is None:
        raise ValueError("must be opening and closing time as 'HH:MM-HH:MM', e.g. '09:00-22:00'")
    oh, om, ch, cm = (int(part) for part in match.groups())
    opens, closes = oh * 60 + om, ch * 60 + cm
    if oh > 23 or om > 59 or cm > 59 or closes > DAY_MINUTES:
        raise ValueError("hours run from 00:00 to 23:59 (24:00 as a closing time)")
    if opens == closes:
        raise ValueError("opens and closes at the same time; all day is '00:00-24:00'")
    return BusinessHours(opens, closes)


def _checksummed(value: Any) -> str:
    if isinstance(value, int):
        raise ValueError("must be quoted ('0x...'): YAML reads an unquoted 0x address as a number")
    if not isinstance(value, str) or not re.fullmatch(r"0x[0-9a-fA-F]{40}", value):
        raise ValueError("must be a merchant's 0x address (40 hex digits)")
    digits = value[2:]
    if digits not in (digits.lower(), digits.upper()) and not is_checksum_address(value):
        raise ValueError(f"bad EIP-55 checksum; did you mean {to_checksum_address(value)}?")
    return to_checksum_address(value)


Hours = Annotated[BusinessHours, BeforeValidator(_parse_hours), PlainSerializer(str)]
Address = Annotated[str, BeforeValidator(_checksummed)]
Minutes = Annotated[int, Field(strict=True, gt=0, le=366 * DAY_MINUTES)]
Count = Annotated[int, Field(strict=True, ge=1)]
Percent = Annotated[float, Field(ge=0, le=100)]
Krw = Annotated[int, Field(strict=True, ge=0)]
Category = Annotated[int, Field(strict=True, gt=0, le=2**16 - 1)]


class _Rule(StrictSection):
    enabled: Annotated[bool, Field(strict=True)] = True


class QuickCashOutConfig(_Rule):
    """A merchant with few customers cashes out what it received minutes earlier."""

    window_minutes: Minutes = 30  # payments received this long before the cash-out
    max_customers: Count = 3  # distinct payers in customer_lookback_days, at most
    customer_lookback_days: Annotated[int, Field(strict=True, gt=0, le=366)] = 30
    amount_tolerance_percent: Percent = 1.0  # the cash-out within this of what was received
    min_amount: Krw = 100_000  # smaller cash-outs are not worth an alert


class FreshWalletFeedConfig(_Rule):
    """A merchant fed mostly by wallets charged minutes before they paid it."""

    window_minutes: Minutes = 60
    fresh_minutes: Minutes = 30  # charged at most this long before paying
    min_wallets: Count = 3
    min_share_percent: Percent = 80.0  # of the value received in the window
    min_amount: Krw = 200_000  # received from fresh wallets in the window


class RoundUnderLimitConfig(_Rule):
    """Repeated round payments just under a limit (490,000 under a 500,000 limit)."""

    window_minutes: Minutes = 24 * 60
    round_unit: Annotated[int, Field(strict=True, gt=0)] = 10_000
    margin_percent: Annotated[float, Field(gt=0, lt=100)] = 5.0  # under the limit by at most this
    min_count: Count = 3
    # Limits to watch besides the city's on-chain monthly purchase limit and holding cap.
    limits: list[Annotated[int, Field(strict=True, gt=0)]] = Field(default_factory=list)


class OutsideBusinessHoursConfig(_Rule):
    """Payments while the merchant is closed: a merchant's own hours, else its category's, else
    `hours`."""

    hours: Hours = _parse_hours("00:00-24:00")
    categories: dict[Category, Hours] = Field(default_factory=dict)
    merchants: dict[Address, Hours] = Field(default_factory=dict)
    window_minutes: Minutes = 60
    min_count: Count = 1
    min_amount: Krw = 0

    def hours_of(self, merchant: str, category: int | None) -> tuple[BusinessHours, str]:
        """The merchant's hours and where they come from (merchant, category N or default)."""
        if merchant in self.merchants:
            return self.merchants[merchant], "merchant"
        if category in self.categories:
            return self.categories[category], f"category {category}"
        return self.hours, "default"


class IncentiveSpendAllConfig(_Rule):
    """A wallet charges with the incentive and spends it all at one merchant."""

    window_minutes: Minutes = 120  # after the charge
    min_share_percent: Percent = 95.0  # of the charge and its incentive, at one merchant
    min_amount: Krw = 100_000  # charges smaller than this are not worth an alert


class GiftChainConfig(_Rule):
    """Gifts from several residents converge on one wallet (directly or hand to hand), which
    then spends them at one merchant."""

    window_minutes: Minutes = 24 * 60  # the gifts this long before the payment
    min_wallets: Count = 3  # residents the money came from, directly or through others
    min_amount: Krw = 100_000  # given to the wallet in the window
    min_share_percent: Percent = 80.0  # of what it was given, spent at the one merchant


class RulesConfig(StrictSection):
    quick_cash_out: QuickCashOutConfig = QuickCashOutConfig()
    fresh_wallet_feed: FreshWalletFeedConfig = FreshWalletFeedConfig()
    round_under_limit: RoundUnderLimitConfig = RoundUnderLimitConfig()
    outside_business_hours: OutsideBusinessHoursConfig = OutsideBusinessHoursConfig()
    incentive_spend_all: IncentiveSpendAllConfig = IncentiveSpendAllConfig()
    gift_chain: GiftChainConfig = GiftChainConfig()


class FraudConfig(StrictSection):
    defaults: RulesConfig = RulesConfig()
    cities: dict[str, RulesConfig] = Field(default_factory=dict)

    @model_validator(mode="before")
    @classmethod
    def _cities_over_defaults(cls, data: Any) -> Any:
        if not isinstance(data, dict) or not isinstance(data.get("cities"), dict):
            return data
        defaults = data.get("defaults") or {}
        cities = {
            code: _merged(defaults, override or {}) for code, override in data["cities"].items()
        }
        return {**data, "cities": cities}

    @field_validator("cities")
    @classmethod
    def _city_codes(cls, cities: dict[str, RulesConfig]) -> dict[str, RulesConfig]:
        for code in cities:
            if not re.fullmatch(r"[a-z][a-z0-9-]{1,31}", code):
                raise ValueError(f"{code!r} is not a city code (lower case, as in cities.yaml)")
        return cities

    def for_city(self, code: str) -> RulesConfig:
        return self.cities.get(code, self.defaults)

    def check_cities(self, known: list[str], source: str) -> None:
        """A city named here that this backend does not serve is left alone, with a warning (a
        typo would otherwise go unseen): one file serves every deployment and every CITIES
        subset. A served city the file does not name runs on the defaults."""
        for code in sorted(set(self.cities) - set(known)):
            log.warning(
                "%s: cities.%s is not a city this backend serves (%s): its thresholds are unused",
                source,
                code,
                ", ".join(sorted(known)),
            )


def _merged(base: Any, override: Any) -> Any:
    if isinstance(base, dict) and isinstance(override, dict):
        return {
            key: _merged(base[key], value) if key in base else value
            for key, value in {**base, **override}.items()
        }
    return override


# --- loading ------------------------------------------------------------------------------


def load_fraud_config(path: Path | None) -> FraudConfig:
    """The file's configuration; the built-in defaults when `path` is None."""
    if path is None:
        return FraudConfig()
    try:
        raw = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise FraudConfigError(
            f"{path}: no such file (FRAUD_CONFIG_PATH names the fraud rules' configuration)"
        ) from None
    except yaml.YAMLError as error:
        raise FraudConfigError(f"{path}: not valid YAML: {error}") from None
    return parse_fraud_config(raw or {}, source=str(path))


def parse_fraud_config(raw: Any, *, source: str = "fraud configuration") -> FraudConfig:
    if not isinstance(raw, dict):
        raise FraudConfigError(f"{source}: expected a mapping with defaults and cities")
    try:
        return FraudConfig.model_validate(raw)
    except ValidationError as invalid:
        problems = _problems(invalid.errors())
        listed = "\n  ".join(problems)
        raise FraudConfigError(f"{source}: {len(problems)} problem(s):\n  {listed}") from None


def _problems(errors: list[dict]) -> list[str]:
    """Each error once: a wrong default is not repeated for every city that inherits it."""
    in_defaults = {
        (e["loc"][1:], repr(e.get("input"))) for e in errors if e["loc"][:1] == ("defaults",)
    }
    return [
        _describe(e)
        for e in errors
        if not (e["loc"][:1] == ("cities",) and (e["loc"][2:], repr(e.get("input"))) in in_defaults)
    ]


def _describe(error: dict) -> str:
    """One pydantic error as `key.path = value: what is wrong`."""
    location = ".".join(str(part) for part in error["loc"]).replace(".[key]", " (as a key)")
    message = error["msg"].removeprefix("Value error, ").replace("Input should be", "must be")
    if error["type"] == "missing":
        return f"{location}: missing (required)"
    value = error.get("input")
    shown = "" if isinstance(value, dict | list) else f" = {value!r}"
    return f"{location or '(top level)'}{shown}: {message}"
