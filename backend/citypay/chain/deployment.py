"""The deployment the backend serves: the manifest that `make deploy` wrote, and its contracts."""

from __future__ import annotations

import json
from collections.abc import Collection
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

from pydantic import BaseModel, ConfigDict
from web3 import Web3
from web3.contract import Contract

from citypay.chain.gateway import ChainGateway, PlatformContract
from citypay.chain.rpc import JsonRpc
from citypay.core.config import Settings
from citypay.core.errors import NotFound


class _ContractRecord(BaseModel):
    model_config = ConfigDict(extra="ignore")
    address: str
    block: int


class _CityRecord(BaseModel):
    model_config = ConfigDict(extra="ignore")
    name: str
    local_name: str = ""
    symbol: str
    contracts: dict[str, _ContractRecord]
    roles: dict[str, str | list[str]] = {}
    custody: dict[str, str] = {}


class _Manifest(BaseModel):
    model_config = ConfigDict(extra="ignore")
    chain_id: int
    abi: dict[str, str]
    directory: _ContractRecord | None = None
    cities: dict[str, _CityRecord]
    accounts: dict[str, str] = {}


class DeploymentError(RuntimeError):
    """The manifest is missing, unreadable or for another chain."""


@dataclass(frozen=True)
class CityChain:
    """One city's contracts through the chain gateway (chain/gateway.py)."""

    token: PlatformContract
    registry: PlatformContract
    treasury: PlatformContract
    # The city's gifts (선물하기, CityGifts); None for a city deployed before them.
    gifts: PlatformContract | None = None
    # The city's cashback on payments (CityCashback); None for a city deployed before it.
    cashback: PlatformContract | None = None


@dataclass(frozen=True)
class City:
    """One city's contracts. The backend reads and sends through the gateway's (`chain`); the
    web3.py contracts are for the tests' and benchmarks' own transactions, which drive the chain
    as wallets and duties would (backend/tests/test_one_way_to_the_chain.py keeps the backend
    off them; cashout/flow.py still takes the treasury's address from `treasury`)."""

    code: str
    name: str
    symbol: str
    token: Contract
    registry: Contract
    treasury: Contract
    roles: dict
    chain: CityChain
    local_name: str = ""  # the name in Korean, e.g. 김포페이
    # The block each contract was deployed in, by kind: where a search of its logs starts.
    deployed_at: dict[str, int] | None = None
    # The custody account's number at the bank, which payouts are paid from and whose
    # statements prove the reserve, and the bank's statement key; None without one.
    custody_account: str | None = None
    custody_signer: str | None = None
    # The city's money classes (CityPrograms); None for a city deployed before them.
    programs: Contract | None = None


class Deployment:
    """Reads the manifest once; gives each served city's contracts and the addresses of each
    duty. A city the backend does not serve is left out everywhere: services, listener, fraud."""

    def __init__(
        self,
        manifest_path: Path,
        w3: Web3,
        *,
        chain_id: int,
        gateway: ChainGateway | None = None,
        cities: Collection[str] = (),
    ) -> None:
        """`cities`: the city codes to serve, the manifest's every city if empty."""
        self.path = Path(manifest_path)
        try:
            self._manifest = _Manifest.model_validate_json(self.path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise DeploymentError(
                f"no deployment manifest at {self.path}: deploy first (make deploy) "
                "or set MANIFEST_PATH"
            ) from None
        except ValueError as unreadable:
            raise DeploymentError(f"manifest {self.path} is unreadable: {unreadable}") from None
        if self._manifest.chain_id != chain_id:
            raise DeploymentError(
                f"manifest {self.path} is for chain id {self._manifest.chain_id}, "
                f"but CHAIN_ID is {chain_id}"
            )
        unknown = sorted(set(cities) - set(self._manifest.cities))
        if unknown:
            raise DeploymentError(
                f"CITIES names {', '.join(unknown)}, which manifest {self.path} lacks "
                f"(its cities: {', '.join(sorted(self._manifest.cities))})"
            )
        if cities:
            self._manifest.cities = {
                code: record for code, record in self._manifest.cities.items() if code in cities
            }
        self.w3 = w3
        self.chain_id = chain_id
        # The one way to the chain (chain/gateway.py); a client that gives none gets one on the
        # web3 connection's URL.
        self.gateway = gateway or ChainGateway(JsonRpc(w3.provider.endpoint_uri), chain_id)

    def _abi(self, name: str) -> list:
        try:
            file = self._manifest.abi[name]
        except KeyError:
            raise DeploymentError(f"manifest {self.path} has no ABI for {name}") from None
        return json.loads((self.path.parent / file).read_text(encoding="utf-8"))

    @cached_property
    def cities(self) -> dict[str, City]:
        token_abi, registry_abi, treasury_abi = (
            self._abi("CityToken"),
            self._abi("CityRegistry"),
            self._abi("CityTreasury"),
        )
        cities = {}
        for code, record in self._manifest.cities.items():
            contracts = record.contracts
            cities[code] = City(
                code=code,
                name=record.name,
                symbol=record.symbol,
                token=self.w3.eth.contract(address=contracts["token"].address, abi=token_abi),
                registry=self.w3.eth.contract(
                    address=contracts["registry"].address, abi=registry_abi
                ),
                treasury=self.w3.eth.contract(
                    address=contracts["treasury"].address, abi=treasury_abi
                ),
                roles=record.roles,
                chain=CityChain(
                    token=self.gateway.contract(contracts["token"].address, "token"),
                    registry=self.gateway.contract(contracts["registry"].address, "registry"),
                    treasury=self.gateway.contract(contracts["treasury"].address, "treasury"),
                    gifts=self._optional(contracts, "gifts"),
                    cashback=self._optional(contracts, "cashback"),
                ),
                local_name=record.local_name,
                deployed_at={kind: c.block for kind, c in contracts.items()},
                custody_account=record.custody.get("account"),
                custody_signer=record.custody.get("signer"),
                programs=(
                    self.w3.eth.contract(
                        address=contracts["programs"].address, abi=self._abi("CityPrograms")
                    )
                    if "programs" in contracts
                    else None
                ),
            )
        return cities

    def city(self, code: str) -> City:
        try:
            return self.cities[code]
        except KeyError:
            raise NotFound(
                "unknown_city",
                f"no city '{code}' in this deployment",
                field="city",
                value=code,
                accepted=", ".join(sorted(self.cities)),
            ) from None

    def city_of_token(self, token_address: str) -> City | None:
        for city in self.cities.values():
            if city.chain.token.address.lower() == token_address.lower():
                return city
        return None

    def account(self, name: str) -> str:
        """The address the configuration named `name` (e.g. 'relayer')."""
        try:
            return self._manifest.accounts[name]
        except KeyError:
            raise DeploymentError(f"manifest {self.path} names no account '{name}'") from None

    def name_of(self, address: str) -> str | None:
        """The configuration's name of the account at `address` (e.g. 'gimpo-bank')."""
        return next(
            (
                name
                for name, known in self._manifest.accounts.items()
                if known.lower() == address.lower()
            ),
            None,
        )

    @cached_property
    def directory(self) -> PlatformContract | None:
        record = self._manifest.directory
        return None if record is None else self.gateway.contract(record.address, "directory")

    def _optional(self, contracts: dict, kind: str) -> PlatformContract | None:
        """A contract later deployments added: None for a city deployed before it."""
        record = contracts.get(kind)
        return None if record is None else self.gateway.contract(record.address, kind)

    def watched_contracts(self) -> list[WatchedContract]:
        """Every contract whose events the listener indexes, with the block it was deployed in."""
        watched = []
        if self._manifest.directory is not None:
            record = self._manifest.directory
            watched.append(WatchedContract(record.address, "", "directory", record.block))
        for code, city in self._manifest.cities.items():
            for kind in ("token", "registry", "treasury", "programs", "gifts", "cashback"):
                record = city.contracts.get(kind)
                if record is not None:  # a city from before money classes has no programs
                    watched.append(WatchedContract(record.address, code, kind, record.block))
        return watched


@dataclass(frozen=True)
class WatchedContract:
    address: str
    city: str  # "" for the directory
    kind: str  # token, registry, treasury or directory
    deployed_at: int


def open_deployment(settings: Settings) -> Deployment:
    """The deployment at MANIFEST_PATH on the node at RPC_URL, both checked against CHAIN_ID,
    for the cities CITIES names (every city of the manifest if it names none)."""
    w3 = Web3(Web3.HTTPProvider(settings.RPC_URL, request_kwargs={"timeout": 30}))
    rpc = JsonRpc(settings.RPC_URL)
    chain_id = int(rpc.request("eth_chainId"), 16)
    if chain_id != settings.CHAIN_ID:
        raise DeploymentError(
            f"the node at {settings.RPC_URL} runs chain id {chain_id}, "
            f"not CHAIN_ID {settings.CHAIN_ID}"
        )
    return Deployment(
        settings.MANIFEST_PATH,
        w3,
        chain_id=chain_id,
        gateway=ChainGateway(rpc, chain_id),
        cities=settings.CITIES,
    )
