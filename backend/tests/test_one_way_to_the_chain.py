"""Every domain reaches the chain through the gateway (citypay/chain/): a static check of the
backend's sources, as tests/test_access_control.py checks the contracts'.

Outside chain/, no module may
- use web3.py's contract objects or connection (`.functions.X`, `.events.X`, `encode_abi`,
  `get_logs`, `make_request`, `make_batch_request`, `w3.eth`), nor import web3 but to hand a
  connection to the Deployment (ALLOWED_WEB3_IMPORTS);
- build a selector, a topic or an ABI result by hand (`function_signature_to_4byte_selector`,
  `event_abi_to_log_topic`, `Codec.selector`, a "name(type,...)" signature, eth_abi's `decode`);
- read a call's result by position (`x.call(...)[1]`, `r = x.call(...)` then `r[5]`, or
  `a, b = x.call(...)`): the codec names a struct's fields and a function's results;
- copy a contract enum as numbers (`MERCHANT = 2`, `{0: "cash_out", ...}`, or
  `x.call("accountKind", a) != 2`): the enums are chain/enums.py's, generated from the
  interfaces.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from citypay.chain import enums

PACKAGE = Path(__file__).resolve().parents[1] / "citypay"
# The day's script hands a web3 connection to the Deployment it shares with its tools; it reads
# and sends through the gateway like every domain.
ALLOWED_WEB3_IMPORTS = {"day/script.py"}
WEB3_METHODS = {"encode_abi", "get_logs", "make_request", "make_batch_request", "build_transaction"}
# What the codec does, imported to do it by hand: name -> the module it must come from (None: any).
HAND_CODING = {
    "function_signature_to_4byte_selector": None,
    "event_abi_to_log_topic": None,
    "decode": "eth_abi",
}
READS = {"call", "simulate"}  # PlatformContract's reads: their results are named
SIGNATURE = re.compile(r"^[A-Za-z_]\w*\((?:[a-z]+\d*(?:\[\d*\])*(?:,[a-z]+\d*(?:\[\d*\])*)*)?\)$")
ENUM_MEMBERS = {
    member.name
    for enum in vars(enums).values()
    if isinstance(enum, type) and issubclass(enum, enums.IntEnum) and enum is not enums.IntEnum
    for member in enum
}


Finding = tuple[int, str]  # (line, what is wrong)


def _is_read(node: ast.AST) -> bool:
    """A PlatformContract read: `<contract>.call(...)` or `<contract>.simulate(...)`."""
    return (
        isinstance(node, ast.Call)
        and isinstance(node.func, ast.Attribute)
        and node.func.attr in READS
    )


def _is_int(node: ast.AST | None) -> bool:
    return (
        isinstance(node, ast.Constant)
        and isinstance(node.value, int)
        and not isinstance(node.value, bool)
    )


def _names(target: ast.AST) -> list[str]:
    if isinstance(target, ast.Name):
        return [target.id]
    if isinstance(target, ast.Tuple | ast.List):
        return [name for element in target.elts for name in _names(element)]
    return []


def _web3(tree: ast.Module, module: str) -> Iterator[Finding]:
    for node in ast.walk(tree):
        if isinstance(node, ast.Import | ast.ImportFrom) and module not in ALLOWED_WEB3_IMPORTS:
            imported = (
                [node.module or ""] if isinstance(node, ast.ImportFrom) else
                [alias.name for alias in node.names]
            )  # fmt: skip
            if any(name.split(".")[0] == "web3" for name in imported):
                yield node.lineno, "imports web3: read and send through the gateway"
        if not isinstance(node, ast.Attribute):
            continue
        if isinstance(node.value, ast.Attribute) and node.value.attr in ("functions", "events"):
            yield node.lineno, f"web3 contract's {node.value.attr}.{node.attr}: use the gateway"
        if node.attr in WEB3_METHODS:
            yield node.lineno, f"web3's {node.attr}: use the gateway"
        if node.attr == "eth":
            yield node.lineno, "a web3 connection's eth: use the gateway"


def _hand_encoding(tree: ast.Module) -> Iterator[Finding]:
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            for alias in node.names:
                if alias.name in HAND_CODING and HAND_CODING[alias.name] in (None, node.module):
                    yield node.lineno, f"imports {alias.name}: the codec encodes and decodes"
        if isinstance(node, ast.Attribute) and node.attr == "selector":
            yield node.lineno, "a selector by hand: PlatformContract.calldata"
        if isinstance(node, ast.Constant) and SIGNATURE.match(str(node.value)):
            yield node.lineno, f"the signature {node.value!r}: the codec has it"


def _in_scope(scope: ast.AST) -> Iterator[ast.AST]:
    """The nodes of a module or function, not those of the functions it defines."""
    for child in ast.iter_child_nodes(scope):
        yield child
        if not isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda):
            yield from _in_scope(child)


def _by_position(tree: ast.Module) -> Iterator[Finding]:
    """A read's result by index or unpacked, in its statement or through the name bound to it
    in the same function (or module)."""
    functions = [n for n in ast.walk(tree) if isinstance(n, ast.FunctionDef | ast.AsyncFunctionDef)]
    for scope in [tree, *functions]:
        bound = set()
        for node in _in_scope(scope):
            if isinstance(node, ast.Assign) and _is_read(node.value):
                for target in node.targets:
                    if isinstance(target, ast.Name):
                        bound.add(target.id)
                    elif isinstance(target, ast.Tuple | ast.List):
                        yield node.lineno, "a read's results unpacked by position: name them"
        for node in _in_scope(scope):
            if not isinstance(node, ast.Subscript):
                continue
            if _is_read(node.value):
                yield node.lineno, "a read's result by position: name its field"
            if isinstance(node.value, ast.Name) and node.value.id in bound and _is_int(node.slice):
                yield node.lineno, f"{node.value.id}[...] by position: name its field"


def _enum_copies(tree: ast.Module) -> Iterator[Finding]:
    for node in ast.walk(tree):
        if isinstance(node, ast.Compare):
            sides = [node.left, *node.comparators]
            if any(_is_read(side) for side in sides) and any(_is_int(side) for side in sides):
                yield node.lineno, "a read compared with a number: chain/enums.py names it"
    for node in tree.body:
        if not isinstance(node, ast.Assign):
            continue
        names = [name for target in node.targets for name in _names(target)]
        values = node.value.elts if isinstance(node.value, ast.Tuple) else [node.value]
        copied = any(name in ENUM_MEMBERS for name in names) and all(map(_is_int, values))
        if copied or (isinstance(node.value, ast.Dict) and _numbers_enum_members(node.value)):
            yield node.lineno, f"{', '.join(names)} copies chain/enums.py"


def _numbers_enum_members(mapping: ast.Dict) -> bool:
    """{0: "cash_out", 1: "resident_refund", ...}: numbers to the names of an enum's members."""
    return all(map(_is_int, mapping.keys)) and any(
        isinstance(value, ast.Constant)
        and isinstance(value.value, str)
        and value.value.upper() in ENUM_MEMBERS
        for value in mapping.values
    )


def findings(source: str, module: str = "<source>") -> list[Finding]:
    """What in `source` reaches the chain other than through the gateway, by line."""
    tree = ast.parse(source)
    return sorted(
        {
            *_web3(tree, module),
            *_hand_encoding(tree),
            *_by_position(tree),
            *_enum_copies(tree),
        }
    )


def _domain_modules() -> list[Path]:
    return sorted(
        path for path in PACKAGE.rglob("*.py") if path.relative_to(PACKAGE).parts[0] != "chain"
    )


@pytest.mark.parametrize("path", _domain_modules(), ids=lambda path: str(path.relative_to(PACKAGE)))
def test_the_module_reaches_the_chain_only_through_the_gateway(path):
    module = path.relative_to(PACKAGE).as_posix()
    found = findings(path.read_text(encoding="utf-8"), module)
    assert not found, f"{module}:\n" + "\n".join(f"  line {n}: {what}" for n, what in found)


@pytest.mark.parametrize(
    "source",
    [
        "from web3 import Web3",
        "balance = city.token.functions.balanceOf(wallet).call()",
        "logs = token.events.AuthorizationUsed().get_logs(from_block=0)",
        "data = token.encode_abi('refund', args=args)",
        "now = deployment.w3.eth.get_block('latest')['timestamp']",
        "answers = w3.provider.make_batch_request(calls)",
        "from eth_utils import function_signature_to_4byte_selector",
        "SELECTOR = keccak(text='balanceOf(address)')[:4]",
        "data = codec_of('token').selector('transfer') + encode(types, args)",
        "from eth_abi import decode",
        "cap = city.chain.treasury.call('policy')[0]",
        "def f(registry):\n    record = registry.call('merchantOf', m)\n    return record[5]",
        "_, name, version, chain_id, contract, _, _ = treasury.call('eip712Domain')",
        "MERCHANT = 2  # ICityToken.AccountKind.Merchant",
        "UNUSED, CANCELED = 0, 2",
        "KINDS = {0: 'cash_out', 1: 'resident_refund', 2: 'confiscation'}",
        "ok = token.call('accountKind', merchant) != 2",
    ],
)
def test_the_check_finds_each_way_around_the_gateway(source):
    assert findings(source), source


def test_the_check_passes_the_gateway_s_way():
    source = (
        "from citypay.chain.enums import AccountKind, Status\n"
        "def f(city, merchant):\n"
        "    record = city.chain.registry.call('merchantOf', merchant)\n"
        "    kind = city.chain.token.call('accountKind', merchant)\n"
        "    books = {'events': [1, 2]}\n"
        "    first = books['events'][0]\n"
        "    view = {}\n"
        "    view['nonce'] = city.chain.registry.call('payoutAccountNonce', merchant)\n"
        "    return record.status is Status.REVOKED and kind is AccountKind.MERCHANT\n"
    )
    assert findings(source) == []
