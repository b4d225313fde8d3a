"""Semantic rules the schema cannot express, each reported at the offending node."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from elax_plan.spec import parse_plan
from tests.spec.helpers import MINIMAL_PLAN, issues_of, minimal_with

REPO = Path(__file__).resolve().parents[3]


@pytest.mark.parametrize(
    ("extra", "position", "fragment"),
    [
        ("ingest:\n  chunk_bytes: 100\n", (13, 16), "below the minimum of 1KiB"),
        (
            "target_cap: x\n",
            (12, 1),
            'unknown key "target_cap"',
        ),
        ("ingest:\n  max_invalid_rows: 5\n", (13, 21), "only applies with on_invalid_row: skip"),
        (
            "ingest:\n  retry: {initial: 10s, max: 1s}\n",
            (13, 30),
            "retry.max is shorter than ingest.retry.initial",
        ),
        (
            "throttle:\n  poll_interval: 10s\n  stall_timeout: 5s\n",
            (14, 18),
            "stall_timeout is shorter than throttle.poll_interval",
        ),
        ("throttle:\n  poll_interval: 0s\n", (13, 18), "must be longer than 0"),
        ("preconditions:\n  store_budget: 0\n", (13, 17), "store_budget is 0"),
        (
            "source_extra: 1\n",
            (12, 1),
            'unknown key "source_extra"',
        ),
        (
            "verify:\n  recall:\n    ann_params: {use_ivf: false}\n",
            (14, 27),
            "use_ivf: false",
        ),
        (
            "verify:\n  recall:\n    ann_params: {coarse_bits: 4, rerank_bits: 2}\n",
            (14, 47),
            "rerank_bits (2) must be ≥ coarse_bits (4)",
        ),
        (
            "verify:\n  recall:\n    ann_params: {target_recall: 0.2, nprobe_ratio: 0.5}\n",
            (14, 38),
            "nprobe_ratio and target_recall are the same setting",
        ),
        (
            "verify:\n  smoke_queries:\n    - {name: a, sample_vectors: 1}\n"
            "    - {name: a, sample_vectors: 2}\n",
            (15, 14),
            'name "a" is already used',
        ),
        (
            "verify:\n  smoke_queries:\n    - {name: a, sample_vectors: 1, top_k: 2, min_hits: 3}\n",
            (14, 56),
            "min_hits (3) is above top_k (2)",
        ),
        (
            "verify:\n  smoke_queries:\n    - {name: a, sample_vectors: 1, expect_ids: [x]}\n",
            (14, 36),
            "expect_ids does not apply to sample_vectors",
        ),
        (
            "verify:\n  smoke_queries:\n    - name: a\n      bm25: {field: t, text: x}\n"
            "      filters: {op: exists, field: t, value: 1}\n",
            (16, 39),
            "op exists takes no value",
        ),
        (
            "verify:\n  smoke_queries:\n    - name: a\n      bm25: {field: t, text: x}\n"
            "      filters: {op: gt, field: price, value: cheap}\n",
            (16, 46),
            "must be a number, not text",
        ),
        ("summary:\n  path: s3://bucket/summary.md\n", (13, 9), "must be a local file path"),
    ],
)
def test_semantic_rule(
    extra: str, position: tuple[int, int], fragment: str, tmp_path: Path
) -> None:
    """Each rule produces one plain-words issue at the node that breaks it."""
    issues = issues_of(minimal_with(extra), tmp_path)
    assert [(line, column) for line, column, _ in issues] == [position], issues
    assert fragment in issues[0][2]


def test_filter_in_with_value_names_both_problems(tmp_path: Path) -> None:
    """op: in with `value:` reports the missing `values` and the misnamed key."""
    text = minimal_with(
        "verify:\n  smoke_queries:\n    - name: a\n      bm25: {field: t, text: x}\n"
        "      filters: {op: in, field: t, value: [1]}\n"
    )
    issues = issues_of(text, tmp_path)
    assert [(line, column) for line, column, _ in issues] == [(16, 7), (16, 35)]
    assert "op in takes values" in issues[1][2]


def test_state_equal_to_store_is_refused(tmp_path: Path) -> None:
    """state.uri may not be the store itself, however it is spelled."""
    text = MINIMAL_PLAN.replace("uri: ./state", f"uri: file://{tmp_path}/store/")
    [(line, column, message)] = issues_of(text, tmp_path)
    assert (line, column) == (11, 8)
    assert "is the target store itself" in message


def test_state_beside_store_is_fine(tmp_path: Path) -> None:
    """A state location next to the store (not inside namespaces/) is accepted."""
    text = MINIMAL_PLAN.replace("uri: ./state", "uri: ./store-state")
    assert parse_plan(text, base_dir=tmp_path).state.uri.endswith("/store-state")


def test_the_reserved_plan_name_is_refused_where_it_is_written(tmp_path: Path) -> None:
    """ "namespaces" would share <state.uri>/namespaces/ with the namespace records."""
    text = MINIMAL_PLAN.replace("name: demo", "name: namespaces")
    [(line, column, message)] = issues_of(text, tmp_path)
    assert (line, column) == (2, 7)
    assert message.startswith("name 'namespaces' is reserved: <state.uri>/namespaces/")


def test_s3_state_inside_s3_store_namespaces_is_refused(tmp_path: Path) -> None:
    """The namespaces/ rule holds for object storage URLs too."""
    text = MINIMAL_PLAN.replace("store: ./store", "store: s3://lake/elacsym").replace(
        "uri: ./state", "uri: s3://lake/elacsym/namespaces/state"
    )
    [(_, _, message)] = issues_of(text, tmp_path)
    assert "namespaces/ directory" in message


DURATION_PATHS = [
    ("target", "timeout"),
    ("ingest", "retry", "initial"),
    ("ingest", "retry", "max"),
    ("throttle", "poll_interval"),
    ("throttle", "stall_timeout"),
    ("verify", "index_timeout"),
    ("verify", "timeout"),
]


def _nested(path: tuple[str, ...], value: str) -> str:
    """YAML for ``path: value`` appended to the minimal plan (target is already open)."""
    if path[0] == "target":
        return ""
    lines = [f"{'  ' * depth}{key}:" for depth, key in enumerate(path[:-1])]
    lines.append(f"{'  ' * (len(path) - 1)}{path[-1]}: {value}")
    return "\n".join(lines) + "\n"


def _with_value(path: tuple[str, ...], value: str) -> str:
    if path[0] == "target":
        return MINIMAL_PLAN.replace(
            "  distance_metric: cosine\n", f"  distance_metric: cosine\n  {path[-1]}: {value}\n"
        )
    return minimal_with(_nested(path, value))


@pytest.mark.parametrize("path", DURATION_PATHS, ids=[".".join(p) for p in DURATION_PATHS])
def test_every_duration_has_a_maximum_shown_as_written(
    path: tuple[str, ...], tmp_path: Path
) -> None:
    """A duration above 30d (one that overflows apply's clocks) is refused, quoted as written."""
    issues = issues_of(_with_value(path, "99999999999999999999d"), tmp_path)
    messages = [m for _, _, m in issues]
    assert any(
        f'{".".join(path)} ("99999999999999999999d") is longer than the maximum of 30d' in m
        for m in messages
    ), messages


def test_thirty_days_is_the_longest_duration_accepted(tmp_path: Path) -> None:
    """30d is accepted for every duration (and 365d for wal_trim.older_than); 31d is not."""
    extra = (
        "ingest:\n  retry: {initial: 30d, max: 30d}\nthrottle:\n  poll_interval: 30d\n"
        "  stall_timeout: 30d\nverify:\n  index_timeout: 30d\n  timeout: 30d\nwal_trim:\n  older_than: 365d\n"
    )
    spec = parse_plan(minimal_with(extra), base_dir=tmp_path)
    assert spec.throttle.stall_timeout == spec.verify.timeout == 30 * 86400
    assert spec.wal_trim.older_than == 365 * 86400
    issues = issues_of(minimal_with("wal_trim:\n  older_than: 366d\n"), tmp_path)
    assert issues == [
        (
            13,
            15,
            'wal_trim.older_than ("366d") is longer than the maximum of 365d; write a shorter '
            "duration",
        )
    ]


def test_poll_interval_has_a_minimum(tmp_path: Path) -> None:
    """poll_interval below 10ms would hammer the target's API; it is refused at its value."""
    issues = issues_of(minimal_with("throttle:\n  poll_interval: 1ms\n"), tmp_path)
    assert [(line, column) for line, column, _ in issues] == [(13, 18)]
    assert 'throttle.poll_interval ("1ms") is shorter than the minimum of 10ms' in issues[0][2]


def test_stall_timeout_shorter_than_one_poll_is_refused(tmp_path: Path) -> None:
    """stall_timeout: 1ms (below the default 1s poll_interval) is refused at stall_timeout."""
    issues = issues_of(minimal_with("throttle:\n  stall_timeout: 1ms\n"), tmp_path)
    assert [(line, column) for line, column, _ in issues] == [(13, 18)]
    assert "stall_timeout is shorter than throttle.poll_interval" in issues[0][2]


@pytest.mark.parametrize(
    ("extra", "position", "fragment"),
    [
        (
            "ingest:\n  chunk_bytes: 99999999999999999999TiB\n",
            (13, 16),
            'ingest.chunk_bytes ("99999999999999999999TiB") is above the maximum of 1GiB',
        ),
        (
            "preconditions:\n  store_budget: 2000TiB\n",
            (13, 17),
            'preconditions.store_budget ("2000TiB") is above the maximum of 1024TiB',
        ),
    ],
)
def test_sizes_have_a_maximum_shown_as_written(
    extra: str, position: tuple[int, int], fragment: str, tmp_path: Path
) -> None:
    """A size above its maximum is refused at its value, quoted as written (no float garbage)."""
    issues = issues_of(minimal_with(extra), tmp_path)
    assert [(line, column) for line, column, _ in issues] == [position], issues
    assert fragment in issues[0][2]
    assert "e+" not in issues[0][2] and "00000000000000005" not in issues[0][2]


def test_max_request_bytes_has_a_maximum(tmp_path: Path) -> None:
    """target.max_request_bytes above 1GiB is refused at its value."""
    text = MINIMAL_PLAN.replace(
        "  distance_metric: cosine\n", "  distance_metric: cosine\n  max_request_bytes: 2GiB\n"
    )
    issues = issues_of(text, tmp_path)
    assert [(line, column) for line, column, _ in issues] == [(8, 22)]
    assert 'target.max_request_bytes ("2GiB") is above the maximum of 1GiB' in issues[0][2]


def test_max_wal_lag_zero_is_refused(tmp_path: Path) -> None:
    """throttle.max_wal_lag: 0 would pause before every write forever; at least 1 is required."""
    issues = issues_of(minimal_with("throttle:\n  max_wal_lag: 0\n  resume_wal_lag: 0\n"), tmp_path)
    assert [(line, column) for line, column, _ in issues] == [(13, 16)]
    assert "throttle.max_wal_lag must be at least 1, not 0" in issues[0][2]


def test_resume_wal_lag_must_be_below_max_wal_lag(tmp_path: Path) -> None:
    """resume_wal_lag equal to max_wal_lag is refused (writes resume only below max_wal_lag)."""
    issues = issues_of(minimal_with("throttle:\n  max_wal_lag: 4\n  resume_wal_lag: 4\n"), tmp_path)
    assert [(line, column) for line, column, _ in issues] == [(14, 19)]
    assert "throttle.resume_wal_lag (4) must be below throttle.max_wal_lag (4)" in issues[0][2]


def test_summary_path_that_is_a_directory_is_refused(tmp_path: Path) -> None:
    """summary.path naming an existing directory is refused at its value (apply could not write it)."""
    (tmp_path / "reports").mkdir()
    issues = issues_of(minimal_with("summary:\n  path: reports\n"), tmp_path)
    assert [(line, column) for line, column, _ in issues] == [(13, 9)]
    assert 'summary.path ("reports") is a directory' in issues[0][2]
    assert "reports/summary.md" in issues[0][2]


def test_summary_path_ending_in_a_slash_is_refused(tmp_path: Path) -> None:
    """summary.path ending in '/' names a directory even before it exists."""
    issues = issues_of(minimal_with("summary:\n  path: out/\n"), tmp_path)
    assert [(line, column) for line, column, _ in issues] == [(13, 9)]
    assert "ends with '/'" in issues[0][2]


def test_summary_path_under_a_file_is_refused(tmp_path: Path) -> None:
    """summary.path whose parent is a regular file can never be created; refused at its value."""
    (tmp_path / "notes.txt").write_text("x")
    issues = issues_of(minimal_with("summary:\n  path: notes.txt/run/summary.md\n"), tmp_path)
    assert [(line, column) for line, column, _ in issues] == [(13, 9)]
    assert "is a file, not a directory" in issues[0][2]


_UNPRIVILEGED_CHECK = """
import json, os, sys
from pathlib import Path
sys.path.insert(0, sys.argv[1])
from elax_plan.spec import PlanInvalid, parse_plan
from tests.spec.helpers import minimal_with
base = Path(sys.argv[2])
parse_plan(minimal_with(""), base_dir=base)  # imports and the schema, before dropping rights
if os.geteuid() == 0:  # root may write anywhere: look as nobody
    os.setgid(65534)
    os.setuid(65534)
try:
    parse_plan(minimal_with("summary:\\n  path: locked/sub/summary.md\\n"), base_dir=base)
    print(json.dumps([]))
except PlanInvalid as exc:
    print(json.dumps([[i.line, i.column, i.message] for i in exc.issues]))
"""


def test_summary_path_in_an_unwritable_directory_is_refused() -> None:
    """summary.path whose nearest existing directory is not writable is refused at its value."""
    base = Path(tempfile.mkdtemp())  # not under pytest's 0700 root: nobody must reach it
    try:
        base.chmod(0o755)
        (base / "locked").mkdir(mode=0o555)
        result = subprocess.run(
            [sys.executable, "-c", _UNPRIVILEGED_CHECK, str(REPO), str(base)],
            capture_output=True,
            text=True,
            timeout=60,
            check=True,
        )
    finally:
        (base / "locked").chmod(0o755)
        shutil.rmtree(base)
    issues = json.loads(result.stdout.splitlines()[-1])
    assert [(line, column) for line, column, _ in issues] == [(13, 9)]
    assert f"{base}/locked is not writable by this user" in issues[0][2]


def test_summary_path_in_a_missing_directory_is_fine(tmp_path: Path) -> None:
    """A summary.path whose directories do not exist yet is accepted (apply creates them)."""
    spec = parse_plan(minimal_with("summary:\n  path: out/run/summary.md\n"), base_dir=tmp_path)
    assert spec.summary.path == tmp_path / "out" / "run" / "summary.md"
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            MINIMAL_PLAN.replace("  namespace: products", '  namespace: ""'),
            (6, 14, "target.namespace must not be empty"),
        ),
        (
            MINIMAL_PLAN.replace(
                "  uri: data/*.ndjson\n",
                "  uri: data/*.ndjson\n  attributes:\n    include: [" + "x" * 129 + "]\n",
            ),
            (11, 15, "source.attributes.include[0] is too long: at most 128 characters"),
        ),
        (
            MINIMAL_PLAN.replace(
                "  distance_metric: cosine\n", "  distance_metric: cosine\n  vector_dims: 0\n"
            ),
            (8, 16, "target.vector_dims must be at least 1, not 0"),
        ),
    ],
    ids=["empty-namespace", "long-attribute-name", "vector-dims-zero"],
)
def test_one_problem_gets_one_message(
    text: str, expected: tuple[int, int, str], tmp_path: Path
) -> None:
    """A value that breaks two overlapping rules is reported once, in the words that fit."""
    assert issues_of(text, tmp_path) == [expected]
