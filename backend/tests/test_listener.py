"""The chain event listener: every event once, across kill -9 and across a reorg."""

from __future__ import annotations

import contextlib
import random
import subprocess
import time

import pytest
from citypay.chain.deployment import Deployment
from citypay.chain.events import CONTRACT_ABI, decode_log, event_names, event_shape, topics_of
from citypay.db.migrate import upgrade
from citypay.db.session import Database
from citypay.listener import indexer
from citypay.listener.indexer import Listener
from citypay.listener.models import IndexedEvent, ListenerCheckpoint
from conftest import own_database_url
from platform_harness import ChainUnderTest, deployed_chain, listener_process, new_wallet
from sqlalchemy import func, select
from web3 import Web3

CITY = "gimpo"


def chain_truth(deployment: Deployment, to_block: int) -> list[tuple]:
    """Every log of the deployment's contracts, read straight from the node with web3."""
    watched = deployment.watched_contracts()
    logs = deployment.w3.eth.get_logs(
        {
            "address": [w.address for w in watched],
            "fromBlock": min(w.deployed_at for w in watched),
            "toBlock": to_block,
        }
    )
    return sorted(
        (entry["blockNumber"], "0x" + entry["transactionHash"].hex(), entry["logIndex"])
        for entry in logs
    )


def indexed(db: Database) -> list[tuple]:
    with db.session() as session:
        rows = session.execute(
            select(IndexedEvent.block_number, IndexedEvent.tx_hash, IndexedEvent.log_index)
        ).all()
    return sorted(tuple(row) for row in rows)


def checkpoint_block(db: Database) -> int:
    with db.session() as session:
        return session.execute(select(ListenerCheckpoint.block_number)).scalar_one()


def listener_of(chain: ChainUnderTest, db: Database, **options) -> Listener:
    """A listener of the chain's deployment, storing into `db`."""
    return Listener(
        db, chain.deployment.gateway.rpc, chain.deployment.watched_contracts(), **options
    )


@pytest.fixture
def database(tmp_path):
    """A database of the test's own: SQLite, or a fresh schema when DATABASE_URL names a server."""
    db = Database(own_database_url(tmp_path, "listener"))
    upgrade(db.engine)
    yield db
    db.engine.dispose()


def test_indexes_every_event_of_the_deployment_once(chain, database):
    resident, merchant = new_wallet("listener-resident"), new_wallet("listener-merchant")
    chain.register_resident(CITY, resident)
    chain.register_merchant(CITY, merchant)
    chain.charge(CITY, resident, 50_000)
    listener = listener_of(chain, database, max_span=7)
    listener.step()
    assert indexed(database) == chain_truth(chain.deployment, listener.indexed_to)
    assert listener.lag == listener.head - listener.indexed_to

    with database.session() as session:
        issued = session.execute(
            select(IndexedEvent).where(IndexedEvent.event == "Issued", IndexedEvent.city == CITY)
        ).scalars()
        mine = [e for e in issued if e.args["resident"] == resident.address]
    assert len(mine) == 1
    assert mine[0].contract == "treasury"
    assert mine[0].args["amount"] == 50_000
    assert mine[0].block_time > 0


def test_a_restart_rescans_its_margin_without_duplicates(chain, database):
    first = listener_of(chain, database)
    first.step()
    stored = indexed(database)
    # A new listener on the same database, as after a restart: it rescans the margin again.
    again = listener_of(chain, database, rescan_margin=50)
    assert first.rescan_start() is None  # resumed: nothing more to rescan
    checkpoint = checkpoint_block(database)
    assert again.rescan_start() == max(again.start_block, checkpoint - 50 + 1)
    updates = []
    again.subscribe(updates.append)
    again.step()
    assert updates[0].rescanned_from == max(again.start_block, checkpoint - 50 + 1)
    assert again.rescan_start() is None
    assert indexed(database)[: len(stored)] == stored
    assert indexed(database) == chain_truth(chain.deployment, again.indexed_to)


def _listener_process(chain: ChainUnderTest, database_url: str, log_path) -> subprocess.Popen:
    # Narrow chunks: many checkpoints to be killed between.
    narrow = {"LISTENER_MAX_SPAN": "3", "LISTENER_POLL_INTERVAL": "0.05"}
    return listener_process(chain.service_settings(database_url) | narrow, log_path)


def test_kill_9_at_any_moment_loses_and_duplicates_nothing(chain, database, tmp_path):
    url = database.url
    rng = random.Random(5)
    for _ in range(6):
        process = _listener_process(chain, url, tmp_path / "listener.log")
        time.sleep(rng.uniform(1.0, 2.5))  # the import alone takes about a second
        process.kill()
        process.wait(timeout=10)
    process = _listener_process(chain, url, tmp_path / "listener.log")
    try:
        head = chain.w3.eth.block_number
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                if checkpoint_block(database) >= head:
                    break
            except Exception:  # no checkpoint yet
                pass
            time.sleep(0.2)
        else:
            pytest.fail(f"the listener did not reach block {head}: see {tmp_path}/listener.log")
    finally:
        process.kill()
        process.wait(timeout=10)
    done = checkpoint_block(database)
    assert indexed(database) == chain_truth(chain.deployment, done)
    with database.session() as session:
        total = session.execute(select(func.count()).select_from(IndexedEvent)).scalar_one()
    assert total == len(set(indexed(database)))


@pytest.fixture
def own_chain(tmp_path_factory):
    """A chain of this test's own: it is reverted, which the shared chain's users would not like."""
    yield from deployed_chain(tmp_path_factory.mktemp("reorg-chain"))


def test_a_reorg_replaces_the_orphaned_events(own_chain, database):
    w3: Web3 = own_chain.w3
    resident, merchant = new_wallet("reorg-resident"), new_wallet("reorg-merchant")
    own_chain.register_resident(CITY, resident)
    own_chain.register_merchant(CITY, merchant)
    listener = listener_of(own_chain, database)
    listener.step()

    snapshot = w3.provider.make_request("evm_snapshot", [])["result"]
    own_chain.charge(CITY, resident, 10_000)  # the branch that will be orphaned
    own_chain.charge(CITY, resident, 20_000)
    listener.step()
    orphaned = indexed(database)
    assert len(orphaned) > 0

    assert w3.provider.make_request("evm_revert", [snapshot])["result"] is True
    own_chain.charge(CITY, resident, 30_000)  # the branch the chain keeps
    _wait_for_block(w3, listener.indexed_to + 1)  # the new branch as long as the old one indexed
    listener.step()

    assert listener.reorgs >= 1
    assert indexed(database) == chain_truth(own_chain.deployment, listener.indexed_to)
    assert issued_to(database, resident.address) == [30_000]


def test_a_reorg_while_a_chunk_is_read_is_read_again_though_its_last_block_has_no_log(
    own_chain, database
):
    w3: Web3 = own_chain.w3
    resident = new_wallet("raced-resident")
    own_chain.register_resident(CITY, resident)
    listener = listener_of(own_chain, database)
    listener.step()
    snapshot = w3.provider.make_request("evm_snapshot", [])["result"]
    own_chain.charge(CITY, resident, 10_000)  # the branch that will be orphaned
    _wait_for_block(w3, w3.eth.block_number + 1)  # the chunk's last block: one with no log
    get_logs = listener.reader._get_logs
    reorganized = []

    def reorganized_once_read(first: int, last: int) -> list[dict]:
        logs = get_logs(first, last)
        if not reorganized:
            # Right after the logs are read, before the header of the chunk's last block is: the
            # chain drops the charge and grows another branch as high as the chunk's last block.
            reorganized.append(last)
            assert w3.provider.make_request("evm_revert", [snapshot])["result"] is True
            own_chain.charge(CITY, resident, 30_000)
            _wait_for_block(w3, last)
        return logs

    listener.reader._get_logs = reorganized_once_read
    for _ in range(3):  # as the listener's thread steps: a chunk raced is read again
        with contextlib.suppress(indexer._ChunkRaced):
            listener.step()
    assert reorganized and listener.indexed_to >= reorganized[0]
    assert indexed(database) == chain_truth(own_chain.deployment, listener.indexed_to)
    assert issued_to(database, resident.address) == [30_000]


def test_a_reorg_between_two_chunks_of_a_step_is_walked_back(own_chain, database):
    """The chain reorganizes after a chunk is read, below it, before the next chunk's first
    header is: each chunk alone is of one chain, but the second is not on top of the first."""
    w3: Web3 = own_chain.w3
    resident = new_wallet("between-chunks-resident")
    own_chain.register_resident(CITY, resident)
    listener = listener_of(own_chain, database, max_span=2)  # chunks of two blocks
    listener.step()
    checkpoint = listener.indexed_to
    snapshot = w3.provider.make_request("evm_snapshot", [])["result"]
    orphaned = _issue(own_chain, resident, 10_000)  # in the first chunk of the next step
    assert orphaned in (checkpoint + 1, checkpoint + 2), "the charge missed the first chunk"
    second = checkpoint + 3
    _wait_for_block(w3, second + 1)
    headers = listener.reader.headers
    reorganized = []

    def reorganized_before_the_second_chunk(numbers: list[int]) -> dict:
        if numbers[:1] == [second] and not reorganized:
            reorganized.append(second)
            assert w3.provider.make_request("evm_revert", [snapshot])["result"] is True
            own_chain.charge(CITY, resident, 30_000)
            _wait_for_block(w3, second + 1)
        return headers(numbers)

    listener.reader.headers = reorganized_before_the_second_chunk
    for _ in range(3):
        with contextlib.suppress(indexer._ChunkRaced):
            listener.step()
    assert reorganized and listener.indexed_to > second
    assert indexed(database) == chain_truth(own_chain.deployment, listener.indexed_to)
    assert issued_to(database, resident.address) == [30_000]


def _issue(chain: ChainUnderTest, resident, amount: int) -> int:
    """Charges the resident; the block it is in."""
    city = chain.deployment.city(CITY)
    reference = Web3.keccak(text=f"deposit:{resident.address}:{time.time_ns()}")
    receipt = chain.send(
        city.roles["issuers"][0], city.treasury.functions.issue(resident.address, amount, reference)
    )
    return receipt["blockNumber"]


def _wait_for_block(w3: Web3, number: int) -> None:
    deadline = time.monotonic() + 30
    while w3.eth.block_number < number:
        assert time.monotonic() < deadline, f"block {number} was not mined"
        time.sleep(0.1)


def issued_to(db: Database, resident: str) -> list[int]:
    """The amounts of the Issued events to the resident that are stored."""
    with db.session() as session:
        return sorted(
            e.args["amount"]
            for e in session.execute(
                select(IndexedEvent).where(IndexedEvent.event == "Issued")
            ).scalars()
            if e.args["resident"] == resident
        )


def _word(abi_type: str, rng: random.Random) -> str:
    """64 hex digits holding a random value of a one-word ABI type, as a node writes it."""
    if abi_type == "address":
        value = rng.getrandbits(160)
    elif abi_type == "bool":
        value = rng.getrandbits(1)
    elif abi_type.startswith("uint"):
        value = rng.getrandbits(int(abi_type[4:] or 256))
    elif abi_type.startswith("int"):
        bits = int(abi_type[3:] or 256)
        value = rng.randrange(-(1 << (bits - 1)), 1 << (bits - 1)) % (1 << 256)
    else:  # bytesN: left-aligned
        size = int(abi_type[5:])
        return rng.randbytes(size).hex() + "00" * (32 - size)
    return f"{value:064x}"


def _log(address: str, topic: str, shape, rng: random.Random, index: int, block: int) -> dict:
    topics = [topic] + ["0x" + _word(abi_type, rng) for _, abi_type in shape.indexed]
    return {
        "address": address,
        "topics": topics,
        "data": "0x" + "".join(_word(abi_type, rng) for abi_type in shape.data_types),
        "blockHash": "0x" + f"{block:064x}",
        "blockNumber": hex(block),
        "blockTimestamp": hex(1_700_000_000 + block),
        "transactionHash": "0x" + rng.randbytes(32).hex(),
        "transactionIndex": "0x0",
        "logIndex": hex(index),
        "removed": False,
    }


def test_chunk_decoding_gives_decode_logs_events_and_rows():
    """The listener's own decoders (written out per event) give, for every event of every
    packaged ABI, the ChainEvent of decode_log and the row made from it (args as json.dumps
    writes them); logs of another shape than their event's go through decode_log."""
    rng = random.Random(7)
    where, logs = {}, []
    for number, kind in enumerate(CONTRACT_ABI):
        address = f"0x{number + 1:040x}"
        where[address] = ("gimpo" if kind != "directory" else "", kind)
        for topic in sorted(topics_of(kind, set(event_names(kind)))):
            shape = event_shape(kind, topic)
            if shape.hex_readers is None:
                continue  # a dynamic value: decode_log's, as for any log the decoders refuse
            for _ in range(3):
                logs.append(_log(address, topic, shape, rng, len(logs), 10 + len(logs) // 50))
            odd = _log(address, topic, shape, rng, len(logs), 10 + len(logs) // 50)
            odd["data"] += "00" * 32  # a word more than the event has: decode_log decides
            logs.append(odd)
    events, rows, blocks = indexer._ChunkDecoder(where).decode(logs)
    expected = [
        decode_log(entry, *where[entry["address"]], int(entry["blockTimestamp"], 16))
        for entry in logs
    ]
    assert events == expected
    assert rows == [indexer._row(event) for event in expected]
    assert blocks == sorted({(e.block_number, e.block_hash) for e in expected})


def _stored_in_order(db: Database) -> list[tuple]:
    """The stored events' keys in the order they were stored, which must be the chain's."""
    with db.session() as session:
        rows = session.execute(
            select(
                IndexedEvent.block_number, IndexedEvent.tx_hash, IndexedEvent.log_index
            ).order_by(IndexedEvent.id)
        ).all()
    keys = [tuple(row) for row in rows]
    assert keys == sorted(keys, key=lambda key: (key[0], key[2]))  # block, then log index
    return sorted(keys)


def test_a_failure_between_chunks_loses_and_duplicates_nothing(chain, database, monkeypatch):
    """Chunks stored in bulk, each with its checkpoint in one transaction: when the third
    chunk's insert fails, the first two stay with their checkpoint, nothing of the third; a
    listener started again stores every event once, in chain order."""
    resident, merchant = new_wallet("bulk-resident"), new_wallet("bulk-merchant")
    chain.register_resident(CITY, resident)
    chain.register_merchant(CITY, merchant)
    chain.charge(CITY, resident, 10_000)
    stored_chunks = []
    insert = indexer._insert

    def failing_insert(session, rows):
        if len(stored_chunks) == 2:
            raise RuntimeError("the database went away")
        insert(session, rows)
        stored_chunks.append(len(rows))

    monkeypatch.setattr(indexer, "_insert", failing_insert)
    watched = chain.deployment.watched_contracts()
    first = Listener(database, chain.deployment.gateway.rpc, watched, max_span=3)
    with pytest.raises(RuntimeError, match="went away"):
        first.step()
    done = checkpoint_block(database)
    assert _stored_in_order(database) == chain_truth(chain.deployment, done)
    assert len(_stored_in_order(database)) == sum(stored_chunks)

    monkeypatch.setattr(indexer, "_insert", insert)
    again = Listener(database, chain.deployment.gateway.rpc, watched, max_span=3)
    again.step()
    assert again.indexed_to > done
    assert _stored_in_order(database) == chain_truth(chain.deployment, again.indexed_to)
