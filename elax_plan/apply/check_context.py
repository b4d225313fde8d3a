"""What every verification check shares: its verdict (``CheckResult``), what it reads and how
it asks the target (``VerifyContext``), and the failure of a query the target refused
(``QueryFailed``).

Owns the verification's one way to POST: a JSON body through ``elax_plan.apply.http`` with the
run's retrier, under the timeout the plan's step carries (``verify.timeout``, not
``target.timeout``: the first vector query after writes rebuilds the IVF under the namespace
lock). The executors (``verify``, ``recall_gate``) decide what to ask and what the answer means.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

import httpx
import orjson

from elax_plan.apply.http import post
from elax_plan.apply.samples import SampledRow
from elax_plan.execution_plan import PostStep
from elax_plan.live.model import NamespaceLive, WalObject
from elax_plan.retry import Retrier
from elax_plan.spec import VerifySpec


@dataclass
class CheckResult:
    """One verification step's verdict and the numbers behind it."""

    key: str
    title: str
    passed: bool
    detail: str
    evidence: dict[str, Any] = field(default_factory=dict)
    advice: str = ""
    # No verdict on the data (the index never caught up, the check could not run): the run's
    # verification stays pending, so the next apply runs it again, as the advice promises.
    incomplete: bool = False

    def to_json(self) -> dict[str, Any]:
        return {
            "key": self.key,
            "title": self.title,
            "passed": self.passed,
            "detail": self.detail,
            "evidence": self.evidence,
            "advice": self.advice,
            "incomplete": self.incomplete,
        }


@dataclass
class VerifyContext:
    """What every check reads: the target, the router, and what the run acknowledged."""

    client: httpx.Client
    namespace: str
    read_namespace: Callable[[], NamespaceLive]  # already retrying transient store failures
    sample: Callable[[int, int], list[SampledRow]]  # (n, seed) → rows sampled from the source
    last_acked_seq: int | None
    wal_range: tuple[int, int] | None
    upserts_acked: int
    resends: int
    # (epoch, indexed_wal) of the router read after this run's last acknowledged write (every
    # append bumps the epoch, so only what comes after it shows the indexer at work); None
    # when this run wrote nothing.
    at_last_ack: tuple[int, int] | None
    retrier: Retrier
    # The namespace's WAL objects, and one object's bytes (None: absent), from target.store;
    # proven: seq → size:mtime of the WAL objects the delivery proof already read whole.
    list_wal: Callable[[], Sequence[WalObject]] = lambda: ()
    read_wal: Callable[[int], bytes | None] = lambda _: None
    proven: Mapping[int, str] = field(default_factory=dict)
    # The namespace's wal_highwater before the run's first write: its writes are all above.
    wal_floor: int | None = None
    # Waiting on ``stop`` (set by SIGINT/SIGTERM) keeps a long index timeout interruptible.
    stop: threading.Event = field(default_factory=threading.Event)
    clock: Callable[[], float] = time.monotonic
    on_event: Callable[[str, dict[str, Any]], None] = lambda *_: None
    # The plan file's verify section, only for what a plan never carries: the baseline's
    # api_key and the real URLs of the workload files (the steps show them without
    # credentials). Every other parameter comes from the step.
    verify_spec: VerifySpec | None = None

    @property
    def query_path(self) -> str:
        return f"/v2/namespaces/{quote(self.namespace, safe='')}/query"

    @property
    def recall_path(self) -> str:
        return f"/v1/namespaces/{quote(self.namespace, safe='')}/_debug/recall"

    def post(self, path: str, body: dict[str, Any], timeout: float | None = None) -> dict[str, Any]:
        """POST a JSON body, retrying transient failures; the answer object, or
        ``QueryFailed`` with status and text for any other non-200 answer. ``timeout``:
        seconds per attempt (None: the client's, ``target.timeout``)."""
        return self.post_bytes(path, orjson.dumps(body), timeout)

    def post_bytes(self, path: str, content: bytes, timeout: float | None) -> dict[str, Any]:
        """``post`` of a body already serialised (the recall calls, sized to the byte)."""
        response = self.retrier.call(
            lambda: post(self.client, path, content, timeout=timeout), what="verify"
        )
        if response.status_code != 200:
            raise QueryFailed(response.status_code, response.text[:500])
        data = orjson.loads(response.content)
        return data if isinstance(data, dict) else {}


Executor = Callable[[VerifyContext, PostStep], CheckResult]


class QueryFailed(Exception):
    def __init__(self, status: int, text: str) -> None:
        self.status = status
        self.text = text
        super().__init__(f"HTTP {status}: {text}")


def step_timeout(step: PostStep) -> float:
    """The step's per-request timeout in seconds, as planned from ``verify.timeout``."""
    return float(step.params["timeout_s"])


def redacted_body(body: dict[str, Any]) -> dict[str, Any]:
    """A query body for the evidence: vectors shown by their length, not their numbers."""
    out = dict(body)
    for key in ("vector",):
        if key in out:
            out[key] = f"[{len(out[key])} numbers]"
    if "rank_by" in out and out["rank_by"] and out["rank_by"][1] == "ANN":
        out["rank_by"] = [out["rank_by"][0], "ANN", f"[{len(out['rank_by'][2])} numbers]"]
    return out
