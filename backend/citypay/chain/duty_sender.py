"""Transactions of one duty account (an issuer, a settler, the registrar), through the outbox:
simulated first, so a refusal comes back as the contract's own error before anything is sent;
then recorded with its signed bytes (chain/outbox.py) with what it is for, sent, and waited for.

Exactly-once is the caller's: each duty's contract call is idempotent on chain (a deposit
reference mints once, a cash-out nonce redeems once, a settlement names its redemption's account
and amount), and callers check that state before a retry. The outbox sends the same bytes again
if the node loses them, and tells the caller's handlers when a block takes it or gives it back.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from eth_account.signers.local import LocalAccount
from sqlalchemy.orm import Session

from citypay.chain.gateway import PlatformContract
from citypay.chain.outbox import ChainTransaction, Outbox

# Gas a duty's transaction may use (a cash-out with a contract wallet's ERC-1271 check included).
DUTY_GAS = 1_000_000


class DutySender:
    def __init__(self, outbox: Outbox, account: LocalAccount) -> None:
        self.outbox = outbox
        self.account = account

    @property
    def address(self) -> str:
        return self.account.address

    def simulate(self, contract: PlatformContract, function: str, *args: Any) -> Any:
        """The call's result as this account would send it now; ChainRefused if it reverts."""
        return contract.simulate(self.address, function, *args)

    def send(
        self,
        contract: PlatformContract,
        function: str,
        *args: Any,
        purpose: str,
        attach: Callable[[Session, ChainTransaction], None] | None = None,
        timeout: float = 60,
        gas: int = DUTY_GAS,
    ) -> ChainTransaction:
        """Simulates, records (running `attach` in the same database transaction), sends and
        waits until mined; returns the mined record (`succeeded` says if it reverted in its
        block). ChainRefused if the simulation refuses it: nothing is recorded or sent then."""
        self.simulate(contract, function, *args)
        record = self.outbox.send(
            self.account,
            to=contract.address,
            data=contract.calldata(function, *args),
            gas=gas,
            purpose=purpose,
            attach=attach,
        )
        return self.outbox.wait_mined(record, timeout=timeout)
