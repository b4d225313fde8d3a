"""load_plan: defaults, normalisation, paths, digest, immutability, and every plan in plans/."""

from __future__ import annotations

import dataclasses
import hashlib
import os
import subprocess
import sys
from pathlib import Path

import pytest
import structlog.testing

from elax_plan.errors import PlanFileError
from elax_plan.spec import PlanInvalid, PlanSpec, load_plan, parse_plan
from elax_plan.spec.loader import MAX_PLAN_BYTES
from tests.spec.helpers import MINIMAL_PLAN, minimal_with

REPO = Path(__file__).resolve().parents[2]
PLAN_ENV = {
    "AWS_ACCESS_KEY_ID": "AKIAEXAMPLEPLANS",
    "AWS_SECRET_ACCESS_KEY": "example-secret-for-plans-dir",
}


def test_minimal_plan_gets_every_default_of_spec_section_3(tmp_path: Path) -> None:
    """Only the required keys written: every other key has SPEC §3's default."""
    spec = parse_plan(MINIMAL_PLAN, base_dir=tmp_path)
    assert spec.description is None
    target = spec.target
    assert (target.api_key, target.vector_dims, dict(target.storage_options)) == (None, None, {})
    assert target.max_request_bytes == 2 * 1024 * 1024
    assert target.timeout == 30.0
    source = spec.source
    assert (source.format, source.compression, source.id_field, source.vector_field) == (
        "ndjson",
        "infer",
        "id",
        "vector",
    )
    assert source.attributes.include is None
    assert dict(source.attributes.rename) == {}
    ingest = spec.ingest
    assert (ingest.chunk_bytes, ingest.concurrency) == (1024 * 1024, 1)
    assert (ingest.on_invalid_row, ingest.max_invalid_rows) == ("fail", 0)
    assert (ingest.retry.attempts, ingest.retry.initial, ingest.retry.max) == (8, 0.5, 30.0)
    throttle = spec.throttle
    assert (throttle.max_wal_lag, throttle.resume_wal_lag) == (8, 2)
    assert (throttle.poll_interval, throttle.stall_timeout) == (1.0, 900.0)
    assert (spec.preconditions.max_initial_wal_lag, spec.preconditions.store_budget) == (1, None)
    verify = spec.verify
    assert (verify.wait_for_index, verify.index_timeout, verify.timeout) == (True, 1800.0, 300.0)
    assert (verify.smoke_queries, verify.recall) == ((), None)
    trim = spec.wal_trim
    assert (trim.enabled, trim.mode, trim.older_than, trim.keep_last) == (
        False,
        "archive",
        86400.0,
        16,
    )
    assert spec.summary.path is None


def test_null_sections_mean_defaults(tmp_path: Path) -> None:
    """A section left empty (`ingest:` with its keys commented out) takes its defaults."""
    spec = parse_plan(minimal_with("ingest:\n#  concurrency: 4\nverify:\n"), base_dir=tmp_path)
    assert spec.ingest.concurrency == 1
    assert spec.verify.smoke_queries == ()


def test_recall_defaults_apply_once_recall_is_written(tmp_path: Path) -> None:
    """`recall: {}` turns the gate on with num 25, top_k 10, min_avg_recall 0.95, seed 0."""
    spec = parse_plan(minimal_with("verify:\n  recall: {}\n"), base_dir=tmp_path)
    assert spec.verify.recall is not None
    recall = spec.verify.recall
    assert (recall.num, recall.top_k, recall.min_avg_recall, recall.tune, recall.seed) == (
        25,
        10,
        0.95,
        False,
        0,
    )
    assert recall.ann_params.to_wire() == {}


@pytest.mark.parametrize(
    ("written", "wire"),
    [
        ("cosine_distance", "cosine"),
        ("cosine", "cosine"),
        ("euclidean_squared", "euclidean_squared"),
    ],
)
def test_metric_spelling_is_normalised(written: str, wire: str, tmp_path: Path) -> None:
    """cosine_distance and cosine both become elacsym's wire name "cosine"."""
    spec = parse_plan(
        MINIMAL_PLAN.replace("distance_metric: cosine", f"distance_metric: {written}"),
        base_dir=tmp_path,
    )
    assert spec.target.distance_metric == wire


def test_relative_local_paths_resolve_against_the_base_dir(tmp_path: Path) -> None:
    """./store, data/*.ndjson and summary paths become absolute; s3:// URLs are untouched."""
    text = minimal_with("summary:\n  path: out/summary.md\n").replace(
        "uri: ./state", "uri: s3://bucket/state"
    )
    spec = parse_plan(text, base_dir=tmp_path)
    assert spec.target.store == f"file://{tmp_path}/store"
    assert spec.source.uris == (f"file://{tmp_path}/data/*.ndjson",)
    assert spec.state.uri == "s3://bucket/state"
    assert spec.summary.path == tmp_path / "out" / "summary.md"


def test_relative_paths_default_to_the_current_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Without base_dir, relative paths resolve against the current directory, as a shell would."""
    monkeypatch.chdir(tmp_path)
    spec = parse_plan(MINIMAL_PLAN)
    assert spec.state.uri == f"file://{tmp_path}/state"


def test_digest_and_source_path(tmp_path: Path) -> None:
    """PlanSpec keeps the absolute source path and the sha256 of the file bytes."""
    plan = tmp_path / "plan.yaml"
    plan.write_text(MINIMAL_PLAN)
    spec = load_plan(plan, base_dir=tmp_path)
    assert spec.source_path == plan
    assert spec.digest == hashlib.sha256(MINIMAL_PLAN.encode()).hexdigest()


def test_plan_spec_is_frozen(tmp_path: Path) -> None:
    """PlanSpec and its parts cannot be changed after loading, mappings included."""
    spec = parse_plan(
        minimal_with("verify:\n  recall:\n    ann_params: {rerank_mode: fp32}\n"), base_dir=tmp_path
    )
    with pytest.raises(dataclasses.FrozenInstanceError):
        spec.name = "other"  # type: ignore[misc]
    assert spec.verify.recall is not None
    with pytest.raises(TypeError):
        spec.verify.recall.ann_params.params["rerank_mode"] = "erq"  # type: ignore[index]


def test_integer_ids_become_strings_and_nprobe_ratio_is_sent_as_target_recall(
    tmp_path: Path,
) -> None:
    """expect_ids are strings on the wire; nprobe_ratio is also sent as target_recall."""
    spec = parse_plan(
        minimal_with(
            "verify:\n  smoke_queries:\n    - name: q\n      vector: [0.5, 1]\n"
            "      expect_ids: [1, abc]\n      ann_params: {nprobe_ratio: 0.3}\n"
            "      filters: {op: in, field: cat, values: [a, b]}\n"
        ),
        base_dir=tmp_path,
    )
    query = spec.verify.smoke_queries[0]
    assert query.kind == "vector"
    assert query.vector == (0.5, 1.0)
    assert query.expect_ids == ("1", "abc")
    assert query.ann_params.to_wire() == {"nprobe_ratio": 0.3, "target_recall": 0.3}
    assert query.filters is not None
    assert query.filters.to_wire() == {"op": "in", "field": "cat", "values": ["a", "b"]}


def test_format_comes_from_the_extension(tmp_path: Path) -> None:
    """source.format defaults from the extension, compression suffixes included."""
    for uri, expected in (("d/x.parquet", "parquet"), ("d/*.jsonl.gz", "ndjson")):
        spec = parse_plan(MINIMAL_PLAN.replace("data/*.ndjson", uri), base_dir=tmp_path)
        assert spec.source.format == expected


def test_plan_invalid_is_a_plan_file_error() -> None:
    """PlanInvalid is the PlanFileError the CLI maps to exit code 1, with structured issues."""
    with pytest.raises(PlanFileError) as caught:
        parse_plan("version: 1\n", file="x.yaml")
    assert isinstance(caught.value, PlanInvalid)
    assert caught.value.exit_code == 1
    assert all(i.file == "x.yaml" for i in caught.value.issues)
    assert "x.yaml:1:1: " in str(caught.value)


PLAN_FILES = sorted((REPO / "plans").rglob("*.yaml"))


def test_plans_directory_has_the_promised_examples() -> None:
    """plans/ holds the quickstart and at least three examples."""
    names = {p.relative_to(REPO / "plans").as_posix() for p in PLAN_FILES}
    assert "quickstart.yaml" in names
    assert len([n for n in names if n.startswith("examples/")]) >= 3


@pytest.mark.parametrize("path", PLAN_FILES, ids=[p.name for p in PLAN_FILES])
def test_every_plan_in_plans_dir_is_valid(path: Path) -> None:
    """Every YAML file under plans/ loads into a PlanSpec."""
    spec = load_plan(path, env=PLAN_ENV, base_dir=REPO)
    assert isinstance(spec, PlanSpec)
    first_line = path.read_text().splitlines()[0]
    assert first_line.startswith("# yaml-language-server: $schema=")


def test_examples_cover_what_the_issue_asks(tmp_path: Path) -> None:
    """The examples include S3 Parquet + S3 state, smoke queries + recall SLO, and WAL trim."""
    specs = [load_plan(p, env=PLAN_ENV, base_dir=REPO) for p in PLAN_FILES]
    assert any(
        s.source.format == "parquet"
        and s.source.uris[0].startswith("s3://")
        and s.state.uri.startswith("s3://")
        for s in specs
    )
    assert any(s.verify.recall is not None and len(s.verify.smoke_queries) >= 3 for s in specs)
    assert any(s.wal_trim.enabled for s in specs)


def test_quickstart_targets_the_embedded_emulator() -> None:
    """The quickstart uses url: embedded and keeps everything under ./.elax-demo/."""
    spec = load_plan(REPO / "plans" / "quickstart.yaml", env={}, base_dir=REPO)
    assert spec.target.embedded
    demo = f"file://{REPO}/.elax-demo/"
    assert spec.target.store.startswith(demo)
    assert spec.state.uri.startswith(demo)
    assert spec.summary.path == REPO / ".elax-demo" / "summary.md"
    assert spec.source.uris == (f"file://{REPO}/plans/data/quickstart.ndjson",)
    assert spec.verify.recall is not None
    assert {q.kind for q in spec.verify.smoke_queries} >= {"sample_vectors", "bm25"}


def test_unused_var_is_logged_as_a_warning(tmp_path: Path) -> None:
    """A --var the plan never reads is a warning naming it (a likely misspelling)."""
    with structlog.testing.capture_logs() as logs:
        parse_plan(MINIMAL_PLAN, variables={"regoin": "eu"}, base_dir=tmp_path)
    warnings = [e for e in logs if e["log_level"] == "warning"]
    assert [e["variables"] for e in warnings] == [["regoin"]]


def _limited_memory() -> None:
    import resource

    # 1 GiB of address space: a read without a bound dies of MemoryError instead of eating
    # the machine.
    resource.setrlimit(resource.RLIMIT_AS, (1 << 30, 1 << 30))


@pytest.mark.skipif(not Path("/dev/zero").exists(), reason="needs /dev/zero")
def test_a_device_that_never_ends_is_read_only_up_to_the_limit() -> None:
    """validate /dev/zero (stat size 0) reads at most the limit + 1 byte and says it is too big."""
    result = subprocess.run(
        [sys.executable, "-m", "elax_plan", "validate", "/dev/zero"],
        capture_output=True,
        text=True,
        timeout=120,
        preexec_fn=_limited_memory,
        check=False,
    )
    assert result.returncode == 1
    assert "internal error" not in result.stderr, result.stderr
    assert "/dev/zero: is larger than 4MiB (4,194,304 bytes)" in result.stderr, result.stderr


def test_a_plan_over_the_limit_is_refused_with_its_size(tmp_path: Path) -> None:
    """A regular file above 4 MiB is refused naming its size, before it is parsed."""
    plan = tmp_path / "big.yaml"
    plan.write_bytes(b"#" * (MAX_PLAN_BYTES + 10))
    with pytest.raises(PlanInvalid) as caught:
        load_plan(plan)
    assert f"is {MAX_PLAN_BYTES + 10:,} bytes" in caught.value.issues[0].message


def test_a_plan_of_exactly_the_limit_is_read(tmp_path: Path) -> None:
    """A file of exactly the limit is read (its content is judged), not refused as too large."""
    plan = tmp_path / "edge.yaml"
    plan.write_bytes(b"\x00" + b"#" * (MAX_PLAN_BYTES - 1))
    with pytest.raises(PlanInvalid) as caught:
        load_plan(plan)
    assert "contains a NUL byte" in caught.value.issues[0].message


@pytest.mark.parametrize("path", PLAN_FILES, ids=[p.name for p in PLAN_FILES])
def test_every_plan_validates_offline_without_credentials(path: Path, tmp_path: Path) -> None:
    """`elax-plan validate` passes on every plan with no AWS variables, no ~/.aws, no drivers."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("AWS_", "ELAX", "ELACSYM")) and k != "HOME"
    }
    env["HOME"] = str(tmp_path)  # no ~/.aws/credentials either
    result = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "elax_plan", "validate", str(path)],
        cwd=REPO,
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
        check=False,
    )
    errors = "\n".join(
        line for line in result.stderr.splitlines() if not line.startswith("import time:")
    )
    assert result.returncode == 0, errors
    imported = {
        line.split("|")[-1].strip().split(".")[0]
        for line in result.stderr.splitlines()
        if line.startswith("import time:")
    }
    assert not imported & {"s3fs", "botocore", "aiobotocore", "boto3"}, sorted(imported)


def test_an_empty_credential_is_left_out_of_storage_options(tmp_path: Path) -> None:
    """key: ${AWS_ACCESS_KEY_ID:-} with the variable unset leaves key out (the driver's own chain)."""
    text = minimal_with("").replace(
        "  uri: ./state\n",
        "  uri: s3://b/state\n  storage_options:\n    key: ${AWS_ACCESS_KEY_ID:-}\n"
        "    secret: ${AWS_SECRET_ACCESS_KEY:-}\n    client_kwargs: {region_name: eu-west-1}\n",
    )
    spec = parse_plan(text, base_dir=tmp_path, env={})
    assert dict(spec.state.storage_options) == {"client_kwargs": {"region_name": "eu-west-1"}}


def test_a_plan_path_with_a_nul_byte_is_a_plan_error() -> None:
    """A plan path containing NUL is reported as unreadable, not as an internal error."""
    with pytest.raises(PlanInvalid) as caught:
        load_plan("plan\x00.yaml")
    assert "NUL character" in caught.value.issues[0].message
