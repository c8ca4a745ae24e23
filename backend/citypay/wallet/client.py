"""A small wallet: pays a city's EIP-681 QR code with a gasless EIP-3009 authorization, and, for
a merchant, shows its QR, signs its application (its payout account, in the registry's domain),
refunds a payment with a signed RefundWithAuthorization and cashes out with a signed
CashOutAuthorization; for a resident, gives money to another with a signed GiftAuthorization.

It reads the QR's URI, checks the URI's chain id and token against the city the backend serves
(a QR for another chain or token is refused before anything is signed or posted), signs
TransferWithAuthorization with eth-account, posts it to the relay and waits for the result. A
refund is signed in the same domain, posted by the merchant's signed-in wallet (Sign-In with
Ethereum) and followed to inclusion the same way; a cash-out is signed for the payout account the
registry holds, posted the same way and followed until the bank's payout is settled on chain. A
gift is signed in the domain of the city's gifts contract, posted like a payment (the signature is
the giver's consent) and followed, signed in, to inclusion.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass

import httpx
from eth_account.signers.local import LocalAccount

from citypay.authorization import (
    GIFT_AUTHORIZATION,
    SignedAuthorization,
    SignedRefund,
    TokenDomain,
    sign_authorization,
    sign_refund,
)
from citypay.cashout.authorization import cash_out_body
from citypay.qr.eip681 import PaymentRequest, parse
from citypay.registry_authorization import sign_payout_account
from citypay.wallet.sign_in import sign_in

DONE = ("included", "failed")
# A cash-out is done once settled on chain (paid by the bank), returned (the bank refused) or
# refused by the chain; held stops it for an operator (cashout/models.py).
CASH_OUT_DONE = ("settled", "returned", "refused", "held")
# How long the signed authorization stays valid: the relay refuses one closer than 30 s to expiry.
AUTHORIZATION_LIFETIME = 10 * 60
# How long the registrar has to post a merchant's signed application.
APPLICATION_LIFETIME = 24 * 3600


class WalletError(RuntimeError):
    """The wallet refused to pay, or the backend refused the payment (its error, as sent)."""

    def __init__(self, message: str, error: dict | None = None) -> None:
        super().__init__(message)
        self.error = error or {}


@dataclass(frozen=True)
class CityInfo:
    code: str
    name: str
    chain_id: int
    token: str
    domain: TokenDomain


class WalletClient:
    def __init__(
        self,
        base_url: str,
        account: LocalAccount,
        *,
        city: str = "gimpo",
        http: httpx.Client | None = None,
    ) -> None:
        self.account = account
        self.city = city
        self._owns_http = http is None
        self.http = http or httpx.Client(base_url=base_url, timeout=30)
        self._info: CityInfo | None = None
        self._session: str | None = None

    def close(self) -> None:
        if self._owns_http:
            self.http.close()

    def __enter__(self) -> WalletClient:
        return self

    def __exit__(self, *_) -> None:
        self.close()

    @property
    def address(self) -> str:
        return self.account.address

    def city_info(self) -> CityInfo:
        if self._info is None:
            body = self._json(self.http.get(f"/v1/cities/{self.city}"), "reading the city")
            domain = body["domain"]
            self._info = CityInfo(
                code=body["code"],
                name=body["name"],
                chain_id=body["chainId"],
                token=body["token"],
                domain=TokenDomain.from_dict(domain),
            )
        return self._info

    def request(self, uri: str, amount: int | None = None) -> tuple[PaymentRequest, int]:
        """The URI's payment request and the amount to pay, checked against the city."""
        try:
            request = parse(uri)
        except ValueError as wrong:
            raise WalletError(f"not a payment QR: {wrong}") from None
        info = self.city_info()
        if request.chain_id != info.chain_id:
            raise WalletError(
                f"the QR asks for chain id {request.chain_id}, but {info.name} runs on chain id "
                f"{info.chain_id}: refusing to sign for another chain"
            )
        if request.token.lower() != info.token.lower():
            raise WalletError(
                f"the QR asks for token {request.token}, but {info.name}'s token is {info.token}: "
                "refusing to pay another token"
            )
        if request.amount is None:
            if amount is None or amount <= 0:
                raise WalletError("the QR names no amount: give the amount to pay (KRW, > 0)")
            return request, amount
        if request.amount <= 0:
            raise WalletError(f"the QR asks for {request.amount} KRW: nothing to pay")
        if amount is not None and amount != request.amount:
            raise WalletError(
                f"the invoice asks for {request.amount:,} KRW, not {amount:,}: "
                "pay the invoice's amount or leave the amount out"
            )
        return request, request.amount

    def sign(self, uri: str, amount: int | None = None) -> SignedAuthorization:
        request, value = self.request(uri, amount)
        nonce = None  # a static QR: a fresh random nonce
        if request.invoice_id is not None:
            # The invoice id is the nonce: it pays the invoice.
            nonce = parse_bytes32(request.invoice_id)
        return sign_authorization(
            self.account.key,
            self.city_info().domain,
            to=request.merchant,
            value=value,
            valid_before=int(time.time()) + AUTHORIZATION_LIFETIME,
            nonce=nonce,
        )

    def post(self, authorization: SignedAuthorization) -> dict:
        response = self.http.post(
            f"/v1/cities/{self.city}/payments", json=authorization.as_json(joined=True)
        )
        return self._json(response, "posting the payment")

    def wait(self, payment: dict, timeout: float = 60) -> dict:
        """Polls the payment's public status until it is included or failed."""
        path = f"/v1/cities/{payment['city']}/payments/{payment['payer']}/{payment['nonce']}"
        return self._follow(payment, path, "payment", timeout)

    def _follow(
        self, record: dict, path: str, what: str, timeout: float, done: tuple = DONE
    ) -> dict:
        """Polls `path` until the record's status is one of `done`."""
        deadline = time.monotonic() + timeout
        while record["status"] not in done:
            if time.monotonic() > deadline:
                raise WalletError(
                    f"{what} {record['id']} still {record['status']} after {timeout} s"
                )
            time.sleep(0.2)
            record = self._json(
                self.http.get(path, headers=self._headers()), f"reading the {what}'s status"
            )
        return record

    def balance(self, account: str | None = None) -> dict:
        """The account's balance and what it is made of: general money by expiry, each
        program's money, expired money awaiting the sweep (this wallet's by default)."""
        address = account or self.account.address
        response = self.http.get(f"/v1/cities/{self.city}/accounts/{address}/balance")
        return self._json(response, "reading the balance")

    def cashback(self, account: str | None = None) -> dict:
        """The account's cashback month: incentive counted this month against the limit, and
        what it owes from cashback a refund took back (this wallet's by default)."""
        address = account or self.account.address
        response = self.http.get(f"/v1/cities/{self.city}/accounts/{address}/cashback")
        return self._json(response, "reading the cashback")

    def pay(self, uri: str, amount: int | None = None, *, wait: bool = True, timeout: float = 60):
        """Pays the QR's URI; returns the payment, included or failed unless wait is False."""
        payment = self.post(self.sign(uri, amount))
        return self.wait(payment, timeout) if wait else payment

    # --- a merchant's refunds --------------------------------------------------------------

    def sign_refund(self, payer: str, payment_id: str, value: int) -> SignedRefund:
        """The merchant's RefundWithAuthorization of `value` KRW of `payer`'s payment
        `payment_id` (its invoice id or nonce, 0x-hex; zero for its plain transfers)."""
        if value <= 0:
            raise WalletError(f"the refund must be a positive amount of KRW, not {value}")
        return sign_refund(
            self.account.key,
            self.city_info().domain,
            payer=payer,
            payment_id=parse_bytes32(payment_id, "payment id"),
            value=value,
            valid_before=int(time.time()) + AUTHORIZATION_LIFETIME,
        )

    def refund(
        self, payer: str, payment_id: str, value: int, *, wait: bool = True, timeout: float = 60
    ) -> dict:
        """Refunds part or all of a payment made to this wallet's merchant; returns the refund,
        included or failed unless wait is False."""
        signed = self.sign_refund(payer, payment_id, value)
        refund = self._json(
            self.http.post(
                f"/v1/cities/{self.city}/refunds",
                json=signed.as_json(joined=True),
                headers=self._headers(sign_in_if_needed=True),
            ),
            "posting the refund",
        )
        path = f"/v1/cities/{refund['city']}/refunds/{refund['id']}"
        return self._follow(refund, path, "refund", timeout) if wait else refund

    # --- a resident's gifts -------------------------------------------------------------------

    def gift(self, to: str, amount: int, *, wait: bool = True, timeout: float = 60) -> dict:
        """Gives `amount` KRW of money bought with KRW to another resident, `to`; returns the
        gift, included or failed unless wait is False."""
        if amount <= 0:
            raise WalletError(f"the gift must be a positive amount of KRW, not {amount}")
        domain = self._json(
            self.http.get(f"/v1/cities/{self.city}/gift-domain"), "reading the gifts' domain"
        )
        now = int(time.time())
        signed = sign_authorization(
            self.account.key,
            TokenDomain.from_dict(domain),
            to=to,
            value=amount,
            # The gifts contract takes a window of a day at most: it opens a minute ago, not at 0.
            valid_after=now - 60,
            valid_before=now + AUTHORIZATION_LIFETIME,
            primary_type=GIFT_AUTHORIZATION,
        )
        gift = self._json(
            self.http.post(f"/v1/cities/{self.city}/gifts", json=signed.as_json(joined=True)),
            "posting the gift",
        )
        if not wait:
            return gift
        self._headers(sign_in_if_needed=True)  # a gift's status is for its giver and receiver
        return self._follow(gift, f"/v1/cities/{self.city}/gifts/{gift['id']}", "gift", timeout)

    # --- a merchant's QR, application and cash-outs ------------------------------------------

    def qr_uri(self) -> str:
        """This merchant's static QR code, as the EIP-681 URI a payer's wallet reads."""
        path = f"/v1/cities/{self.city}/merchants/{self.address}/qr"
        return self._json(self.http.get(path), "reading the QR code")["uri"]

    def merchant_application(
        self,
        *,
        business_id_hash: bytes,
        payout_account_hash: bytes,
        annual_revenue: int,
        category: int,
        region: int,
        lifetime: int = APPLICATION_LIFETIME,
    ) -> dict:
        """The body of the registrar's POST /v1/cities/{city}/merchants for this wallet, with
        this wallet's PayoutAccount signature (registry nonce 0) naming `payout_account_hash`
        as where its cash-outs are paid; valid for `lifetime` seconds."""
        domain = TokenDomain.from_dict(
            self._json(
                self.http.get(f"/v1/cities/{self.city}/registry-domain"),
                "reading the registry's domain",
            )
        )
        deadline = int(time.time()) + lifetime
        signature = sign_payout_account(
            self.account.key, domain, payout_account_hash=payout_account_hash, deadline=deadline
        )
        return {
            "wallet": self.address,
            "businessIdHash": "0x" + business_id_hash.hex(),
            "payoutAccountHash": "0x" + payout_account_hash.hex(),
            "annualRevenue": annual_revenue,
            "category": category,
            "region": region,
            "deadline": deadline,
            "signature": "0x" + signature.hex(),
        }

    def cash_out(self, amount: int, *, wait: bool = True, timeout: float = 60) -> dict:
        """Cashes `amount` KRW out to the payout account the registry holds for this merchant;
        returns the cash-out, settled, returned or refused unless wait is False."""
        if amount <= 0:
            raise WalletError(f"the cash-out must be a positive amount of KRW, not {amount}")
        merchant = f"/v1/cities/{self.city}/merchants/{self.address}"
        payout = self._json(
            self.http.get(f"{merchant}/payout-account"), "reading the payout account"
        )
        domain = self._json(
            self.http.get(f"/v1/cities/{self.city}/cashout-domain"), "reading the treasury"
        )
        body = cash_out_body(
            self.account.key,
            TokenDomain.from_dict(domain),
            amount=amount,
            payout_account_hash=bytes.fromhex(payout["payoutAccountHash"][2:]),
            valid_before=int(time.time()) + AUTHORIZATION_LIFETIME,
            nonce=os.urandom(32),
        )
        cash_out = self._json(
            self.http.post(
                f"{merchant}/cashouts", json=body, headers=self._headers(sign_in_if_needed=True)
            ),
            "posting the cash-out",
        )
        path = f"{merchant}/cashouts/{cash_out['id']}"
        if not wait:
            return cash_out
        return self._follow(cash_out, path, "cash-out", timeout, CASH_OUT_DONE)

    def _headers(self, *, sign_in_if_needed: bool = False) -> dict:
        """The wallet's signed-in session: refunds and a gift's status need one, payments
        none."""
        if self._session is None and sign_in_if_needed:
            self._session = sign_in(self.http, self.account)
        return {"Authorization": f"Bearer {self._session}"} if self._session else {}

    @staticmethod
    def _json(response: httpx.Response, doing: str) -> dict:
        if response.is_success:
            return response.json()
        try:
            error = response.json().get("error", {})
        except ValueError:
            error = {}
        message = error.get("message") or response.text[:200]
        raise WalletError(f"{doing}: HTTP {response.status_code}: {message}", error)


def parse_bytes32(value: str, what: str = "invoice id") -> bytes:
    try:
        raw = bytes.fromhex(value.removeprefix("0x"))
    except ValueError:
        raw = b""
    if len(raw) != 32:
        raise WalletError(f"the {what} {value} is not 32 bytes of hex")
    return raw
