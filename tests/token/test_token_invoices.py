"""Invoice payments: pay(merchant, value, invoiceId) records the invoice id once per payer."""

ZERO_ID = bytes(32)
ID_USED = "CityTokenPaymentIdUsed(address,bytes32)"


def test_pay_moves_the_value_to_the_merchant(city, token, resident, merchant, invoice_id):
    token.pay(merchant, 12_000, invoice_id(), {"from": resident})
    assert token.balanceOf(resident) == 110_000 - 12_000
    assert token.balanceOf(merchant) == 12_000


def test_pay_emits_paid_with_the_invoice_id(city, token, resident, merchant, invoice_id, hex32):
    invoice = invoice_id()
    tx = token.pay(merchant, 12_000, invoice, {"from": resident})
    assert tx.events["Paid"].values() == [
        resident.address,
        merchant.address,
        hex32(invoice),
        12_000,
    ]
    assert tx.events["Transfer"].values() == [resident.address, merchant.address, 12_000]


def test_pay_marks_the_invoice_id_used(city, token, resident, merchant, invoice_id):
    invoice = invoice_id()
    token.pay(merchant, 12_000, invoice, {"from": resident})
    assert token.authorizationState(resident, invoice) is True


def test_pay_makes_the_invoice_refundable_by_its_merchant(
    city, token, resident, merchant, invoice_id
):
    invoice = invoice_id()
    token.pay(merchant, 12_000, invoice, {"from": resident})
    assert token.refundableAmount(resident, merchant, invoice) == 12_000


def test_pay_is_not_counted_as_a_plain_transfer(city, token, resident, merchant, invoice_id):
    token.pay(merchant, 12_000, invoice_id(), {"from": resident})
    assert token.refundableAmount(resident, merchant, ZERO_ID) == 0


def test_pay_refuses_a_reused_invoice_id(
    city, token, resident, merchant, invoice_id, balances, expect_revert
):
    invoice = invoice_id()
    token.pay(merchant, 12_000, invoice, {"from": resident})
    before = balances(resident, merchant)
    with expect_revert(ID_USED, resident, invoice):
        token.pay(merchant, 12_000, invoice, {"from": resident})
    assert balances(resident, merchant) == before


def test_pay_refuses_a_reused_invoice_id_for_another_merchant(
    city, token, resident, merchant, merchant2, invoice_id, balances, expect_revert
):
    invoice = invoice_id()
    token.pay(merchant, 12_000, invoice, {"from": resident})
    before = balances(resident, merchant2)
    with expect_revert(ID_USED, resident, invoice):
        token.pay(merchant2, 5_000, invoice, {"from": resident})
    assert balances(resident, merchant2) == before


def test_pay_accepts_the_same_invoice_id_from_another_payer(
    city, token, resident, resident2, merchant, invoice_id
):
    invoice = invoice_id()
    token.pay(merchant, 12_000, invoice, {"from": resident})
    token.pay(merchant, 8_000, invoice, {"from": resident2})
    assert token.balanceOf(merchant) == 20_000
    assert token.refundableAmount(resident2, merchant, invoice) == 8_000


def test_pay_refuses_the_nonce_of_a_used_authorization(
    city, token, resident, merchant, relayer, sign, balances, expect_revert
):
    auth = sign(resident, merchant, 5_000)
    token.transferWithAuthorization(*auth.as_args(), {"from": relayer})
    before = balances(resident, merchant)
    with expect_revert(ID_USED, resident, auth.nonce):
        token.pay(merchant, 5_000, auth.nonce, {"from": resident})
    assert balances(resident, merchant) == before


def test_pay_refuses_the_zero_invoice_id(city, token, resident, merchant, balances, expect_revert):
    before = balances(resident, merchant)
    with expect_revert("CityTokenZeroPaymentId()"):
        token.pay(merchant, 12_000, ZERO_ID, {"from": resident})
    assert balances(resident, merchant) == before


def test_pay_to_a_resident_reverts(
    city, token, resident, resident2, invoice_id, balances, expect_revert
):
    before = balances(resident, resident2)
    with expect_revert("CityTokenTransferNotAllowed(address,address)", resident, resident2):
        token.pay(resident2, 1_000, invoice_id(), {"from": resident})
    assert balances(resident, resident2) == before


def test_pay_reverts_when_merchant_suspended(
    city, token, registry, registrar, resident, merchant, invoice_id, balances, expect_revert
):
    registry.suspend(merchant, {"from": registrar})
    before = balances(resident, merchant)
    with expect_revert("CityTokenMerchantNotActive(address)", merchant):
        token.pay(merchant, 1_000, invoice_id(), {"from": resident})
    assert balances(resident, merchant) == before


def test_pay_reverts_when_payer_frozen(
    city, token, compliance, resident, merchant, invoice_id, balances, expect_revert
):
    token.freeze(resident, {"from": compliance})
    before = balances(resident, merchant)
    with expect_revert("CityTokenAccountFrozen(address)", resident):
        token.pay(merchant, 1_000, invoice_id(), {"from": resident})
    assert balances(resident, merchant) == before


def test_pay_reverts_when_paused(
    city, token, pauser, resident, merchant, invoice_id, balances, expect_revert
):
    token.pause({"from": pauser})
    before = balances(resident, merchant)
    with expect_revert("EnforcedPause()"):
        token.pay(merchant, 1_000, invoice_id(), {"from": resident})
    assert balances(resident, merchant) == before


def test_pay_over_balance_reverts(
    city, token, resident, merchant, invoice_id, balances, expect_revert
):
    before = balances(resident, merchant)
    with expect_revert(
        "ERC20InsufficientBalance(address,uint256,uint256)", resident, 110_000, 200_000
    ):
        token.pay(merchant, 200_000, invoice_id(), {"from": resident})
    assert balances(resident, merchant) == before


def test_refused_pay_leaves_the_invoice_id_unused(
    city, token, registry, registrar, resident, merchant, invoice_id, expect_revert
):
    invoice = invoice_id()
    registry.suspend(merchant, {"from": registrar})
    with expect_revert("CityTokenMerchantNotActive(address)", merchant):
        token.pay(merchant, 1_000, invoice, {"from": resident})
    assert token.authorizationState(resident, invoice) is False
