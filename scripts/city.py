"""Shows a city from the manifest and the chain: contracts, role holders, policy, supply.

    python -m scripts.city gimpo [--json]
    python -m scripts.city gimpo --network permissioned --rpc-url URL --chain-id N

Read-only: it needs no key and sends nothing. It reads the ABI files the deployment wrote beside
the manifest, as the backend does, so it runs without a build.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from web3 import Web3

from scripts.chain import ChainError
from scripts.deploy import NETWORKS, resolve_network
from scripts.deployment import DeploymentError
from scripts.deployment.manifest import SUITE, Manifest, load_manifest
from scripts.deployment.plan import ARTIFACT_OF, excluded_categories, role_holders
from scripts.deployment.rpc import code_hash, connect

DAY = 24 * 60 * 60


def city_view(
    code: str,
    *,
    network: str = "embedded",
    rpc_url: str | None = None,
    chain_id: int | None = None,
    manifest_path: str | Path | None = None,
) -> dict:
    rpc_url, chain_id, manifest_path, _ = resolve_network(network, rpc_url, chain_id, manifest_path)
    manifest = load_manifest(manifest_path, chain_id=chain_id)
    if manifest is None:
        raise DeploymentError(f"no manifest at {manifest_path}: deploy first (make deploy)")
    record = manifest.cities.get(code)
    if record is None or set(record.contracts) != set(SUITE):
        known = ", ".join(manifest.cities) or "none"
        raise DeploymentError(
            f"city {code!r} is not deployed on chain {chain_id} (cities: {known})"
        )
    w3 = connect(rpc_url, chain_id)
    folder = Path(manifest_path).parent
    contracts = {
        kind: _contract(w3, manifest, folder, kind, r.address)
        for kind, r in [("directory", manifest.directory), *record.contracts.items()]
    }
    token, treasury, registry = (contracts[kind] for kind in SUITE[:3])
    names = {address: name for name, address in manifest.accounts.items()}

    def who(address: str) -> dict:
        return {"name": names.get(address), "address": address}

    roles = []
    for kind, r in record.contracts.items():
        for role, members in sorted(
            role_holders(w3, r.address, contracts[kind].abi, r.block).items()
        ):
            roles.append(
                {"contract": kind, "role": role, "holders": [who(a) for a in sorted(members)]}
            )
    issuers = next((r["holders"] for r in roles if r["role"] == "ISSUER_ROLE"), [])
    for issuer in issuers:
        issuer["allowance"] = treasury.functions.issuerAllowance(issuer["address"]).call()

    policy = treasury.functions.policy().call()
    registry_record = record.contracts["registry"]
    excluded = excluded_categories(w3, registry.address, registry.abi, registry_record.block)
    issued, incentive, burned, returned, settled, clawed_back = treasury.functions.totals().call()
    listed = [c for c in contracts["directory"].functions.cities().call() if c[0] == code]
    return {
        "code": code,
        "name": record.name,
        "local_name": record.local_name,
        "symbol": record.symbol,
        "chain_id": chain_id,
        "block": w3.eth.block_number,
        "listed_in_directory": bool(listed),
        "contracts": {
            label: {
                "address": r.address,
                "block": r.block,
                "code_matches_manifest": code_hash(w3, r.address) == r.code_hash,
            }
            for label, r in [("directory", manifest.directory), *record.contracts.items()]
        },
        "roles": roles,
        "issuers": issuers,
        "policy": {
            "annual_issuance_cap": policy[0],
            "monthly_purchase_limit": policy[1],
            "holding_cap": policy[2],
            "incentive_bps": policy[3],
            "monthly_incentive_limit": policy[4],
            "merchant_revenue_cap": registry.functions.merchantRevenueCap().call(),
            "excluded_categories": sorted(excluded),
            "ban_period_days": registry.functions.banPeriod().call() // DAY,
            "fiscal_year_start_month": treasury.functions.fiscalYearStartMonth().call(),
        },
        "paused": token.functions.paused().call(),
        "total_supply": token.functions.totalSupply().call(),
        "fiscal_year": treasury.functions.currentFiscalYear().call(),
        "issued_this_fiscal_year": treasury.functions.issuedThisFiscalYear().call(),
        "totals": {
            "issued": issued,
            "incentive": incentive,
            "burned": burned,
            "returned": returned,
            "settled": settled,
            "clawed_back": clawed_back,
        },
        "residents": registry.functions.residentCount().call(),
        "merchants": registry.functions.merchantCount().call(),
    }


def _contract(w3: Web3, manifest: Manifest, folder: Path, kind: str, address: str):
    abi_file = manifest.abi.get(ARTIFACT_OF[kind])
    if abi_file is None:
        raise DeploymentError(f"the manifest lists no ABI file for {ARTIFACT_OF[kind]}")
    return w3.eth.contract(address=address, abi=json.loads((folder / abi_file).read_text()))


def render(view: dict) -> str:
    krw = "{:,} KRW".format
    policy = view["policy"]
    cap = policy["annual_issuance_cap"]
    issued = view["issued_this_fiscal_year"]
    excluded = ", ".join(map(str, policy["excluded_categories"])) or "none"
    lines = [
        f"{view['name']} ({view['local_name']}), code {view['code']}, symbol {view['symbol']}: "
        f"chain {view['chain_id']} at block {view['block']}"
        + ("" if view["listed_in_directory"] else "  ** not listed in the directory **")
        + ("  ** PAUSED **" if view["paused"] else ""),
        "",
        "Contracts",
    ]
    for label, c in view["contracts"].items():
        check = "code matches the manifest" if c["code_matches_manifest"] else "** CODE DIFFERS **"
        lines.append(f"  {label:<10} {c['address']}  block {c['block']}, {check}")
    lines += ["", "Roles (from the chain's RoleGranted/RoleRevoked events)"]
    for r in view["roles"]:
        holders = ", ".join(f"{h['name'] or '?'} {h['address']}" for h in r["holders"]) or "nobody"
        lines.append(f"  {r['contract']:<9} {r['role']:<20} {holders}")
    for issuer in view["issuers"]:
        lines.append(
            f"  issuer {issuer['name'] or issuer['address']}: allowance {krw(issuer['allowance'])}"
        )
    lines += [
        "",
        "Policy (on chain)",
        f"  annual issuance cap      {krw(cap)}",
        f"  monthly purchase limit   {krw(policy['monthly_purchase_limit'])}",
        f"  holding cap              {krw(policy['holding_cap'])}",
        f"  incentive                {policy['incentive_bps'] / 100:g}% up to "
        f"{krw(policy['monthly_incentive_limit'])} a month",
        f"  merchant revenue cap     {krw(policy['merchant_revenue_cap'])}",
        f"  excluded categories      {excluded}",
        f"  ban after 깡             {policy['ban_period_days']} days",
        f"  fiscal year starts       month {policy['fiscal_year_start_month']}",
        "",
        "Circulation",
        f"  total supply             {krw(view['total_supply'])}",
        f"  issued in fiscal {view['fiscal_year']}    {krw(issued)} of {krw(cap)} "
        f"({100 * issued / cap:.2f}%)",
        f"  residents                {view['residents']:,}",
        f"  merchants                {view['merchants']:,}",
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m scripts.city", description=__doc__.split("\n")[0]
    )
    parser.add_argument("code", help="the city's code, e.g. gimpo")
    parser.add_argument("--network", default="embedded", choices=NETWORKS)
    parser.add_argument("--rpc-url")
    parser.add_argument("--chain-id", type=int)
    parser.add_argument("--manifest")
    parser.add_argument("--json", action="store_true", help="print the view as JSON")
    args = parser.parse_args(argv)
    try:
        view = city_view(
            args.code,
            network=args.network,
            rpc_url=args.rpc_url,
            chain_id=args.chain_id,
            manifest_path=args.manifest,
        )
    except (DeploymentError, ChainError) as error:
        print(f"city: error: {error}", file=sys.stderr)
        return 1
    print(json.dumps(view, indent=2, ensure_ascii=False) if args.json else render(view))
    return 0


if __name__ == "__main__":
    sys.exit(main())
