"""The accounts the backend signs with, checked once at start-up.

Each service resolves its key when it first sends, which is when a misconfigured production
backend would otherwise find out: at the first deposit, card or cash-out of the day. Starting
refuses instead, naming every duty whose key is missing or belongs to another address.
"""

from __future__ import annotations

from citypay.chain.deployment import Deployment
from citypay.chain.keys import SigningKeyError, signer_for
from citypay.core.config import Settings


def duty_addresses(deployment: Deployment) -> list[tuple[str, str]]:
    """(duty, address) for every duty of the backend: relayer, registrar, and per city the
    issuer (the manifest's first, which holds an allowance) and the settler."""
    duties = {
        ("relayer", deployment.account("relayer")),
        ("registrar", deployment.account("registrar")),
    }
    for city in deployment.cities.values():
        duties.add(("issuer", city.roles["issuers"][0]))
        duties.add(("settler", city.roles["settler"]))
    return sorted(duties)


def check_duty_keys(settings: Settings, deployment: Deployment) -> None:
    configured = {
        "relayer": settings.RELAYER_PRIVATE_KEY,
        "registrar": settings.REGISTRAR_PRIVATE_KEY,
        "issuer": settings.ISSUER_PRIVATE_KEY,
        "settler": settings.SETTLER_PRIVATE_KEY,
    }
    problems = []
    for duty, address in duty_addresses(deployment):
        try:
            signer_for(duty, configured[duty], address, deployment.chain_id)
        except SigningKeyError as problem:
            problems.append(f"{duty.upper()}_PRIVATE_KEY: {problem}")
    if problems:
        raise SigningKeyError("the backend cannot sign for its duties:\n  " + "\n  ".join(problems))
