"""A day of Gimpo Pay (김포페이) on a fresh chain, step by step.

Run with `make day`. Deploys the city, registers residents and merchants, charges residents from
bank deposits, takes payments by static QR (plain transfer), invoice QR and gasless EIP-3009
authorizations relayed in a batch, refunds a customer, cashes merchants out (one bank transfer
fails and is returned), refunds a resident, and ends with balances and the supply checked.
"""

from __future__ import annotations

from brownie import accounts, chain
from brownie.exceptions import VirtualMachineError
from citypay.authorization import TokenDomain, sign_authorization
from eth_utils import keccak

from scripts.city_suite import (
    DEPARTMENT_STORE,
    GIMPO,
    deploy_city_suite,
    return_of,
    settlement,
    signed_application,
)

RESTAURANT, BAKERY, BOOKSTORE = 5611, 4721, 4761


def _hash(kind: str, value: str) -> bytes:
    return keccak(text=f"{kind}:{value}")


def _wallet(name: str):
    return accounts.add(_hash("city-day-wallet", name))


def _krw(amount: int) -> str:
    return f"{amount:>12,} KRW"


def step(title: str) -> None:
    print(f"\n== {title}")


def main() -> None:
    operator, issuer, registrar, settler, relayer = (
        accounts[0],
        accounts[1],
        accounts[2],
        accounts[3],
        accounts[4],
    )
    residents = {name: _wallet(name) for name in ("minji", "junho", "seoyeon", "dohyun")}
    merchants = {
        "Haneul Bakery": (_wallet("haneul-bakery"), BAKERY),
        "Gimpo Noodle House": (_wallet("gimpo-noodle"), RESTAURANT),
        "Riverside Books": (_wallet("riverside-books"), BOOKSTORE),
    }
    names = {w.address: n for n, w in residents.items()} | {
        w.address: n for n, (w, _) in merchants.items()
    }

    step(f"Deploy {GIMPO.name} (chain id {chain.id})")
    suite = deploy_city_suite(GIMPO, operator)
    token, registry, treasury = suite.token, suite.registry, suite.treasury
    admin = {"from": operator}
    registry.grantRole(registry.REGISTRAR_ROLE(), registrar, admin)
    treasury.grantRole(treasury.ISSUER_ADMIN_ROLE(), operator, admin)
    treasury.grantRole(treasury.SETTLER_ROLE(), settler, admin)
    treasury.configureIssuer(issuer, 1_000_000_000, admin)
    print(f"token {token.address}  registry {registry.address}  treasury {treasury.address}")
    policy = treasury.policy()
    print(
        f"policy: annual cap {policy[0]:,} KRW, monthly purchase limit {policy[1]:,} KRW, "
        f"holding cap {policy[2]:,} KRW, incentive {policy[3] / 100:.0f}% "
        f"up to {policy[4]:,} KRW a month"
    )

    step("Register residents and merchants")
    for name, wallet in residents.items():
        registry.registerResident(wallet, _hash("identity", name), 41570, {"from": registrar})
        print(f"resident  {name:<20} {wallet.address}")
    for name, (wallet, category) in merchants.items():
        application = (
            _hash("business", name),
            _hash("bank-account", name),
            250_000_000,
            category,
            41570,
        )
        registry.registerMerchant(
            *signed_application(registry, wallet, application), {"from": registrar}
        )
        print(f"merchant  {name:<20} {wallet.address}  category {category}")
    store = (
        _hash("business", "Lotte Department Store"),
        _hash("bank-account", "lotte"),
        900_000_000,
        DEPARTMENT_STORE,
        41570,
    )
    try:
        registry.registerMerchant(
            *signed_application(registry, _wallet("lotte"), store), {"from": registrar}
        )
    except VirtualMachineError as refused:
        print(f"refused   a department store: {refused.revert_msg}")

    step("Charge (충전) from bank deposits, with the city's 10% incentive")
    for index, (name, wallet) in enumerate(residents.items()):
        amount = (200_000, 150_000, 300_000, 100_000)[index]
        tx = treasury.issue(wallet, amount, _hash("deposit", f"day-{name}"), {"from": issuer})
        print(
            f"{name:<20} paid {_krw(amount)} -> holds {_krw(token.balanceOf(wallet))} "
            f"(incentive {tx.return_value:,})"
        )
    try:
        treasury.issue(
            residents["minji"], 400_000, _hash("deposit", "day-minji-2"), {"from": issuer}
        )
    except VirtualMachineError as refused:
        print(f"refused   minji's second charge over the monthly limit: {refused.revert_msg}")

    bakery = merchants["Haneul Bakery"][0]
    noodles = merchants["Gimpo Noodle House"][0]
    books = merchants["Riverside Books"][0]

    step("Pay by static QR (EIP-681, plain ERC-20 transfer)")
    token.transfer(bakery, 4_500, {"from": residents["minji"]})
    print(f"minji -> Haneul Bakery {_krw(4_500)}")

    step("Pay an invoice QR (pay with invoice id)")
    invoice = _hash("invoice", "noodle-0001")
    token.pay(noodles, 18_000, invoice, {"from": residents["junho"]})
    print(f"junho -> Gimpo Noodle House {_krw(18_000)}  invoice 0x{invoice.hex()[:16]}...")

    step("Gasless payments: wallets sign EIP-3009 authorizations, one relayer batch settles them")
    domain = TokenDomain(token.name(), token.version(), chain.id, token.address)
    orders = [
        ("seoyeon", books, 32_000),
        ("dohyun", bakery, 7_200),
        ("minji", noodles, 21_000),
        ("junho", books, 12_500),
        ("seoyeon", noodles, 9_000),
    ]
    authorizations = [
        sign_authorization(
            residents[payer].private_key,
            domain,
            to=merchant.address,
            value=value,
            valid_before=chain.time() + 600,
        )
        for payer, merchant, value in orders
    ]
    # One stale authorization in the batch: it is skipped and reported, the rest settle.
    stale = sign_authorization(
        residents["dohyun"].private_key,
        domain,
        to=bakery.address,
        value=1_000,
        valid_before=chain.time() - 1,
    )
    tx = token.transferWithAuthorizationBatch(
        [a.as_args() for a in [*authorizations, stale]], {"from": relayer}
    )
    for (payer, merchant, value), _ in zip(orders, authorizations, strict=True):
        print(f"{payer} -> {names[merchant.address]} {_krw(value)}")
    print(
        f"settled {tx.return_value} of {len(authorizations) + 1} in one transaction "
        f"({tx.gas_used:,} gas)"
    )
    for failed in tx.events["AuthorizationFailed"]:
        print(f"skipped   {names[failed['authorizer']]}'s expired authorization")

    step("A merchant refunds a customer (never more than the payment)")
    first = authorizations[0]
    token.refund(residents["seoyeon"], first.nonce, 12_000, {"from": books})
    print(f"Riverside Books -> seoyeon {_krw(12_000)} of the {first.value:,} KRW payment")

    step("Cash-out (환전): merchants redeem to their bank accounts, fee-free")
    bakery_id = treasury.cashOut(token.balanceOf(bakery), {"from": bakery}).return_value
    noodles_id = treasury.cashOut(token.balanceOf(noodles), {"from": noodles}).return_value
    treasury.settle(
        *settlement(treasury, bakery_id, _hash("bank-transfer", "kb-0001")), {"from": settler}
    )
    print(
        f"Haneul Bakery cashed out {_krw(treasury.redemption(bakery_id).dict()['payout'])}: settled"
    )
    treasury.returnRedemption(
        *return_of(treasury, noodles_id, _hash("bank-error", "account-closed")), {"from": settler}
    )
    print(f"Gimpo Noodle House's bank transfer failed: {_krw(token.balanceOf(noodles))} returned")

    step("Resident refund (환불): junho used over 60% of his charge")
    junho = residents["junho"]
    token.transfer(books, 110_000, {"from": junho})
    refund_id = treasury.requestResidentRefund(
        _hash("bank-account", "junho"), {"from": junho}
    ).return_value
    redemption = treasury.redemption(refund_id).dict()
    treasury.settle(
        *settlement(treasury, refund_id, _hash("bank-transfer", "kb-0002")), {"from": settler}
    )
    print(
        f"junho's balance {_krw(redemption['burned'])} burned: "
        f"{_krw(redemption['payout'])} paid to his bank, "
        "the unused incentive clawed back"
    )

    step("Closing summary")
    wallets = [*residents.values(), *(w for w, _ in merchants.values())]
    for wallet in wallets:
        print(f"{names[wallet.address]:<20} {_krw(token.balanceOf(wallet))}")
    issued, incentive, burned, returned, settled, clawed = treasury.totals()
    supply = token.totalSupply()
    held = sum(token.balanceOf(w) for w in wallets)
    print(f"\nissued   {_krw(issued)} (incentive {incentive:,})")
    print(
        f"burned   {_krw(burned)}  settled to banks {settled:,}, incentive clawed back {clawed:,}"
    )
    print(f"returned {_krw(returned)}")
    print(f"supply   {_krw(supply)}  held by wallets {held:,}")
    print(f"issued this fiscal year {treasury.issuedThisFiscalYear():,} of {policy[0]:,} KRW")
    assert supply == held == issued - burned + returned, "supply does not reconcile"
    print("supply == sum of balances == issued - burned + returned: OK")
