"""The city configuration: the shipped file is valid; each mistake is named with its value."""

import copy
from pathlib import Path

import pytest
import yaml

from scripts.deployment.config import ConfigError, load_config, parse_config

SHIPPED = Path(__file__).resolve().parents[2] / "config" / "cities.yaml"


@pytest.fixture(scope="module")
def raw():
    with open(SHIPPED, encoding="utf-8") as shipped:
        return yaml.safe_load(shipped)


def refusal(raw: dict, change) -> str:
    broken = copy.deepcopy(raw)
    change(broken)
    with pytest.raises(ConfigError) as refused:
        parse_config(broken, source="cities.yaml")
    return str(refused.value)


def test_shipped_configuration_lists_three_cities_with_their_policies():
    config = load_config(SHIPPED)
    assert [(c.code, c.local_name) for c in config.cities] == [
        ("gimpo", "김포페이"),
        ("gongju", "공주페이"),
        ("ulsan", "울산페이"),
    ]
    gimpo = config.city("gimpo").to_city()
    assert gimpo.policy.annual_issuance_cap == 29_200_000_000
    assert gimpo.policy.merchant_revenue_cap == 1_200_000_000
    assert gimpo.policy.incentive_bps == 1_000
    assert gimpo.policy.ban_period == 365 * 24 * 3600


@pytest.mark.parametrize(
    ("change", "message"),
    [
        pytest.param(
            lambda r: r["cities"][0]["policy"].update(annual_issuance_cap=-5),
            "cities[gimpo].policy.annual_issuance_cap = -5: must be greater than 0",
            id="negative cap",
        ),
        pytest.param(
            lambda r: r["cities"][1]["policy"].update(incentive_percent=120),
            "cities[gongju].policy.incentive_percent = 120: must be less than or equal to 100",
            id="rate over 100%",
        ),
        pytest.param(
            lambda r: r["cities"][0]["policy"].update(incentive_percent="10%"),
            "cities[gimpo].policy.incentive_percent = '10%': must be a number of percent",
            id="rate as text",
        ),
        pytest.param(
            lambda r: r["cities"][2]["policy"].update(monthly_cap=1),
            "cities[ulsan].policy: unknown key 'monthly_cap' (accepted keys: annual_issuance_cap,",
            id="unknown key",
        ),
        pytest.param(
            lambda r: r["cities"][1].update(code="gimpo"),
            "cities: two cities have the code 'gimpo'",
            id="duplicate city code",
        ),
        pytest.param(
            lambda r: r["cities"][1]["roles"].pop("settler"),
            "cities[gongju].roles.settler: missing (required)",
            id="missing field",
        ),
        pytest.param(
            lambda r: r["cities"][0]["roles"].update(pauser="gimpo-mayor"),
            "cities[gimpo].roles.pauser = 'gimpo-mayor': no such account (accounts: deployer,",
            id="unknown account",
        ),
        pytest.param(
            lambda r: r["accounts"].update(relayer="0x3C44CdDdB6a900fa2b585dd299e03d12FA4293Bc"),
            "relayer = '0x3C44CdDdB6a900fa2b585dd299e03d12FA4293Bc': bad EIP-55 checksum",
            id="address typo",
        ),
        pytest.param(
            lambda r: r["cities"][2]["policy"].update(incentive_percent=7),
            "incentive_percent is 7 with incentive_mode cashback: must be 0",
            id="discount and cashback at once",
        ),
        pytest.param(
            lambda r: r["cities"][0]["policy"].update(
                incentive_mode="cashback", incentive_percent=0
            ),
            "incentive_mode is cashback but no cashback rates are given",
            id="cashback without rates",
        ),
        pytest.param(
            lambda r: r["cities"][2]["policy"]["cashback"]["bands"].reverse(),
            "cities[ulsan].policy.cashback.bands: revenue_up_to 300000000 follows 3000000000: "
            "bands go by ascending revenue",
            id="cashback bands out of order",
        ),
        pytest.param(
            lambda r: r["cities"][2]["policy"]["cashback"]["regions"][0].update(percent=45),
            "cities[ulsan].policy.cashback.regions[0].percent = 45: "
            "must be less than or equal to 30",
            id="cashback rate over 30%",
        ),
        pytest.param(
            lambda r: r["cities"][2]["policy"].update(incentive_mode="rebate"),
            "cities[ulsan].policy.incentive_mode = 'rebate': must be 'discount' or 'cashback'",
            id="unknown incentive mode",
        ),
        pytest.param(
            lambda r: r["cities"][0]["policy"].update(fiscal_year_start_month=13),
            "cities[gimpo].policy.fiscal_year_start_month = 13: must be less than or equal to 12",
            id="month out of range",
        ),
    ],
)
def test_invalid_configuration_is_refused_naming_key_and_value(raw, change, message):
    assert message in refusal(raw, change)


def test_every_problem_is_listed_at_once(raw):
    def two_mistakes(r):
        r["cities"][0]["policy"]["holding_cap"] = 0
        r["cities"][2]["symbol"] = "ulsan pay"

    shown = refusal(raw, two_mistakes)
    assert "2 problem(s)" in shown
    assert "cities[gimpo].policy.holding_cap = 0" in shown
    assert "cities[ulsan].symbol = 'ulsan pay'" in shown


def test_a_key_given_twice_in_the_file_is_refused(tmp_path):
    path = tmp_path / "cities.yaml"
    text = SHIPPED.read_text(encoding="utf-8")
    path.write_text(text.replace("deployer: deployer\n", "deployer: deployer\ndeployer: relayer\n"))
    with pytest.raises(ConfigError, match=r"key 'deployer' is given twice \(first on line \d+\)"):
        load_config(path)
