"""The merchant names where its cash-outs go (issue 9, item 2): the payout account is set at
registration and changed only with the merchant's own EIP-712 PayoutAccount(merchant,
payoutAccountHash, nonce, deadline) signature in the registry's domain, one nonce per merchant, so
the registrar alone cannot set or redirect it and an older signature cannot set an old account
back. (The treasury's side, the account named in every signed cash-out, is in
tests/treasury/test_cash_out_payout_account.py.)"""

import dataclasses

import pytest
from citypay.registry_authorization import sign_payout_account
from hexbytes import HexBytes

FAR = 2**40  # a deadline that never passes in these tests


@pytest.fixture(scope="module")
def shop(new_wallet):
    """A business applying as a merchant."""
    return new_wallet("payout:shop")


@pytest.fixture(scope="module")
def signed_by(registry_domain):
    """PayoutAccount(merchant, account, nonce, deadline) signed with `signer`'s key (the merchant's
    own unless told)."""

    def sign(
        merchant, account: bytes, *, nonce: int, deadline: int = FAR, signer=None, domain=None
    ):
        return sign_payout_account(
            (signer or merchant).private_key,
            domain or registry_domain,
            payout_account_hash=account,
            nonce=nonce,
            deadline=deadline,
            merchant=merchant.address,
        )

    return sign


@pytest.fixture
def register(registry, registrar, application):
    """Registers `shop` with its application for the business "shop" and the given signature."""

    def register_(shop_, signature: bytes, *, deadline: int = FAR, payout_account=None):
        app = application("shop", payout_account=payout_account)
        return registry.registerMerchant(shop_, app, deadline, signature, {"from": registrar})

    return register_


# --- At registration --------------------------------------------------------------------------


def test_registration_records_the_payout_account_the_merchant_signed(
    registry, shop, register, signed_by, helpers, as_hex
):
    account = helpers.account_hash("shop")
    register(shop, signed_by(shop, account, nonce=0))
    assert registry.merchantOf(shop)["payoutAccountHash"] == as_hex(account)
    assert registry.payoutAccountNonce(shop) == 1


def test_registration_refuses_a_payout_signature_by_another_key(
    registry, shop, merchant2, register, signed_by, helpers, reverts_with
):
    signature = signed_by(shop, helpers.account_hash("shop"), nonce=0, signer=merchant2)
    with reverts_with("CityRegistryInvalidSignature", shop):
        register(shop, signature)
    assert registry.merchantOf(shop)["status"] == 0


def test_registration_refuses_a_signature_for_another_payout_account(
    shop, register, signed_by, helpers, reverts_with
):
    signature = signed_by(shop, helpers.account_hash("somebody else's account"), nonce=0)
    with reverts_with("CityRegistryInvalidSignature", shop):
        register(shop, signature)


def test_registration_refuses_a_signature_for_another_deadline(
    shop, register, signed_by, helpers, reverts_with
):
    signature = signed_by(shop, helpers.account_hash("shop"), nonce=0, deadline=FAR)
    with reverts_with("CityRegistryInvalidSignature", shop):
        register(shop, signature, deadline=FAR + 1)


def test_registration_refuses_a_signature_with_a_nonce_other_than_zero(
    shop, register, signed_by, helpers, reverts_with
):
    signature = signed_by(shop, helpers.account_hash("shop"), nonce=1)
    with reverts_with("CityRegistryInvalidSignature", shop):
        register(shop, signature)


def test_registration_refuses_a_signature_made_for_another_registry(
    registry_domain, treasury, shop, register, signed_by, helpers, reverts_with
):
    elsewhere = dataclasses.replace(registry_domain, verifying_contract=treasury.address)
    signature = signed_by(shop, helpers.account_hash("shop"), nonce=0, domain=elsewhere)
    with reverts_with("CityRegistryInvalidSignature", shop):
        register(shop, signature)


def test_registration_refuses_an_expired_deadline(
    shop, register, signed_by, helpers, pin_next_block_time, reverts_with
):
    now = pin_next_block_time()
    signature = signed_by(shop, helpers.account_hash("shop"), nonce=0, deadline=now - 1)
    with reverts_with("CityRegistrySignatureExpired", shop, now - 1, now):
        register(shop, signature, deadline=now - 1)


def test_registration_accepts_a_deadline_equal_to_the_block_time(
    registry, shop, register, signed_by, helpers, pin_next_block_time
):
    now = pin_next_block_time()
    register(
        shop, signed_by(shop, helpers.account_hash("shop"), nonce=0, deadline=now), deadline=now
    )
    assert registry.isActiveMerchant(shop)


def test_registration_refuses_an_empty_payout_account(shop, register, signed_by, reverts_with):
    signature = signed_by(shop, bytes(32), nonce=0)
    with reverts_with("CityRegistryEmptyHash", "payoutAccountHash"):
        register(shop, signature, payout_account=bytes(32))


# --- A signed change --------------------------------------------------------------------------


def test_change_payout_account_with_the_merchant_s_signature_emits_old_and_new(
    registry, registrar, city, merchant, signed_by, helpers, as_hex
):
    new_account = helpers.account_hash("merchant-1 new bank")
    signature = signed_by(merchant, new_account, nonce=1)
    tx = registry.changePayoutAccount(merchant, new_account, FAR, signature, {"from": registrar})
    assert tx.events["PayoutAccountChanged"].values() == [
        merchant.address,
        as_hex(helpers.account_hash(merchant.address)),
        as_hex(new_account),
    ]


def test_change_payout_account_records_the_new_account_and_uses_the_nonce(
    registry, registrar, city, merchant, signed_by, helpers, as_hex
):
    new_account = helpers.account_hash("merchant-1 new bank")
    registry.changePayoutAccount(
        merchant, new_account, FAR, signed_by(merchant, new_account, nonce=1), {"from": registrar}
    )
    assert registry.merchantOf(merchant)["payoutAccountHash"] == as_hex(new_account)
    assert registry.payoutAccountNonce(merchant) == 2


def test_a_change_signature_replayed_is_refused(
    registry, registrar, city, merchant, signed_by, helpers, reverts_with
):
    new_account = helpers.account_hash("merchant-1 new bank")
    signature = signed_by(merchant, new_account, nonce=1)
    registry.changePayoutAccount(merchant, new_account, FAR, signature, {"from": registrar})
    with reverts_with("CityRegistryInvalidSignature", merchant):
        registry.changePayoutAccount(merchant, new_account, FAR, signature, {"from": registrar})


def test_an_older_signature_cannot_set_an_old_account_back(
    registry, registrar, city, merchant, signed_by, helpers, reverts_with, as_hex
):
    first, second = helpers.account_hash("bank one"), helpers.account_hash("bank two")
    first_signature = signed_by(merchant, first, nonce=1)
    registry.changePayoutAccount(merchant, first, FAR, first_signature, {"from": registrar})
    registry.changePayoutAccount(
        merchant, second, FAR, signed_by(merchant, second, nonce=2), {"from": registrar}
    )
    with reverts_with("CityRegistryInvalidSignature", merchant):
        registry.changePayoutAccount(merchant, first, FAR, first_signature, {"from": registrar})
    assert registry.merchantOf(merchant)["payoutAccountHash"] == as_hex(second)


def test_the_registration_signature_cannot_be_replayed_as_a_change(
    registry, registrar, city, merchant, signed_by, helpers, reverts_with
):
    original = helpers.account_hash(merchant.address)
    with reverts_with("CityRegistryInvalidSignature", merchant):
        registry.changePayoutAccount(
            merchant, original, FAR, signed_by(merchant, original, nonce=0), {"from": registrar}
        )


def test_the_registrar_cannot_change_a_payout_account_without_a_signature(
    registry, registrar, city, merchant, helpers, reverts_with
):
    with reverts_with("CityRegistryInvalidSignature", merchant):
        registry.changePayoutAccount(
            merchant, helpers.account_hash("registrar's pick"), FAR, b"", {"from": registrar}
        )


def test_the_registrar_cannot_change_a_payout_account_with_another_key_s_signature(
    registry, registrar, city, merchant, stranger, signed_by, helpers, reverts_with, as_hex
):
    pick = helpers.account_hash("registrar's pick")
    signature = signed_by(merchant, pick, nonce=1, signer=stranger)
    with reverts_with("CityRegistryInvalidSignature", merchant):
        registry.changePayoutAccount(merchant, pick, FAR, signature, {"from": registrar})
    assert registry.merchantOf(merchant)["payoutAccountHash"] == as_hex(
        helpers.account_hash(merchant.address)
    )


def test_update_merchant_leaves_the_payout_account_alone(
    registry, registrar, city, merchant, helpers, as_hex
):
    registry.updateMerchant(merchant, 4721, 41571, 100_000_000, {"from": registrar})
    assert registry.merchantOf(merchant)["payoutAccountHash"] == as_hex(
        helpers.account_hash(merchant.address)
    )


def test_change_payout_account_refuses_an_expired_deadline(
    registry, registrar, city, merchant, signed_by, helpers, pin_next_block_time, reverts_with
):
    now = pin_next_block_time()
    new_account = helpers.account_hash("merchant-1 new bank")
    signature = signed_by(merchant, new_account, nonce=1, deadline=now - 1)
    with reverts_with("CityRegistrySignatureExpired", merchant, now - 1, now):
        registry.changePayoutAccount(merchant, new_account, now - 1, signature, {"from": registrar})


def test_change_payout_account_refuses_an_empty_account(
    registry, registrar, city, merchant, signed_by, reverts_with
):
    signature = signed_by(merchant, bytes(32), nonce=1)
    with reverts_with("CityRegistryEmptyHash", "payoutAccountHash"):
        registry.changePayoutAccount(merchant, bytes(32), FAR, signature, {"from": registrar})


def test_change_payout_account_refuses_a_resident(
    registry, registrar, city, resident, signed_by, helpers, reverts_with
):
    account = helpers.account_hash("resident's bank")
    signature = signed_by(resident, account, nonce=0)
    with reverts_with("CityRegistryNotMerchant", resident):
        registry.changePayoutAccount(resident, account, FAR, signature, {"from": registrar})


def test_the_merchant_cannot_send_its_change_without_the_registrar(
    registry, city, merchant, signed_by, helpers, reverts_with
):
    """The registrar checks the bank account belongs to the business; the merchant's signature
    decides it: both are needed."""
    account = helpers.account_hash("merchant-1 new bank")
    signature = signed_by(merchant, account, nonce=1)
    with reverts_with(
        "AccessControlUnauthorizedAccount", merchant, HexBytes(registry.REGISTRAR_ROLE())
    ):
        registry.changePayoutAccount(merchant, account, FAR, signature, {"from": merchant})


def test_a_revoked_merchant_changes_its_payout_account_for_its_closing_cash_out(
    registry, registrar, city, merchant, signed_by, helpers, as_hex
):
    registry.revoke(merchant, False, {"from": registrar})
    account = helpers.account_hash("merchant-1 closing bank")
    registry.changePayoutAccount(
        merchant, account, FAR, signed_by(merchant, account, nonce=1), {"from": registrar}
    )
    assert registry.merchantOf(merchant)["payoutAccountHash"] == as_hex(account)


def test_after_a_recovery_the_replacement_signs_the_change_and_the_lost_key_cannot(
    recover_wallet,
    registry,
    registrar,
    city,
    merchant,
    new_wallet,
    signed_by,
    helpers,
    as_hex,
    reverts_with,
):
    replacement = new_wallet("payout:replacement")
    recover_wallet(merchant, replacement)
    account = helpers.account_hash("replacement's bank")
    with reverts_with("CityRegistryInvalidSignature", replacement):
        registry.changePayoutAccount(
            replacement,
            account,
            FAR,
            signed_by(replacement, account, nonce=0, signer=merchant),
            {"from": registrar},
        )
    registry.changePayoutAccount(
        replacement, account, FAR, signed_by(replacement, account, nonce=0), {"from": registrar}
    )
    assert registry.merchantOf(replacement)["payoutAccountHash"] == as_hex(account)
