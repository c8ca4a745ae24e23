"""The token's EIP-712 domain and type hashes: what a USDC-compatible wallet signs must verify."""

from brownie import chain, web3
from citypay.authorization import _REFUND_FIELDS, REFUND_WITH_AUTHORIZATION
from eth_account.messages import encode_typed_data

USDC_TYPE_STRINGS = {
    "TRANSFER_WITH_AUTHORIZATION_TYPEHASH": "TransferWithAuthorization(address from,address to,"
    "uint256 value,uint256 validAfter,uint256 validBefore,bytes32 nonce)",
    "RECEIVE_WITH_AUTHORIZATION_TYPEHASH": "ReceiveWithAuthorization(address from,address to,"
    "uint256 value,uint256 validAfter,uint256 validBefore,bytes32 nonce)",
    "CANCEL_AUTHORIZATION_TYPEHASH": "CancelAuthorization(address authorizer,bytes32 nonce)",
}


def typehash_of(token, constant: str) -> bytes:
    return bytes(getattr(token, constant)())


def test_eip712_domain_names_the_city_token(token):
    fields, name, version, chain_id, contract, salt, extensions = token.eip712Domain()
    assert fields == "0x0f"  # name, version, chainId, verifyingContract
    assert (name, version, chain_id, contract) == ("Gimpo Pay", "1", chain.id, token.address)
    assert salt == "0x" + "00" * 32
    assert extensions == ()


def test_version_is_the_domain_version(token):
    assert token.version() == "1"


def test_domain_separator_is_the_one_a_wallet_computes(token, domain):
    typed = encode_typed_data(
        full_message={
            "types": {
                "EIP712Domain": [
                    {"name": "name", "type": "string"},
                    {"name": "version", "type": "string"},
                    {"name": "chainId", "type": "uint256"},
                    {"name": "verifyingContract", "type": "address"},
                ],
                "CancelAuthorization": [
                    {"name": "authorizer", "type": "address"},
                    {"name": "nonce", "type": "bytes32"},
                ],
            },
            "primaryType": "CancelAuthorization",
            "domain": domain.as_dict(),
            "message": {"authorizer": token.address, "nonce": bytes(32)},
        }
    )
    assert bytes(token.DOMAIN_SEPARATOR()) == bytes(typed.header)


def test_transfer_with_authorization_typehash_is_usdcs(token):
    constant = "TRANSFER_WITH_AUTHORIZATION_TYPEHASH"
    assert typehash_of(token, constant) == web3.keccak(text=USDC_TYPE_STRINGS[constant])


def test_receive_with_authorization_typehash_is_usdcs(token):
    constant = "RECEIVE_WITH_AUTHORIZATION_TYPEHASH"
    assert typehash_of(token, constant) == web3.keccak(text=USDC_TYPE_STRINGS[constant])


def test_cancel_authorization_typehash_is_usdcs(token):
    constant = "CANCEL_AUTHORIZATION_TYPEHASH"
    assert typehash_of(token, constant) == web3.keccak(text=USDC_TYPE_STRINGS[constant])


def test_refund_with_authorization_typehash_is_the_wallets_type_string(token):
    """The token's own type: what citypay.authorization gives a merchant's wallet to sign."""
    fields = ",".join(f"{f['type']} {f['name']}" for f in _REFUND_FIELDS)
    expected = web3.keccak(text=f"{REFUND_WITH_AUTHORIZATION}({fields})")
    assert typehash_of(token, "REFUND_WITH_AUTHORIZATION_TYPEHASH") == expected
    assert expected == web3.keccak(
        text="RefundWithAuthorization(address merchant,address payer,bytes32 paymentId,"
        "bytes32 nonce,uint256 value,uint256 validAfter,uint256 validBefore)"
    )


def test_another_city_has_another_domain_separator(token, other_city):
    assert other_city.token.eip712Domain()[1] == "Gongju Pay"
    assert other_city.token.DOMAIN_SEPARATOR() != token.DOMAIN_SEPARATOR()
