"""Deploys the platform from the city configuration: the directory and each city's suite.

    python -m scripts.deploy                       # the embedded chain (make chain-start first)
    python -m scripts.deploy --network permissioned --rpc-url URL --chain-id N \\
        --keystore-dir keys/                       # a Besu / GoQuorum network
    python -m scripts.deploy --config F --allowlist NODE/data/permissions_config.toml ...
                                                   # each Besu node's accounts allowlist

Idempotent: a second run sends nothing and checks the code on chain against the manifest; a city
added to the configuration deploys only that city; a changed policy value is one setter call.
From Python: `deploy_platform("config/cities.yaml")` returns the manifest as a dict.

Networks:
- embedded: the project's anvil (scripts/chain.py: CITY_CHAIN_PORT, CITY_CHAIN_ID), anvil's
  development keys (refused on any other chain id), manifest beside the chain's state under data/.
- permissioned: --rpc-url / CITY_RPC_URL and --chain-id / CITY_RPC_CHAIN_ID, keys from an
  encrypted keystore folder (--keystore-dir / CITY_KEYSTORE_DIR, default keys/; passwords from
  CITY_KEYSTORE_PASSWORD or a prompt), manifest deployments/<chainId>.json (commit it).
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable
from pathlib import Path
from urllib.parse import urlsplit

from citypay.chain.keystore import (
    DevKeys,
    KeyLoadError,
    KeystoreKeys,
    development_index,
    public_key_warning,
)

from scripts.chain import ROOT, ChainError, ChainSettings
from scripts.deployment import DeploymentError
from scripts.deployment.config import PlatformConfig, load_config
from scripts.deployment.manifest import load_manifest

DEFAULT_CONFIG = ROOT / "config" / "cities.yaml"
NETWORKS = ("embedded", "permissioned")
LOOPBACK = ("127.0.0.1", "localhost", "::1")


def deploy_platform(
    config_path: str | Path = DEFAULT_CONFIG,
    *,
    network: str = "embedded",
    rpc_url: str | None = None,
    chain_id: int | None = None,
    keys: str | None = None,
    keystore_dir: str | Path | None = None,
    manifest_path: str | Path | None = None,
    gas_price: int = 0,
    log: Callable[[str], None] = print,
) -> dict:
    """Deploys what the configuration lists and the chain lacks; returns the manifest (a dict
    as written to the manifest file: addresses, blocks, code hashes, roles, policy, ABI files)."""
    from scripts.deployment.artifacts import load_artifacts
    from scripts.deployment.plan import Deployment
    from scripts.deployment.rpc import connect, redact

    config = load_config(config_path)
    rpc_url, chain_id, manifest_path, embedded_id = resolve_network(
        network, rpc_url, chain_id, manifest_path
    )
    keys = keys or ("dev" if network == "embedded" else "keystore")
    if keys == "dev":
        host = urlsplit(rpc_url).hostname
        if chain_id != embedded_id or host not in LOOPBACK:
            raise DeploymentError(
                f"anvil's development keys are public: they are accepted only on the embedded "
                f"chain (chain id {embedded_id} on this machine), not on chain id {chain_id} at "
                f"{redact(rpc_url)}; use --keys keystore"
            )
        key_source = DevKeys()
    elif keys == "keystore":
        folder = keystore_dir or os.environ.get("CITY_KEYSTORE_DIR") or ROOT / "keys"
        key_source = KeystoreKeys(folder)
    else:
        raise DeploymentError(f"--keys {keys!r}: accepted values are dev and keystore")
    if chain_id != embedded_id:
        refuse_public_accounts(config, chain_id, embedded_id)
    manifest = load_manifest(manifest_path, chain_id=chain_id)
    w3 = connect(rpc_url, chain_id)
    log(
        f"deploy: {network} chain {chain_id} at {redact(rpc_url)}; deployer {config.deployer} "
        f"({config.address(config.deployer)}); keys: {key_source.description}"
    )
    deployment = Deployment(
        config=config,
        w3=w3,
        artifacts=load_artifacts(),
        keys=key_source,
        manifest=manifest,
        manifest_path=Path(manifest_path),
        network=network,
        gas_price=gas_price,
        log=log,
    )
    return deployment.run().model_dump(mode="json")


def refuse_public_accounts(config: PlatformConfig, chain_id: int, embedded_id: int) -> None:
    """Off the embedded chain, no role, issuer or sender may be an account of the public
    development mnemonic: whoever has its key (everyone) would hold the role. A development key
    imported into a keystore is caught too, by its address."""
    public = [
        f"{where} = {name}: {public_key_warning(config.address(name))}"
        for where, name in config.account_references()
        if development_index(config.address(name)) is not None
    ]
    if public:
        raise DeploymentError(
            f"on chain id {chain_id} the configuration may not name development accounts "
            f"(they are accepted on the embedded chain, {embedded_id}, only); nothing was sent:\n  "
            + "\n  ".join(public)
            + "\nput the addresses of keys of your own under `accounts:` (docs/deploy-besu.md)"
        )


def connect_brownie(
    network: str = "embedded", *, rpc_url: str | None = None, chain_id: int | None = None
):
    """Connects Brownie to the embedded chain (or a permissioned network) for scripts that use
    Brownie's contracts and accounts, such as the day, with zero-priced legacy transactions.

    Brownie reads its networks from ~/.brownie, not from the project, so the network is
    registered in memory here. A Brownie connection to another network is closed first.
    Returns the Brownie project: `project.CityToken.at(address)`. Accounts on the embedded
    chain: `accounts.add(DevKeys().signer(address, name).key)`.
    """
    from brownie import network as brownie_network
    from brownie._config import CONFIG

    from scripts.deployment.artifacts import load_project
    from scripts.deployment.rpc import connect
    from scripts.receipts import await_receipts_brownie_calls_dropped

    rpc_url, chain_id, _, _ = resolve_network(network, rpc_url, chain_id, None)
    connect(rpc_url, chain_id)  # the clear errors: unreachable, wrong chain id
    city_project = load_project()
    network_id = f"city-{network}-{chain_id}"
    CONFIG.networks[network_id] = {
        "id": network_id,
        "name": f"City token platform, {network} (chain id {chain_id})",
        "host": rpc_url,
        "chainid": str(chain_id),
    }
    if brownie_network.is_connected():
        brownie_network.disconnect()
    brownie_network.connect(network_id)
    await_receipts_brownie_calls_dropped()
    CONFIG.active_network["settings"].update(gas_price=0, max_fee=None, priority_fee=None)
    return city_project


def resolve_network(
    network: str, rpc_url: str | None, chain_id: int | None, manifest_path: str | Path | None
) -> tuple[str, int, Path, int]:
    """(RPC URL, chain id, manifest path, the embedded chain's id) for the network."""
    embedded = ChainSettings.from_env()
    if network == "embedded":
        return (
            rpc_url or embedded.rpc_url,
            chain_id or embedded.chain_id,
            Path(manifest_path or embedded.manifest_file),
            embedded.chain_id,
        )
    if network != "permissioned":
        raise DeploymentError(f"--network {network!r}: accepted values are {', '.join(NETWORKS)}")
    rpc_url = rpc_url or os.environ.get("CITY_RPC_URL")
    raw_chain_id = chain_id or os.environ.get("CITY_RPC_CHAIN_ID")
    if not rpc_url or not raw_chain_id:
        raise DeploymentError(
            "the permissioned network needs its RPC URL and chain id: --rpc-url and --chain-id "
            "(or CITY_RPC_URL and CITY_RPC_CHAIN_ID)"
        )
    try:
        chain_id = int(raw_chain_id)
    except ValueError:
        raise DeploymentError(f"chain id {raw_chain_id!r} is not a number") from None
    manifest = Path(manifest_path or ROOT / "deployments" / f"{chain_id}.json")
    return rpc_url, chain_id, manifest, embedded.chain_id


def allowlist(config_path: str | Path) -> tuple[str, int]:
    """The accounts allowlist of a Besu node (permissions_config.toml) and how many accounts it
    admits: every account of the configuration, the only ones that send transactions. Each
    address once and in lower case, as Besu keeps them: it refuses to start on a list naming an
    address twice (two names for one account), and compares the file with its own lower-case
    list when a perm_ call changes it."""
    config = load_config(config_path)
    names: dict[str, list[str]] = {}
    for name, address in config.accounts.items():
        names.setdefault(address.lower(), []).append(name)
    held = [f"# {address}: {', '.join(by)}" for address, by in names.items()]
    listed = ", ".join(f'"{address}"' for address in names)
    text = "\n".join(
        [f"# The accounts of {config_path}", *held, f"accounts-allowlist=[{listed}]", ""]
    )
    return text, len(names)


def write_allowlist(config_path: str | Path, files: list[str]) -> None:
    """Writes the allowlist to each file, whole or not at all: a file is replaced only once the
    list is made (a shell redirect empties it before a failing command has run)."""
    text, count = allowlist(config_path)
    paths = [Path(file) for file in files]
    missing = [
        f"{path}: there is no folder {path.parent}" for path in paths if not path.parent.is_dir()
    ]
    if missing:
        raise DeploymentError("--allowlist: nothing was written:\n  " + "\n  ".join(missing))
    for file in paths:
        partial = file.with_name(file.name + ".partial")
        partial.write_text(text, encoding="utf-8")
        os.replace(partial, file)
        print(f"{file}: {count} accounts")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m scripts.deploy", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--config", default=str(DEFAULT_CONFIG), help="city configuration (YAML)")
    parser.add_argument("--network", default="embedded", choices=NETWORKS)
    parser.add_argument("--rpc-url", help="JSON-RPC URL (permissioned: or CITY_RPC_URL)")
    parser.add_argument("--chain-id", type=int, help="expected chain id (or CITY_RPC_CHAIN_ID)")
    parser.add_argument("--keys", choices=("dev", "keystore"), help="where the keys come from")
    parser.add_argument("--keystore-dir", help="keystore folder (or CITY_KEYSTORE_DIR; keys/)")
    parser.add_argument("--manifest", help="manifest file (default: per network and chain id)")
    parser.add_argument("--gas-price", type=int, default=0, help="wei per gas (default 0)")
    parser.add_argument(
        "--allowlist",
        nargs="*",
        metavar="FILE",
        help="write the Besu accounts allowlist for the configuration to each FILE (each node's "
        "permissions_config.toml), or print it, and exit",
    )
    args = parser.parse_args(argv)
    try:
        if args.allowlist == []:
            print(allowlist(args.config)[0], end="")
            return 0
        if args.allowlist:
            write_allowlist(args.config, args.allowlist)
            return 0
        deploy_platform(
            args.config,
            network=args.network,
            rpc_url=args.rpc_url,
            chain_id=args.chain_id,
            keys=args.keys,
            keystore_dir=args.keystore_dir,
            manifest_path=args.manifest,
            gas_price=args.gas_price,
        )
    except (DeploymentError, ChainError, KeyLoadError) as error:
        print(f"deploy: error: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
