"""The accounts the backend signs with, checked once at start-up.

Each service resolves its key when it first sends, which is when a misconfigured production
backend would otherwise find out: at the first deposit, card or cash-out of the day. Starting
refuses instead, naming every duty whose key is missing or belongs to another address.
"""

from __future__ import annotations

from citypay.chain.deployment import Deployment
from citypay.chain.duty_sender import DutySender
from citypay.chain.keys import SigningKeyError, signer_for
from citypay.chain.outbox import Outbox
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


def _configured(settings: Settings) -> dict:
    return {
        "relayer": settings.RELAYER_PRIVATE_KEY,
        "registrar": settings.REGISTRAR_PRIVATE_KEY,
        "issuer": settings.ISSUER_PRIVATE_KEY,
        "settler": settings.SETTLER_PRIVATE_KEY,
    }


class DutySenders:
    """One DutySender per duty address (cities may share one), so its nonces come from one
    place in the process; the outbox keeps them apart across processes."""

    def __init__(self, settings: Settings, deployment: Deployment, outbox: Outbox) -> None:
        self._keys = _configured(settings)
        self._chain_id = deployment.chain_id
        self._outbox = outbox
        self._senders: dict[str, DutySender] = {}

    def sender(self, duty: str, address: str) -> DutySender:
        if address not in self._senders:
            account = signer_for(duty, self._keys[duty], address, self._chain_id)
            self._senders[address] = DutySender(self._outbox, account)
        return self._senders[address]


def check_duty_keys(settings: Settings, deployment: Deployment) -> None:
    configured = _configured(settings)
    problems = []
    for duty, address in duty_addresses(deployment):
        try:
            signer_for(duty, configured[duty], address, deployment.chain_id)
        except SigningKeyError as problem:
            problems.append(f"{duty.upper()}_PRIVATE_KEY: {problem}")
    if problems:
        raise SigningKeyError("the backend cannot sign for its duties:\n  " + "\n  ".join(problems))
