"""The registry's and the token's refusals of an office action, as the API's errors: the rule the
chain applied, the field it is about, its value, and what would be accepted."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from citypay.chain.codec import Revert
from citypay.chain.deployment import City
from citypay.core.errors import ApiError


def _when(timestamp: int) -> str:
    return datetime.fromtimestamp(timestamp, UTC).isoformat().replace("+00:00", "Z")


# error name -> (HTTP status, the request's field it is about, the argument holding its value,
# what would be accepted). A field of None: the refusal is about the state, not one input.
_RULES: dict[str, tuple[int, str | None, str | None, str]] = {
    "CityRegistryAlreadyRegistered": (409, "wallet", "wallet", "a wallet not yet registered"),
    "CityRegistryWalletRetired": (
        409,
        "wallet",
        "wallet",
        "a wallet never recovered to another: a retired one is never used again",
    ),
    "CityRegistryZeroAddress": (422, "wallet", None, "a wallet address other than zero"),
    "CityRegistryNotRegistered": (404, "wallet", "wallet", "a registered wallet of the city"),
    "CityRegistryNotMerchant": (404, "wallet", "wallet", "the wallet of a merchant of the city"),
    "CityRegistryIdentityInUse": (
        409,
        "identityHash",
        "identityHash",
        "an identity without a registered wallet (one wallet per person)",
    ),
    "CityRegistryBusinessInUse": (
        409,
        "businessIdHash",
        "businessIdHash",
        "a business without a registered wallet (one wallet per business)",
    ),
    "CityRegistryRevenueOverCap": (
        422,
        "annualRevenue",
        "annualRevenue",
        "at most the city's merchant revenue cap",
    ),
    "CityRegistryCategoryExcluded": (
        422,
        "category",
        "category",
        "a business category the city does not exclude",
    ),
    "CityRegistryBusinessBanned": (
        409,
        "businessIdHash",
        "businessIdHash",
        "a business not banned for illegal exchange (상품권깡)",
    ),
    "CityRegistryEmptyHash": (422, None, "field", "a hash other than zero"),
    "CityRegistryInvalidSignature": (
        422,
        "signature",
        None,
        "the wallet's own EIP-712 signature (PayoutAccount, RecoveryObjection) in the registry's "
        "domain",
    ),
    "CityRegistrySignatureExpired": (422, "deadline", "deadline", "a deadline not yet passed"),
    "CityRegistryInvalidStatusChange": (
        409,
        "wallet",
        "wallet",
        "suspend an active wallet, activate a suspended one, revoke one not revoked",
    ),
    "CityRegistryNoRecoveryPending": (409, "wallet", "lost", "a wallet with a pending recovery"),
    "CityRegistryRecoveryPending": (
        409,
        "wallet",
        "lost",
        "a wallet without a pending recovery (execute or cancel it first)",
    ),
    "CityRegistryRecoveryNotDue": (409, "wallet", "lost", "the same request once it is due"),
    "CityRegistryRecoveryNeedsSecondRole": (
        409,
        None,
        "account",
        "a recovery executed by another account than the one that proposed it",
    ),
    "CityRegistryNotRevokedForIllegalExchange": (
        409,
        "wallet",
        "wallet",
        "a wallet revoked for illegal exchange",
    ),
    "CityRegistryRevokedForIllegalExchange": (
        409,
        "wallet",
        "wallet",
        "a wallet not revoked for illegal exchange (its money awaits confiscation)",
    ),
    "CityRegistryFrozenWalletCannotObject": (
        409,
        "wallet",
        "lost",
        "an objection to the recovery of a wallet compliance has not frozen",
    ),
    "CityRegistryRecoveryDelayOutOfRange": (422, "delay", "delay", "1 hour to 30 days"),
    "CityTokenReplacementInUse": (
        409,
        "replacement",
        "replacement",
        "a replacement wallet that never held anything",
    ),
    "CityTreasuryZeroAmount": (409, "wallet", None, "a wallet holding something to confiscate"),
    "EnforcedPause": (409, None, None, "the same request once the city is not paused"),
}


def api_error(
    revert: Revert, city: City, function: str, others: dict[str, Any] | None = None
) -> ApiError:
    """The office's answer to the chain refusing `function` with `revert`. `others`: the
    request's other wallets by field name (a replacement), so that a refusal about one of them
    names it rather than the wallet acted on."""
    rule = _RULES.get(revert.name)
    if rule is None:
        if revert.name == "AccessControlUnauthorizedAccount":
            return ApiError(
                "duty_not_authorized",
                f"the backend's account for this duty ({revert.args.get('account')}) lacks the "
                f"role on {city.name}'s contracts: {revert}",
                accepted="a deployment that grants the city's duty accounts their roles",
                status_code=503,
            )
        return ApiError(
            "chain_refused",
            f"{city.name} refused {function}: {revert}",
            accepted=f"a {function} the contract accepts",
            status_code=409,
        )
    status, field, argument, accepted = rule
    value: Any = revert.args.get(argument) if argument else None
    if revert.name == "CityRegistryEmptyHash":
        field, value = revert.args["field"], "0x" + "00" * 32
    for name, other in (others or {}).items():
        if field == "wallet" and isinstance(value, str) and value.lower() == str(other).lower():
            field = name
    if revert.name == "CityRegistryRecoveryNotDue":
        accepted = f"the same request from {_when(revert.args['executableAt'])}"
    if revert.name == "CityRegistryRevenueOverCap":
        accepted = f"at most {revert.args['cap']:,} KRW (the city's merchant revenue cap)"
    if revert.name == "CityRegistryBusinessBanned":
        accepted = f"a business not banned: this one is until {_when(revert.args['until'])}"
    return ApiError(
        _code(revert.name),
        f"{city.name} refused {function}: {revert}",
        field=field,
        value=value,
        accepted=accepted,
        status_code=status,
    )


def _code(error: str) -> str:
    """CityRegistryBusinessInUse -> business_in_use: the rule, as the API names its errors."""
    name = error.removeprefix("CityRegistry").removeprefix("CityToken").removeprefix("CityTreasury")
    return "".join(f"_{c.lower()}" if c.isupper() else c for c in name).lstrip("_")
