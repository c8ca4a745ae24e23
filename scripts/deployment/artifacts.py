"""The compiled contracts, from Brownie's project (which compiles what changed) and its build/."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent.parent
CONTRACTS = (
    "CityDirectory",
    "CityToken",
    "CityTreasury",
    "CityRegistry",
    "CityPrograms",
    "CityGifts",
    "CityCashback",
)
# The interfaces a wallet or the backend may want alone: the contracts' ABIs include them.
INTERFACES = (
    "ICityDirectory",
    "ICityToken",
    "ICityTreasury",
    "ICityRegistry",
    "ICityPrograms",
    "ICityGifts",
    "ICityCashback",
    "IERC3009",
)


@dataclass(frozen=True)
class Artifact:
    name: str
    abi: list[dict]
    bytecode: str


@dataclass(frozen=True)
class Artifacts:
    contracts: dict[str, Artifact]
    interfaces: dict[str, list[dict]]
    compiler: dict

    def write_abis(self, folder: Path, relative_to: Path) -> dict[str, str]:
        """Writes one ABI file per contract and interface; returns name -> path from
        `relative_to` (the manifest's folder)."""
        folder.mkdir(parents=True, exist_ok=True)
        written = {}
        abis = {name: a.abi for name, a in self.contracts.items()} | self.interfaces
        for name, abi in abis.items():
            path = folder / f"{name}.json"
            text = json.dumps(abi, indent=2) + "\n"
            if not path.exists() or path.read_text() != text:
                path.write_text(text)
            written[name] = str(path.relative_to(relative_to))
        return written


def load_project():
    """Brownie's project (compiled if a source changed); the one a `brownie run` or test loaded."""
    from brownie import project

    loaded = project.get_loaded_projects()
    return loaded[0] if loaded else project.load(ROOT, name="CityTokenPlatform")


def load_artifacts() -> Artifacts:
    city_project = load_project()
    contracts = {}
    for name in CONTRACTS:
        container = city_project[name]
        contracts[name] = Artifact(name=name, abi=container.abi, bytecode=container.bytecode)
    interfaces = {name: getattr(city_project.interface, name).abi for name in INTERFACES}
    build = city_project["CityToken"]._build["compiler"]
    compiler = {
        "solc": build["version"],
        "evm_version": build["evm_version"],
        "optimizer": build["optimizer"],
    }
    return Artifacts(contracts=contracts, interfaces=interfaces, compiler=compiler)
