"""Writes the contracts' ABIs into the backend package (backend/citypay/chain/abi/).

The auditor and the listener decode events with them, and the auditor needs nothing but an RPC
URL and the directory's address: no build, no manifest. tests/deployment checks they match the
build; run `make abi` after changing a contract's interface.
"""

from __future__ import annotations

import json

from scripts.deployment.artifacts import ROOT, load_artifacts

PACKAGE_ABI = ROOT / "backend" / "citypay" / "chain" / "abi"


def main() -> None:
    PACKAGE_ABI.mkdir(parents=True, exist_ok=True)
    contracts = load_artifacts().contracts
    for name, artifact in contracts.items():
        (PACKAGE_ABI / f"{name}.json").write_text(json.dumps(artifact.abi, indent=2) + "\n")
    print(f"{len(contracts)} ABI file(s) in {PACKAGE_ABI.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
