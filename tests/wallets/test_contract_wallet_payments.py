"""A contract wallet (ERC-1271) pays: its owner signs the EIP-3009 authorizations for it, which
the `bytes signature` variants accept. The (v, r, s) fast path and the relayer's batch check
ECDSA only (no EXTCODESIZE per payment) and refuse it, without voiding it: the wallet sends the
same authorization through the `bytes` variant instead."""

import brownie
from citypay.authorization import RECEIVE_WITH_AUTHORIZATION
from eth_utils import keccak

TRANSFER_BYTES = "address,address,uint256,uint256,uint256,bytes32,bytes"
TRANSFER_VRS = "address,address,uint256,uint256,uint256,bytes32,uint8,bytes32,bytes32"
CANCEL_BYTES = "address,bytes32,bytes"
CANCEL_VRS = "address,bytes32,uint8,bytes32,bytes32"


def bytes_args(authorization, signature: bytes) -> tuple:
    """The `bytes` variant's arguments: the authorization's terms, then the signature."""
    return (*authorization.as_args()[:6], signature)


# --- transferWithAuthorization and receiveWithAuthorization, bytes signature ------------------


def test_a_contract_wallet_pays_with_its_owner_s_signature(
    token, resident_wallet, owner, merchant, relayer, sign_for_wallet, as_hex
):
    auth, signature = sign_for_wallet(resident_wallet, owner, merchant, 7_000)
    tx = token.transferWithAuthorization[TRANSFER_BYTES](
        *bytes_args(auth, signature), {"from": relayer}
    )
    assert tx.events["AuthorizationUsed"].values() == [resident_wallet.address, as_hex(auth.nonce)]
    assert tx.events["Transfer"].values() == [resident_wallet.address, merchant.address, 7_000]
    assert (token.balanceOf(resident_wallet), token.balanceOf(merchant)) == (103_000, 7_000)


def test_a_contract_wallet_s_payment_is_refundable_by_its_nonce(
    token, resident_wallet, owner, merchant, relayer, sign_for_wallet
):
    auth, signature = sign_for_wallet(resident_wallet, owner, merchant, 7_000)
    token.transferWithAuthorization[TRANSFER_BYTES](*bytes_args(auth, signature), {"from": relayer})
    token.refund(resident_wallet, auth.nonce, 7_000, {"from": merchant})
    assert token.balanceOf(resident_wallet) == 110_000


def test_a_contract_wallet_s_authorization_signed_by_another_key_is_refused(
    token, resident_wallet, intruder, merchant, relayer, sign_for_wallet, reverts_with
):
    auth, signature = sign_for_wallet(resident_wallet, intruder, merchant, 7_000)
    with reverts_with("EIP3009InvalidSignature", resident_wallet):
        token.transferWithAuthorization[TRANSFER_BYTES](
            *bytes_args(auth, signature), {"from": relayer}
        )
    assert token.authorizationState(resident_wallet, auth.nonce) is False


def test_an_authorization_signed_by_the_owner_for_itself_does_not_pay_from_the_wallet(
    token, resident_wallet, owner, merchant, relayer, sign_for_wallet, reverts_with
):
    """The signature names the wallet it pays from: the owner's own address is another payer."""
    auth, signature = sign_for_wallet(owner, owner, merchant, 7_000)
    terms = (resident_wallet.address, *auth.as_args()[1:6], signature)
    with reverts_with("EIP3009InvalidSignature", resident_wallet):
        token.transferWithAuthorization[TRANSFER_BYTES](*terms, {"from": relayer})


def test_a_merchant_receives_a_contract_wallet_s_payment(
    token, resident_wallet, owner, merchant, sign_for_wallet, as_hex
):
    auth, signature = sign_for_wallet(
        resident_wallet, owner, merchant, 7_000, primary_type=RECEIVE_WITH_AUTHORIZATION
    )
    tx = token.receiveWithAuthorization[TRANSFER_BYTES](
        *bytes_args(auth, signature), {"from": merchant}
    )
    assert tx.events["AuthorizationUsed"].values() == [resident_wallet.address, as_hex(auth.nonce)]
    assert token.balanceOf(merchant) == 7_000


def test_a_contract_wallet_s_receive_authorization_signed_by_another_key_is_refused(
    token, resident_wallet, intruder, merchant, sign_for_wallet, reverts_with
):
    auth, signature = sign_for_wallet(
        resident_wallet, intruder, merchant, 7_000, primary_type=RECEIVE_WITH_AUTHORIZATION
    )
    with reverts_with("EIP3009InvalidSignature", resident_wallet):
        token.receiveWithAuthorization[TRANSFER_BYTES](
            *bytes_args(auth, signature), {"from": merchant}
        )


# --- cancelAuthorization ----------------------------------------------------------------------


def test_a_contract_wallet_cancels_an_authorization_with_its_owner_s_signature(
    token,
    resident_wallet,
    owner,
    merchant,
    relayer,
    sign_for_wallet,
    cancellation_for_wallet,
    as_hex,
    reverts_with,
):
    auth, signature = sign_for_wallet(resident_wallet, owner, merchant, 7_000)
    cancellation = cancellation_for_wallet(resident_wallet, owner, auth.nonce)
    tx = token.cancelAuthorization[CANCEL_BYTES](
        resident_wallet, auth.nonce, cancellation, {"from": relayer}
    )
    assert tx.events["AuthorizationCanceled"].values() == [
        resident_wallet.address,
        as_hex(auth.nonce),
    ]
    with reverts_with("EIP3009AuthorizationCanceled", resident_wallet, auth.nonce):
        token.transferWithAuthorization[TRANSFER_BYTES](
            *bytes_args(auth, signature), {"from": relayer}
        )


def test_a_contract_wallet_s_cancellation_signed_by_another_key_is_refused(
    token, resident_wallet, intruder, relayer, cancellation_for_wallet, reverts_with
):
    nonce = keccak(text="contract-wallet-cancel:intruder")
    cancellation = cancellation_for_wallet(resident_wallet, intruder, nonce)
    with reverts_with("EIP3009InvalidSignature", resident_wallet):
        token.cancelAuthorization[CANCEL_BYTES](
            resident_wallet, nonce, cancellation, {"from": relayer}
        )
    assert token.authorizationState(resident_wallet, nonce) is False


def test_cancel_authorization_with_v_r_s_takes_a_contract_wallet_s_signature_too(
    token, resident_wallet, owner, relayer, cancellation_for_wallet
):
    """Off the payment path, the (v, r, s) cancel checks the signature as the bytes one does."""
    nonce = keccak(text="contract-wallet-cancel:v-r-s")
    cancellation = cancellation_for_wallet(resident_wallet, owner, nonce)
    r, s, v = cancellation[:32], cancellation[32:64], cancellation[64]
    token.cancelAuthorization[CANCEL_VRS](resident_wallet, nonce, v, r, s, {"from": relayer})
    assert token.authorizationState(resident_wallet, nonce) is True


# --- The (v, r, s) fast path and the batch: ECDSA only ----------------------------------------


def test_the_v_r_s_transfer_refuses_a_contract_wallet_s_signature(
    token, resident_wallet, owner, merchant, relayer, sign_for_wallet, reverts_with
):
    auth, _ = sign_for_wallet(resident_wallet, owner, merchant, 7_000)
    with reverts_with("EIP3009InvalidSignature", resident_wallet):
        token.transferWithAuthorization[TRANSFER_VRS](*auth.as_args(), {"from": relayer})
    assert token.authorizationState(resident_wallet, auth.nonce) is False


def test_the_v_r_s_receive_refuses_a_contract_wallet_s_signature(
    token, resident_wallet, owner, merchant, sign_for_wallet, reverts_with
):
    auth, _ = sign_for_wallet(
        resident_wallet, owner, merchant, 7_000, primary_type=RECEIVE_WITH_AUTHORIZATION
    )
    with reverts_with("EIP3009InvalidSignature", resident_wallet):
        token.receiveWithAuthorization[TRANSFER_VRS](*auth.as_args(), {"from": merchant})


def test_a_batch_reports_a_contract_wallet_s_entry_as_an_invalid_signature(
    token, resident_wallet, owner, merchant, relayer, sign_for_wallet, revert_data_of, as_hex
):
    auth, _ = sign_for_wallet(resident_wallet, owner, merchant, 7_000)
    tx = token.transferWithAuthorizationBatch([auth.as_args()], {"from": relayer})
    assert tx.return_value == 0
    assert tx.events["AuthorizationFailed"].values() == [
        resident_wallet.address,
        as_hex(auth.nonce),
        revert_data_of("EIP3009InvalidSignature", resident_wallet),
    ]
    assert token.balanceOf(merchant) == 0


def test_a_batch_does_not_void_a_contract_wallet_s_entry_so_the_bytes_variant_settles_it(
    token, resident_wallet, owner, merchant, relayer, sign_for_wallet
):
    auth, signature = sign_for_wallet(resident_wallet, owner, merchant, 7_000)
    tx = token.transferWithAuthorizationBatch([auth.as_args()], {"from": relayer})
    assert "AuthorizationVoided" not in tx.events
    token.transferWithAuthorization[TRANSFER_BYTES](*bytes_args(auth, signature), {"from": relayer})
    assert token.balanceOf(merchant) == 7_000


# --- The wallet's own calls -------------------------------------------------------------------


def test_a_contract_wallet_pays_an_invoice_with_its_own_call(
    token, resident_wallet, owner, merchant, as_hex
):
    invoice = keccak(text="contract-wallet-invoice:1")
    tx = resident_wallet.execute(
        token, token.pay.encode_input(merchant, 5_000, invoice), {"from": owner}
    )
    assert tx.events["Paid"].values() == [
        resident_wallet.address,
        merchant.address,
        as_hex(invoice),
        5_000,
    ]


def test_only_the_owner_sends_a_contract_wallet_s_calls(token, resident_wallet, intruder, merchant):
    with brownie.reverts(f"OwnedWalletNotOwner: {intruder.address.lower()}"):
        resident_wallet.execute(
            token, token.transfer.encode_input(merchant, 5_000), {"from": intruder}
        )
    assert token.balanceOf(resident_wallet) == 110_000
