"""Records each city's bank statement on chain: asks the bank for a signed statement of the
city's custody account, checks that the key the city named signed it, and sends it to the
directory (CityDirectory.attestReserve). The directory takes it from any sender, since the bank's
signature is the authority; the registrar's duty account sends it, and gains no power by it.

The statement is the bank's word at its own time: recorded at once, so that the supply the
directory records beside it is of the same moment within a block or two (the books compare the
balance with what the city owed at the statement's time, from the events: ledger/books.py).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from citypay.bank.adapter import BankAdapter, BankUnavailable
from citypay.chain.deployment import City, Deployment
from citypay.chain.duties import DutySenders
from citypay.chain.gateway import ChainRefused
from citypay.core.errors import ApiError
from citypay.reserve.statement import Statement, custody_account_hash

log = logging.getLogger(__name__)

PURPOSE = "reserve"


@dataclass(frozen=True)
class Attestation:
    city: str
    account: str
    balance: int
    as_of: int
    signer: str
    tx_hash: str
    block_number: int
    outstanding: int  # the token's supply in the recording block, as the directory read it


class ReserveAttester:
    def __init__(self, deployment: Deployment, bank: BankAdapter, duties: DutySenders) -> None:
        self.deployment = deployment
        self.bank = bank
        self._duties = duties

    def cities(self) -> list[City]:
        """The served cities with a custody account."""
        return [c for c in self.deployment.cities.values() if c.custody_account is not None]

    def attest(self, city: City) -> Attestation:
        directory = self.deployment.directory
        if city.custody_account is None or directory is None:
            raise ApiError(
                "no_custody",
                f"{city.name} names no custody account in the deployment: nothing to attest",
                accepted="a city whose configuration has a custody section (make deploy)",
                status_code=409,
            )
        try:
            given = self.bank.statement(city.custody_account)
        except BankUnavailable as error:
            raise ApiError(
                "bank_unavailable",
                f"the bank gave no statement of {city.custody_account}: {error}",
                accepted="the same request once the bank gives one",
                status_code=503,
            ) from None
        statement = Statement(
            custody_account_hash(city.custody_account), given.balance, given.as_of
        )
        signer = statement.signer(given.signature)
        if signer is None or signer != city.custody_signer:
            raise ApiError(
                "statement_not_the_banks",
                f"the statement of {city.custody_account} is signed by {signer}, not by the "
                f"bank's key {city.custody_signer} the city named: not recorded",
                accepted="a statement signed with the bank's configured key",
                status_code=502,
            )
        sender = self._duties.sender("registrar", city.roles["registrar"])
        args = (city.code, given.balance, given.as_of, given.signature)
        try:
            sent = sender.send(directory, "attestReserve", *args, purpose=PURPOSE)
        except ChainRefused as refused:
            raise ApiError(
                "chain_refused",
                f"the directory refused {city.name}'s statement: {refused.revert}",
                accepted="a statement newer than the last one recorded, signed by the bank",
                status_code=409,
            ) from None
        if not sent.succeeded:
            raise ApiError(
                "chain_refused",
                f"the statement reverted in block {sent.block_number} (a newer one recorded "
                "meanwhile?)",
                accepted="the same request again",
                status_code=409,
            )
        outstanding = city.chain.token.call("totalSupply", block=sent.block_number)
        log.info(
            "%s: bank statement of %s KRW at %s recorded (supply %s)",
            city.code,
            f"{given.balance:,}",
            given.as_of,
            f"{outstanding:,}",
            extra={"city": city.code, "tx_hash": sent.tx_hash, "block": sent.block_number},
        )
        return Attestation(
            city=city.code,
            account=city.custody_account,
            balance=given.balance,
            as_of=given.as_of,
            signer=signer,
            tx_hash=sent.tx_hash,
            block_number=sent.block_number,
            outstanding=outstanding,
        )

    def attest_all(self) -> None:
        """A round of the schedule: each city's statement; one city's failure stops no other."""
        for city in self.cities():
            try:
                self.attest(city)
            except ApiError as error:
                log.warning("%s: no bank statement recorded: %s", city.code, error.message)
