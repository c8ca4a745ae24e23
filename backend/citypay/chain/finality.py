"""Whether what the chain says is final: a block at or below the head less CHAIN_CONFIRMATIONS.

Every status the API gives from the chain (a payment or refund included, a deposit issued, a
cash-out settled) says `final` by it. The head is asked at most every `max_age` seconds, so a
status read costs no node request; while the node does not answer, the last head known stands
(nothing becomes final meanwhile). With no confirmations (an instant-finality chain such as
QBFT) a block the backend has seen is final by definition, so nothing is asked; a block the
node loses later is taken back by the outbox, which clears the record's block.
"""

from __future__ import annotations

import threading
import time

from citypay.chain.gateway import ChainGateway
from citypay.chain.rpc import ChainUnavailable

_EVERY_BLOCK = 2**63 - 1


class Finality:
    def __init__(self, gateway: ChainGateway, confirmations: int, *, max_age: float = 0.5) -> None:
        self.gateway = gateway
        self.confirmations = confirmations
        self.max_age = max_age
        self._head = -1
        self._asked = 0.0
        self._lock = threading.Lock()

    def final_up_to(self) -> int:
        """The newest block whose content is final (-1 before the head is known)."""
        if self.confirmations == 0:
            return _EVERY_BLOCK
        with self._lock:
            if time.monotonic() - self._asked >= self.max_age:
                try:
                    self._head = self.gateway.block_number()
                    self._asked = time.monotonic()
                except ChainUnavailable:
                    pass
            return self._head - self.confirmations

    def is_final(self, block_number: int | None) -> bool:
        return block_number is not None and block_number <= self.final_up_to()
