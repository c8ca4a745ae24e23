"""The backend on a network of its own (another chain id, every key in an encrypted keystore,
each city its own bank and relayer) serves every city with that city's keys; it refuses to start
when it could not do its duties, naming every missing or wrong key with its city and duty, and
refuses anvil's public development accounts off the embedded chain."""

from __future__ import annotations

import json
import shutil
import time

import httpx
import pytest
from citypay.authorization import TokenDomain, sign_authorization
from citypay.chain.keystore import development_accounts
from citypay.charging.notifications import sign
from citypay.wallet.client import WalletClient
from conftest import bearer, own_database_url, wait_for_status
from eth_account import Account
from platform_harness import (
    BANK_WEBHOOK_SECRET,
    KEYSTORE_PASSWORD,
    BackendUnderTest,
    OwnNetworkUnderTest,
    new_wallet,
)

CITIES = ("gimpo", "gongju", "ulsan")


@pytest.fixture(scope="module")
def own_network(tmp_path_factory):
    network = OwnNetworkUnderTest(tmp_path_factory.mktemp("own-network"))
    network.start_and_deploy()
    yield network
    network.stop()


def backend_on(network, folder, name: str, **settings) -> BackendUnderTest:
    server = BackendUnderTest(network, own_database_url(folder, name), folder / f"{name}.log")
    server.settings |= settings
    return server


def refused_start(server: BackendUnderTest) -> str:
    """Starts `server`, which must exit; its log."""
    with pytest.raises(RuntimeError, match="exited"):
        server.start(timeout=60)
    return server.log_path.read_text()


def deposit(api, city: str, bank_key: str, resident: str, amount: int) -> httpx.Response:
    body = json.dumps(
        {"depositId": f"dep-{time.time_ns()}", "resident": resident, "amount": amount}
    ).encode()
    timestamp = int(time.time())
    headers = bearer(bank_key) | {
        "Content-Type": "application/json",
        "X-Citypay-Timestamp": str(timestamp),
        "X-Citypay-Signature": sign(BANK_WEBHOOK_SECRET, timestamp, body),
    }
    return api.post(f"/v1/cities/{city}/deposits", content=body, headers=headers)


def test_a_backend_on_its_own_network_issues_and_relays_for_every_city_with_its_keys(
    own_network, tmp_path
):
    server = backend_on(
        own_network,
        tmp_path,
        "three-cities",
        ENVIRONMENT="production",
        LOG_FORMAT="text",
        CARD_KEY_ENCRYPTION_KEY="11" * 32,
    )
    server.start()
    try:
        with httpx.Client(base_url=server.url, timeout=30) as api:
            for code in CITIES:
                city = own_network.deployment.city(code)
                resident, merchant = (
                    new_wallet(f"own:{code}:resident"),
                    new_wallet(f"own:{code}:merchant"),
                )
                own_network.register_resident(code, resident)
                own_network.register_merchant(code, merchant)

                bank_key = server.api_key(f"{code}-bank", "bank", code)
                charged = deposit(api, code, bank_key, resident.address, 100_000)
                assert charged.status_code == 200, charged.text
                assert charged.json()["status"] == "issued"
                (issued,) = city.treasury.events.Issued.get_logs(
                    from_block=0, argument_filters={"resident": resident.address}
                )
                # Each city's bank issues its city's money, from the keystore.
                assert issued["args"]["issuer"] == own_network.accounts[f"{code}-bank"].address

                domain = TokenDomain(city.name, "1", own_network.chain_id, city.token.address)
                authorization = sign_authorization(
                    resident.key,
                    domain,
                    to=merchant.address,
                    value=30_000,
                    valid_before=int(time.time()) + 600,
                )
                accepted = api.post(f"/v1/cities/{code}/payments", json=authorization.as_json())
                assert accepted.status_code == 202, accepted.text
                paid = wait_for_status(api, accepted.json())
                assert paid["status"] == "included", paid
                batch = own_network.w3.eth.get_transaction(paid["transactionHash"])
                # ... and each city's batches go out from its own relayer.
                assert batch["from"] == own_network.accounts[f"{code}-relayer"].address
                assert city.token.functions.balanceOf(merchant.address).call() == 30_000

                # The merchant's refund goes out from its city's relayer too.
                with WalletClient(server.url, merchant, city=code) as shop:
                    refunded = shop.refund(resident.address, paid["nonce"], 5_000)
                assert refunded["status"] == "included", refunded
                refund = own_network.w3.eth.get_transaction(refunded["transactionHash"])
                assert refund["from"] == own_network.accounts[f"{code}-relayer"].address
                assert city.token.functions.balanceOf(merchant.address).call() == 25_000
    finally:
        server.stop()


def test_every_missing_or_wrong_key_is_named_with_its_city_and_duty(own_network, tmp_path):
    keys = tmp_path / "keys"
    shutil.copytree(own_network.backend_keys, keys)
    (keys / "gongju-bank.json").unlink()
    server = backend_on(
        own_network,
        tmp_path,
        "missing-keys",
        KEYSTORE_DIR=str(keys),
        CITY_KEYSTORE_PASSWORD_ULSAN_RELAYER="not the password",
    )
    log = refused_start(server)
    gongju_bank = own_network.accounts["gongju-bank"].address
    ulsan_relayer = own_network.accounts["ulsan-relayer"].address
    assert "cannot sign for its duties on chain id 2026 (2 problem(s))" in log
    assert f"gongju issuer: no key for gongju-bank ({gongju_bank}) in keystore folder {keys}" in log
    assert f"ulsan relayer: keystore {keys / 'ulsan-relayer.json'} (ulsan-relayer, " in log
    assert f"{ulsan_relayer}): wrong password" in log
    assert "$CITY_KEYSTORE_PASSWORD_ULSAN_RELAYER" in log
    assert "gimpo " not in log  # Gimpo's keys are all there


def test_a_relayer_of_the_pool_without_its_key_stops_the_start(own_network, tmp_path):
    # Gimpo's manifest names a second relayer (more_relayers) whose key the keystore lacks.
    manifest = json.loads(own_network.manifest.read_text())
    roles = manifest["cities"]["gimpo"]["roles"]
    second = Account.create().address
    roles["relayers"] = [roles["relayer"], second]
    pooled = own_network.manifest.with_name("pooled.json")
    pooled.write_text(json.dumps(manifest))
    server = backend_on(own_network, tmp_path, "pool-key", MANIFEST_PATH=str(pooled))
    log = refused_start(server)
    assert "(1 problem(s))" in log
    assert f"gimpo relayer: no key for {second} ({second}) in keystore folder" in log


def test_off_the_embedded_chain_the_keys_come_from_a_keystore(own_network, tmp_path):
    server = backend_on(own_network, tmp_path, "no-keystore")
    del server.settings["KEYSTORE_DIR"]
    log = refused_start(server)
    assert (
        "(1 problem(s)):\n  KEYSTORE_DIR is not set: on chain id 2026 the duty keys come from"
        in log
    )


def test_development_accounts_are_refused_off_the_embedded_chain(own_network, tmp_path):
    # A manifest naming anvil's public accounts as Gimpo's admin and bank, and anvil's key of
    # that bank imported into the keystore: the backend refuses the addresses whatever the keys.
    public = list(development_accounts().values())
    manifest = json.loads(own_network.manifest.read_text())
    roles = manifest["cities"]["gimpo"]["roles"]
    roles["city_admin"], roles["issuers"] = public[6].address, [public[8].address]
    public_manifest = own_network.manifest.with_name("public.json")
    public_manifest.write_text(json.dumps(manifest))
    keys = tmp_path / "keys"
    shutil.copytree(own_network.backend_keys, keys)
    encrypted = Account.encrypt(public[8].key, KEYSTORE_PASSWORD, kdf="pbkdf2", iterations=1_000)
    (keys / "anvil-8.json").write_text(json.dumps(encrypted))
    server = backend_on(
        own_network,
        tmp_path,
        "public-accounts",
        MANIFEST_PATH=str(public_manifest),
        KEYSTORE_DIR=str(keys),
    )
    log = refused_start(server)
    assert "(2 problem(s))" in log
    assert f"gimpo city_admin: {public[6].address} is development account #6" in log
    assert f"gimpo issuers: {public[8].address} is development account #8" in log


def test_a_backend_serves_only_the_cities_it_is_given(own_network, tmp_path):
    # Gimpo's bank and relayer keys are elsewhere: a backend for Gongju and Ulsan needs none.
    keys = tmp_path / "keys"
    shutil.copytree(own_network.backend_keys, keys)
    (keys / "gimpo-bank.json").unlink()
    (keys / "gimpo-relayer.json").unlink()
    server = backend_on(
        own_network, tmp_path, "two-cities", KEYSTORE_DIR=str(keys), CITIES="gongju, ulsan"
    )
    server.start()
    try:
        payer, nonce = new_wallet("nobody").address, "0x" + "00" * 32
        for code, answer in (("gimpo", "unknown_city"), ("gongju", "unknown_payment")):
            found = httpx.get(f"{server.url}/v1/cities/{code}/payments/{payer}/{nonce}", timeout=10)
            assert (found.status_code, found.json()["error"]["code"]) == (404, answer)
    finally:
        server.stop()
    server.settings["CITIES"] = "gongju,busan"
    log = refused_start(server)
    assert "CITIES names busan, which manifest" in log
    assert "(its cities: gimpo, gongju, ulsan)" in log


def test_the_wrong_chain_stops_the_start(chain, tmp_path):
    log_path = tmp_path / "backend.log"
    server = BackendUnderTest(chain, f"sqlite:///{tmp_path / 'db.sqlite3'}", log_path)
    server.settings["CHAIN_ID"] = "1337"
    with pytest.raises(RuntimeError, match="exited"):
        server.start(timeout=60)
    assert "runs chain id 58210, not CHAIN_ID 1337" in log_path.read_text()
