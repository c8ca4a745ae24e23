"""The deployment manifest: what is deployed on one chain, read by the backend and the next run.

One file per chain id. For the embedded chain it lives beside the chain's state under data/ (not
in git: it is only true for that state file). For a permissioned network it is deployments/
<chainId>.json, committed: it is the record of what the platform runs on, and the ABI files
beside it (abi/) let the backend talk to the contracts without a build.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from pydantic import BaseModel, ConfigDict

from scripts.deployment import DeploymentError

FORMAT = 1
SUITE = ("token", "treasury", "registry", "programs", "gifts", "cashback")


class _Record(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ContractRecord(_Record):
    address: str
    block: int
    transaction: str
    # keccak256 of eth_getCode: every run checks the chain still holds this code.
    code_hash: str


class CityRecord(_Record):
    name: str
    local_name: str
    symbol: str
    contracts: dict[str, ContractRecord] = {}
    # As configured at the last run that completed: duty -> address (issuers: a list).
    roles: dict[str, str | list[str]] = {}
    policy: dict[str, int | str | list[int] | list[list[int]]] = {}
    # The custody account's number at the bank and the bank's statement key (proof of reserve).
    custody: dict[str, str] = {}


class Manifest(_Record):
    format: int = FORMAT
    chain_id: int
    network: str
    deployer: str
    compiler: dict[str, object] = {}
    # Contract or interface name -> ABI file, relative to the manifest's folder.
    abi: dict[str, str] = {}
    directory: ContractRecord | None = None
    cities: dict[str, CityRecord] = {}
    # Account name -> address, from the configuration (never a key).
    accounts: dict[str, str] = {}

    def contracts(self) -> dict[str, ContractRecord]:
        """Every recorded contract by a readable label: 'directory', 'gimpo.token', ..."""
        found = {"directory": self.directory} if self.directory else {}
        for code, city in self.cities.items():
            found |= {f"{code}.{kind}": record for kind, record in city.contracts.items()}
        return found


def load_manifest(path: str | Path, *, chain_id: int | None = None) -> Manifest | None:
    """The manifest at `path`, or None if there is none yet."""
    path = Path(path)
    try:
        manifest = Manifest.model_validate_json(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None
    except ValueError as unreadable:
        raise DeploymentError(f"manifest {path} is unreadable: {unreadable}") from None
    if chain_id is not None and manifest.chain_id != chain_id:
        raise DeploymentError(
            f"manifest {path} is for chain id {manifest.chain_id}, not {chain_id}: "
            "pass the manifest of this chain (--manifest)"
        )
    return manifest


def save_manifest(manifest: Manifest, path: str | Path) -> None:
    """Writes atomically (a crash never leaves half a manifest); unchanged content is not
    rewritten, so a run that changed nothing leaves the file as it was."""
    path = Path(path)
    text = json.dumps(manifest.model_dump(mode="json"), indent=2, ensure_ascii=False) + "\n"
    if path.exists() and path.read_text(encoding="utf-8") == text:
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_suffix(".json.partial")
    partial.write_text(text, encoding="utf-8")
    os.replace(partial, path)
