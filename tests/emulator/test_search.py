"""Query execution and recall of the emulator's SearchIndex against the real node's rules."""

from __future__ import annotations

import base64
import math
from typing import Any

import numpy as np
import orjson
import pytest

from elax_plan.emulator.model import Document, ServerError
from elax_plan.emulator.query_model import parse_query, parse_recall
from elax_plan.emulator.search import SearchIndex


def doc(doc_id: str, vector: list[float] | None = None, attributes: Any = None) -> Document:
    vec = None if vector is None else np.asarray(vector, dtype=np.float32)
    return Document(doc_id, vec, attributes)


def index_of(*docs: Document) -> SearchIndex:
    return SearchIndex({d.id: d for d in docs})


def query(index: SearchIndex, body: dict[str, Any]) -> dict[str, Any]:
    out = index.search(parse_query(body))
    orjson.dumps(out)  # every answer must serialise as the HTTP layer will
    return out


def ids(out: dict[str, Any]) -> list[str]:
    return [hit["id"] for hit in out["hits"]]


def scores(out: dict[str, Any]) -> dict[str, float]:
    return {hit["id"]: hit["score"] for hit in out["hits"]}


def random_index(n: int, dim: int, seed: int, attrs: bool = False) -> tuple[SearchIndex, Any]:
    data = np.random.default_rng(seed).standard_normal((n, dim)).astype(np.float32)
    docs = {
        f"d{i:05d}": Document(f"d{i:05d}", data[i], {"n": i} if attrs else None) for i in range(n)
    }
    return SearchIndex(docs), data


def exact_cosine(q: Any, v: Any) -> float:
    q64, v64 = np.asarray(q, dtype=np.float64), np.asarray(v, dtype=np.float64)
    return float(1 - q64 @ v64 / (np.linalg.norm(q64) * np.linalg.norm(v64)))


@pytest.fixture(scope="module")
def recall_index() -> SearchIndex:
    """2,000 random 32-d vectors (seeded); the IVF index is cached across the module's tests."""
    return random_index(2000, 32, seed=7)[0]


# --- exact scoring and ordering -------------------------------------------------------------


def test_exact_cosine_scores() -> None:
    """Cosine score is 1 − cos; a zero-norm document scores 1.0."""
    index = index_of(doc("same", [2, 0]), doc("diag", [1, 1]), doc("zero", [0, 0]))
    out = query(index, {"vector": [1, 0]})
    assert ids(out) == ["same", "diag", "zero"]
    got = scores(out)
    assert got["same"] == 0.0
    assert got["diag"] == pytest.approx(1 - 1 / math.sqrt(2), abs=1e-6)
    assert got["zero"] == 1.0


def test_zero_query_vector_scores_one_for_everything() -> None:
    """A zero-norm query gives every document cosine distance 1.0."""
    index = index_of(doc("a", [1, 0]), doc("b", [0, 1]))
    assert scores(query(index, {"vector": [0, 0]})) == {"a": 1.0, "b": 1.0}


def test_exact_euclidean_squared_scores() -> None:
    """euclidean_squared is Σ(q − v)²."""
    index = index_of(doc("a", [1, 2]), doc("b", [4, 6]), doc("c", [1, 1]))
    out = query(index, {"vector": [1, 1], "metric": "euclidean_squared"})
    assert ids(out) == ["c", "a", "b"]
    assert scores(out) == {"c": 0.0, "a": 1.0, "b": 34.0}


def test_ties_are_ordered_by_id_bytes() -> None:
    """Equal scores sort by id in byte order (uppercase before lowercase, ASCII before é)."""
    names = ["b", "é", "a", "B", "aa"]
    index = index_of(*(doc(n, [1, 1]) for n in names))
    assert ids(query(index, {"vector": [1, 1]})) == ["B", "a", "aa", "b", "é"]


def test_top_k_truncates_and_zero_returns_nothing() -> None:
    """top_k keeps the best k; top_k 0 answers {"hits": []} without any work."""
    index = index_of(*(doc(f"d{i}", [1, i]) for i in range(5)))
    assert ids(query(index, {"vector": [1, 0], "top_k": 2})) == ["d0", "d1"]
    assert query(index, {"vector": [], "top_k": 0}) == {"hits": []}


def test_empty_namespace_answers_no_hits() -> None:
    """An empty documents dict (unknown namespace) gives {"hits": []}."""
    assert query(SearchIndex({}), {"vector": [1, 2]}) == {"hits": []}
    assert query(SearchIndex({}), {"rank_by": ["t", "BM25", "x"]}) == {"hits": []}


def test_attributes_returned_whole_and_omitted_when_absent() -> None:
    """Hits carry all attributes; a document without attributes has no `attributes` key."""
    index = index_of(doc("a", [1, 0], {"x": {"y": [1, 2]}}), doc("b", [0, 1]))
    hits = query(index, {"vector": [1, 0]})["hits"]
    assert hits[0] == {"id": "a", "score": 0.0, "attributes": {"x": {"y": [1, 2]}}}
    assert set(hits[1]) == {"id", "score"}


def test_scores_are_plain_floats_with_f32_text() -> None:
    """Scores are Python floats printing like the real f32 (`0.3`, not 0.30000001…)."""
    index = index_of(doc("a", [0.1, 0.2]))
    score = query(index, {"vector": [0.4, 0.4], "metric": "euclidean_squared"})["hits"][0]["score"]
    assert type(score) is float
    assert orjson.dumps(score).decode() == str(
        np.float32(np.float32(0.3) ** 2 + np.float32(0.2) ** 2)
    )


def test_documents_of_another_dimension_are_skipped() -> None:
    """Only vectors with the query's dimension are scored; others and vectorless docs skip."""
    index = index_of(doc("two", [1, 0]), doc("three", [1, 0, 0]), doc("none", None, {"t": 1}))
    assert ids(query(index, {"vector": [1, 0, 0]})) == ["three"]


def test_missing_clause_and_empty_vector_are_server_errors() -> None:
    """No search clause, or an empty query vector, fail with the real node's 500 messages."""
    index = index_of(doc("a", [1]))
    with pytest.raises(ServerError, match="rank_by or queries must include a supported"):
        query(index, {"top_k": 3})
    with pytest.raises(ServerError, match="query vector must not be empty"):
        query(index, {"vector": []})
    with pytest.raises(ServerError, match="query vector must not be empty"):
        query(index, {"rank_by": ["v", "ANN", "base64:"]})


def test_base64_rank_by_queries_match_plain_vectors() -> None:
    """f32 and f16 base64 query vectors rank exactly like the same plain array."""
    index = index_of(doc("x", [1, 0]), doc("y", [0.6, 0.8]), doc("z", [0, 1]))
    plain = query(index, {"vector": [0.5, 1.0]})
    f32 = base64.b64encode(np.asarray([0.5, 1.0], "<f4").tobytes()).decode()
    f16 = base64.b64encode(np.asarray([0.5, 1.0], "<f2").tobytes()).decode()
    assert query(index, {"rank_by": ["v", "ANN", f"base64:f32:{f32}"]}) == plain
    assert query(index, {"rank_by": ["v", "ANN", f"base64:f16:{f16}"]}) == plain


def test_first_ann_clause_in_queries_wins_over_rank_by() -> None:
    """Clause selection: the first ANN clause in `queries` is the vector used."""
    index = index_of(doc("left", [1, 0]), doc("right", [0, 1]))
    out = query(
        index,
        {
            "rank_by": ["v", "ANN", [1, 0]],
            "queries": [{"rank_by": ["v", "ANN", [0, 1]]}, {"rank_by": ["v", "ANN", [1, 0]]}],
        },
    )
    assert ids(out) == ["right", "left"]


def test_clause_top_k_widens_vector_candidates_but_not_the_answer() -> None:
    """Candidates = max(clause top_k, top_k); the response is cut to the request top_k."""
    index = index_of(*(doc(f"d{i}", [1, i]) for i in range(6)))
    out = query(index, {"top_k": 2, "queries": [{"rank_by": ["v", "ANN", [1, 0]], "top_k": 5}]})
    assert ids(out) == ["d0", "d1"]


# --- IVF, ERQ and fill-up -------------------------------------------------------------------


def test_small_namespaces_are_served_exactly() -> None:
    """Fewer than 8 vectors: no IVF index, so brute force fills every answer exactly."""
    index = index_of(*(doc(f"d{i}", [1, i]) for i in range(5)))
    out = query(index, {"vector": [1, 2], "top_k": 10, "ann_params": {"target_recall": 0.0}})
    assert len(out["hits"]) == 5
    assert scores(out)["d2"] == 0.0
    assert ids(out)[0] == "d2"


def test_fill_up_completes_a_short_ann_answer() -> None:
    """When probed lists hold fewer than top_k rows, brute force fills up to top_k."""
    index, _ = random_index(64, 4, seed=3)
    out = query(index, {"vector": [1, 0, 0, 0], "top_k": 40, "ann_params": {"nprobe": 1}})
    assert len(out["hits"]) == 40
    assert len(set(ids(out))) == 40


def test_fp32_rerank_scores_are_exact_and_erq_scores_approximate() -> None:
    """IVF with fp32 rerank returns exact distances; erq returns 8-bit reconstructions."""
    index, data = random_index(200, 16, seed=5)
    q = data[0].tolist()
    exact = scores(query(index, {"vector": q, "top_k": 200, "ann_params": {"use_ivf": False}}))
    fp32 = scores(query(index, {"vector": q, "ann_params": {"rerank_mode": "fp32"}}))
    erq = scores(query(index, {"vector": q}))
    assert len(fp32) == 10
    for doc_id, score in fp32.items():
        assert score == exact[doc_id]
    assert fp32["d00000"] == exact["d00000"]
    assert erq["d00000"] != exact["d00000"]
    assert erq["d00000"] == pytest.approx(exact["d00000"], abs=1e-3)


def test_use_ivf_false_is_exact_brute_force() -> None:
    """`use_ivf: false` answers the exact top_k."""
    index, data = random_index(300, 8, seed=11)
    q = data[10]
    out = query(index, {"vector": q.tolist(), "top_k": 5, "ann_params": {"use_ivf": False}})
    dists = [exact_cosine(q, v) for v in data]
    assert ids(out) == [f"d{i:05d}" for i in np.argsort(dists, kind="stable")[:5]]


def test_bit_settings_are_validated_when_an_index_is_built() -> None:
    """coarse ≥ 1, rerank ≥ 1 and rerank ≥ coarse, ≤ 16; only checked with ≥ 8 vectors."""
    index, _ = random_index(20, 4, seed=1)
    cases = [
        ({"coarse_bits": 0}, "coarse bits must be > 0"),
        ({"rerank_bits": 0}, "rerank bits must be > 0"),
        ({"coarse_bits": 4, "rerank_bits": 2}, r"rerank bits \(2\) must be >= coarse bits \(4\)"),
        ({"rerank_bits": 17}, "fine bits exceed support"),
    ]
    for params, message in cases:
        with pytest.raises(ServerError, match=message):
            query(index, {"vector": [1, 0, 0, 0], "ann_params": params})
    small = index_of(*(doc(f"d{i}", [1, i]) for i in range(7)))
    assert len(query(small, {"vector": [1, 0], "ann_params": {"coarse_bits": 0}})["hits"]) == 7
    no_ivf = {"vector": [1, 0, 0, 0], "ann_params": {"coarse_bits": 0, "use_ivf": False}}
    assert len(query(index, no_ivf)["hits"]) == 10


def test_rerank_bits_above_eight_wrap_but_still_answer() -> None:
    """rerank_bits 9-16 are accepted; the u8 codes overflow, so erq scores degrade."""
    index, data = random_index(50, 8, seed=2)
    out = query(index, {"vector": data[0].tolist(), "ann_params": {"rerank_bits": 12}})
    assert len(out["hits"]) == 10


def test_invalidate_after_mutation_changes_results() -> None:
    """Writes go to the live dict; results change once invalidate() is called."""
    docs = {f"d{i}": doc(f"d{i}", [1, i + 1]) for i in range(10)}
    index = SearchIndex(docs)
    body = {"vector": [1, 0], "top_k": 1}
    assert ids(query(index, body)) == ["d0"]
    docs["new"] = doc("new", [1, 0])
    del docs["d0"]
    index.invalidate()
    assert ids(query(index, body)) == ["new"]
    docs.clear()
    index.invalidate()
    assert query(index, body) == {"hits": []}


# --- recall -----------------------------------------------------------------------------------


def test_recall_is_below_one_at_low_probe_ratio(recall_index: SearchIndex) -> None:
    """2,000 random 32-d vectors: target_recall 0.05 with erq rerank gives recall well < 1."""
    out = recall_index.recall(parse_recall({"num": 50, "ann_params": {"target_recall": 0.05}}))
    assert out["evaluated"] == 50
    assert out["avg_recall"] < 0.8
    assert out["avg_exhaustive_count"] == 10.0


def test_recall_is_exactly_one_with_fp32_and_full_probe(recall_index: SearchIndex) -> None:
    """{"rerank_mode":"fp32","target_recall":1.0} probes every list and rescoring is exact."""
    body = {"num": 50, "ann_params": {"rerank_mode": "fp32", "target_recall": 1.0}}
    out = recall_index.recall(parse_recall(body))
    assert out == {
        "avg_recall": 1.0,
        "avg_ann_count": 10.0,
        "avg_exhaustive_count": 10.0,
        "evaluated": 50,
    }
    orjson.dumps(out)


def test_recall_rises_with_probe_ratio(recall_index: SearchIndex) -> None:
    """More lists probed, more recall: target_recall trades recall for work."""
    low = recall_index.recall(parse_recall({"num": 40, "ann_params": {"target_recall": 0.05}}))
    high = recall_index.recall(
        parse_recall({"num": 40, "ann_params": {"target_recall": 0.5, "rerank_mode": "fp32"}})
    )
    assert high["avg_recall"] > low["avg_recall"]


def test_recall_num_caps_explicit_queries() -> None:
    """`num` caps explicit queries; empty query vectors are skipped, not counted."""
    index, data = random_index(30, 4, seed=9)
    queries = [data[i].tolist() for i in range(5)] + [[]]
    out = index.recall(parse_recall({"num": 3, "queries": queries}))
    assert out["evaluated"] == 3
    out = index.recall(parse_recall({"num": 10, "queries": queries}))
    assert out["evaluated"] == 5


def test_recall_without_queries_uses_stored_vectors_in_order() -> None:
    """Without queries, the first `num` stored vectors are the queries; dim mismatch skips."""
    index, _ = random_index(30, 4, seed=9)
    out = index.recall(parse_recall({"num": 7, "top_k": 3}))
    assert out["evaluated"] == 7 and out["avg_exhaustive_count"] == 3.0
    mismatch = index.recall(parse_recall({"queries": [[1.0, 2.0]]}))
    assert mismatch == {
        "avg_recall": 0.0,
        "avg_ann_count": 0.0,
        "avg_exhaustive_count": 0.0,
        "evaluated": 0,
    }


def test_recall_is_zero_without_an_ivf_index() -> None:
    """Fewer than 8 vectors or use_ivf false: ANN side is empty, recall 0.0, evaluated > 0."""
    small = index_of(*(doc(f"d{i}", [1, i]) for i in range(5)))
    out = small.recall(parse_recall({}))
    assert out["avg_recall"] == 0.0 and out["evaluated"] == 5
    assert out["avg_ann_count"] == 0.0 and out["avg_exhaustive_count"] == 5.0
    index, _ = random_index(30, 4, seed=9)
    off = index.recall(parse_recall({"num": 4, "ann_params": {"use_ivf": False}}))
    assert off["avg_recall"] == 0.0 and off["evaluated"] == 4


def test_recall_validates_bits_too() -> None:
    """Recall builds the IVF index, so bad bit settings are a 500 there as well."""
    index, _ = random_index(30, 4, seed=9)
    with pytest.raises(ServerError, match="coarse bits must be > 0"):
        index.recall(parse_recall({"ann_params": {"coarse_bits": 0}}))


# --- filters ----------------------------------------------------------------------------------


@pytest.fixture
def catalog() -> SearchIndex:
    return index_of(
        doc("a", [1, 0], {"n": 1, "price": 10, "meta": {"lang": "en"}, "tag": None}),
        doc("b", [0.9, 0.1], {"n": 1.0, "price": 20.5, "meta": {"lang": "de"}}),
        doc("c", [0.8, 0.2], {"n": True, "price": 30, "meta": {"lang": "en"}}),
        doc("d", [0.7, 0.3], {"price": 40, "meta": "flat"}),
        doc("e", [0.6, 0.4]),
    )


@pytest.mark.parametrize(
    ("expr", "expected"),
    [
        ({"op": "eq", "field": "n", "value": 1}, ["a"]),
        ({"op": "eq", "field": "n", "value": 1.0}, ["b"]),
        ({"op": "eq", "field": "n", "value": True}, ["c"]),
        ({"op": "not_eq", "field": "n", "value": 1}, ["b", "c", "d", "e"]),
        ({"op": "in", "field": "meta.lang", "values": ["en", "fr"]}, ["a", "c"]),
        ({"op": "not_in", "field": "meta.lang", "values": ["en"]}, ["b", "d", "e"]),
        ({"op": "eq", "field": "meta", "value": {"lang": "de"}}, ["b"]),
        ({"op": "gt", "field": "price", "value": 20}, ["b", "c", "d"]),
        ({"op": "gte", "field": "price", "value": 30}, ["c", "d"]),
        ({"op": "lt", "field": "price", "value": 20.5}, ["a"]),
        ({"op": "lte", "field": "price", "value": 20.5}, ["a", "b"]),
        ({"op": "exists", "field": "meta.lang"}, ["a", "b", "c"]),
        ({"op": "exists", "field": "tag"}, ["a"]),
        ({"op": "exists", "field": "id"}, ["a", "b", "c", "d", "e"]),
        ({"op": "eq", "field": "id", "value": "c"}, ["c"]),
        ({"op": "not_eq", "field": "id", "value": "c"}, ["a", "b", "d", "e"]),
        ({"op": "in", "field": "id", "values": ["e", "a", 3]}, ["a", "e"]),
        ({"op": "not_in", "field": "id", "values": ["a"]}, ["b", "c", "d", "e"]),
        ({"op": "eq", "field": "id", "value": 1}, []),
        ({"op": "gt", "field": "missing", "value": 0}, []),
    ],
)
def test_filter_ops(catalog: SearchIndex, expr: dict[str, Any], expected: list[str]) -> None:
    """Every leaf op, nested paths, the `id` field and exact JSON equality (1 ≠ 1.0 ≠ true)."""
    out = query(catalog, {"vector": [1, 0], "filters": expr})
    assert sorted(ids(out)) == expected


def test_range_filter_on_a_string_is_a_server_error(catalog: SearchIndex) -> None:
    """A range op meeting a non-number attribute fails the whole query with a 500."""
    with pytest.raises(ServerError, match="field meta is not a number"):
        query(catalog, {"vector": [1, 0], "filters": {"op": "gt", "field": "meta", "value": 1}})


def test_filters_apply_to_bm25_only_queries() -> None:
    """Filters restrict BM25 hits as well as vector hits."""
    index = index_of(
        doc("a", None, {"t": "apple pie", "k": 1}), doc("b", None, {"t": "apple", "k": 2})
    )
    body = {"rank_by": ["t", "BM25", "apple"], "filters": {"op": "eq", "field": "k", "value": 2}}
    assert ids(query(index, body)) == ["b"]


def test_filter_bitmap_ids_restrict_and_intersect(catalog: SearchIndex) -> None:
    """filter_bitmap_ids restricts candidates, intersects with filters, ignores unknown ids."""
    body: dict[str, Any] = {"vector": [1, 0], "filter_bitmap_ids": ["c", "e", "zzz"]}
    assert ids(query(catalog, body)) == ["c", "e"]
    body["filters"] = {"op": "exists", "field": "meta"}
    assert ids(query(catalog, body)) == ["c"]
    assert query(catalog, {"vector": [1, 0], "filter_bitmap_ids": []}) == {"hits": []}
    assert query(catalog, {"vector": [1, 0], "filter_bitmap_ids": ["zzz"]}) == {"hits": []}


def test_empty_filter_result_short_circuits() -> None:
    """An empty filtered set answers {"hits": []} before the clause checks run."""
    index = index_of(doc("a", [1], {"k": 1}))
    assert query(index, {"filters": {"op": "eq", "field": "k", "value": 2}}) == {"hits": []}


def test_planner_filter_first_is_exact_and_vector_first_is_approximate() -> None:
    """Selective filters run exact (exact scores); broad ones run ANN + post-filter (erq)."""
    index, data = random_index(400, 8, seed=4, attrs=True)
    q = data[0].tolist()
    exact = scores(query(index, {"vector": q, "top_k": 400, "ann_params": {"use_ivf": False}}))
    selective = {"vector": q, "filters": {"op": "lt", "field": "n", "value": 40}}
    for doc_id, score in scores(query(index, selective)).items():
        assert score == exact[doc_id]
    broad = {"vector": q, "filters": {"op": "lt", "field": "n", "value": 300}}
    out = query(index, broad)
    assert ids(out)[0] == "d00000"
    assert scores(out)["d00000"] != exact["d00000"]  # an ERQ reconstruction, not exact


# --- group_by -----------------------------------------------------------------------------------


def test_group_by_counts_and_orders_groups() -> None:
    """Groups sort by count desc then value; per_group_limit caps hits; limit caps groups."""
    index = index_of(
        doc("a", [1, 0], {"cat": "news"}),
        doc("b", [0.9, 0.1], {"cat": "sports"}),
        doc("c", [0.8, 0.2], {"cat": "news"}),
        doc("d", [0.7, 0.3], {"cat": "arts"}),
        doc("e", [0.6, 0.4]),
    )
    out = query(index, {"vector": [1, 0], "group_by": {"field": "cat", "per_group_limit": 2}})
    groups = out["groups"]
    assert [(g["value"], g["count"]) for g in groups] == [("news", 2), ("arts", 1), ("sports", 1)]
    assert [h["id"] for h in groups[0]["hits"]] == ["a", "c"]
    assert groups[0]["hits"][0] == out["hits"][0]
    limited = query(index, {"vector": [1, 0], "group_by": {"field": "cat", "limit": 1}})
    assert [(g["value"], len(g["hits"])) for g in limited["groups"]] == [("news", 1)]


def test_group_keys_stringify_numbers_and_booleans_like_serde() -> None:
    """Numbers print as serde_json does (2, 1.5, 100.0, 1e20), booleans as true/false."""
    values = [2, 1.5, 100.0, 1e20, True, None, {"x": 1}]
    index = index_of(*(doc(f"d{i}", [1, i], {"v": v}) for i, v in enumerate(values)))
    out = query(index, {"vector": [1, 0], "group_by": {"field": "v"}})
    assert sorted(g["value"] for g in out["groups"]) == sorted(
        ["2", "1.5", "100.0", "1e20", "true"]
    )


def test_group_by_paths_index_arrays_and_omit_empty_groups() -> None:
    """Path segments may index arrays; no groupable value or limit 0 omits `groups`."""
    index = index_of(doc("a", [1, 0], {"tags": ["x", "y"]}), doc("b", [0, 1], {"tags": ["y"]}))
    out = query(index, {"vector": [1, 0], "group_by": {"field": "tags.0"}})
    assert [(g["value"], g["count"]) for g in out["groups"]] == [("x", 1), ("y", 1)]
    assert "groups" not in query(index, {"vector": [1, 0], "group_by": {"field": "nope"}})
    no_groups = {"vector": [1, 0], "group_by": {"field": "tags.0", "limit": 0}}
    assert "groups" not in query(index, no_groups)


# --- BM25 and hybrid ------------------------------------------------------------------------------


@pytest.fixture
def corpus() -> SearchIndex:
    return index_of(
        doc("d1", None, {"title": "Rust search engine"}),
        doc("d2", None, {"title": "vector SEARCH"}),
        doc("d3", None, {"title": "cooking", "year": 2020}),
    )


def test_bm25_matches_a_hand_computed_score(corpus: SearchIndex) -> None:
    """N=3, avgdl=2: 'rust search' scores d1 0.8143+0.3902 and d2 0.4700 (k1 1.2, b 0.75)."""
    idf_rust = math.log(1 + (3 - 1 + 0.5) / (1 + 0.5))
    idf_search = math.log(1 + (3 - 2 + 0.5) / (2 + 0.5))

    def term(idf: float, dl: int) -> float:
        return idf * 2.2 / (1 + 1.2 * (1 - 0.75 + 0.75 * dl / 2))

    out = query(corpus, {"rank_by": ["title", "BM25", "rust search"]})
    assert ids(out) == ["d1", "d2"]
    got = scores(out)
    assert got["d1"] == pytest.approx(-(term(idf_rust, 3) + term(idf_search, 3)), rel=1e-5)
    assert got["d2"] == pytest.approx(-term(idf_search, 2), rel=1e-5)
    assert got["d1"] == pytest.approx(-1.20447, abs=1e-4)


def test_bm25_unknown_field_or_no_match_gives_no_hits(corpus: SearchIndex) -> None:
    """An unknown or non-text field, or a query with no matching term, returns no hits."""
    assert query(corpus, {"rank_by": ["body", "BM25", "rust"]}) == {"hits": []}
    assert query(corpus, {"rank_by": ["year", "BM25", "2020"]}) == {"hits": []}
    assert query(corpus, {"rank_by": ["title", "BM25", "python"]}) == {"hits": []}


def test_bm25_tokenizer_lowercases_splits_and_drops_long_tokens() -> None:
    """Non-alphanumerics split, case folds, and tokens of 40+ bytes are not indexed."""
    long39, long40 = "a" * 39, "b" * 40
    index = index_of(
        doc("x", None, {"t": f"Hello,WORLD_wide {long39} {long40}"}),
        doc("y", None, {"t": ["other", 5, "hello"]}),
    )
    assert sorted(ids(query(index, {"rank_by": ["t", "BM25", "HELLO"]}))) == ["x", "y"]
    assert ids(query(index, {"rank_by": ["t", "BM25", "wide"]})) == ["x"]
    assert ids(query(index, {"rank_by": ["t", "BM25", long39]})) == ["x"]
    assert query(index, {"rank_by": ["t", "BM25", long40]}) == {"hits": []}


def test_bm25_query_syntax_phrases_and_required_terms() -> None:
    """Hyphenated words and quotes are phrases; + requires, - excludes; bad quote is a 500."""
    index = index_of(
        doc("a", None, {"t": "e mail client"}),
        doc("b", None, {"t": "mail e client"}),
        doc("c", None, {"t": "client only"}),
    )
    assert ids(query(index, {"rank_by": ["t", "BM25", "e-mail"]})) == ["a"]
    assert ids(query(index, {"rank_by": ["t", "BM25", '"mail e"']})) == ["b"]
    assert sorted(ids(query(index, {"rank_by": ["t", "BM25", "client -only"]}))) == ["a", "b"]
    assert ids(query(index, {"rank_by": ["t", "BM25", "+only client"]})) == ["c"]
    assert query(index, {"rank_by": ["t", "BM25", "-client"]}) == {"hits": []}
    with pytest.raises(ServerError, match='failed to parse Tantivy query: "open'):
        query(index, {"rank_by": ["t", "BM25", '"open']})


def test_bm25_clauses_keep_each_documents_best_score(corpus: SearchIndex) -> None:
    """Several BM25 clauses: per document the maximum BM25 score is kept."""
    rust = scores(query(corpus, {"rank_by": ["title", "BM25", "rust"]}))
    both = query(
        corpus,
        {
            "rank_by": ["title", "BM25", "rust"],
            "queries": [{"rank_by": ["title", "BM25", "search"], "top_k": 1}],
        },
    )
    assert scores(both)["d1"] == rust["d1"]
    assert ids(both) == ["d1", "d2"]


def test_hybrid_scores_blend_distance_and_bm25() -> None:
    """Vector hits matching BM25 get distance − 0.01·bm25; BM25-only docs their distance or 1.0."""
    index = index_of(
        doc("a", [1, 0], {"t": "zebra"}),
        doc("b", [0.6, 0.8], {"t": "horse"}),
        doc("e", [0.599, 0.8007], {"t": "zebra crossing"}),
        doc("f", [-1, 0], {"t": "cat"}),
        doc("n", None, {"t": "zebra"}),
    )
    bm25 = {k: -v for k, v in scores(query(index, {"rank_by": ["t", "BM25", "zebra"]})).items()}
    out = query(
        index,
        {
            "top_k": 2,
            "queries": [
                {"rank_by": ["v", "ANN", [1, 0]]},
                # With the request's top_k (2) this clause would keep only a and n.
                {"rank_by": ["t", "BM25", "zebra"], "top_k": 5},
            ],
        },
    )
    f32 = np.float32
    expect_a = float(f32(0.0) - f32(bm25["a"]) * f32(0.01))
    e_distance = f32(exact_cosine([1, 0], [0.599, 0.8007]))
    expect_e = float(e_distance - f32(bm25["e"]) * f32(0.01))
    assert ids(out) == ["a", "e"]
    assert scores(out)["a"] == pytest.approx(expect_a, abs=1e-6)
    assert scores(out)["e"] == pytest.approx(expect_e, abs=1e-6)
    wide = scores(
        query(
            index,
            {
                "top_k": 5,
                "queries": [{"rank_by": ["v", "ANN", [1, 0]]}, {"rank_by": ["t", "BM25", "zebra"]}],
            },
        )
    )
    assert wide["n"] == pytest.approx(1.0 - 0.01 * bm25["n"], abs=1e-6)
    assert wide["b"] == pytest.approx(0.4, abs=1e-6)


def test_vector_clause_without_hits_falls_back_to_bm25_scores() -> None:
    """If the vector clause finds nothing (no same-dim vectors), scores are −bm25."""
    index = index_of(doc("a", [1, 0], {"t": "zebra"}))
    body = {"rank_by": ["v", "ANN", [1, 0, 0]], "queries": [{"rank_by": ["t", "BM25", "zebra"]}]}
    out = query(index, body)
    assert ids(out) == ["a"] and out["hits"][0]["score"] < 0


# --- speed --------------------------------------------------------------------------------------


def test_exact_query_over_ten_thousand_docs_is_fast() -> None:
    """10,000 × 64-d exact queries are vectorised: well under 50 ms each after the snapshot."""
    import time

    index, data = random_index(10_000, 64, seed=0)
    body = parse_query({"vector": data[1].tolist(), "ann_params": {"use_ivf": False}})
    index.search(body)
    start = time.perf_counter()
    for _ in range(10):
        out = index.search(body)
    assert (time.perf_counter() - start) / 10 < 0.05
    assert out["hits"][0]["id"] == "d00001"
