"""The auditor's view of a chain: found from the directory's address alone, read with eth_getLogs.

No manifest and no build: the cities come from the directory's `cities()` view, the ABIs from the
backend package, and the first block to read from the contracts' creation blocks, found by
binary search on `eth_getCode`. The events are decoded by the listener's decoder and folded into
`Books`; later reads fold only the blocks since the last one.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from web3 import Web3
from web3.exceptions import ContractLogicError

from citypay.chain.events import CONTRACT_ABI, decode_log, packaged_abi
from citypay.chain.log_reader import LogReader
from citypay.ledger import Books

# progress(first block, last block, block read up to, events folded so far)
Progress = Callable[[int, int, int, int], None]


class AuditError(RuntimeError):
    """The node or the directory cannot be audited as given: the message says why."""


@dataclass(frozen=True)
class CityContracts:
    code: str
    name: str
    token: str
    registry: str
    treasury: str


def connect(rpc_url: str, *, timeout: float = 60) -> Web3:
    w3 = Web3(Web3.HTTPProvider(rpc_url, request_kwargs={"timeout": timeout}))
    try:
        w3.eth.chain_id  # noqa: B018 - the first call tells whether a node answers there
    except Exception as unreachable:
        raise AuditError(f"no Ethereum node answers at {rpc_url}: {unreachable}") from None
    return w3


def checksummed(address: str, what: str) -> str:
    if not Web3.is_address(address):
        raise AuditError(f"{what} {address!r} is not a 0x-prefixed 20-byte hex address")
    return Web3.to_checksum_address(address)


class ChainSource:
    """The directory and its cities on one node, and the books kept from their events."""

    def __init__(
        self,
        w3: Web3,
        directory: str,
        *,
        confirmations: int = 0,
        on_new_books: Callable[[Books], None] | None = None,
    ) -> None:
        self.w3 = w3
        self.directory_address = checksummed(directory, "directory")
        self.confirmations = confirmations
        # Told of each new Books before anything is folded into it (to subscribe to it).
        self.on_new_books = on_new_books
        self.directory = w3.eth.contract(
            address=self.directory_address, abi=packaged_abi(CONTRACT_ABI["directory"])
        )
        self.chain_id = w3.eth.chain_id
        self.books = Books()
        self.cities: dict[str, CityContracts] = {}
        self.first_block: int | None = None
        self.scanned_to: int | None = None  # every event up to this block is in the books
        self._where: dict[str, tuple[str, str]] = {}

    # --- finding the cities ----------------------------------------------------------------------

    def _read_cities(self, block: int) -> dict[str, CityContracts]:
        if self.w3.eth.get_code(self.directory_address, block_identifier=block) in (b"", None):
            raise AuditError(
                f"no contract at {self.directory_address} on chain {self.chain_id} (block "
                f"{block}): check the directory address and the RPC URL"
            )
        try:
            listed = self.directory.functions.cities().call(block_identifier=block)
        except (ContractLogicError, ValueError) as refused:
            raise AuditError(
                f"{self.directory_address} does not answer cities() as a CityDirectory: {refused}"
            ) from None
        return {
            code: CityContracts(code, name, token, registry, treasury)
            for code, name, token, registry, treasury, _registered_at in listed
        }

    def creation_block(self, address: str, head: int) -> int:
        """The first block at which `address` has code (binary search; needs the node's history)."""
        if not self.w3.eth.get_code(address, block_identifier=head):
            raise AuditError(f"no contract at {address} at block {head}")
        low, high = 0, head  # code at `high`; the answer is in [low, high]
        while low < high:
            middle = (low + high) // 2
            if self.w3.eth.get_code(address, block_identifier=middle):
                high = middle
            else:
                low = middle + 1
        return low

    def head(self) -> int:
        return max(0, self.w3.eth.block_number - self.confirmations)

    def _watch(self, cities: dict[str, CityContracts], head: int) -> None:
        """Starts the books over from the earliest creation block of every contract."""
        watched = {self.directory_address: ("", "directory")}
        for city in cities.values():
            for kind in ("token", "registry", "treasury"):
                watched[Web3.to_checksum_address(getattr(city, kind))] = (city.code, kind)
        # A city's contracts may be older than the directory that lists them.
        self.first_block = min(self.creation_block(address, head) for address in watched)
        self.cities = cities
        self._where = {address.lower(): where for address, where in watched.items()}
        self.books = Books()
        if self.on_new_books is not None:
            self.on_new_books(self.books)
        self.scanned_to = self.first_block - 1

    # --- reading ---------------------------------------------------------------------------------

    def locate(self, head: int) -> None:
        """Finds the cities at `head`; when they changed (or on the first call), starts the books
        over from the earliest creation block of their contracts."""
        cities = self._read_cities(head)
        if cities != self.cities or self.scanned_to is None:
            self._watch(cities, head)

    @property
    def watched(self) -> dict[str, tuple[str, str]]:
        """(city, contract kind) of every watched address, lower-cased."""
        return dict(self._where)

    def catch_up(self, *, progress: Progress | None = None) -> int:
        """Folds every event up to the head (less the confirmations); returns the block reached."""
        head = self.head()
        self.locate(head)
        first = self.scanned_to + 1
        folded = 0
        if progress is not None:
            progress(first, head, first - 1, 0)
        if first <= head:
            reader = LogReader(self.w3, list(self._where))
            apply, where = self.books.apply, self._where
            for chunk in reader.read(first, head):
                for raw in chunk.logs:
                    city, kind = where[raw["address"].lower()]
                    apply(decode_log(raw, city, kind, int(raw["blockTimestamp"], 16)))
                folded += len(chunk.logs)
                self.scanned_to = chunk.last
                if progress is not None:
                    progress(first, head, chunk.last, folded)
        self.scanned_to = head
        return head

    def city(self, code: str) -> CityContracts:
        try:
            return self.cities[code]
        except KeyError:
            raise AuditError(
                f"the directory lists no city '{code}'; it lists: {', '.join(sorted(self.cities))}"
            ) from None
