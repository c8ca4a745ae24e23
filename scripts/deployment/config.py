"""The city configuration (config/cities.yaml): loaded, validated, turned into deployable cities.

Every error names the key, the value found and what is accepted, e.g.
`cities[gimpo].policy.incentive_percent = 120: must be at most 100`.
"""

from __future__ import annotations

import itertools
from decimal import Decimal
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from citypay.core.strict_config import StrictSection
from eth_utils import is_address, is_checksum_address, to_checksum_address
from pydantic import Field, ValidationError, field_validator, model_validator

from scripts.city_suite import DAY, HOUR, City, CityPolicy
from scripts.deployment import DeploymentError

UINT16_MAX = 2**16 - 1
UINT32_MAX = 2**32 - 1
UINT64_MAX = 2**64 - 1
# ResidentTally keeps a resident's monthly purchases and charges in uint48.
UINT48_MAX = 2**48 - 1


class ConfigError(DeploymentError):
    """The configuration is invalid; the message lists every problem found."""


# An amount in KRW: a whole number (YAML `29_200_000_000` is one), never a float or a string.
Krw = Annotated[int, Field(strict=True, gt=0, le=UINT48_MAX)]
KrwOrZero = Annotated[int, Field(strict=True, ge=0, le=UINT48_MAX)]
AccountName = Annotated[str, Field(min_length=1)]


# A rate in percent with at most two decimals (one basis point), given as a number.
Percent = Annotated[Decimal, Field(ge=0, le=100, decimal_places=2)]


def _number_not_text(value: Any) -> Any:
    if isinstance(value, str | bool):
        raise ValueError("must be a number of percent, e.g. 10 or 6.5 (no % sign)")
    return Decimal(str(value)) if isinstance(value, float) else value


class _CashbackRate(StrictSection):
    # CityCashback.MAX_RATE_BPS: no city pays more than 30% back.
    percent: Annotated[Decimal, Field(ge=0, le=30, decimal_places=2)]

    _percent_is_a_number = field_validator("percent", mode="before")(_number_not_text)

    @property
    def bps(self) -> int:
        return int(self.percent * 100)


class CashbackBandConfig(_CashbackRate):
    """Merchants with an annual revenue up to `revenue_up_to` KRW earn `percent` back."""

    revenue_up_to: Annotated[int, Field(strict=True, gt=0, le=UINT64_MAX)]


class CashbackRegionConfig(_CashbackRate):
    """A region's rate (e.g. a population-decline area's), in place of its band's where higher."""

    region: Annotated[int, Field(strict=True, ge=0, le=UINT32_MAX)]


class CashbackConfig(StrictSection):
    """Cashback on payments (결제 캐시백): rates by the merchant's revenue band and region, paid
    within the monthly incentive limit and a budget."""

    # Ascending revenue; a merchant above the last band earns nothing (Incheon 2025: 10% up to
    # 3 billion KRW, none above).
    bands: list[CashbackBandConfig] = Field(min_length=1, max_length=8)
    regions: list[CashbackRegionConfig] = Field(default_factory=list, max_length=64)
    # The budget the cashback starts with; later top-ups are the city admin's (setBudget) at run
    # time, as an issuer's allowance is the issuer admin's.
    budget: KrwOrZero = 0

    @field_validator("bands")
    @classmethod
    def _ascending(cls, bands: list[CashbackBandConfig]) -> list[CashbackBandConfig]:
        for before, band in itertools.pairwise(bands):
            if band.revenue_up_to <= before.revenue_up_to:
                raise ValueError(
                    f"revenue_up_to {band.revenue_up_to} follows {before.revenue_up_to}: bands "
                    "go by ascending revenue"
                )
        return bands

    @field_validator("regions")
    @classmethod
    def _each_region_once(cls, regions: list[CashbackRegionConfig]) -> list[CashbackRegionConfig]:
        codes = [r.region for r in regions]
        repeated = sorted({c for c in codes if codes.count(c) > 1})
        if repeated:
            raise ValueError(f"region {repeated[0]} is listed twice")
        return regions


class PolicyConfig(StrictSection):
    annual_issuance_cap: Krw
    monthly_purchase_limit: Krw
    holding_cap: Krw
    incentive_percent: Percent
    monthly_incentive_limit: KrwOrZero
    merchant_revenue_cap: Annotated[int, Field(strict=True, gt=0, le=UINT64_MAX)]
    excluded_categories: list[Annotated[int, Field(strict=True, gt=0, le=UINT16_MAX)]] = Field(
        default_factory=list
    )
    ban_period_days: Annotated[int, Field(strict=True, ge=0, le=UINT64_MAX // DAY)] = 365
    # How long a proposed wallet recovery waits before the registrar may execute it
    # (CityRegistry.MIN_RECOVERY_DELAY to MAX_RECOVERY_DELAY: 1 hour to 30 days).
    recovery_delay_hours: Annotated[int, Field(strict=True, ge=1, le=30 * 24)] = 72
    fiscal_year_start_month: Annotated[int, Field(strict=True, ge=1, le=12)] = 1
    # General money's validity from purchase: 5 years by law (지역사랑상품권법 제10조) unless the
    # city's ordinance says otherwise; fixed at deployment.
    general_validity_days: Annotated[int, Field(strict=True, ge=1, le=50 * 365)] = 1826
    # Merchants above this annual revenue take policy money their programs allow, not general
    # money (the 2023 guideline; 3 billion KRW nationally). Unset: the registration cap.
    general_revenue_cap: Annotated[int, Field(strict=True, gt=0, le=UINT64_MAX)] | None = None
    # A resident may ask for a refund once it used this share of its charges (60 to 80 by law).
    refund_min_used_percent: Annotated[int, Field(strict=True, ge=60, le=80)] = 60
    # What a resident may send, and receive, in gifts (선물하기) a month; 0 turns gifts off.
    gift_monthly_send_cap: KrwOrZero = 500_000
    gift_monthly_receive_cap: KrwOrZero = 1_500_000
    # How the city pays its incentive: a discount at charge (incentive_percent), or cashback on
    # payments (the `cashback` rates; incentive_percent is then 0). Both within
    # monthly_incentive_limit.
    incentive_mode: Literal["discount", "cashback"] = "discount"
    cashback: CashbackConfig | None = None

    _incentive_is_a_number = field_validator("incentive_percent", mode="before")(_number_not_text)

    @field_validator("excluded_categories")
    @classmethod
    def _no_repeats(cls, categories: list[int]) -> list[int]:
        repeated = sorted({c for c in categories if categories.count(c) > 1})
        if repeated:
            raise ValueError(f"category {repeated[0]} is listed twice")
        return categories

    @model_validator(mode="after")
    def _limits_fit_together(self) -> PolicyConfig:
        if self.monthly_purchase_limit > self.holding_cap:
            raise ValueError(
                f"monthly_purchase_limit {self.monthly_purchase_limit} is above holding_cap "
                f"{self.holding_cap}: a resident could never charge the monthly limit"
            )
        return self

    @model_validator(mode="after")
    def _one_incentive(self) -> PolicyConfig:
        if self.incentive_mode != "cashback":
            return self
        if self.incentive_percent != 0:
            raise ValueError(
                f"incentive_percent is {self.incentive_percent} with incentive_mode cashback: "
                "must be 0 (the incentive is paid as cashback on payments, never both)"
            )
        if self.cashback is None:
            raise ValueError("incentive_mode is cashback but no cashback rates are given")
        return self

    @property
    def incentive_bps(self) -> int:
        return int(self.incentive_percent * 100)


class IssuerConfig(StrictSection):
    account: AccountName
    # The allowance the issuer starts with; later top-ups are the issuer admin's job at run time.
    allowance: Krw


class RolesConfig(StrictSection):
    city_admin: AccountName
    issuer_admin: AccountName
    issuers: list[IssuerConfig] = Field(min_length=1)
    registrar: AccountName
    compliance: AccountName
    pauser: AccountName
    settler: AccountName
    # Sends the relayer's payment batches (transferWithAuthorizationBatch).
    relayer: AccountName
    # Policy programs: who defines them, who records their funding, who pays them out.
    program_manager: AccountName
    program_funder: AccountName
    program_payer: AccountName
    # Settles each payment for cashback (the backend): the chain decides every amount.
    cashback_payer: AccountName
    # More accounts that send payment batches, in turn with `relayer`, each holding the token's
    # RELAYER_ROLE: a node limits each sender's pending transactions (Besu's
    # --tx-pool-limit-by-account-percentage), so a busy city spreads its batches over several.
    more_relayers: list[AccountName] = Field(default_factory=list)

    @model_validator(mode="after")
    def _recovery_takes_two(self) -> RolesConfig:
        if self.registrar == self.compliance:
            raise ValueError(
                f"registrar and compliance are both {self.registrar!r}: a wallet recovery is "
                "proposed by compliance and executed by the registrar, never by one account"
            )
        return self

    @model_validator(mode="after")
    def _each_relayer_once(self) -> RolesConfig:
        relayers = self.holders("relayer")
        repeated = sorted({name for name in relayers if relayers.count(name) > 1})
        if repeated:
            raise ValueError(f"relayer {repeated[0]!r} is named twice (relayer, more_relayers)")
        return self

    def holders(self, duty: str) -> list[AccountName]:
        """The accounts a duty of SUITE_ROLES names: one, or the relayer and more_relayers."""
        return [getattr(self, duty), *(self.more_relayers if duty == "relayer" else [])]

    @field_validator("issuers")
    @classmethod
    def _one_entry_per_issuer(cls, issuers: list[IssuerConfig]) -> list[IssuerConfig]:
        names = [issuer.account for issuer in issuers]
        repeated = sorted({name for name in names if names.count(name) > 1})
        if repeated:
            raise ValueError(f"issuer {repeated[0]!r} is listed twice")
        return issuers


# The duties that name one account each (issuers and more_relayers name lists).
ROLE_DUTIES = tuple(d for d in RolesConfig.model_fields if d not in ("issuers", "more_relayers"))


class CustodyConfig(StrictSection):
    """Where the city keeps the KRW behind its tokens, for the proof of reserve: the custody
    account's number at the bank (the chain keeps its keccak256) and the account whose key signs
    that bank's statements of it (an account name: the bank's published address)."""

    account: Annotated[str, Field(min_length=1, max_length=64)]
    signer: AccountName


class CityConfig(StrictSection):
    code: Annotated[str, Field(pattern=r"^[a-z][a-z0-9-]{1,31}$")]
    # The token's name and EIP-712 domain name, e.g. "Gimpo Pay".
    name: Annotated[str, Field(min_length=1, max_length=64)]
    local_name: Annotated[str, Field(min_length=1)]
    symbol: Annotated[str, Field(pattern=r"^[A-Z][A-Z0-9]{1,10}$")]
    policy: PolicyConfig
    roles: RolesConfig
    # Without it the city has no proof of reserve: nothing records its bank statements.
    custody: CustodyConfig | None = None

    def to_city(self) -> City:
        policy = self.policy
        return City(
            code=self.code,
            name=self.name,
            symbol=self.symbol,
            policy=CityPolicy(
                annual_issuance_cap=policy.annual_issuance_cap,
                monthly_purchase_limit=policy.monthly_purchase_limit,
                holding_cap=policy.holding_cap,
                incentive_bps=policy.incentive_bps,
                monthly_incentive_limit=policy.monthly_incentive_limit,
                merchant_revenue_cap=policy.merchant_revenue_cap,
                excluded_categories=tuple(policy.excluded_categories),
                ban_period=policy.ban_period_days * DAY,
                recovery_delay=policy.recovery_delay_hours * HOUR,
                fiscal_year_start_month=policy.fiscal_year_start_month,
                general_validity=policy.general_validity_days * DAY,
                general_revenue_cap=policy.general_revenue_cap or policy.merchant_revenue_cap,
                refund_min_used_bps=policy.refund_min_used_percent * 100,
                gift_monthly_send_cap=policy.gift_monthly_send_cap,
                gift_monthly_receive_cap=policy.gift_monthly_receive_cap,
                incentive_mode=policy.incentive_mode,
                **self._cashback_terms(),
            ),
        )

    def _cashback_terms(self) -> dict:
        cashback = self.policy.cashback
        if cashback is None:
            return {}
        return {
            "cashback_bands": tuple((b.revenue_up_to, b.bps) for b in cashback.bands),
            "cashback_regions": tuple((r.region, r.bps) for r in cashback.regions),
            "cashback_budget": cashback.budget,
        }


class PlatformConfig(StrictSection):
    accounts: dict[AccountName, str] = Field(min_length=1)
    deployer: AccountName
    deployer_keeps_admin: Annotated[bool, Field(strict=True)] = False
    directory_admin: AccountName
    cities: list[CityConfig] = Field(min_length=1)

    @field_validator("accounts")
    @classmethod
    def _addresses(cls, accounts: dict[str, str]) -> dict[str, str]:
        for name, address in accounts.items():
            if not isinstance(address, str) or not is_address(address):
                raise ValueError(f"{name} = {address!r}: not an address (0x and 40 hex digits)")
            mixed_case = address[2:] not in (address[2:].lower(), address[2:].upper())
            if mixed_case and not is_checksum_address(address):
                raise ValueError(
                    f"{name} = {address!r}: bad EIP-55 checksum (a typo?); "
                    f"did you mean {to_checksum_address(address)}?"
                )
        return {name: to_checksum_address(address) for name, address in accounts.items()}

    @model_validator(mode="after")
    def _consistent(self) -> PlatformConfig:
        for field in ("code", "symbol", "name"):
            values = [getattr(city, field) for city in self.cities]
            repeated = sorted({v for v in values if values.count(v) > 1})
            if repeated:
                raise ValueError(f"cities: two cities have the {field} {repeated[0]!r}")
        custody = [city.custody.account for city in self.cities if city.custody is not None]
        shared = sorted({account for account in custody if custody.count(account) > 1})
        if shared:
            raise ValueError(
                f"cities: two cities name the custody account {shared[0]!r}; each city keeps its "
                "KRW in an account of its own"
            )
        unknown = [
            (where, name) for where, name in self.account_references() if name not in self.accounts
        ]
        if unknown:
            where, name = unknown[0]
            raise ValueError(
                f"{where} = {name!r}: no such account (accounts: {', '.join(self.accounts)})"
            )
        return self

    def account_references(self) -> list[tuple[str, str]]:
        """(where, account name) for every place the file names an account."""
        references = [("deployer", self.deployer), ("directory_admin", self.directory_admin)]
        for city in self.cities:
            roles = city.roles
            at = f"cities[{city.code}].roles"
            references += [(f"{at}.{duty}", getattr(roles, duty)) for duty in ROLE_DUTIES]
            references += [(f"{at}.issuers.account", issuer.account) for issuer in roles.issuers]
            references += [(f"{at}.more_relayers", name) for name in roles.more_relayers]
            if city.custody is not None:
                references.append((f"cities[{city.code}].custody.signer", city.custody.signer))
        return references

    def address(self, name: str) -> str:
        return self.accounts[name]

    def name_of(self, address: str) -> str | None:
        return next((n for n, a in self.accounts.items() if a == address), None)

    def city(self, code: str) -> CityConfig:
        return next(city for city in self.cities if city.code == code)


# --- Loading ----------------------------------------------------------------------------------


class _StrictLoader(yaml.SafeLoader):
    """YAML that refuses a key given twice (the plain loader keeps the last one silently)."""


def _mapping_without_repeats(loader: _StrictLoader, node: yaml.MappingNode) -> dict:
    seen: dict[Any, int] = {}
    for key_node, _ in node.value:
        key = loader.construct_object(key_node)
        if key in seen:
            raise ConfigError(
                f"line {key_node.start_mark.line + 1}: key {key!r} is given twice "
                f"(first on line {seen[key]})"
            )
        seen[key] = key_node.start_mark.line + 1
    return loader.construct_mapping(node)


_StrictLoader.add_constructor(
    yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _mapping_without_repeats
)


def load_config(path: str | Path) -> PlatformConfig:
    """Reads and validates the configuration file; raises ConfigError listing every problem."""
    path = Path(path)
    try:
        raw = yaml.load(path.read_text(encoding="utf-8"), Loader=_StrictLoader)
    except FileNotFoundError:
        raise ConfigError(f"{path}: no such file") from None
    except ConfigError as error:
        raise ConfigError(f"{path}: {error}") from None
    except yaml.YAMLError as error:
        raise ConfigError(f"{path}: not valid YAML: {error}") from None
    return parse_config(raw, source=str(path))


def parse_config(raw: Any, *, source: str = "configuration") -> PlatformConfig:
    if not isinstance(raw, dict):
        raise ConfigError(f"{source}: expected a mapping with accounts and cities, found {raw!r}")
    try:
        return PlatformConfig.model_validate(raw)
    except ValidationError as invalid:
        problems = [_describe(error, raw) for error in invalid.errors()]
        listed = "\n  ".join(problems)
        raise ConfigError(f"{source}: {len(problems)} problem(s):\n  {listed}") from None


def _describe(error: dict, raw: dict) -> str:
    """One pydantic error as `key.path = value: what is wrong`."""
    location, node = "", raw
    for part in error["loc"]:
        if isinstance(part, int) and isinstance(node, list):
            node = node[part] if part < len(node) else None
            code = node.get("code") if isinstance(node, dict) else None
            location += f"[{code or part}]"
        else:
            location += f".{part}" if location else str(part)
            node = node.get(part) if isinstance(node, dict) else None
    message = error["msg"].removeprefix("Value error, ")
    if error["type"] == "missing":
        return f"{location}: missing (required)"
    # A mapping or list is not worth printing: the message names what is wrong inside it.
    value = error.get("input")
    if not location:  # the top level's checks name their keys themselves
        return message
    shown = "" if isinstance(value, dict | list) else f" = {_show(value)}"
    return f"{location}{shown}: {_plain(message)}"


def _show(value: Any) -> str:
    return str(value) if isinstance(value, Decimal) else repr(value)


def _plain(message: str) -> str:
    """Pydantic's wording made direct: 'Input should be greater than 0' -> 'must be ...'."""
    return message.replace("Input should be", "must be").replace("Input should have", "must have")
