"""Sign-In with Ethereum from a wallet's side: ask for a nonce, sign an EIP-4361 message."""

from __future__ import annotations

from datetime import UTC, datetime

import httpx
from eth_account import Account
from eth_account.messages import encode_defunct
from siwe import SiweMessage


def siwe_message(*, domain: str, uri: str, address: str, chain_id: int, nonce: str) -> str:
    return SiweMessage(
        domain=domain,
        address=address,
        statement="Sign in to the city token platform.",
        uri=uri,
        version="1",
        chain_id=chain_id,
        nonce=nonce,
        issued_at=datetime.now(UTC).isoformat().replace("+00:00", "Z"),
    ).prepare_message()


def sign_in(client: httpx.Client, account: Account) -> str:
    """Signs `account` in to the backend `client` talks to; returns the session's bearer token."""
    challenge = client.post("/v1/auth/nonce")
    challenge.raise_for_status()
    offer = challenge.json()
    message = siwe_message(
        domain=offer["domain"],
        uri=str(client.base_url),
        address=account.address,
        chain_id=offer["chainId"],
        nonce=offer["nonce"],
    )
    signature = account.sign_message(encode_defunct(text=message)).signature
    answer = client.post(
        "/v1/auth/siwe", json={"message": message, "signature": "0x" + signature.hex()}
    )
    answer.raise_for_status()
    return answer.json()["token"]
