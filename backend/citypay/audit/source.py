"""The auditor's view of a chain: found from the directory's address alone, read with eth_getLogs.

The cities come from the directory's `cities()` view at the head, the ABIs from the backend
package. Reading starts at the first block of the platform's history, found without the state of
past blocks, which a node restarted from a state file, restored from a backup or pruned no
longer has. The first of these that applies says where:

1. `--from-block N`: the operator's word, taken as given;
2. `--manifest PATH`: the deployment manifest's `block` of each contract, when it records every
   contract the directory lists (its chain id and directory must be this node's and this one);
3. the events: the directory's first log (its constructor's), then the first log of any watched
   contract before that block (a city's suite may be older than the directory that lists it):
   two eth_getLogs calls on a node that takes a whole-chain range;
4. a probe: bisecting `eth_getCode` for each contract's creation block, only when the directory
   has no log at all; it needs the state of past blocks, and says so when the node lacks it.

Whatever found the start, the audit stands only if the blocks read hold every listed city's
`CityRegistered`; when they do not, the node lacks that history (or the start was too late) and
the audit is refused with the reason, never made from half the events. The events are decoded by
the listener's decoder and folded into `Books`; later reads fold only the blocks since the last.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from eth_abi.exceptions import DecodingError
from eth_utils import is_address, to_checksum_address

from citypay.chain.events import CONTRACT_ABI, UnknownEvent, decode_log, topics_of
from citypay.chain.gateway import ChainGateway, ChainRefused
from citypay.chain.log_reader import LogReader, LogReadError, read_ahead
from citypay.chain.rpc import ChainUnavailable, JsonRpc, NodeRefused
from citypay.ledger import Books

# progress(first block, last block, block read up to, events folded so far)
Progress = Callable[[int, int, int, int], None]

WHY_HISTORY_GOES = (
    "a node restarted from a state file without its blocks, restored from a snapshot or pruned "
    "keeps the contracts but not their past"
)


class AuditError(RuntimeError):
    """The node or the directory cannot be audited as given: the message says why."""


@dataclass(frozen=True)
class CityContracts:
    code: str
    name: str
    token: str
    registry: str
    treasury: str
    # The city's money classes (CityPrograms), as its token names them, its gifts (CityGifts),
    # as the programs name them, and its cashback on payments (CityCashback), as its treasury
    # links it; None for a city from before them (or that links no cashback).
    programs: str | None = None
    gifts: str | None = None
    cashback: str | None = None


def connect(rpc_url: str, *, timeout: float = 60) -> ChainGateway:
    # One attempt a request: the log reader narrows a range the node finds too heavy and tries
    # again itself, and any other failure ends the audit with its reason.
    rpc = JsonRpc(rpc_url, timeout=timeout, attempts=1)
    try:
        # The first request tells whether a node answers there.
        chain_id = int(rpc.request("eth_chainId"), 16)
    except Exception as unreachable:
        raise AuditError(
            f"no Ethereum node answers at {rpc_url} ({_reason(unreachable)}): check --rpc-url "
            "and that the node is running"
        ) from None
    return ChainGateway(rpc, chain_id)


def _reason(error: Exception) -> str:
    """The operating system's words when a connection failed ("Connection refused"), else all."""
    found = re.search(r"\[Errno -?\d+\] ([^'\")]+)", str(error))
    return found.group(1) if found else f"{type(error).__name__}: {error}"


def cannot_audit(error: Exception, rpc_url: str) -> AuditError | None:
    """Why the audit could not be made, when `error` came from the node, the contracts or their
    history; None for any other error (the auditor's own bug)."""
    if isinstance(error, AuditError):
        return error
    if isinstance(error, LogReadError):
        return AuditError(
            f"the node at {rpc_url} kept refusing eth_getLogs ({error}): nothing was concluded; "
            "run the audit again when the node is less busy"
        )
    if isinstance(error, UnknownEvent):
        return AuditError(str(error))
    if isinstance(error, ChainUnavailable | OSError):
        return AuditError(
            f"the node at {rpc_url} stopped answering during the audit ({_reason(error)}): "
            "nothing was concluded; run the audit again once it answers"
        )
    if isinstance(error, NodeRefused):
        return AuditError(f"the node at {rpc_url} refused a read during the audit: {error}")
    if isinstance(error, ChainRefused | DecodingError):
        return AuditError(f"a contract answered what its ABI cannot read ({error})")
    return None


def checksummed(address: str, what: str) -> str:
    if not is_address(address):
        raise AuditError(f"{what} {address!r} is not a 0x-prefixed 20-byte hex address")
    return to_checksum_address(address)


@dataclass(frozen=True)
class Manifest:
    """The creation block of each contract a deployment manifest records (`make deploy` writes
    data/deployments/<chain id>.json)."""

    path: Path
    chain_id: int
    directory: str | None
    blocks: dict[str, int]  # lower-cased address -> the block the contract was created in

    @classmethod
    def read(cls, path: str | Path) -> Manifest:
        path = Path(path)
        try:
            document = json.loads(path.read_text(encoding="utf-8"))
            records = [document["directory"]] if document.get("directory") else []
            for city in document.get("cities", {}).values():
                records += city["contracts"].values()
            return cls(
                path=path,
                chain_id=int(document["chain_id"]),
                directory=document["directory"]["address"] if document.get("directory") else None,
                blocks={r["address"].lower(): int(r["block"]) for r in records},
            )
        except FileNotFoundError:
            raise AuditError(f"no deployment manifest at {path}") from None
        except (OSError, ValueError, KeyError, TypeError, AttributeError) as unreadable:
            raise AuditError(
                f"the manifest {path} is not a deployment manifest (chain_id, directory and "
                f"each city's contracts with their address and block): {unreadable!r}"
            ) from None

    def first_block(self, addresses: list[str]) -> int | None:
        """The earliest creation block of `addresses`; None unless it records every one."""
        blocks = [self.blocks.get(address.lower()) for address in addresses]
        return None if None in blocks else min(blocks)  # type: ignore[type-var]


class ChainSource:
    """The directory and its cities on one node, and the books kept from their events."""

    def __init__(
        self,
        gateway: ChainGateway,
        directory: str,
        *,
        confirmations: int = 0,
        from_block: int | None = None,
        manifest: Manifest | None = None,
        on_new_books: Callable[[Books], None] | None = None,
    ) -> None:
        self.gateway = gateway
        self.rpc_url = gateway.rpc.url
        self.directory_address = checksummed(directory, "directory")
        self.confirmations = confirmations
        self.from_block = from_block
        self.manifest = manifest
        # Told of each new Books before anything is folded into it (to subscribe to it).
        self.on_new_books = on_new_books
        self.directory = gateway.contract(self.directory_address, "directory")
        self.chain_id = gateway.chain_id
        if manifest is not None:
            self._check_manifest(manifest)
        self.books = Books()
        self.cities: dict[str, CityContracts] = {}
        self.first_block: int | None = None
        self.first_block_from: str | None = None  # what said where to start
        self.scanned_to: int | None = None  # every event up to this block is in the books
        self._where: dict[str, tuple[str, str]] = {}

    def _check_manifest(self, manifest: Manifest) -> None:
        if manifest.chain_id != self.chain_id:
            raise AuditError(
                f"the manifest {manifest.path} is for chain id {manifest.chain_id}, but the node "
                f"at {self.rpc_url} is chain id {self.chain_id}: give this chain's manifest"
            )
        if (manifest.directory or "").lower() != self.directory_address.lower():
            raise AuditError(
                f"the manifest {manifest.path} records the directory {manifest.directory}, not "
                f"{self.directory_address}: give the manifest of this deployment, or leave "
                "--manifest out to start from the directory's events"
            )

    # --- finding the cities ----------------------------------------------------------------------

    def _read_cities(self, block: int) -> dict[str, CityContracts]:
        if not self.gateway.code(self.directory_address, block):
            raise AuditError(
                f"no contract at {self.directory_address} on chain {self.chain_id} (block "
                f"{block}): check the directory address and the RPC URL"
            )
        try:
            listed = self.directory.call("cities", block=block)
        except (ChainRefused, DecodingError) as refused:
            raise AuditError(
                f"{self.directory_address} does not answer cities() as a CityDirectory "
                f"({refused}): check the directory address"
            ) from None
        cities = {}
        for city in listed:
            programs = self._linked(city.token, "token", "programs", block)
            gifts = None if programs is None else self._linked(programs, "programs", "gifts", block)
            cashback = self._linked(city.treasury, "treasury", "cashback", block)
            cities[city.code] = CityContracts(
                city.code,
                city.name,
                city.token,
                city.registry,
                city.treasury,
                programs,
                gifts,
                cashback,
            )
        return cities

    def _linked(self, address: str, kind: str, getter: str, block: int) -> str | None:
        """The contract `address` names by `getter` (the token's programs, the programs' gifts,
        the treasury's cashback), or None for one from before it was added (or none linked)."""
        try:
            linked = self.gateway.contract(address, kind).call(getter, block=block)
        except (ChainRefused, DecodingError):
            return None
        return None if int(linked, 16) == 0 else to_checksum_address(linked)

    def head(self) -> int:
        return max(0, self.gateway.block_number() - self.confirmations)

    def _first_log_block(self, addresses: list[str], last: int) -> int | None:
        """The block of the first log any of `addresses` emitted in [0, last], or None. Asked as
        one range, which the reader narrows only when the node refuses it."""
        if last < 0:
            return None
        reader = LogReader(self.gateway.rpc, addresses, initial_span=last + 1, max_span=last + 1)
        for chunk in reader.read(0, last):
            if chunk.logs:
                return min(int(entry["blockNumber"], 16) for entry in chunk.logs)
        return None

    def _creation_block(self, address: str, head: int) -> int:
        """The first block at which `address` has code (binary search on the state of past
        blocks: AuditError when the node no longer has it)."""
        if not self.gateway.code(address, head):
            raise AuditError(f"no contract at {address} at block {head}")
        low, high = 0, head  # code at `high`; the answer is in [low, high]
        while low < high:
            middle = (low + high) // 2
            try:
                code = self.gateway.code(address, middle)
            except NodeRefused as missing:
                raise AuditError(
                    f"the directory {self.directory_address} has no log in blocks 0-{head} on "
                    f"this node, and the state of block {middle} that would date its contracts "
                    f"is gone too (the node said: {missing}): {WHY_HISTORY_GOES}. Audit against "
                    "a node that keeps the platform's blocks and logs (an archive node)"
                ) from None
            if code:
                high = middle
            else:
                low = middle + 1
        return low

    def _start(self, addresses: list[str], head: int) -> tuple[int, str]:
        """The first block to read and what said so, in the module docstring's order."""
        if self.from_block is not None:
            if self.from_block > head:
                raise AuditError(
                    f"--from-block {self.from_block} is above the node's head {head} (less "
                    f"{self.confirmations} confirmations): nothing there to audit"
                )
            return self.from_block, "--from-block"
        if self.manifest is not None:
            first = self.manifest.first_block(addresses)
            if first is not None:
                return first, f"the manifest {self.manifest.path}"
        directory_first = self._first_log_block([self.directory_address], head)
        if directory_first is not None:
            earlier = self._first_log_block(addresses, directory_first - 1)
            return (directory_first if earlier is None else earlier), "the contracts' first events"
        probed = min(self._creation_block(address, head) for address in addresses)
        return probed, "eth_getCode probing"

    def _watch(self, cities: dict[str, CityContracts], head: int) -> None:
        """Starts the books over from the first block of every contract's history."""
        watched = {self.directory_address: ("", "directory")}
        for city in cities.values():
            for kind in ("token", "registry", "treasury", "programs", "gifts", "cashback"):
                if getattr(city, kind) is not None:
                    watched[to_checksum_address(getattr(city, kind))] = (city.code, kind)
        self.first_block, self.first_block_from = self._start(list(watched), head)
        self._require_block(self.first_block, head)
        self.cities = cities
        self._where = {address.lower(): where for address, where in watched.items()}
        self.books = Books()
        if self.on_new_books is not None:
            self.on_new_books(self.books)
        self.scanned_to = self.first_block - 1

    # --- the node's history ----------------------------------------------------------------------

    def _has_block(self, number: int) -> bool:
        return self.gateway.block(number) is not None

    def _missing_history(self, head: int) -> str:
        """What the node lacks, for a message: the blocks before its oldest one but genesis."""
        if head == 0 or self._has_block(1):
            return f"the node has its blocks but not all their logs: {WHY_HISTORY_GOES}"
        low, high = 1, head  # the oldest block after genesis is in (low, high]
        while high - low > 1:
            middle = (low + high) // 2
            if self._has_block(middle):
                high = middle
            else:
                low = middle
        return f"the node has no block from 1 to {high - 1}: {WHY_HISTORY_GOES}"

    def _require_block(self, first: int, head: int) -> None:
        if not self._has_block(first):
            raise AuditError(
                f"the audit starts at block {first} (from {self.first_block_from}), which the "
                f"node at {self.rpc_url} does not have; {self._missing_history(head)}. Audit "
                "against a node that keeps the platform's blocks and logs (an archive node)"
            )

    def _require_listings(self, head: int) -> None:
        """Every listed city's CityRegistered is in the books: else the events read are not the
        whole story, and no figure from them may stand."""
        unseen = sorted(
            code
            for code, city in self.cities.items()
            if (books := self.books.cities.get(code)) is None or books.token != city.token
        )
        if unseen:
            raise AuditError(
                f"the directory lists {', '.join(unseen)}, but blocks {self.first_block}-{head} "
                f"on the node at {self.rpc_url} hold no CityRegistered for "
                f"{'it' if len(unseen) == 1 else 'them'}: either the start block "
                f"{self.first_block} (from {self.first_block_from}) is after the listing, or "
                f"{self._missing_history(head)}. Give an earlier --from-block or the right "
                "--manifest, or audit against a node that keeps the platform's blocks and logs"
            )

    # --- reading ---------------------------------------------------------------------------------

    def locate(self, head: int) -> None:
        """Finds the cities at `head`; when they changed (or on the first call), starts the books
        over from the first block of their contracts' history."""
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
            reader = LogReader(self.gateway.rpc, list(self._where))
            books, where = self.books, self._where
            apply, tally = books.apply, books.tally
            # What the books would only count is counted, not decoded (see Books.unread).
            unread = {kind: topics_of(kind, books.unread(kind)) for kind in CONTRACT_ABI}
            for chunk in read_ahead(reader.read(first, head)):
                for raw in chunk.logs:
                    city, kind = where[raw["address"].lower()]
                    topics = raw["topics"]
                    if topics and topics[0].lower() in unread[kind]:
                        tally(city, int(raw["blockNumber"], 16))
                        continue
                    apply(decode_log(raw, city, kind, int(raw["blockTimestamp"], 16)))
                folded += len(chunk.logs)
                self.scanned_to = chunk.last
                if progress is not None:
                    progress(first, head, chunk.last, folded)
        self.scanned_to = head
        self._require_listings(head)
        return head

    def city(self, code: str) -> CityContracts:
        try:
            return self.cities[code]
        except KeyError:
            raise AuditError(
                f"the directory lists no city '{code}'; it lists: {', '.join(sorted(self.cities))}"
            ) from None
