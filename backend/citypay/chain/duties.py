"""The accounts the backend sends from, one DutySender per address (cities may share one), so
its nonces come from one place in the process; the outbox keeps them apart across processes.
The keys are each city's own (chain/keys.py), unlocked and checked at start-up."""

from __future__ import annotations

from citypay.chain.duty_sender import DutySender
from citypay.chain.keys import DutyKeys
from citypay.chain.outbox import Outbox


class DutySenders:
    def __init__(self, keys: DutyKeys, outbox: Outbox) -> None:
        self._keys = keys
        self._outbox = outbox
        self._senders: dict[str, DutySender] = {}

    def sender(self, duty: str, address: str) -> DutySender:
        """The sender of `address`, which the manifest names as `duty` of a served city (the
        city's roles: `issuers[0]`, `settler`, `registrar`); SigningKeyError otherwise."""
        account = self._keys.account(duty, address)
        if address not in self._senders:
            self._senders[address] = DutySender(self._outbox, account)
        return self._senders[address]
