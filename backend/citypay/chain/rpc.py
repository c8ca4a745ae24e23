"""The one JSON-RPC client of the backend: single requests and batches, timeouts, bounded
retries, and two errors that say what a caller can do.

- `ChainUnavailable`: the node did not answer (down, restarting, refusing connections, too slow).
  Nothing is known of the request's effect; every request the backend makes is safe to repeat
  (reads, and eth_sendRawTransaction of bytes already recorded), so it is retried a few times
  first. The API answers it with 503 and Retry-After, and no work is marked failed for it.
- `NodeRefused`: the node answered with a JSON-RPC error (a revert, an unknown transaction, a
  bad parameter). Its `code`, `message` and `data` are the node's.
"""

from __future__ import annotations

import itertools
import threading
import time
from collections.abc import Sequence
from typing import Any

import httpx

# Seconds a client is told to wait before asking again while the node is away.
RETRY_AFTER_SECONDS = 2


class ChainError(RuntimeError):
    """Reaching or asking the chain node went wrong."""


class ChainUnavailable(ChainError):
    """The node did not answer: try again later."""

    retry_after = RETRY_AFTER_SECONDS


class NodeRefused(ChainError):
    """The node answered with a JSON-RPC error."""

    def __init__(self, method: str, error: dict) -> None:
        self.method = method
        self.code = error.get("code")
        self.message = str(error.get("message", ""))
        self.data = error.get("data")
        super().__init__(f"the node refused {method}: {self.message} (code {self.code})")


class JsonRpc:
    """A node's JSON-RPC endpoint over HTTP, safe to share between threads."""

    def __init__(
        self,
        url: str,
        *,
        timeout: float = 10.0,
        attempts: int = 3,
        backoff: float = 0.25,
    ) -> None:
        self.url = url
        self.attempts = attempts
        self.backoff = backoff
        self._client = httpx.Client(
            timeout=timeout, limits=httpx.Limits(max_connections=32, max_keepalive_connections=16)
        )
        self._ids = itertools.count(1)
        self._ids_lock = threading.Lock()

    def close(self) -> None:
        self._client.close()

    def request(self, method: str, *params: Any) -> Any:
        """The result of one request; NodeRefused or ChainUnavailable."""
        answer = self._post(
            {"jsonrpc": "2.0", "id": self._id(), "method": method, "params": params}
        )
        if not isinstance(answer, dict):
            raise ChainUnavailable(f"the node answered {method} with {answer!r}")
        if "error" in answer:
            raise NodeRefused(method, answer["error"])
        return answer.get("result")

    def batch(self, calls: Sequence[tuple[str, Sequence[Any]]]) -> list[Any]:
        """The results of one JSON-RPC batch, in order: each a result or a NodeRefused (returned,
        not raised: one refused call does not lose the others' answers)."""
        if not calls:
            return []
        with self._ids_lock:  # once a batch, not once a call
            ids = [next(self._ids) for _ in calls]
        requests = [
            {"jsonrpc": "2.0", "id": id_, "method": method, "params": list(params)}
            for id_, (method, params) in zip(ids, calls, strict=True)
        ]
        answers = self._post(requests)
        if not isinstance(answers, list):
            # A node that refuses the batch as a whole (too large, say) answers one object.
            error = answers.get("error", answers) if isinstance(answers, dict) else answers
            raise NodeRefused(f"a batch of {len(calls)} {calls[0][0]}", {"message": str(error)})
        by_id = {answer.get("id"): answer for answer in answers}
        results = []
        for request in requests:
            answer = by_id.get(request["id"])
            if answer is None:
                raise ChainUnavailable(f"the node left {request['method']} out of a batch")
            results.append(
                NodeRefused(request["method"], answer["error"])
                if "error" in answer
                else answer.get("result")
            )
        return results

    def batch_results(self, calls: Sequence[tuple[str, Sequence[Any]]]) -> list[Any]:
        """batch(), raising the first NodeRefused."""
        results = self.batch(calls)
        for result in results:
            if isinstance(result, NodeRefused):
                raise result
        return results

    def _id(self) -> int:
        with self._ids_lock:
            return next(self._ids)

    def _post(self, payload: Any) -> Any:
        last: Exception | None = None
        for attempt in range(self.attempts):
            if attempt:
                time.sleep(self.backoff * 2 ** (attempt - 1))
            try:
                response = self._client.post(self.url, json=payload)
            except httpx.TransportError as unreachable:  # refused, reset, timed out
                last = unreachable
                continue
            if response.status_code >= 500:
                last = RuntimeError(f"HTTP {response.status_code}")
                continue
            try:
                return response.json()
            except ValueError as garbled:
                last = garbled
        raise ChainUnavailable(f"no answer from the chain node at {self.url}: {last}")
