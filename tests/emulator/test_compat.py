"""One black-box contract, three versions: the same cases against `elax-plan emulator --compat X`.

Each case is a few HTTP requests against a fresh namespace of a real emulator
process (`--data-root`; no indexer and the real `/metrics`, the defaults), and names the
answer of the last one per version (CONTRACT §0–§3): 72e6998 has no rank_by
and requires `vector`; ac782e1 is the reference; c152c2d (PR #11) rejects
`deletes: null` and empty batches, reads upsert_rows / patch_rows, write
conditions (412) and `consistency`. Rules of axum that every version shares
(trailing bytes, duplicate fields, HEAD, the /metrics stub) run against all three.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest

from elax_plan.emulator import (
    COMPAT_VERSIONS,
    EmbeddedTransport,
    Emulator,
    EmulatorConfig,
    compact,
)
from tests.emulator.processes import EmulatorProcess, stop_all

JSON = {"content-type": "application/json"}
STUB = (
    b"# HELP elax_metrics_up Exporter health indicator\n"
    b"# TYPE elax_metrics_up gauge\n"
    b"elax_metrics_up 1\n"
)


@dataclass(frozen=True)
class Server:
    compat: str
    client: httpx.Client


@pytest.fixture(scope="module", params=COMPAT_VERSIONS)
def server(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Server]:
    """A real emulator process answering as one compat version."""
    compat = str(request.param)
    root = tmp_path_factory.mktemp(f"compat-{compat}")
    proc = EmulatorProcess("--data-root", str(root), "--compat", compat)
    try:
        with httpx.Client(base_url=proc.url, timeout=30) as client:
            yield Server(compat, client)
    finally:
        stop_all([proc])


@dataclass(frozen=True)
class Answer:
    """What a version answers: status and exact JSON, a plain-text fragment, or hit ids."""

    status: int
    json: Any = None
    text: str | None = None
    hits: tuple[str, ...] | None = None

    def check(self, r: httpx.Response) -> None:
        assert r.status_code == self.status, r.text
        if self.json is not None:
            assert r.headers["content-type"] == "application/json"
            assert r.json() == self.json
        if self.text is not None:
            assert r.headers["content-type"].startswith("text/plain")
            assert self.text in r.text
        if self.hits is not None:
            assert tuple(h["id"] for h in r.json()["hits"]) == self.hits


Request = tuple[str, Any]  # ("write" | "query", JSON value or raw bytes)


@dataclass(frozen=True)
class Case:
    name: str
    probe: Request
    answers: dict[str, Answer]  # compat → answer; "*" for the others
    setup: tuple[Request, ...] = field(default_factory=tuple)

    def answer(self, compat: str) -> Answer:
        return self.answers.get(compat, self.answers["*"])


def doc(doc_id: str, **attributes: object) -> dict[str, object]:
    out: dict[str, object] = {"id": doc_id, "vector": [1.0, 0.0]}
    if attributes:
        out["attributes"] = attributes
    return out


SEQ1 = Answer(200, {"wal_sequence": 1})
EMPTY_BATCH = Answer(500, {"error": "write batch must include at least one operation"})
CASES = [
    Case(
        "portable_write",
        ("write", {"upserts": [doc("a", t="x")], "deletes": ["b"]}),
        {"*": SEQ1},
    ),
    Case(
        "deletes_null",
        ("write", {"upserts": [doc("a")], "deletes": None}),
        {
            "*": SEQ1,
            "c152c2d": Answer(422, text="deletes: invalid type: null, expected a sequence"),
        },
    ),
    Case("empty_batch", ("write", {}), {"*": SEQ1, "c152c2d": EMPTY_BATCH}),
    Case(
        "upsert_rows_is_ignored_before_pr11",
        ("query", {"vector": [1.0, 0.0]}),
        {"*": Answer(200, hits=()), "c152c2d": Answer(200, hits=("a",))},
        setup=(("write", {"upsert_rows": [doc("a")]}),),
    ),
    Case(
        "upserts_and_upsert_rows",
        ("write", {"upserts": [doc("a")], "upsert_rows": [doc("b")]}),
        {"*": SEQ1, "c152c2d": Answer(422, text="duplicate field `upsert_rows`")},
    ),
    Case(
        "patch_rows",
        ("query", {"vector": [1.0, 0.0]}),
        {
            "*": Answer(200, {"hits": [{"id": "a", "score": 0.0, "attributes": {"d": 1, "k": 1}}]}),
            "c152c2d": Answer(200, {"hits": [{"id": "a", "score": 0.0, "attributes": {"k": 2}}]}),
        },
        setup=(
            ("write", {"upserts": [doc("a", k=1, d=1)]}),
            ("write", {"patch_rows": [{"id": "a", "attributes": {"k": 2, "d": None}}]}),
        ),
    ),
    Case(
        "patch_on_a_missing_id",
        ("write", {"patch_rows": [{"id": "zz", "vector": [1.0]}]}),
        {"*": SEQ1, "c152c2d": Answer(500, {"error": "patch target zz missing"})},
    ),
    Case(
        "min_condition",
        ("write", {"upserts": [doc("a")], "upsert_condition": {"min_wal_sequence": 5}}),
        {
            "*": SEQ1,
            "c152c2d": Answer(412, {"error": "wal sequence 0 below required minimum 5"}),
        },
    ),
    Case(
        "max_condition",
        ("write", {"upserts": [doc("b")], "delete_condition": {"max_wal_sequence": 0}}),
        {
            "*": Answer(200, {"wal_sequence": 2}),
            "c152c2d": Answer(412, {"error": "wal sequence 1 above allowed maximum 0"}),
        },
        setup=(("write", {"upserts": [doc("a")]}),),
    ),
    Case(
        "bad_condition_shape",
        ("write", {"upserts": [doc("a")], "upsert_condition": {"min_wal_sequence": "x"}}),
        {"*": SEQ1, "c152c2d": Answer(422, text="upsert_condition.min_wal_sequence")},
    ),
    Case(
        "bm25_without_vector",
        ("query", {"rank_by": ["title", "BM25", "jacket"]}),
        {"*": Answer(200, hits=("a",)), "72e6998": Answer(422, text="missing field `vector`")},
        setup=(("write", {"upserts": [{"id": "a", "attributes": {"title": "red jacket"}}]}),),
    ),
    Case(
        "rank_by_ann_without_vector",
        ("query", {"rank_by": ["vector", "ANN", [1.0, 0.0]]}),
        {"*": Answer(200, hits=("a",)), "72e6998": Answer(422, text="missing field `vector`")},
        setup=(("write", {"upserts": [doc("a")]}),),
    ),
    Case(
        "vector_null",
        ("query", {"vector": None}),
        {
            "*": Answer(
                500, {"error": "rank_by or queries must include a supported search clause"}
            ),
            "72e6998": Answer(422, text="vector: invalid type: null, expected a sequence"),
        },
    ),
    Case(
        "eventual_consistency",
        (
            "query",
            {"vector": [1.0, 0.0], "min_wal_sequence": 9, "consistency": {"level": "eventual"}},
        ),
        {
            "*": Answer(500, {"error": "consistency level unmet: wal=1, required=9"}),
            "c152c2d": Answer(200, hits=("a",)),
        },
        setup=(("write", {"upserts": [doc("a")]}),),
    ),
    Case(
        "unknown_consistency_level",
        ("query", {"vector": [1.0, 0.0], "consistency": {"level": "weak"}}),
        {"*": Answer(200, {"hits": []}), "c152c2d": Answer(422, text="unknown variant `weak`")},
    ),
    Case(
        "trailing_bytes_after_the_body",
        ("write", b'{"upserts":[{"id":"a"}]} and then some'),
        {"*": SEQ1},
    ),
    Case(
        "duplicate_top_level_field",
        ("write", b'{"upserts":[{"id":"a"}],"upserts":[{"id":"b"}]}'),
        {
            "*": Answer(422, text="duplicate field `upserts`"),
            "c152c2d": Answer(422, text="duplicate field `upsert_rows`"),
        },
    ),
    Case(
        "duplicate_document_field",
        ("write", b'{"upserts":[{"id":"a","id":"b"}]}'),
        {"*": Answer(422, text="upserts[0]: duplicate field `id`")},
    ),
    Case(
        "duplicate_query_field",
        ("query", b'{"vector":[1.0,0.0],"top_k":1,"top_k":2}'),
        {"*": Answer(422, text="duplicate field `top_k`")},
    ),
    Case(
        "repeated_attribute_key_last_wins",
        ("query", {"vector": [1.0, 0.0]}),
        {"*": Answer(200, {"hits": [{"id": "a", "score": 0.0, "attributes": {"k": 2}}]})},
        setup=(
            ("write", b'{"upserts":[{"id":"a","vector":[1.0,0.0],"attributes":{"k":1,"k":2}}]}'),
        ),
    ),
]


def send(client: httpx.Client, ns: str, request: Request) -> httpx.Response:
    kind, body = request
    path = f"/v2/namespaces/{ns}" + ("/query" if kind == "query" else "")
    content = body if isinstance(body, bytes) else orjson.dumps(body)
    return client.post(path, content=content, headers=JSON)


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_case_answers_as_its_version(server: Server, case: Case) -> None:
    """Each black-box case answers with the status and body of the version under test."""
    ns = f"{case.name}"
    for step in case.setup:
        assert send(server.client, ns, step).status_code == 200, step
    case.answer(server.compat).check(send(server.client, ns, case.probe))


def test_every_case_tells_the_versions_apart_or_holds_for_all() -> None:
    """The table covers each documented difference: every version differs somewhere."""
    answers = {v: [c.answer(v) for c in CASES] for v in COMPAT_VERSIONS}
    assert answers["72e6998"] != answers["ac782e1"] != answers["c152c2d"]
    assert answers["72e6998"] != answers["c152c2d"]


def test_metrics_is_the_real_stub_with_head(server: Server) -> None:
    """By default GET /metrics is the 3-line stub byte for byte; HEAD has its headers only."""
    send(server.client, "metrics", ("write", {"upserts": [doc("a")]}))
    r = server.client.get("/metrics")
    assert r.status_code == 200
    assert r.content == STUB
    assert r.headers["content-type"] == "text/plain; version=0.0.4"
    head = server.client.head("/metrics")
    assert head.status_code == 200 and head.content == b""
    assert head.headers["content-length"] == str(len(STUB))
    rich = server.client.get("/_emulator/metrics").text
    assert 'elax_core_write_requests_total{namespace="metrics"}' in rich
    assert server.client.head("/_emulator/metrics").status_code == 200
    assert server.client.post("/metrics", json={}).status_code == 405
    assert server.client.head("/v2/namespaces/metrics").status_code == 405


def test_pr11_column_writes_delete_by_filter_and_their_wal_round_trip(tmp_path: Path) -> None:
    """c152c2d: upsert_columns, patch_columns and delete_by_filter apply in RAM, are written
    to the WAL in serde's shape, replay identically after a restart, and compact reads them."""
    root = tmp_path / "root"
    config = EmulatorConfig(data_root=str(root), compat="c152c2d")
    write = {
        "upsert_columns": [
            {
                "ids": ["a", "b", "c"],
                "vector": [[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]],
                "attributes": {"n": [1, 2, 3], "tag": ["x", "y", "x"]},
            }
        ],
        "patch_columns": [
            {"ids": ["a", "b"], "vector": [None, [2.0, 0.0]], "attributes": {"n": [10, None]}}
        ],
        "delete_by_filter": [
            {"op": "eq", "field": "tag", "value": "x"},
            {"op": "gt", "field": "n", "value": 9},
        ],
    }
    query = {"vector": [1.0, 0.0], "top_k": 10, "ann_params": {"use_ivf": False}}
    with Emulator(config) as e, client(e) as c:
        assert c.post("/v2/namespaces/n", json=write).json() == {"wal_sequence": 1}
        before = c.post("/v2/namespaces/n/query", json=query).json()
        assert before == {"hits": [{"id": "b", "score": 0.0, "attributes": {"tag": "y"}}]}
        r = c.post("/v2/namespaces/n", json={"upsert_columns": [{"ids": ["d"], "vector": []}]})
        assert r.status_code == 400
        assert r.json() == {"error": "upsert_columns.vector length must match ids"}
    wal = (root / "namespaces" / "n" / "wal" / f"WAL-{1:020}.json").read_bytes()
    assert (
        b'{"op":"patch","id":"a","vector":{"action":"remove"},"attributes":{"set":{"n":10}}}' in wal
    )
    assert b'{"op":"patch","id":"b","vector":{"action":"set","value":[2.0,0.0]},' in wal
    assert b'"attributes":{"remove":["n"]}}' in wal
    assert wal.endswith(
        b'{"op":"delete_by_filter","filter":{"op":"eq","field":"tag","value":"x"}},'
        b'{"op":"delete_by_filter","filter":{"op":"gt","field":"n","value":9.0}}]}'
    )
    with Emulator(config) as e, client(e) as c:
        assert c.post("/v2/namespaces/n/query", json=query).json() == before
    result = compact(str(root), "n")
    (part,) = result.router.parts
    # Tombstones a, c (tag x), then a again (n > 9): the real indexer evaluates each
    # filter over the bucket's rows, which deletes never remove.
    assert (part.rows, part.tombstones) == (3, 3)


def client(emulator: Emulator) -> httpx.Client:
    return httpx.Client(transport=EmbeddedTransport(emulator), base_url="http://embedded")
