from brownie import ZERO_ADDRESS


def test_resident_pays_merchant_by_authorization(city, token, resident, merchant, relayer, sign):
    auth = sign(resident, merchant, 5_000)
    tx = token.transferWithAuthorization(*auth.as_args(), {"from": relayer})
    assert token.balanceOf(merchant) == 5_000
    assert token.balanceOf(resident) == 110_000 - 5_000
    assert tx.events["AuthorizationUsed"].values() == [resident.address, "0x" + auth.nonce.hex()]
    assert token.address != ZERO_ADDRESS
