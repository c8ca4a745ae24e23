"""The directory's fixtures: the directory, a second city (Gongju) beside the root conftest's
Gimpo, and the treasury tests' exact-error fixture.

A package, like tests/treasury, so this conftest does not replace the root one in sys.modules.
"""

import dataclasses

import pytest
from brownie import CityDirectory
from treasury.conftest import reverts_with  # noqa: F401

from scripts.city_suite import GIMPO, deploy_city_suite

GONGJU = dataclasses.replace(GIMPO, code="gongju", name="Gongju Pay", symbol="GONGJU")


@pytest.fixture(scope="module")
def directory(city_admin):
    return CityDirectory.deploy(city_admin, {"from": city_admin})


@pytest.fixture(scope="module")
def gongju(city_admin, registrar, issuer, issuer_admin):
    suite = deploy_city_suite(GONGJU, city_admin)
    admin = {"from": city_admin}
    suite.registry.grantRole(suite.registry.REGISTRAR_ROLE(), registrar, admin)
    suite.treasury.grantRole(suite.treasury.ISSUER_ADMIN_ROLE(), issuer_admin, admin)
    suite.treasury.configureIssuer(issuer, 1_000_000_000, {"from": issuer_admin})
    return suite


@pytest.fixture
def register(directory, city_admin):
    def register_(code, name, suite):
        return directory.registerCity(
            code, name, suite.token, suite.registry, suite.treasury, {"from": city_admin}
        )

    return register_
