"""The HTTP contract over a real socket: routes, status codes and exact body shapes (CONTRACT §1–§3)."""

from __future__ import annotations

import threading
from collections.abc import Callable
from pathlib import Path

import httpx
import orjson
import pytest

from elax_plan.emulator import EmulatorConfig
from tests.conftest import RunningEmulator

JSON_HEADERS = {"content-type": "application/json"}


def doc(i: int, vec: list[float] | None = None, **attrs: object) -> dict[str, object]:
    out: dict[str, object] = {"id": str(i), "vector": vec if vec is not None else [float(i), 1.0]}
    if attrs:
        out["attributes"] = attrs
    return out


def test_write_returns_increasing_wal_sequence(emu: RunningEmulator) -> None:
    """Each accepted write answers 200 {"wal_sequence": N}, N = 1, 2, 3 per namespace."""
    seqs = []
    for i in range(3):
        r = emu.write("docs", {"upserts": [doc(i)]})
        assert r.status_code == 200
        assert r.headers["content-type"] == "application/json"
        assert r.content == orjson.dumps({"wal_sequence": i + 1})
        seqs.append(r.json()["wal_sequence"])
    assert seqs == [1, 2, 3]
    assert emu.write("other", {"upserts": [doc(1)]}).json() == {"wal_sequence": 1}


def test_deletes_null_and_empty_batch_are_accepted(emu: RunningEmulator) -> None:
    """`deletes: null` is fine (PR #12) and `{}` consumes a sequence (hazard H3)."""
    assert emu.write("n", {"upserts": [doc(1)], "deletes": None}).json() == {"wal_sequence": 1}
    assert emu.write("n", {}).json() == {"wal_sequence": 2}


def test_empty_id_is_400_json(emu: RunningEmulator) -> None:
    """An upsert with id "" gets 400 and the JSON error body."""
    r = emu.write("n", {"upserts": [{"id": "", "vector": [1.0]}]})
    assert r.status_code == 400
    assert r.json() == {"error": "id must not be empty"}


def test_syntax_error_is_400_plain_text(emu: RunningEmulator) -> None:
    """Malformed JSON gets 400 with a plain-text body, and nothing is written."""
    for body in (b"{not json", b"", b'{"upserts": [}', b'{"upserts":[{"id":"a","vector":[NaN]}]}'):
        r = emu.client.post("/v2/namespaces/n", content=body, headers=JSON_HEADERS)
        assert r.status_code == 400, body
        assert r.headers["content-type"].startswith("text/plain")
        assert r.text.startswith("Failed to parse the request body as JSON")
    assert not emu.emulator.store.list_files("namespaces/n/wal")


@pytest.mark.parametrize(
    "body",
    [
        {"upserts": [{"id": 5, "vector": [1.0]}]},
        {"upserts": [{"id": "a", "vector": [1.0, "2"]}]},
        {"upserts": [{"id": "a", "vector": [True]}]},
        {"upserts": [{"id": "a", "vector": "base64:AAAA"}]},
        {"upserts": None},
        {"upserts": {"id": "a"}},
        {"upserts": [{"vector": [1.0]}]},
        {"deletes": [1]},
        [],
    ],
)
def test_wrong_write_shapes_are_422_plain_text(emu: RunningEmulator, body: object) -> None:
    """Valid JSON of the wrong shape gets 422 with serde's plain-text message."""
    r = emu.write("n", body)
    assert r.status_code == 422
    assert r.headers["content-type"].startswith("text/plain")
    assert "Failed to deserialize the JSON body" in r.text


def test_cosine_distance_metric_is_422(emu: RunningEmulator) -> None:
    """The query API only knows `cosine` and `euclidean_squared`."""
    emu.write("n", {"upserts": [doc(1)]})
    r = emu.query("n", {"vector": [1.0, 1.0], "metric": "cosine_distance"})
    assert r.status_code == 422
    assert "cosine_distance" in r.text
    assert emu.query("n", {"vector": [1.0, 1.0], "metric": "cosine"}).status_code == 200


def test_missing_or_wrong_content_type_is_415(emu: RunningEmulator) -> None:
    """Without `Content-Type: application/json` the answer is 415 plain text."""
    r = emu.client.post("/v2/namespaces/n", content=b'{"upserts":[]}')
    assert r.status_code == 415
    assert r.headers["content-type"].startswith("text/plain")
    r = emu.client.post(
        "/v2/namespaces/n/query", content=b"{}", headers={"content-type": "text/plain"}
    )
    assert r.status_code == 415
    ok = emu.client.post(
        "/v2/namespaces/n",
        content=b'{"upserts":[{"id":"a"}]}',
        headers={"content-type": "application/json; charset=utf-8"},
    )
    assert ok.status_code == 200


def test_body_over_cap_is_413_and_server_keeps_serving(
    serve_emulator: Callable[..., RunningEmulator], tmp_path: Path
) -> None:
    """A body over --max-body-bytes gets 413 plain text; a huge one too; nothing is written."""
    emu = serve_emulator(EmulatorConfig((tmp_path / "s").as_uri(), max_body_bytes=4096))
    big = orjson.dumps({"upserts": [doc(i, [0.5] * 64) for i in range(100)]})
    assert len(big) > 4096
    r = emu.client.post("/v2/namespaces/n", content=big, headers=JSON_HEADERS)
    assert r.status_code == 413
    assert r.headers["content-type"].startswith("text/plain")
    huge = b'{"upserts":[' + b" " * (20 * 1024 * 1024) + b"]}"
    r = emu.client.post("/v2/namespaces/n", content=huge, headers=JSON_HEADERS)
    assert r.status_code == 413
    assert emu.write("n", {"upserts": [doc(1)]}).json() == {"wal_sequence": 1}


def test_default_cap_is_2_mib(emu: RunningEmulator) -> None:
    """The default cap is 2,097,152 bytes: that size passes, one byte more does not."""
    prefix = b'{"upserts":[{"id":"a"}],"pad":"'
    filler = 2 * 1024 * 1024 - len(prefix) - 2
    exact = prefix + b"x" * filler + b'"}'
    assert len(exact) == 2 * 1024 * 1024
    assert (
        emu.client.post("/v2/namespaces/n", content=exact, headers=JSON_HEADERS).status_code == 200
    )
    over = prefix + b"x" * (filler + 1) + b'"}'
    assert (
        emu.client.post("/v2/namespaces/n", content=over, headers=JSON_HEADERS).status_code == 413
    )


def test_unknown_route_is_404_empty_and_wrong_method_405(emu: RunningEmulator) -> None:
    """Unknown paths get 404 with an empty body; known paths with another method get 405."""
    for path in ("/", "/v1/namespaces/n", "/v2/namespaces/n/other", "/v2/namespaces/n/query/x"):
        r = emu.client.post(path, json={})
        assert r.status_code == 404, path
        assert r.content == b""
    assert emu.client.get("/v2/namespaces/n").status_code == 405
    assert emu.client.get("/v2/namespaces/n/query").status_code == 405
    assert emu.client.post("/metrics", json={}).status_code == 405


def test_query_unknown_namespace_is_empty_hits(emu: RunningEmulator) -> None:
    """A namespace springs into existence on first use: no 404, just no hits."""
    r = emu.query("never-written", {"vector": [1.0, 0.0], "top_k": 5})
    assert r.status_code == 200
    assert r.content == b'{"hits":[]}'


def test_hits_sorted_by_score_then_id(emu: RunningEmulator) -> None:
    """Hits come back by score ascending; equal scores by id byte order; attributes omitted if absent."""
    emu.write(
        "n",
        {
            "upserts": [
                {"id": "b", "vector": [1.0, 0.0], "attributes": {"t": 1}},
                {"id": "a", "vector": [1.0, 0.0]},
                {"id": "c", "vector": [0.0, 1.0]},
            ]
        },
    )
    r = emu.query("n", {"vector": [1.0, 0.0], "top_k": 3, "metric": "euclidean_squared"})
    hits = r.json()["hits"]
    assert [h["id"] for h in hits] == ["a", "b", "c"]
    assert [h["score"] for h in hits] == [0.0, 0.0, 2.0]
    assert "attributes" not in hits[0] and hits[1]["attributes"] == {"t": 1}


def test_query_forms_rank_by_bm25_queries_filters_group_by(emu: RunningEmulator) -> None:
    """rank_by ANN, BM25, multi-clause queries, filters, filter_bitmap_ids and group_by answer 200."""
    emu.write(
        "n",
        {
            "upserts": [
                doc(1, [1.0, 0.0], title="red jacket", cat="a", price=10),
                doc(2, [0.0, 1.0], title="blue jacket", cat="b", price=20),
                doc(3, [0.7, 0.7], title="green hat", cat="a", price=30),
            ]
        },
    )
    r = emu.query("n", {"rank_by": ["vector", "ANN", [1.0, 0.0]], "top_k": 1})
    assert [h["id"] for h in r.json()["hits"]] == ["1"]
    r = emu.query("n", {"rank_by": ["title", "BM25", "jacket"], "top_k": 10})
    hits = r.json()["hits"]
    assert {h["id"] for h in hits} == {"1", "2"} and all(h["score"] < 0 for h in hits)
    r = emu.query(
        "n",
        {
            "queries": [
                {"rank_by": ["vector", "ANN", [1.0, 0.0]], "top_k": 3},
                {"rank_by": ["title", "BM25", "hat"]},
            ],
            "top_k": 3,
        },
    )
    assert r.status_code == 200 and len(r.json()["hits"]) == 3
    r = emu.query(
        "n", {"vector": [1.0, 0.0], "filters": {"op": "gte", "field": "price", "value": 20}}
    )
    assert [h["id"] for h in r.json()["hits"]] == ["3", "2"]
    r = emu.query("n", {"vector": [1.0, 0.0], "filter_bitmap_ids": ["2"]})
    assert [h["id"] for h in r.json()["hits"]] == ["2"]
    r = emu.query("n", {"vector": [1.0, 0.0], "group_by": {"field": "cat"}})
    groups = r.json()["groups"]
    assert [(g["value"], g["count"]) for g in groups] == [("a", 2), ("b", 1)]


def test_query_errors_are_500_json(emu: RunningEmulator) -> None:
    """No search clause, an empty vector and an unmet min_wal_sequence are 500 {"error": …}."""
    emu.write("n", {"upserts": [doc(1)]})
    cases = {
        "rank_by or queries must include a supported search clause": {"top_k": 3},
        "query vector must not be empty": {"vector": []},
        "consistency level unmet: wal=1, required=5": {"vector": [1.0, 0.0], "min_wal_sequence": 5},
    }
    for message, body in cases.items():
        r = emu.query("n", body)
        assert r.status_code == 500
        assert r.json() == {"error": message}
    assert emu.query("n", {"vector": [1.0, 0.0], "min_wal_sequence": 1}).status_code == 200


def test_range_filter_with_string_value_is_422_and_on_string_attribute_500(
    emu: RunningEmulator,
) -> None:
    """Range filters need a numeric value (422) and a numeric attribute (500)."""
    emu.write("n", {"upserts": [doc(1, title="x")]})
    r = emu.query(
        "n", {"vector": [1.0, 0.0], "filters": {"op": "gt", "field": "title", "value": "a"}}
    )
    assert r.status_code == 422
    r = emu.query(
        "n", {"vector": [1.0, 0.0], "filters": {"op": "gt", "field": "title", "value": 1}}
    )
    assert r.status_code == 500
    assert r.json() == {"error": "field title is not a number"}


def test_recall_endpoint_shape(emu: RunningEmulator) -> None:
    """_debug/recall (note v1) answers the four statistics."""
    emu.write("n", {"upserts": [doc(i, [float(i % 7), float(i % 5), 1.0]) for i in range(40)]})
    r = emu.recall("n", {"num": 5, "top_k": 3})
    assert r.status_code == 200
    body = r.json()
    assert set(body) == {"avg_recall", "avg_ann_count", "avg_exhaustive_count", "evaluated"}
    assert body["evaluated"] == 5
    assert emu.client.post("/v2/namespaces/n/_debug/recall", json={}).status_code == 404


@pytest.mark.parametrize("raw", ["%2E%2E", "%2E", "a%2Fb", "a%00b", "a%0Ab", "%FF"])
def test_namespace_names_that_escape_the_store_are_400(emu: RunningEmulator, raw: str) -> None:
    """`..`, `/`, control characters and bad UTF-8 in a namespace are refused with 400 JSON."""
    for path in (f"/v2/namespaces/{raw}", f"/v2/namespaces/{raw}/query"):
        r = emu.client.post(path, json={"upserts": [doc(1)]})
        assert r.status_code == 400, path
        assert "error" in r.json()
    assert emu.emulator.store.list_dirs("namespaces") == []


def test_empty_namespace_is_400(emu: RunningEmulator) -> None:
    """`/v2/namespaces/` (an empty name) is refused with 400 JSON."""
    r = emu.client.post("/v2/namespaces/", json={"upserts": [doc(1)]})
    assert r.status_code == 400
    assert r.json() == {"error": "namespace must not be empty"}


def test_metrics_stub_then_counters_and_lag_gauge(
    serve_emulator: Callable[..., RunningEmulator], tmp_path: Path
) -> None:
    """/_emulator/metrics is Prometheus text: a stub gauge at first, then counters and the
    WAL-lag gauge; GET /metrics stays the real stub throughout."""
    emu = serve_emulator(EmulatorConfig((tmp_path / "s").as_uri()))
    r = emu.client.get("/_emulator/metrics")
    assert r.status_code == 200
    assert r.headers["content-type"] == "text/plain; version=0.0.4"
    assert "elax_metrics_up 1" in r.text
    emu.write("docs", {"upserts": [doc(1)]})
    emu.write("docs", {"upserts": [{"id": ""}]})
    emu.write("docs", {"upserts": [doc(2)]})
    assert emu.client.get("/metrics").content == (
        b"# HELP elax_metrics_up Exporter health indicator\n"
        b"# TYPE elax_metrics_up gauge\n"
        b"elax_metrics_up 1\n"
    )
    text = emu.client.get("/_emulator/metrics").text
    assert 'elax_api_requests_total{route="write",status="200"} 2' in text
    assert 'elax_api_requests_total{route="write",status="400"} 1' in text
    assert 'elax_core_write_requests_total{namespace="docs"} 2' in text
    assert 'elax_emulator_wal_lag_batches{namespace="docs"} 2' in text


def test_metrics_rich_serves_the_series_at_metrics_too(
    serve_emulator: Callable[..., RunningEmulator], tmp_path: Path
) -> None:
    """metrics="rich" (opt-in) answers GET /metrics with what /_emulator/metrics says."""
    emu = serve_emulator(EmulatorConfig((tmp_path / "s").as_uri(), metrics="rich"))
    emu.write("docs", {"upserts": [doc(1)]})
    text = emu.client.get("/metrics").text
    assert 'elax_core_write_requests_total{namespace="docs"} 1' in text
    assert text == emu.client.get("/_emulator/metrics").text


def test_out_of_range_float_reproduces_h4_without_losing_data(
    serve_emulator: Callable[..., RunningEmulator], tmp_path: Path
) -> None:
    """1e39 is accepted (f32 overflow → null in the WAL, as the real server does); after a
    restart that namespace answers 500 while its WAL files are all still there and other
    namespaces keep working."""
    url = (tmp_path / "s").as_uri()
    first = serve_emulator(EmulatorConfig(url))
    first.write("n", {"upserts": [doc(1)]})
    r = first.write("n", {"upserts": [{"id": "bad", "vector": [1e39, 1.0]}]})
    assert r.status_code == 200
    first.write("ok", {"upserts": [doc(1)]})
    wal = first.emulator.store.read("namespaces/n/wal/WAL-00000000000000000002.json")
    assert wal is not None and b"[null,1.0]" in wal
    second = serve_emulator(EmulatorConfig(url))
    r = second.query("n", {"vector": [1.0, 0.0]})
    assert r.status_code == 500
    assert "WAL" in r.json()["error"]
    assert second.write("n", {"upserts": [doc(3)]}).status_code == 500
    assert len(second.emulator.store.list_files("namespaces/n/wal")) == 2
    assert [h["id"] for h in second.query("ok", {"vector": [1.0, 0.0]}).json()["hits"]] == ["1"]


def test_injected_faults_are_503_or_429_with_retry_after_and_write_nothing(
    serve_emulator: Callable[..., RunningEmulator], tmp_path: Path
) -> None:
    """--fail-rate 1 fails every API call before any work: half 503, half 429 + Retry-After."""
    emu = serve_emulator(EmulatorConfig((tmp_path / "s").as_uri(), fail_rate=1.0, seed=7))
    statuses = []
    for i in range(40):
        r = emu.write("n", {"upserts": [doc(i)]})
        statuses.append(r.status_code)
        assert "error" in r.json()
        if r.status_code == 429:
            assert r.headers["retry-after"] == "1"
    assert set(statuses) == {429, 503}
    assert 8 <= statuses.count(429) <= 32
    assert emu.emulator.store.list_files("namespaces/n/wal") == []
    assert emu.client.get("/metrics").status_code == 200


def test_latency_is_added_to_api_calls(
    serve_emulator: Callable[..., RunningEmulator], tmp_path: Path
) -> None:
    """--latency delays every API answer by at least that long."""
    import time

    emu = serve_emulator(EmulatorConfig((tmp_path / "s").as_uri(), latency=0.15))
    start = time.monotonic()
    emu.write("n", {"upserts": [doc(1)]})
    assert time.monotonic() - start >= 0.15


def test_race_appends_reproduces_lost_writes(
    serve_emulator: Callable[..., RunningEmulator], tmp_path: Path
) -> None:
    """--race-appends, overwrite model: concurrent writes can be acknowledged with the same
    sequence (H1), and nothing else happens (the real model's torn files and 500s are in
    test_races.py)."""
    emu = serve_emulator(
        EmulatorConfig((tmp_path / "s").as_uri(), race_appends=True, race_model="overwrite")
    )
    acked: list[int] = []
    lock = threading.Lock()

    def writer(w: int) -> None:
        with httpx.Client(base_url=emu.url, timeout=30) as client:
            for i in range(10):
                r = client.post("/v2/namespaces/n", json={"upserts": [doc(w * 100 + i)]})
                with lock:
                    acked.append(r.json()["wal_sequence"])

    threads = [threading.Thread(target=writer, args=(w,)) for w in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(acked) == 60
    assert len(set(acked)) < len(acked), "no duplicate sequence in 60 concurrent writes"
    assert len(emu.emulator.store.list_files("namespaces/n/wal")) == len(set(acked))


def test_serialised_appends_never_share_a_sequence(emu: RunningEmulator) -> None:
    """Without --race-appends, concurrent writes get distinct sequences and distinct files."""
    acked: list[int] = []
    lock = threading.Lock()

    def writer(w: int) -> None:
        with httpx.Client(base_url=emu.url, timeout=30) as client:
            for i in range(10):
                r = client.post("/v2/namespaces/n", json={"upserts": [doc(w * 100 + i)]})
                with lock:
                    acked.append(r.json()["wal_sequence"])

    threads = [threading.Thread(target=writer, args=(w,)) for w in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(acked) == list(range(1, 41))
    assert len(emu.emulator.store.list_files("namespaces/n/wal")) == 40
