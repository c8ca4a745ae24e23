"""Gas benchmark: the city token's payment paths against OpenZeppelin's ERC-20 and a USDC-style
reference token, every figure from a transaction of this run.

Run with `make gas`. Compiles the reference tokens of bench/contracts/ with the product's compiler
settings, deploys them and Gimpo Pay on the anvil chain Brownie starts, warms balances as at a
busy till, measures each operation, and prints and writes bench/results/gas.md and gas.json.
"""

from __future__ import annotations

import contextlib
import copy
import json
import statistics
import subprocess
from collections.abc import Callable
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path

from brownie import accounts, chain, web3
from brownie.network.transaction import TransactionReceipt
from brownie.project import get_loaded_projects
from brownie.project.main import TempProject
from citypay.authorization import (
    GIFT_AUTHORIZATION,
    TokenDomain,
    sign_authorization,
    sign_refund,
)
from eth_utils import keccak

from scripts.city_suite import GIMPO, deploy_city_suite, signed_application
from scripts.receipts import await_receipts_brownie_calls_dropped

BENCH = Path(__file__).resolve().parent
RESULTS = BENCH / "results"

# Single-transaction operations: the median of this many transactions, each by another payer.
SAMPLES = 5
BATCH_SIZES = (10, 100)
# The shops of a neighbourhood: a batch pays among these, in turn.
MERCHANTS = 8
# The issue's goals, as multiples of the reference transferWithAuthorization.
AUTHORIZATION_GOAL = 1.0
BATCHED_GOAL = 0.7
# A payment from general money only costs at most this much more than before money classes.
BEFORE_CLASSES_GOAL = 1.05
# The last commit before money classes: its contracts, built in the same run, are the reference.
BEFORE_CLASSES = "26cec9f"
PROGRAM_PAYOUT = 30_000  # KRW: each class payer's allowance
PAYOUT_BATCH = 100

# The (v, r, s) overload, as the reference has it; the token also takes the signature as bytes.
VRS_SIGNATURE = "address,address,uint256,uint256,uint256,bytes32,uint8,bytes32,bytes32"
CATEGORIES = (5611, 4721, 4761)  # restaurant, bakery, bookstore
REGION = 41570  # Gimpo
PAYMENT = 12_000  # KRW: a lunch
FIRST_CHARGE = 200_000  # KRW: each resident's charge before measuring (plus the 10% incentive)
CHARGE = 50_000  # KRW: the measured charge, the resident's second this month
CASH_OUT = 10_000  # KRW
REFUND = 2_000  # KRW: part of a measured invoice payment
WARM_BALANCE = 1_000  # what every merchant holds before measuring, in every token
REFERENCE_HOLDING = 100_000  # what every reference payer holds before measuring


@dataclass
class Row:
    """One line of the table: an operation and the transactions it was measured from."""

    key: str
    operation: str
    gas: int
    transactions: list[dict]
    goal: float | None = None
    vs_plain_transfer: float = 0.0
    vs_reference_authorization: float = 0.0
    status: str | None = None
    # The same operation on the contracts before money classes, and its status against the bound.
    before_classes: int | None = None
    vs_before_classes: float | None = None
    status_before_classes: str | None = None


def _wallet(name: str):
    return accounts.add(keccak(text=f"city-gas-bench:{name}"))


def _hash(kind: str, label: str) -> bytes:
    return keccak(text=f"{kind}:{label}")


def _send(function, *args, sender) -> TransactionReceipt:
    return function(*args, {"from": sender}, silent=True)


def _deploy(container, *args, sender):
    return container.deploy(*args, {"from": sender}, silent=True)


def _domain(token) -> TokenDomain:
    """The token's EIP-712 domain, read from the token (EIP-5267)."""
    _, name, version, chain_id, verifying_contract, _, _ = token.eip712Domain()
    return TokenDomain(name, version, chain_id, verifying_contract)


def _authorize(payer, domain: TokenDomain, merchant, label: str) -> tuple:
    """A payer's signed authorization of PAYMENT to `merchant`, as transferWithAuthorization's
    arguments; `label` makes the nonce (a fresh one per label)."""
    return sign_authorization(
        payer.private_key,
        domain,
        to=merchant.address,
        value=PAYMENT,
        valid_before=chain.time() + 3600,
        nonce=_hash("nonce", label),
    ).as_args()


def _single(key: str, operation: str, send: Callable[[int], TransactionReceipt]) -> Row:
    """Sends `send(i)` for SAMPLES payers; the row's gas is the median transaction's gas_used."""
    txs = [send(i) for i in range(SAMPLES)]
    return Row(
        key=key,
        operation=operation,
        gas=int(statistics.median(tx.gas_used for tx in txs)),
        transactions=[{"hash": tx.txid, "gas_used": tx.gas_used} for tx in txs],
    )


def _batch(key: str, operation: str, token, relayer, authorizations: list[tuple]) -> Row:
    """One batch transaction; the row's gas is its gas_used per payment."""
    tx = _send(token.transferWithAuthorizationBatch, authorizations, sender=relayer)
    if "AuthorizationFailed" in tx.events:
        raise RuntimeError(f"{key}: authorizations failed: {tx.events['AuthorizationFailed']}")
    size = len(authorizations)
    return Row(
        key=key,
        operation=operation,
        gas=round(tx.gas_used / size),
        transactions=[{"hash": tx.txid, "gas_used": tx.gas_used, "batch_size": size}],
    )


def compile_references() -> TempProject:
    """Compiles bench/contracts/ with the compiler settings of brownie-config.yaml, so the
    references are built exactly as the product is (solc version, optimizer runs, EVM version,
    remappings), but outside contracts/ and so outside the product."""
    product = get_loaded_projects()[0]
    config = copy.deepcopy(dict(product._compiler_config))
    sources = {
        path.relative_to(product._path).as_posix(): path.read_text()
        for path in sorted((BENCH / "contracts").glob("*.sol"))
    }
    # solc-js resolves the remapped OpenZeppelin imports from the working directory.
    with contextlib.chdir(product._path):
        return TempProject("GasReferences", sources, config)


@dataclass
class People:
    """Everyone the measurements need, the same wallets in every city measured."""

    admin: object
    issuer: object
    registrar: object
    settler: object
    relayer: object
    payers: list
    batch_payers: dict
    spread_payers: list
    merchants: list
    regular: object

    def residents(self) -> list:
        batches = (p for ps in self.batch_payers.values() for p in ps)
        return [self.regular, *self.payers, *batches, *self.spread_payers]

    def neighbourhood(self, i: int):
        return self.merchants[i % MERCHANTS]


def compile_before_classes() -> TempProject:
    """The city's contracts as they were before money classes (BEFORE_CLASSES), from git, built
    with the same settings: the hot path's reference in the same run."""
    product = get_loaded_projects()[0]
    config = copy.deepcopy(dict(product._compiler_config))

    def git(*args: str) -> str:
        return subprocess.run(
            ["git", *args], cwd=product._path, capture_output=True, text=True, check=True
        ).stdout

    try:
        names = git("ls-tree", "-r", "--name-only", BEFORE_CLASSES, "contracts", "interfaces")
    except subprocess.CalledProcessError as error:
        raise SystemExit(
            f"make gas compares with commit {BEFORE_CLASSES}, which this clone lacks "
            f"(a shallow clone? git fetch --unshallow): {error.stderr.strip()}"
        ) from error
    sources = {
        name: git("show", f"{BEFORE_CLASSES}:{name}")
        for name in names.split()
        if name.endswith(".sol")
    }
    with contextlib.chdir(product._path):
        return TempProject("BeforeMoneyClasses", sources, config)


def deploy_before_classes(project, admin):
    token = _deploy(project["CityToken"], *GIMPO.token_args(admin), sender=admin)
    treasury = _deploy(project["CityTreasury"], *GIMPO.treasury_args(token, admin), sender=admin)
    registry = _deploy(
        project["CityRegistry"], *GIMPO.registry_args(token, treasury, admin), sender=admin
    )
    _send(token.linkSuite, registry, treasury, sender=admin)
    return token, registry, treasury


def populate(people: People, token, registry, treasury) -> None:
    """Roles, charged residents and merchants already holding the day's takings."""
    admin = people.admin
    _send(registry.grantRole, registry.REGISTRAR_ROLE(), people.registrar, sender=admin)
    _send(treasury.grantRole, treasury.ISSUER_ADMIN_ROLE(), admin, sender=admin)
    _send(treasury.grantRole, treasury.SETTLER_ROLE(), people.settler, sender=admin)
    _send(token.grantRole, token.RELAYER_ROLE(), people.relayer, sender=admin)
    _send(treasury.configureIssuer, people.issuer, 10**10, sender=admin)
    for resident in people.residents():
        _send(
            registry.registerResident,
            resident,
            _hash("identity", resident.address),
            REGION,
            sender=people.registrar,
        )
        deposit = _hash("deposit", f"first-{resident.address}")
        _send(treasury.issue, resident, FIRST_CHARGE, deposit, sender=people.issuer)
    for i, merchant in enumerate(people.merchants):
        application = (
            _hash("business", merchant.address),
            _hash("bank-account", merchant.address),
            300_000_000,
            CATEGORIES[i % len(CATEGORIES)],
            REGION,
        )
        _send(
            registry.registerMerchant,
            *signed_application(registry, merchant, application),
            sender=people.registrar,
        )
        # The till is busy: the merchant already holds the day's takings.
        _send(token.transfer, merchant, WARM_BALANCE, sender=people.regular)


def payment_rows(people: People, token, prefix: str = "") -> list[Row]:
    """The hot path: every way a resident pays, from general money."""
    domain = _domain(token)
    authorize = token.transferWithAuthorization[VRS_SIGNATURE]
    payers, relayer, near = people.payers, people.relayer, people.neighbourhood
    rows = [
        _single(
            "payment",
            "our payment: `pay(merchant, value, invoiceId)`",
            lambda i: _send(
                token.pay, near(i), PAYMENT, _hash("invoice", str(i)), sender=payers[i]
            ),
        ),
        _single(
            "plain_payment_first",
            "our plain `transfer` to a merchant, payer's first there",
            lambda i: _send(token.transfer, near(i), PAYMENT, sender=payers[i]),
        ),
        _single(
            "plain_payment_repeat",
            "our plain `transfer` to a merchant, repeat customer",
            lambda i: _send(token.transfer, near(i), PAYMENT, sender=payers[i]),
        ),
        _single(
            "authorization",
            "our `transferWithAuthorization`",
            lambda i: _send(
                authorize,
                *_authorize(payers[i], domain, near(i), f"city-{i}"),
                sender=relayer,
            ),
        ),
    ]
    rows[-1].goal = AUTHORIZATION_GOAL
    for size in BATCH_SIZES:
        batch = [
            _authorize(payer, domain, near(j), f"batch-{size}-{j}")
            for j, payer in enumerate(people.batch_payers[size])
        ]
        rows.append(
            _batch(
                f"batch_{size}",
                f"our `transferWithAuthorizationBatch`, per payment ({size} per batch)",
                token,
                relayer,
                batch,
            )
        )
        rows[-1].goal = BATCHED_GOAL
    spread = [
        _authorize(payer, domain, people.merchants[j], f"spread-{j}")
        for j, payer in enumerate(people.spread_payers)
    ]
    rows.append(
        _batch(
            "batch_spread",
            f"the same, {len(spread)} per batch to {len(spread)} different merchants (no goal)",
            token,
            relayer,
            spread,
        )
    )
    for row in rows:
        row.key = prefix + row.key
    return rows


def class_rows(people: People, suite) -> list[Row]:
    """Payments that draw on money classes, a payout, a refund to the classes and a sweep."""
    token, programs, admin = suite.token, suite.programs, people.admin
    for role in ("PROGRAM_MANAGER_ROLE", "PROGRAM_FUNDER_ROLE", "PROGRAM_PAYER_ROLE"):
        _send(programs.grantRole, getattr(programs, role)(), admin, sender=admin)
    now = chain.time()
    terms = (_hash("program", "youth"), 10**9, PROGRAM_PAYOUT, 0, now + 30 * 86_400, 2**64 - 1)
    tx = _send(programs.createProgram, (*terms, list(CATEGORIES), [REGION]), sender=admin)
    program_id = tx.return_value
    _send(programs.fundProgram, program_id, 10**9, _hash("budget", "youth"), sender=admin)
    holders = [_wallet(f"class-{i}") for i in range(SAMPLES)]
    recipients = [_wallet(f"recipient-{i}") for i in range(PAYOUT_BATCH)]
    for resident in (*holders, *recipients):
        _send(
            suite.registry.registerResident,
            resident,
            _hash("identity", resident.address),
            REGION,
            sender=people.registrar,
        )
    for resident in holders:
        deposit = _hash("deposit", f"class-{resident.address}")
        _send(suite.treasury.issue, resident, FIRST_CHARGE, deposit, sender=people.issuer)
    _send(programs.payOut, program_id, [(h, PROGRAM_PAYOUT) for h in holders], sender=admin)
    near = people.neighbourhood
    domain = _domain(token)
    authorize = token.transferWithAuthorization[VRS_SIGNATURE]
    payout = _send(
        programs.payOut, program_id, [(r, PROGRAM_PAYOUT) for r in recipients], sender=admin
    )
    rows = [
        Row(
            key="program_payout",
            operation=f"program payout, per recipient ({PAYOUT_BATCH} per batch)",
            gas=round(payout.gas_used / PAYOUT_BATCH),
            transactions=[{"hash": payout.txid, "gas_used": payout.gas_used}],
        ),
        _single(
            "program_payment",
            "our payment from program money (`pay`; the program eligible there)",
            lambda i: _send(
                token.pay, near(i), PAYMENT, _hash("class-invoice", str(i)), sender=holders[i]
            ),
        ),
        _single(
            "program_authorization",
            "our `transferWithAuthorization` from program money",
            lambda i: _send(
                authorize,
                *_authorize(holders[i], domain, near(i), f"class-{i}"),
                sender=people.relayer,
            ),
        ),
    ]
    # What is left of each payout (less than a payment) and general money pay the next one.
    left = PROGRAM_PAYOUT - 2 * PAYMENT
    rows.append(
        _single(
            "mixed_payment",
            f"our payment drawing on program money ({left:,}) and general money at once (`pay`)",
            lambda i: _send(
                token.pay, near(i), PAYMENT, _hash("mixed-invoice", str(i)), sender=holders[i]
            ),
        )
    )
    rows.append(
        _single(
            "mixed_refund",
            "refund of that mixed payment (`refund`, all of it: back to program and general money)",
            lambda i: _send(
                token.refund, holders[i], _hash("mixed-invoice", str(i)), PAYMENT, sender=near(i)
            ),
        )
    )
    chain.sleep(31 * 86_400)
    chain.mine()
    rows.append(
        _single(
            "sweep",
            "expiry: `sweep` of an account's expired program money (burned, evented)",
            lambda i: _send(token.sweep, holders[i], sender=people.relayer),
        )
    )
    return rows


def gift_rows(people: People, suite) -> list[Row]:
    """Gifts of general money: the giver's own, and relayed from its signature to a resident
    holding money of its own (the gift's part joins the receiver's lot of the same expiry)."""
    gifts = suite.gifts
    givers = [_wallet(f"giver-{i}") for i in range(SAMPLES)]
    empty = [_wallet(f"gift-empty-{i}") for i in range(SAMPLES)]
    holding = [_wallet(f"gift-holding-{i}") for i in range(SAMPLES)]
    for resident in (*givers, *empty, *holding):
        _send(
            suite.registry.registerResident,
            resident,
            _hash("identity", resident.address),
            REGION,
            sender=people.registrar,
        )
    for resident in (*givers, *holding):
        deposit = _hash("deposit", f"gift-{resident.address}")
        _send(suite.treasury.issue, resident, FIRST_CHARGE, deposit, sender=people.issuer)
    _, name, version, chain_id, contract, _, _ = gifts.eip712Domain()
    domain = TokenDomain(name, version, chain_id, contract)

    def relayed(i: int) -> TransactionReceipt:
        now = chain.time()
        signed = sign_authorization(
            givers[i].private_key, domain, to=holding[i].address, value=PAYMENT,
            valid_after=now - 60, valid_before=now + 3_600, primary_type=GIFT_AUTHORIZATION,
        )  # fmt: skip
        return _send(
            gifts.giftWithAuthorization, givers[i], holding[i], PAYMENT, signed.valid_after,
            signed.valid_before, signed.nonce, signed.signature, sender=people.relayer,
        )  # fmt: skip

    return [
        _single(
            "gift",
            "gift: `gift` (the giver's own) to a resident holding nothing",
            lambda i: _send(gifts.gift, empty[i], PAYMENT, sender=givers[i]),
        ),
        _single(
            "gift_relayed",
            "gift: `giftWithAuthorization` (relayed) to a resident holding money of its own",
            relayed,
        ),
    ]


def cashback_rows(people: People, suite) -> list[Row]:
    """Cashback on payments: the city goes to cashback mode, residents pay by invoice, the
    backend's cashback payer settles each payment (alone, and 100 in a batch), then a refund's
    cashback is taken back."""
    token, treasury, cashback, admin = suite.token, suite.treasury, suite.cashback, people.admin
    _send(cashback.setTerms, [(3_000_000_000, 1_000)], [], sender=admin)
    _send(cashback.setBudget, 10**10, sender=admin)
    _send(treasury.setIncentiveMode, 1, sender=admin)
    _send(cashback.grantRole, cashback.CASHBACK_PAYER_ROLE(), people.settler, sender=admin)
    payers, near = people.payers, people.neighbourhood
    spread = people.spread_payers
    for i, payer in enumerate((*payers, *spread)):
        _send(token.pay, near(i), PAYMENT, _hash("cashback-invoice", str(i)), sender=payer)
    settles = [(p.address, near(i).address, _hash("cashback-invoice", str(i))) for i, p in
               enumerate(payers)]  # fmt: skip
    batch = [(p.address, near(i).address, _hash("cashback-invoice", str(i))) for i, p in
             enumerate(spread, start=len(payers))]  # fmt: skip
    rows = [
        _single(
            "cashback",
            "cashback: `settle` of a payment (10% minted as incentive to the payer)",
            lambda i: _send(cashback.settle, *settles[i], sender=people.settler),
        )
    ]
    tx = _send(cashback.settleBatch, batch, sender=people.settler)
    rows.append(
        Row(
            key="cashback_batch_100",
            operation=f"cashback: `settleBatch` of {len(batch)} payments (per payment)",
            gas=tx.gas_used // len(batch),
            transactions=[{"hash": tx.txid, "gas_used": tx.gas_used}],
        )
    )
    for i, payer in enumerate(payers):
        _send(token.refund, payer, settles[i][2], REFUND, sender=near(i))
    rows.append(
        _single(
            "cashback_reversal",
            "cashback: `settle` after a partial refund (its share burned; by anyone)",
            lambda i: _send(cashback.settle, *settles[i], sender=people.relayer),
        )
    )
    return rows


def main() -> None:
    await_receipts_brownie_calls_dropped()
    admin, issuer, registrar, settler, relayer, funder = (accounts[i] for i in range(6))
    people = People(
        admin=admin,
        issuer=issuer,
        registrar=registrar,
        settler=settler,
        relayer=relayer,
        payers=[_wallet(f"payer-{i}") for i in range(SAMPLES)],
        batch_payers={
            size: [_wallet(f"batch-{size}-{i}") for i in range(size)] for size in BATCH_SIZES
        },
        spread_payers=[_wallet(f"spread-{i}") for i in range(max(BATCH_SIZES))],
        # The first MERCHANTS are the neighbourhood's; the rest serve the spread-out batch only.
        merchants=[_wallet(f"merchant-{i}") for i in range(max(BATCH_SIZES))],
        regular=_wallet("regular-customer"),
    )
    payers, near = people.payers, people.neighbourhood

    print("\n== Compile and deploy the references")
    references = compile_references()
    plain = _deploy(references["PlainERC20"], funder, 10**12, sender=funder)
    reference = _deploy(references["ReferenceAuthorizationToken"], funder, 10**12, sender=funder)
    pausable = _deploy(
        references["PausableReferenceAuthorizationToken"], funder, 10**12, sender=funder
    )
    for token in (plain, reference, pausable):
        for payer in payers:
            _send(token.transfer, payer, REFERENCE_HOLDING, sender=funder)
        for merchant in people.merchants[:MERCHANTS]:
            _send(token.transfer, merchant, WARM_BALANCE, sender=funder)
    print(
        f"PlainERC20 {plain.address}  ReferenceAuthorizationToken {reference.address}  "
        f"PausableReferenceAuthorizationToken {pausable.address}"
    )

    print(f"\n== Deploy {GIMPO.name} as it was before money classes ({BEFORE_CLASSES})")
    before = deploy_before_classes(compile_before_classes(), admin)
    populate(people, *before)
    before_rows = {row.key: row for row in payment_rows(people, before[0])}

    print(f"\n== Deploy {GIMPO.name}, register and charge residents, warm the merchants")
    suite = deploy_city_suite(GIMPO, admin)
    token, treasury = suite.token, suite.treasury
    populate(people, token, suite.registry, treasury)
    print(f"{len(people.residents())} residents charged, {len(people.merchants)} merchants")

    print("\n== Measure")
    reference_domain, pausable_domain = _domain(reference), _domain(pausable)
    rows = [
        _single(
            "plain_transfer",
            "OpenZeppelin ERC-20 `transfer` (reference)",
            lambda i: _send(plain.transfer, near(i), PAYMENT, sender=payers[i]),
        ),
        _single(
            "reference_authorization",
            "USDC-style `transferWithAuthorization` (reference)",
            lambda i: _send(
                reference.transferWithAuthorization,
                *_authorize(payers[i], reference_domain, near(i), f"reference-{i}"),
                sender=relayer,
            ),
        ),
        _single(
            "reference_authorization_pausable",
            "the same with a pause check (OpenZeppelin `ERC20Pausable`; no goal)",
            lambda i: _send(
                pausable.transferWithAuthorization,
                *_authorize(payers[i], pausable_domain, near(i), f"pausable-{i}"),
                sender=relayer,
            ),
        ),
    ]
    for row in payment_rows(people, token):
        row.before_classes = before_rows[row.key].gas
        rows.append(row)
    rows.append(
        _single(
            "issuance",
            "issuance: `issue` (charge + 10% incentive, 2nd this month)",
            lambda i: _send(
                treasury.issue, payers[i], CHARGE, _hash("deposit", f"second-{i}"), sender=issuer
            ),
        )
    )
    cash_outs = _single(
        "cash_out",
        "cash-out: `cashOut` (burn, redemption recorded)",
        lambda i: _send(treasury.cashOut, CASH_OUT, sender=near(i)),
    )
    rows.append(cash_outs)
    # settle names the redemption's account and payout, as the backend's settler does.
    redemptions = [
        TransactionReceipt(tx["hash"], silent=True).events["RedemptionRequested"]
        for tx in cash_outs.transactions
    ]
    rows.append(
        _single(
            "settlement",
            "settlement: `settle` (bank reference recorded)",
            lambda i: _send(
                treasury.settle,
                redemptions[i]["id"],
                redemptions[i]["account"],
                redemptions[i]["payout"],
                _hash("bank", str(i)),
                sender=settler,
            ),
        )
    )
    # After the rows above, so that none measures a state the refunds changed.
    city_domain = _domain(token)
    rows.append(
        _single(
            "relayed_refund",
            "refund: `refundWithAuthorization` (merchant-signed, relayed; part of an invoice)",
            lambda i: _send(
                token.refundWithAuthorization,
                *sign_refund(
                    near(i).private_key,
                    city_domain,
                    payer=payers[i].address,
                    payment_id=_hash("invoice", str(i)),
                    value=REFUND,
                    valid_before=chain.time() + 3600,
                    nonce=_hash("refund", str(i)),
                ).as_args(),
                sender=relayer,
            ),
        )
    )
    # Last: it moves the chain's clock past the program's expiry.
    rows += class_rows(people, suite)
    rows += gift_rows(people, suite)
    # Last: the city goes to cashback mode.
    rows += cashback_rows(people, suite)

    compiler = references["PlainERC20"]._build["compiler"]
    if compiler != token._build["compiler"]:
        raise RuntimeError(f"references built with {compiler}, the token otherwise")
    report = _report(rows, compiler)
    table = render(report)
    print()
    print(table)
    RESULTS.mkdir(exist_ok=True)
    _write(RESULTS / "gas.md", table)
    _write(RESULTS / "gas.json", json.dumps(report, indent=2, ensure_ascii=False) + "\n")
    print(f"written: {RESULTS / 'gas.md'}, {RESULTS / 'gas.json'}")


def _report(rows: list[Row], compiler: dict) -> dict:
    by_key = {row.key: row for row in rows}
    plain_gas, reference_gas = by_key["plain_transfer"].gas, by_key["reference_authorization"].gas
    for row in rows:
        row.vs_plain_transfer = row.gas / plain_gas
        row.vs_reference_authorization = row.gas / reference_gas
        if row.goal is not None:
            row.status = "PASS" if row.vs_reference_authorization <= row.goal else "MISS"
        if row.before_classes is not None:
            row.vs_before_classes = row.gas / row.before_classes
            passed = row.vs_before_classes <= BEFORE_CLASSES_GOAL
            row.status_before_classes = "PASS" if passed else "MISS"
    node = web3.provider.make_request("anvil_nodeInfo", [])["result"]
    return {
        "command": "make gas (brownie run bench/gas.py)",
        "measured_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "chain": {
            "client": web3.client_version,
            "chain_id": chain.id,
            "hardfork": node.get("hardFork"),
        },
        "compiler": compiler,
        "setup": {
            "samples_per_operation": SAMPLES,
            "merchants_per_batch": MERCHANTS,
            "batch_sizes": list(BATCH_SIZES),
            "payment_krw": PAYMENT,
            "charge_krw": CHARGE,
            "cash_out_krw": CASH_OUT,
            "refund_krw": REFUND,
            "before_classes_commit": BEFORE_CLASSES,
            "program_payout_krw": PROGRAM_PAYOUT,
        },
        "operations": [asdict(row) for row in rows],
    }


def render(report: dict) -> str:
    """The markdown table and its notes."""
    lines = [
        "| operation | gas | x ERC-20 transfer | x reference authorization | goal "
        "| before money classes | x before (goal <= 1.05x) |",
        "|---|---:|---:|---:|---|---:|---|",
    ]
    for row in report["operations"]:
        goal = f"<= {row['goal']:.2f}x: **{row['status']}**" if row["goal"] is not None else ""
        before, vs_before = "", ""
        if row["before_classes"] is not None:
            before = f"{row['before_classes']:,}"
            vs_before = f"{row['vs_before_classes']:.3f}x: **{row['status_before_classes']}**"
        lines.append(
            f"| {row['operation']} | {row['gas']:,} | {row['vs_plain_transfer']:.2f}x "
            f"| {row['vs_reference_authorization']:.2f}x | {goal} | {before} | {vs_before} |"
        )
    compiler, chain_info = report["compiler"], report["chain"]
    gas = {row["key"]: row["gas"] for row in report["operations"]}
    over_reference = gas["authorization"] - gas["reference_authorization"]
    pause_check = gas["reference_authorization_pausable"] - gas["reference_authorization"]
    rest = over_reference - pause_check
    notes = [
        "",
        "- Gas is the transaction's `gas_used`: the 21,000 base cost and calldata included. "
        f"Single operations: the median of {SAMPLES} transactions, each by another payer; "
        "a batch: one transaction's `gas_used` divided by its number of payments.",
        "- Warm balances, in every token alike: the payer and the merchant already hold tokens, "
        "as at a busy till; every authorization nonce and invoice id is new (a fresh storage "
        "slot) in the reference and ours. Our plain `transfer` also adds to the payer's running "
        "total at that merchant (what refunds of plain payments draw on): a new slot the first "
        "time a payer pays there.",
        f"- Batches: every payment by a different resident, to {MERCHANTS} merchants in turn (a "
        "merchant's balance is cold once per batch). The spread-out batch pays a different "
        "merchant each time: the worst case for a relayer batching a whole city's payments. Goals "
        "compare with the reference `transferWithAuthorization` (one payment per transaction).",
        "- Issuance: a resident's second charge of the month, incentive included; cash-out: part "
        "of a merchant's balance; settlement: that cash-out's bank reference; relayed refund: "
        f"{REFUND:,} KRW of a measured invoice payment, signed by the merchant and sent by the "
        "relayer (a fresh nonce of the merchant; the payment's record, both balances cold).",
        f"- Our `transferWithAuthorization` is {over_reference:,} gas over the reference: "
        f"{pause_check:,} are the pause check, a cold storage read the minimal reference does "
        "without (the same reference with OpenZeppelin's `ERC20Pausable`, as USDC's FiatTokenV2 "
        f"checks `whenNotPaused`, costs {pause_check:,} more), the other {rest:,} the rest of our "
        "path (payer and payee status, the zero-nonce refusal, the refund record, a larger "
        "contract's dispatch).",
        "- Before money classes: the same payments, by the same wallets, on the city's contracts "
        f"as they were at commit {BEFORE_CLASSES}, built from git with the same compiler in this "
        "run. A resident holding general money only, paying a merchant that takes it, must pay "
        f"within {BEFORE_CLASSES_GOAL - 1:.0%} of it.",
        "- Money classes: residents paid a program's allowance of "
        f"{PROGRAM_PAYOUT:,} KRW (eligible at the measured merchants) besides their general money; "
        "the program-money payments draw on the allowance alone, the mixed payment on what is "
        "left of it and on general money, its refund gives both back; the sweep burns an expired "
        "allowance. A payout batch pays residents holding nothing yet.",
        "- Cashback: the city goes to cashback mode (10% at its merchants); each settled payment "
        f"is a {PAYMENT:,} KRW `pay` by another resident, its cashback the resident's first this "
        "month (the treasury's tally, the month's counters and a new lot of general money are "
        f"written); the refund's settle takes back the share of a {REFUND:,} KRW refund. The "
        "payment path is untouched: the rows above are measured before the switch.",
        f"- solc {compiler['version']}, optimizer runs {compiler['optimizer']['runs']}, EVM "
        f"{compiler['evm_version']}, for the references and the product alike; "
        f"{chain_info['client']}, hardfork {chain_info['hardfork']}, zero gas price.",
    ]
    return "\n".join(lines + notes) + "\n"


def _write(path: Path, text: str) -> None:
    """Writes through a temporary file so an interrupted run leaves the last results whole."""
    temporary = path.with_suffix(path.suffix + ".tmp")
    temporary.write_text(text)
    temporary.replace(path)
