"""Deploys and wires one city's suite (token, registry, treasury, programs, gifts, cashback) with
Brownie."""

from __future__ import annotations

from dataclasses import dataclass, field

from citypay.authorization import TokenDomain
from citypay.registry_authorization import sign_payout_account

HOUR = 60 * 60
DAY = 24 * HOUR


@dataclass(frozen=True)
class CityPolicy:
    """A city's policy; amounts in KRW, rates in basis points."""

    annual_issuance_cap: int
    monthly_purchase_limit: int
    holding_cap: int
    incentive_bps: int
    monthly_incentive_limit: int
    merchant_revenue_cap: int
    excluded_categories: tuple[int, ...] = ()
    ban_period: int = 365 * DAY
    # CityRegistry starts at 3 days; the deployment sets the configured delay.
    recovery_delay: int = 3 * DAY
    fiscal_year_start_month: int = 1
    # General money's validity from purchase: 5 years by law unless the ordinance says otherwise.
    general_validity: int = 1826 * DAY
    # Merchants above this annual revenue are not paid with general money (None: the registration
    # cap, nobody excluded; the 2023 guideline's national figure is 3 billion KRW).
    general_revenue_cap: int | None = None
    # The share of its charges a resident must have used to ask for a refund (6,000 to 8,000).
    refund_min_used_bps: int = 6_000
    # What a resident may send, and receive, in gifts (선물하기) a month (Seoul receives at most
    # 1.5 million KRW a month, a control against illegal exchange).
    gift_monthly_send_cap: int = 500_000
    gift_monthly_receive_cap: int = 1_500_000
    # How the incentive is paid: "discount" at charge (incentive_bps) or "cashback" on payments
    # at the rates below (then incentive_bps is 0), within the same monthly incentive limit.
    incentive_mode: str = "discount"
    # CityCashback's rates: (revenue up to, bps) by ascending revenue, and (region, bps).
    cashback_bands: tuple[tuple[int, int], ...] = ()
    cashback_regions: tuple[tuple[int, int], ...] = ()
    cashback_budget: int = 0

    def treasury_policy(self) -> tuple:
        """The ICityTreasury.Policy struct, in field order."""
        return (
            self.annual_issuance_cap,
            self.monthly_purchase_limit,
            self.holding_cap,
            self.incentive_bps,
            self.monthly_incentive_limit,
        )


@dataclass(frozen=True)
class City:
    code: str
    name: str
    symbol: str
    policy: CityPolicy

    # The constructor arguments, in one place for this module and scripts/deployment.

    def token_args(self, admin) -> tuple:
        return (self.name, self.symbol, admin)

    def treasury_args(self, token, admin) -> tuple:
        policy = self.policy
        return (token, admin, policy.treasury_policy(), policy.fiscal_year_start_month)

    def programs_args(self, token, registry, admin) -> tuple:
        return (token, registry, admin, self.policy.general_validity)

    def gifts_args(self, token, admin) -> tuple:
        policy = self.policy
        return (token, admin, policy.gift_monthly_send_cap, policy.gift_monthly_receive_cap)

    def cashback_args(self, token, admin) -> tuple:
        return (token, admin)

    def registry_args(self, token, treasury, admin) -> tuple:
        policy = self.policy
        return (
            token,
            treasury,
            admin,
            policy.merchant_revenue_cap,
            policy.ban_period,
            list(policy.excluded_categories),
        )


# Each duty of a city's configuration and the AccessControl roles it holds, by suite contract.
# The issuer role is absent: issuers are configured with an allowance (configureIssuer).
SUITE_ROLES: dict[str, tuple[tuple[str, str], ...]] = {
    "city_admin": (
        ("token", "DEFAULT_ADMIN_ROLE"),
        ("registry", "DEFAULT_ADMIN_ROLE"),
        ("treasury", "DEFAULT_ADMIN_ROLE"),
        ("programs", "DEFAULT_ADMIN_ROLE"),
        ("gifts", "DEFAULT_ADMIN_ROLE"),
        ("cashback", "DEFAULT_ADMIN_ROLE"),
    ),
    "issuer_admin": (("treasury", "ISSUER_ADMIN_ROLE"),),
    "registrar": (("registry", "REGISTRAR_ROLE"),),
    "compliance": (("token", "COMPLIANCE_ROLE"), ("registry", "COMPLIANCE_ROLE")),
    "pauser": (("token", "PAUSER_ROLE"),),
    "relayer": (("token", "RELAYER_ROLE"),),
    "settler": (("treasury", "SETTLER_ROLE"),),
    # Policy programs (정책발행): the city's policy office defines them, its finance office records
    # their funding, the backend pays them out; none of the three can do another's part.
    "program_manager": (("programs", "PROGRAM_MANAGER_ROLE"),),
    "program_funder": (("programs", "PROGRAM_FUNDER_ROLE"),),
    "program_payer": (("programs", "PROGRAM_PAYER_ROLE"),),
    # Settles payments for cashback (the backend): the chain decides each amount.
    "cashback_payer": (("cashback", "CASHBACK_PAYER_ROLE"),),
}

# ICityTreasury.IncentiveMode, by the configuration's name.
INCENTIVE_MODES = {"discount": 0, "cashback": 1}


@dataclass
class CitySuite:
    token: object
    registry: object
    treasury: object
    programs: object
    gifts: object
    cashback: object
    deployment_blocks: dict = field(default_factory=dict)


def deploy_city_suite(city: City, admin, tx_params: dict | None = None) -> CitySuite:
    """Deploys the six contracts with `admin` as city admin and links them.

    `admin` must be able to send transactions: it links the suite, then grants the other roles.
    """
    # The project's containers exist once Brownie has loaded the project; the deployment command
    # imports this module before that.
    from brownie import (
        CityCashback,
        CityGifts,
        CityPrograms,
        CityRegistry,
        CityToken,
        CityTreasury,
    )

    params = {"from": admin, **(tx_params or {})}
    token = CityToken.deploy(*city.token_args(admin), params)
    treasury = CityTreasury.deploy(*city.treasury_args(token, admin), params)
    registry = CityRegistry.deploy(*city.registry_args(token, treasury, admin), params)
    programs = CityPrograms.deploy(*city.programs_args(token, registry, admin), params)
    gifts = CityGifts.deploy(*city.gifts_args(token, admin), params)
    cashback = CityCashback.deploy(*city.cashback_args(token, admin), params)
    token.linkSuite(registry, treasury, programs, params)
    programs.linkGifts(gifts, params)
    treasury.linkCashback(cashback, params)
    policy = city.policy
    if policy.cashback_bands or policy.cashback_regions:
        cashback.setTerms(policy.cashback_bands, policy.cashback_regions, params)
    if policy.cashback_budget:
        cashback.setBudget(policy.cashback_budget, params)
    if INCENTIVE_MODES[policy.incentive_mode]:
        treasury.setIncentiveMode(INCENTIVE_MODES[policy.incentive_mode], params)
    if policy.general_revenue_cap not in (None, registry.generalRevenueCap()):
        registry.setGeneralRevenueCap(policy.general_revenue_cap, params)
    if policy.refund_min_used_bps != treasury.refundMinUsedBps():
        treasury.setRefundMinUsedBps(policy.refund_min_used_bps, params)
    return CitySuite(
        token=token,
        registry=registry,
        treasury=treasury,
        programs=programs,
        gifts=gifts,
        cashback=cashback,
        deployment_blocks={
            "token": token.tx.block_number,
            "treasury": treasury.tx.block_number,
            "registry": registry.tx.block_number,
            "programs": programs.tx.block_number,
            "gifts": gifts.tx.block_number,
            "cashback": cashback.tx.block_number,
        },
    )


def signed_application(registry, wallet, application: tuple, *, deadline: int | None = None):
    """registerMerchant's arguments: the wallet, its application, and the merchant's own signature
    of the application's payout account (nothing to sign with for a wallet without a key: the
    registry refuses it before it looks at the signature)."""
    from brownie import chain

    deadline = chain.time() + 3600 if deadline is None else deadline
    key = getattr(wallet, "private_key", None)
    if key is None:
        return wallet, application, deadline, b""
    _, name, version, chain_id, contract, _, _ = registry.eip712Domain()
    signature = sign_payout_account(
        key,
        TokenDomain(name, version, chain_id, contract),
        payout_account_hash=application[1],
        nonce=registry.payoutAccountNonce(wallet),
        deadline=deadline,
    )
    return wallet, application, deadline, signature


# What a settlement or a return names besides the redemption's id: its account and its amount
# (CityTreasury.settle and returnRedemption refuse a call whose terms are not the redemption's).
_ZERO_ADDRESS = "0x" + "00" * 20


def _recorded(treasury, redemption_id: int):
    """The redemption, or None for an id the treasury never gave."""
    return (
        treasury.redemption(redemption_id) if redemption_id < treasury.redemptionCount() else None
    )


def settlement(treasury, redemption_id: int, bank_reference) -> tuple:
    """settle's arguments: the id, the redemption's account and payout, the bank reference."""
    recorded = _recorded(treasury, redemption_id)
    account, payout = (recorded["account"], recorded["payout"]) if recorded else (_ZERO_ADDRESS, 0)
    return redemption_id, account, payout, bank_reference


def return_of(treasury, redemption_id: int, reason) -> tuple:
    """returnRedemption's arguments: the id, the redemption's account and burned, the reason."""
    recorded = _recorded(treasury, redemption_id)
    account, burned = (recorded["account"], recorded["burned"]) if recorded else (_ZERO_ADDRESS, 0)
    return redemption_id, account, burned, reason


# Business categories a Korean city typically excludes from its local currency.
LARGE_MART = 4711
DEPARTMENT_STORE = 4712
ENTERTAINMENT_BAR = 5621
GAMBLING = 9124

GIMPO = City(
    code="gimpo",
    name="Gimpo Pay",
    symbol="GIMPO",
    policy=CityPolicy(
        annual_issuance_cap=29_200_000_000,
        monthly_purchase_limit=500_000,
        holding_cap=2_000_000,
        incentive_bps=1_000,
        monthly_incentive_limit=50_000,
        merchant_revenue_cap=1_200_000_000,
        excluded_categories=(LARGE_MART, DEPARTMENT_STORE, ENTERTAINMENT_BAR, GAMBLING),
    ),
)
