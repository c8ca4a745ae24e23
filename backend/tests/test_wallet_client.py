"""The wallet client and its command line pay a city's QR codes through the relay."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import httpx
import pytest
from citypay.qr.eip681 import invoice_uri, static_uri
from citypay.wallet.client import WalletClient, WalletError
from conftest import CITY, bearer
from eth_account import Account
from platform_harness import ROOT


def invoice(api, keys, merchant, amount: int) -> dict:
    response = api.post(
        f"/v1/cities/{CITY}/invoices",
        json={"merchant": merchant.address, "amount": amount},
        headers=bearer(keys["pos"]),
    )
    assert response.status_code == 201, response.text
    return response.json()


@pytest.fixture
def posted(backend):
    """A client whose HTTP calls are recorded, to show what was (not) sent."""
    requests: list[httpx.Request] = []
    with httpx.Client(
        base_url=backend.url, timeout=30, event_hooks={"request": [requests.append]}
    ) as http:
        yield http, requests


def test_the_city_tells_a_wallet_its_chain_token_and_domain(api, city, chain):
    info = api.get(f"/v1/cities/{CITY}").json()
    assert (info["chainId"], info["token"], info["decimals"]) == (58210, city.token.address, 0)
    assert info["domain"] == {
        "name": city.name,
        "version": "1",
        "chainId": 58210,
        "verifyingContract": city.token.address,
    }
    assert api.get("/v1/cities/atlantis").status_code == 404


def test_a_static_qr_is_paid_with_the_amount_the_payer_gives(
    api, backend, city, resident, merchant
):
    uri = api.get(f"/v1/cities/{CITY}/merchants/{merchant.address}/qr").json()["uri"]
    before = city.token.functions.balanceOf(merchant.address).call()
    wallet = WalletClient(backend.url, resident)
    with pytest.raises(WalletError, match="no amount"):
        wallet.pay(uri)
    payment = wallet.pay(uri, 8_500)
    assert (payment["status"], payment["payer"], payment["value"]) == (
        "included",
        resident.address,
        8_500,
    )
    assert city.token.functions.balanceOf(merchant.address).call() == before + 8_500


def test_an_invoice_qr_is_paid_with_the_invoice_id_as_nonce(api, backend, keys, resident, merchant):
    sale = invoice(api, keys, merchant, 4_200)
    wallet = WalletClient(backend.url, resident)
    with pytest.raises(WalletError, match="asks for 4,200 KRW"):
        wallet.pay(sale["uri"], 5_000)
    payment = wallet.pay(sale["uri"])
    assert payment["status"] == "included"
    assert payment["invoiceId"] == payment["nonce"] == sale["invoiceId"]


@pytest.mark.parametrize("other", ["chain", "token"])
def test_a_qr_for_another_chain_or_token_is_refused_before_anything_is_posted(
    posted, chain, city, resident, merchant, other
):
    http, requests = posted
    token, chain_id = city.token.address, 58210
    if other == "chain":
        chain_id = 1
    else:
        token = chain.deployment.city("gongju").token.address
    wallet = WalletClient("unused", resident, http=http)
    with pytest.raises(WalletError, match=f"another {other}"):
        wallet.pay(static_uri(token, chain_id, merchant.address), 1_000)
    assert [r.method for r in requests] == ["GET"]  # the city's info, nothing else


def test_the_command_line_pays_an_invoice_with_a_keystore(
    api, backend, keys, resident, merchant, tmp_path
):
    sale = invoice(api, keys, merchant, 3_300)
    keystore = tmp_path / "wallet.json"
    # pbkdf2 with few iterations: a fast test; real keystores use eth-account's scrypt default.
    keystore.write_text(
        json.dumps(Account.encrypt(resident.key, "s3cret", kdf="pbkdf2", iterations=1_000))
    )
    env = {**os.environ, "CITYPAY_WALLET_PASSWORD": "s3cret"}

    def wallet(*args):
        return subprocess.run(
            [sys.executable, "-m", "citypay.wallet", *args],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=90,
        )

    address = wallet("address", "--key-file", str(keystore))
    assert address.stdout.strip() == resident.address, address.stderr
    paid = wallet(
        "pay", sale["uri"], "--key-file", str(keystore), "--api", backend.url, "--city", CITY
    )
    assert paid.returncode == 0, paid.stderr
    payment = json.loads(paid.stdout)
    assert (payment["status"], payment["invoiceId"]) == ("included", sale["invoiceId"])


def test_the_command_line_reads_a_hex_key_and_reports_a_refusal(backend, resident, tmp_path):
    key_file = tmp_path / "dev.key"
    key_file.write_text("0x" + resident.key.hex() + "\n")
    args = ["pay", "ethereum:nonsense", "--amount", "10", "--key-file", str(key_file)]
    done = subprocess.run(
        [sys.executable, "-m", "citypay.wallet", *args, "--api", backend.url],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2 and "not a payment QR" in done.stderr


@pytest.mark.parametrize(
    ("amount", "why"),
    [
        ("1.5005e3", "not a whole number of KRW"),  # 1500.5: it was paid as 1500
        ("1500.5", "not a whole number of KRW"),
        ("0.5", "not a whole number of KRW"),
        ("1e79", "larger than a uint256"),
        ("-1500", "not an EIP-681 number"),
        ("1,500", "not an EIP-681 number"),
        ("0", "nothing to pay"),
    ],
)
def test_a_qr_amount_that_is_not_a_whole_number_of_krw_is_refused_never_rounded(
    posted, city, resident, merchant, amount, why
):
    http, requests = posted
    uri = invoice_uri(city.token.address, 58210, merchant.address, 1500, "0x" + "ab" * 32)
    uri = uri.replace("uint256=1500", f"uint256={amount}")
    with pytest.raises(WalletError, match=why):
        WalletClient("unused", resident, http=http).pay(uri)
    assert "POST" not in [r.method for r in requests]  # nothing signed or posted


def test_scientific_notation_that_names_a_whole_number_pays_exactly_that(
    api, backend, keys, city, resident, merchant
):
    sale = invoice(api, keys, merchant, 1_500)
    written = sale["uri"].replace("uint256=1500", "uint256=1.5e3")  # EIP-681 allows it
    assert written != sale["uri"]
    payment = WalletClient(backend.url, resident).pay(written)
    assert (payment["status"], payment["value"], payment["invoiceId"]) == (
        "included",
        1_500,
        sale["invoiceId"],
    )


def test_a_new_wallet_never_overwrites_a_key_file(tmp_path):
    key_file = tmp_path / "wallets" / "phone.json"
    env = {**os.environ, "CITYPAY_WALLET_PASSWORD": "s3cret"}

    def new():
        return subprocess.run(
            [sys.executable, "-m", "citypay.wallet", "new", "--key-file", str(key_file)],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
        )

    made = new()
    assert made.returncode == 0, made.stderr
    written = key_file.read_text()
    assert Account.decrypt(json.loads(written), "s3cret")  # the password opens it
    assert json.loads(written)["address"].lower() == made.stdout.strip()[2:].lower()
    again = new()
    assert again.returncode == 2 and "already exists" in again.stderr
    assert key_file.read_text() == written


def test_a_cash_out_of_nothing_is_refused_before_anything_is_signed(posted, merchant):
    http, requests = posted
    with pytest.raises(WalletError, match="positive amount"):
        WalletClient("unused", merchant, http=http).cash_out(0)
    assert requests == []
