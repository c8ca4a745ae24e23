"""The backend's packaged ABIs are the build's: the auditor decodes events with them alone."""

import json

import pytest

from scripts.abi import PACKAGE_ABI, PACKAGE_ENUMS, enums_module
from scripts.deployment.artifacts import CONTRACTS, load_artifacts


@pytest.mark.parametrize("name", CONTRACTS)
def test_packaged_abi_matches_the_build(name):
    packaged = json.loads((PACKAGE_ABI / f"{name}.json").read_text())
    assert packaged == load_artifacts().contracts[name].abi, (
        f"backend/citypay/chain/abi/{name}.json is stale: run `make abi`"
    )


def test_packaged_enums_match_the_interfaces():
    assert PACKAGE_ENUMS.read_text() == enums_module(), (
        "backend/citypay/chain/enums.py is stale: run `make abi`"
    )
