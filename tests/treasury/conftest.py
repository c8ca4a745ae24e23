"""Fixtures for the treasury's tests. The registry's and the directory's conftests import the
generic ones from here (helpers, as_hex, kst, reverts_with), the access-control test imports
error_message.

This folder is a package so that its conftest does not replace the root conftest in
sys.modules: every conftest.py outside a package is imported as `conftest`, each one replacing
the last, so no test here imports from `conftest`; the root's helpers come from the `helpers`
fixture instead.
"""

from __future__ import annotations

import itertools
from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import brownie
import pytest
from brownie import (
    CityCashback,
    CityDirectory,
    CityGifts,
    CityPrograms,
    CityRegistry,
    CityToken,
    CityTreasury,
    chain,
)
from citypay.cashout.authorization import (
    sign_cash_out,
    sign_cash_out_cancellation,
    treasury_domain_for,
)
from eth_abi import decode, encode
from eth_utils import keccak
from hexbytes import HexBytes

ROOT_CONFTEST = Path(__file__).resolve().parents[1] / "conftest.py"
KST = ZoneInfo("Asia/Seoul")
_deposit_counter = itertools.count(1)
_cash_out_nonces = itertools.count(1)


# --- Exact custom errors ----------------------------------------------------------------------


def _error_types(name: str) -> list[str]:
    contracts = (
        CityToken, CityRegistry, CityTreasury, CityDirectory, CityPrograms, CityGifts, CityCashback
    )  # fmt: skip
    for container in contracts:
        for item in container.abi:
            if item["type"] == "error" and item["name"] == name:
                return [i["type"] for i in item["inputs"]]
    raise LookupError(f"no custom error {name} in the city contracts' ABIs")


def error_message(name: str, *args) -> str:
    """A custom error as Brownie renders it ('Name: arg1, arg2'): the arguments go through an ABI
    round trip so addresses, bytes and enums read exactly as decoded revert data does."""
    types = _error_types(name)
    values = [arg.address if hasattr(arg, "address") else arg for arg in args]
    decoded = decode(types, encode(types, values))
    return f"{name}: {', '.join(str(v) for v in decoded)}"


def error_data(name: str, *args) -> str:
    """A custom error's revert data (selector and ABI-encoded arguments), as a batch reports it."""
    types = _error_types(name)
    values = [arg.address if hasattr(arg, "address") else arg for arg in args]
    selector = keccak(text=f"{name}({','.join(types)})")[:4]
    return "0x" + (selector + encode(types, values)).hex()


@pytest.fixture(scope="session")
def revert_data_of():
    """`revert_data_of("EIP3009InvalidSignature", wallet)`: what AuthorizationFailed reports."""
    return error_data


@pytest.fixture(scope="session")
def reverts_with():
    """`with reverts_with("CityTreasuryZeroAmount"):` expects exactly that error and arguments."""

    def reverts_with_(name: str, *args):
        return brownie.reverts(error_message(name, *args))

    return reverts_with_


@pytest.fixture(scope="session")
def helpers(request):
    """The root conftest module: identity_hash, business_hash, account_hash, deposit_reference."""
    return request.config.pluginmanager.get_plugin(str(ROOT_CONFTEST))


def hex32(value: bytes) -> str:
    """A bytes32 as Brownie shows event values."""
    return "0x" + bytes(value).hex()


@pytest.fixture(scope="session")
def as_hex():
    return hex32


# --- The Korean calendar on the chain's clock -------------------------------------------------


class KoreanClock:
    """Moves the chain's clock to moments of the Korean calendar (KST, UTC+9, no DST)."""

    def now(self) -> datetime:
        return datetime.fromtimestamp(chain.time(), KST)

    @staticmethod
    def month_index(moment: datetime) -> int:
        """KoreanCalendar.monthIndex: year * 12 + month - 1, in KST."""
        local = moment.astimezone(KST)
        return local.year * 12 + local.month - 1

    def next_month_start(self) -> datetime:
        now = self.now()
        year, month = (now.year + 1, 1) if now.month == 12 else (now.year, now.month + 1)
        return datetime(year, month, 1, tzinfo=KST)

    def next_year_start(self) -> datetime:
        return datetime(self.now().year + 1, 1, 1, tzinfo=KST)

    def sleep_until(self, moment: datetime) -> None:
        """Sleeps the chain to `moment` (give it a margin: a block may come a second later) and
        mines a block there, so views see the new time."""
        seconds = int(moment.timestamp()) - chain.time()
        assert seconds > 0, f"{moment} is not in the chain's future"
        chain.sleep(seconds)
        chain.mine()

    def sleep_past(self, moment: datetime, margin: timedelta = timedelta(hours=1)) -> None:
        self.sleep_until(moment + margin)


@pytest.fixture(scope="session")
def kst():
    return KoreanClock()


# --- Accounts and money -----------------------------------------------------------------------


@pytest.fixture(scope="module")
def resident3():
    """A wallet for a resident with nothing charged yet (see fresh_resident)."""
    return brownie.accounts.add(keccak(text="city-token-test-wallet:treasury-resident-3"))


@pytest.fixture
def fresh_resident(city, register_resident, resident3):
    """Registered in the test's own state (function scope), so other tests never see it."""
    register_resident(resident3)
    return resident3


@pytest.fixture(scope="session")
def new_reference():
    """A deposit reference of its own namespace, so it never meets the root conftest's."""

    def new_reference_() -> bytes:
        return keccak(text=f"treasury-test-deposit:{next(_deposit_counter)}")

    return new_reference_


@pytest.fixture
def paid_merchant(city, token, resident, merchant):
    """The merchant, paid 60,000 KRW by the resident (who keeps 50,000 of its 110,000)."""
    token.transfer(merchant, 60_000, {"from": resident})
    return merchant


# --- A merchant's signed cash-out -------------------------------------------------------------


@pytest.fixture(scope="module")
def treasury_domain(treasury, token):
    """The treasury's EIP-712 domain: merchants sign their cash-outs in it."""
    return treasury_domain_for(token.name(), chain.id, treasury.address)


@pytest.fixture(scope="module")
def authorize_cash_out(treasury_domain, registry):
    """The merchant's signed cash-out, as cashOutWithAuthorization takes it: [merchant, amount,
    payoutAccountHash, validAfter, validBefore, nonce, signature]. Signed by the merchant's key,
    or by `signer`'s (a contract wallet's owner, or a forger); to the payout account the registry
    holds unless `payout_account` is given; valid from a minute ago for an hour unless told."""

    def authorize(
        merchant,
        amount: int,
        *,
        signer=None,
        payout_account: bytes | None = None,
        valid_after: int | None = None,
        valid_before: int | None = None,
        nonce: bytes | None = None,
    ) -> list:
        valid_after = chain.time() - 60 if valid_after is None else valid_after
        valid_before = chain.time() + 3600 if valid_before is None else valid_before
        nonce = (
            keccak(text=f"treasury-test-cash-out:{next(_cash_out_nonces)}")
            if nonce is None
            else nonce
        )
        if payout_account is None:
            payout_account = bytes(HexBytes(registry.merchantOf(merchant)["payoutAccountHash"]))
        signature = sign_cash_out(
            (signer or merchant).private_key,
            treasury_domain,
            amount=amount,
            payout_account_hash=payout_account,
            valid_after=valid_after,
            valid_before=valid_before,
            nonce=nonce,
            merchant=merchant.address,
        )
        return [merchant, amount, payout_account, valid_after, valid_before, nonce, signature]

    return authorize


@pytest.fixture(scope="module")
def cash_out_cancellation(treasury_domain):
    """The merchant's signed CancelCashOutAuthorization, as cancelCashOutAuthorization takes it:
    [merchant, nonce, signature], signed by the merchant's key or by `signer`'s."""

    def cancel(merchant, nonce: bytes, *, signer=None) -> list:
        signature = sign_cash_out_cancellation(
            (signer or merchant).private_key,
            treasury_domain,
            nonce=nonce,
            merchant=merchant.address,
        )
        return [merchant, nonce, signature]

    return cancel
