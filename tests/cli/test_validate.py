"""`elax-plan validate`: the bad-input corpus, JSON output, secrets, and speed."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from elax_plan.cli._group import run
from tests.spec.helpers import MINIMAL_PLAN, minimal_with

REPO = Path(__file__).resolve().parents[2]


@dataclass(frozen=True)
class BadPlan:
    """One broken input: what to write, and where and what the error must say."""

    id: str
    content: str | bytes | None  # None: the file does not exist
    line: int | None
    column: int | None
    fragment: str
    args: tuple[str, ...] = ()
    env: dict[str, str] = field(default_factory=dict)
    directory: bool = False


def _edit(old: str, new: str) -> str:
    assert old in MINIMAL_PLAN, old
    return MINIMAL_PLAN.replace(old, new, 1)


BAD_PLANS: list[BadPlan] = [
    # --- not YAML / not text -------------------------------------------------------------
    BadPlan("unclosed-quote", _edit("name: demo", 'name: "demo'), 2, 7, "never closed"),
    BadPlan("tab-indent", _edit("  url: embedded", "\turl: embedded"), 4, 1, "tab character"),
    BadPlan(
        "missing-colon",
        _edit("  namespace: products", "  namespace products"),
        7,
        3,
        "expected 'key: value'",
    ),
    BadPlan(
        "bad-indentation",
        _edit("  store: ./store", "    store: ./store"),
        5,
        10,
        "unexpected ':'",
    ),
    BadPlan(
        "two-documents", MINIMAL_PLAN + "---\nversion: 1\n", 12, 1, "more than one YAML document"
    ),
    BadPlan(
        "unquoted-interpolation-in-flow-mapping",
        minimal_with("ingest: {chunk_bytes: ${CHUNK}}\n"),
        12,
        24,
        'quote a value that uses ${…}: key: "${NAME}"',
    ),
    BadPlan(
        "python-tag",
        _edit("name: demo", "name: !!python/object/apply:os.system [echo hi]"),
        2,
        7,
        "tag !!python/object/apply:os.system is not allowed",
    ),
    BadPlan("custom-tag", _edit("name: demo", "name: !Ref demo"), 2, 7, "tag !Ref is not allowed"),
    BadPlan("undefined-alias", _edit("name: demo", "name: *title"), 2, 7, "alias *title"),
    BadPlan("empty-file", "", 1, 1, "the file is empty"),
    BadPlan("comments-only", "# nothing yet\n# version: 1\n", 1, 1, "the file is empty"),
    BadPlan("top-level-list", "- version: 1\n- name: demo\n", 1, 1, "holds a list"),
    BadPlan("top-level-scalar", "just some text\n", 1, 1, "must be a mapping of keys"),
    BadPlan("binary-file", b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", 3, 1, "binary file"),
    BadPlan("latin-1-file", "name: caf\u00e9\n".encode("latin-1"), 1, 10, "not valid UTF-8"),
    BadPlan("control-character", "version: 1\nname: de\x07mo\n", 2, 9, "control character"),
    BadPlan("missing-file", None, None, None, "no such file"),
    BadPlan("directory", "", None, None, "is a directory", directory=True),
    # --- keys ----------------------------------------------------------------------------
    BadPlan("duplicate-key", _edit("name: demo", "name: demo\nname: other"), 3, 1, "duplicate"),
    BadPlan(
        "duplicate-nested-key",
        _edit("  namespace: products", "  namespace: products\n  namespace: items"),
        7,
        3,
        'duplicate key "namespace" (first written at line 6, column 3)',
    ),
    BadPlan(
        "misspelt-top-level-key",
        minimal_with("verfy:\n  wait_for_index: false\n"),
        12,
        1,
        'unknown key "verfy" at the top level; did you mean "verify"?',
    ),
    BadPlan(
        "misspelt-nested-key",
        minimal_with("ingest:\n  chunk_byts: 1MiB\n"),
        13,
        3,
        'unknown key "chunk_byts" in ingest; did you mean "chunk_bytes"?',
    ),
    BadPlan(
        "key-in-wrong-section",
        _edit("  store: ./store", "  store: ./store\n  concurrency: 2"),
        6,
        3,
        '"concurrency" belongs under ingest',
    ),
    BadPlan(
        "storage-option-at-section-level",
        _edit("  uri: data/*.ndjson", "  uri: data/*.ndjson\n  endpoint_url: http://minio:9000"),
        10,
        3,
        "fsspec options go under source.storage_options",
    ),
    BadPlan(
        "ann-params-design-name",
        minimal_with("verify:\n  recall:\n    ann_params: {erq_coarse_bits: 2}\n"),
        14,
        18,
        'design-document name that elacsym ignores; use "coarse_bits"',
    ),
    BadPlan(
        "missing-required-top-level",
        MINIMAL_PLAN.replace("state:\n  uri: ./state\n", ""),
        1,
        1,
        'missing required key "state" at the top level',
    ),
    BadPlan(
        "missing-required-nested",
        _edit("  namespace: products\n", ""),
        3,
        1,
        'missing required key "namespace" in target',
    ),
    # --- types and values ----------------------------------------------------------------
    BadPlan(
        "string-for-integer",
        minimal_with("ingest:\n  concurrency: four\n"),
        13,
        16,
        'ingest.concurrency must be a whole number, not text ("four")',
    ),
    BadPlan(
        "list-for-mapping",
        _edit("  url: embedded", "  url: [embedded]"),
        4,
        8,
        "target.url must be text, not a list",
    ),
    BadPlan(
        "section-is-a-scalar",
        minimal_with("throttle: fast\n"),
        12,
        11,
        "throttle must be a mapping (key: value lines), not text",
    ),
    BadPlan(
        "quoted-number",
        _edit("  distance_metric: cosine", '  distance_metric: cosine\n  vector_dims: "64"'),
        8,
        16,
        "write the number without quotes",
    ),
    BadPlan("unsupported-version", _edit("version: 1", "version: 2"), 1, 10, "write version: 1"),
    BadPlan(
        "bad-name",
        _edit("name: demo", "name: My Plan"),
        2,
        7,
        'name ("My Plan") must start with a lowercase letter or digit',
    ),
    BadPlan(
        "misspelt-metric",
        _edit("distance_metric: cosine", "distance_metric: cosin"),
        7,
        20,
        'did you mean "cosine"?',
    ),
    BadPlan(
        "bad-url",
        _edit("url: embedded", "url: htp://127.0.0.1:3000"),
        4,
        8,
        'did you mean "http://127.0.0.1:3000"?',
    ),
    BadPlan(
        "bad-size-unit",
        minimal_with("ingest:\n  chunk_bytes: 1 MiBB\n"),
        13,
        16,
        'ingest.chunk_bytes ("1 MiBB") has an unknown size unit; write a size such as 1MiB',
    ),
    BadPlan(
        "fractional-bytes",
        minimal_with("ingest:\n  chunk_bytes: 1.5B\n"),
        13,
        16,
        "is not a whole number of bytes",
    ),
    BadPlan(
        "bad-duration",
        minimal_with("throttle:\n  stall_timeout: 5 minutes\n"),
        13,
        18,
        'throttle.stall_timeout ("5 minutes") is not a duration; write a duration such as 500ms',
    ),
    BadPlan(
        "duration-without-unit",
        minimal_with("throttle:\n  poll_interval: 500\n"),
        13,
        18,
        "has no unit",
    ),
    BadPlan(
        "out-of-range-top-k",
        minimal_with("verify:\n  recall:\n    top_k: 5000\n"),
        14,
        12,
        "verify.recall.top_k must be at most 1200 (elacsym's limit), not 5000",
    ),
    BadPlan(
        "recall-above-one",
        minimal_with("verify:\n  recall:\n    min_avg_recall: 1.5\n"),
        14,
        21,
        "verify.recall.min_avg_recall must be at most 1, not 1.5",
    ),
    BadPlan(
        "recall-zero",
        minimal_with("verify:\n  recall:\n    min_avg_recall: 0\n"),
        14,
        21,
        "must be greater than 0, not 0",
    ),
    BadPlan(
        "negative-concurrency",
        minimal_with("ingest:\n  concurrency: -1\n"),
        13,
        16,
        "ingest.concurrency must be at least 1, not -1",
    ),
    BadPlan(
        "infinite-number",
        minimal_with("verify:\n  recall:\n    min_avg_recall: .inf\n"),
        14,
        21,
        "infinite and not-a-number values",
    ),
    # --- interpolation -------------------------------------------------------------------
    BadPlan(
        "undefined-env-var",
        _edit("  namespace: products", "  namespace: ${ELAX_TEST_UNSET_NAMESPACE}"),
        6,
        14,
        "the environment variable ELAX_TEST_UNSET_NAMESPACE is not set; export it, or write "
        "${ELAX_TEST_UNSET_NAMESPACE:-default}",
    ),
    BadPlan(
        "undefined-var",
        _edit("  namespace: products", "  namespace: items-${var.region}"),
        6,
        20,
        "${var.region} is not defined; pass --var region=VALUE",
    ),
    BadPlan(
        "malformed-interpolation",
        _edit("  namespace: products", '  namespace: "${}"'),
        6,
        15,
        "is not a variable reference",
    ),
    BadPlan(
        "unclosed-interpolation",
        _edit("  namespace: products", "  namespace: ${NAMESPACE"),
        6,
        14,
        "a '${' without its closing '}'",
    ),
    BadPlan(
        "bad-var-argument",
        MINIMAL_PLAN,
        None,
        None,
        "--var expects NAME=VALUE",
        args=("--var", "region"),
    ),
    # --- semantics -----------------------------------------------------------------------
    BadPlan(
        "resume-above-max-lag",
        minimal_with("throttle:\n  max_wal_lag: 2\n  resume_wal_lag: 5\n"),
        14,
        19,
        "throttle.resume_wal_lag (5) must be below throttle.max_wal_lag (2)",
    ),
    BadPlan(
        "chunk-above-request-cap",
        minimal_with("ingest:\n  chunk_bytes: 4MiB\n"),
        13,
        16,
        "ingest.chunk_bytes (4MiB) is above target.max_request_bytes (2MiB)",
    ),
    BadPlan(
        "state-inside-store-namespaces",
        _edit("  uri: ./state", "  uri: ./store/namespaces/elax-state"),
        11,
        8,
        "state.uri is inside the target store's namespaces/ directory",
    ),
    BadPlan(
        "literal-api-key",
        _edit("  url: embedded", "  url: embedded\n  api_key: sk-live-123"),
        5,
        12,
        "secrets may only come from the environment",
    ),
    BadPlan(
        "smoke-query-two-forms",
        minimal_with(
            "verify:\n  smoke_queries:\n    - name: q\n      sample_vectors: 5\n"
            "      bm25: {field: title, text: x}\n"
        ),
        16,
        7,
        "has both sample_vectors and bm25",
    ),
    BadPlan(
        "smoke-query-no-form",
        minimal_with("verify:\n  smoke_queries:\n    - name: q\n      top_k: 5\n"),
        14,
        7,
        "needs exactly one of sample_vectors",
    ),
    BadPlan(
        "filter-in-without-values",
        minimal_with(
            "verify:\n  smoke_queries:\n    - name: q\n      sample_vectors: 5\n"
            "      filters: {op: in, field: category}\n"
        ),
        16,
        7,
        'missing required key "values" in verify.smoke_queries[0].filters',
    ),
    BadPlan(
        "vector-length-mismatch",
        _edit("distance_metric: cosine", "distance_metric: cosine\n  vector_dims: 3")
        + "verify:\n  smoke_queries:\n    - name: q\n      vector: [0.1, 0.2]\n",
        16,
        15,
        "has 2 numbers but target.vector_dims is 3",
    ),
]


def _invoke(
    case: BadPlan, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> tuple[int, str, str]:
    plan = tmp_path / "plan.yaml"
    if case.content is not None:
        data = case.content if isinstance(case.content, bytes) else case.content.encode()
        plan.write_bytes(data)
    target = str(tmp_path) if case.directory else str(plan)
    code = run(["validate", target, *case.args])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_corpus_is_large_enough() -> None:
    """The bad-input corpus holds at least 30 distinct broken plans."""
    assert len(BAD_PLANS) >= 30
    assert len({case.id for case in BAD_PLANS}) == len(BAD_PLANS)


@pytest.mark.parametrize("case", BAD_PLANS, ids=[case.id for case in BAD_PLANS])
def test_bad_plan_is_reported_at_its_place(
    case: BadPlan,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Each broken plan exits 1 with FILE:LINE:COL, a plain message, and no traceback."""
    monkeypatch.chdir(tmp_path)
    for key, value in case.env.items():
        monkeypatch.setenv(key, value)
    code, out, err = _invoke(case, tmp_path, capsys)
    assert code == 1, err
    output = out + err
    assert "Traceback" not in output
    assert err.startswith("Error: "), err
    assert case.fragment in err, err
    if case.line is not None:
        assert f"plan.yaml:{case.line}:{case.column}: " in err, err
        assert case.fragment in _line_of(err, f"plan.yaml:{case.line}:{case.column}: ")
    # The message names the next step.
    if case.line is not None:
        assert "run `elax-plan validate" in err


def _line_of(text: str, prefix: str) -> str:
    return next(line for line in text.splitlines() if prefix in line)


def test_all_errors_are_reported_at_once(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Several problems in one plan are all listed, one FILE:LINE:COL line each, in file order."""
    plan = tmp_path / "plan.yaml"
    plan.write_text(
        _edit("name: demo", "name: Demo")
        + "ingest:\n  chunk_byts: 1MiB\n  concurrency: 0\nthrottle:\n  poll_interval: 5\n"
    )
    code = run(["validate", str(plan)])
    err = capsys.readouterr().err
    assert code == 1
    positions = re.findall(r"plan\.yaml:(\d+):(\d+): ", err)
    assert positions == [("2", "7"), ("13", "3"), ("14", "16"), ("16", "18")]
    assert "(4 problems)" in err


def test_valid_plan_exits_zero_with_a_summary_line(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A valid plan prints one line saying what it does and exits 0."""
    monkeypatch.chdir(REPO)
    code = run(["validate", "plans/quickstart.yaml"])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    assert captured.out.startswith("plans/quickstart.yaml: valid. ")
    assert 'Plan "quickstart"' in captured.out


def test_json_format_for_a_valid_plan(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """--format json prints a versioned document with the normalised plan and no errors."""
    monkeypatch.chdir(REPO)
    code = run(["validate", "plans/quickstart.yaml", "--format", "json"])
    document = json.loads(capsys.readouterr().out)
    assert code == 0
    assert document["format_version"] == "1.0"
    assert document["valid"] is True
    assert document["errors"] == []
    assert document["digest"].startswith("sha256:")
    assert document["plan"]["target"]["distance_metric"] == "cosine"
    assert document["plan"]["ingest"]["chunk_bytes"] == 256 * 1024


def test_json_format_lists_every_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """--format json on an invalid plan exits 1 with one structured entry per problem."""
    plan = tmp_path / "plan.yaml"
    plan.write_text(_edit("name: demo", "name: Demo") + "ingest:\n  chunk_byts: 1MiB\n")
    code = run(["validate", str(plan), "--format", "json"])
    captured = capsys.readouterr()
    document = json.loads(captured.out)
    assert code == 1
    assert document["valid"] is False
    assert document["plan"] is None
    assert [(e["line"], e["column"], e["path"]) for e in document["errors"]] == [
        (2, 7, "name"),
        (13, 3, "ingest.chunk_byts"),
    ]
    assert "did you mean" in document["errors"][1]["message"]


def test_json_format_for_a_missing_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """--format json reports a missing file as an error entry without a position."""
    code = run(["validate", str(tmp_path / "nope.yaml"), "--format", "json"])
    document = json.loads(capsys.readouterr().out)
    assert code == 1
    assert document["errors"][0]["line"] is None
    assert "no such file" in document["errors"][0]["message"]


def test_vars_are_interpolated(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """--var NAME=VALUE fills ${var.NAME}, including values that contain '='."""
    plan = tmp_path / "plan.yaml"
    plan.write_text(
        _edit("  namespace: products", "  namespace: items-${var.region}")
        + "description: ${var.note}\n"
    )
    code = run(
        ["validate", str(plan), "--var", "region=eu", "--var", "note=a=b", "--format", "json"]
    )
    document = json.loads(capsys.readouterr().out)
    assert code == 0
    assert document["plan"]["target"]["namespace"] == "items-eu"
    assert document["plan"]["description"] == "a=b"


SECRET_KEY = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYzEXAMPLEKEY-elaxtest"
SECRET_TOKEN = "sk-live-9f8e7d6c5b4a3210-elaxtest"

VALID_WITH_SECRETS = """\
version: 1
name: demo
description: token is ${ELAX_API_KEY}
target:
  url: http://127.0.0.1:3000
  api_key: ${ELAX_API_KEY}
  store: s3://data/root
  storage_options: {key: "${AWS_ACCESS_KEY_ID}", secret: "${AWS_SECRET_ACCESS_KEY}"}
  namespace: products
  distance_metric: cosine
source:
  uri: s3://datasets/x/*.ndjson
  storage_options:
    client_kwargs: {aws_secret_access_key: "${AWS_SECRET_ACCESS_KEY}"}
state:
  uri: s3://state/plans
"""

INVALID_WITH_SECRETS = """\
version: 1
name: ${AWS_SECRET_ACCESS_KEY}
target:
  url: ${ELAX_API_KEY}
  api_kye: ${ELAX_API_KEY}
  store: s3://data/root
  namespace: ${AWS_SECRET_ACCESS_KEY}
  distance_metric: ${ELAX_API_KEY}
  vector_dims: ${AWS_SECRET_ACCESS_KEY}
source:
  uri: s3://datasets/x/*.ndjson
ingest:
  chunk_bytes: ${ELAX_API_KEY}
  concurrency: ${AWS_SECRET_ACCESS_KEY}
state:
  uri: s3://state/plans
"""


@pytest.mark.parametrize("output_format", ["text", "json"])
@pytest.mark.parametrize("log_format", ["console", "json"])
@pytest.mark.parametrize(
    "plan_text", [VALID_WITH_SECRETS, INVALID_WITH_SECRETS], ids=["valid", "invalid"]
)
def test_secret_from_env_never_appears_in_output(
    plan_text: str,
    log_format: str,
    output_format: str,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A secret passed through ${ENV} is absent from validate's stdout, stderr and logs."""
    monkeypatch.setenv("ELAX_API_KEY", SECRET_TOKEN)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIAELAXTESTKEYID")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", SECRET_KEY)
    plan = tmp_path / "plan.yaml"
    plan.write_text(plan_text)
    code = run(
        [
            "--log-level",
            "debug",
            "--log-format",
            log_format,
            "validate",
            str(plan),
            "--format",
            output_format,
        ]
    )
    captured = capsys.readouterr()
    output = captured.out + captured.err
    assert code == (0 if plan_text is VALID_WITH_SECRETS else 1), output
    for secret in (SECRET_KEY, SECRET_TOKEN, "AKIAELAXTESTKEYID"):
        assert secret not in output
        assert secret.replace("/", "\\/") not in output
    if plan_text is INVALID_WITH_SECRETS:
        assert "the value from ${AWS_SECRET_ACCESS_KEY}" in output
    else:
        assert "***" in output or output_format == "text"


def test_validate_skips_heavy_imports() -> None:
    """validate on the quickstart plan imports no numpy/pyarrow/s3fs (what keeps it fast;
    its time is a benchmark's business, not a test's)."""
    command = [sys.executable, "-X", "importtime", "-m", "elax_plan", "validate"]
    result = subprocess.run(
        [*command, "plans/quickstart.yaml"],
        cwd=REPO,
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONDONTWRITEBYTECODE": "1"},
        check=False,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    imported = {
        line.split("|")[-1].strip()
        for line in result.stderr.splitlines()
        if line.startswith("import time:")
    }
    heavy = {"numpy", "pyarrow", "s3fs", "botocore", "aiobotocore", "starlette", "uvicorn"}
    assert not heavy & imported, sorted(heavy & imported)


def test_deeply_nested_yaml_is_a_located_error_not_an_internal_one(tmp_path: Path) -> None:
    """`a: [[[…` 1000 deep (2 KB) exits 1 at the level past the limit, with no internal error."""
    plan = tmp_path / "deep.yaml"
    plan.write_text("a: " + "[" * 1000 + "\n")
    result = subprocess.run(
        [sys.executable, "-m", "elax_plan", "validate", str(plan)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 1
    assert "internal error" not in result.stderr, result.stderr
    assert f"{plan}:1:67: lists and mappings are nested more than 64 levels deep" in result.stderr


def test_json_format_stays_json_on_an_internal_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """--format json prints a JSON document (exit 1) even when validate itself has a bug.

    A bug cannot be produced on demand from a real plan, so one is injected into the loader.
    """

    def broken(*_args: object, **_kwargs: object) -> None:
        raise RuntimeError("injected bug")

    monkeypatch.setattr("elax_plan.cli.validate.load_plan", broken)
    plan = tmp_path / "plan.yaml"
    plan.write_text(MINIMAL_PLAN)
    code = run(["validate", str(plan), "--format", "json"])
    captured = capsys.readouterr()
    assert code == 1
    document = json.loads(captured.out)
    assert document["valid"] is False
    assert document["plan"] is None
    [error] = document["errors"]
    assert error["line"] is None
    assert "internal error (RuntimeError: injected bug)" in error["message"]
    assert "--debug" in error["message"]
    assert "Traceback" not in captured.out + captured.err


def test_json_format_with_debug_adds_the_traceback_on_stderr(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """--debug --format json keeps stdout a JSON document and prints the traceback on stderr."""

    def broken(*_args: object, **_kwargs: object) -> None:
        raise RuntimeError("injected bug")

    monkeypatch.setattr("elax_plan.cli.validate.load_plan", broken)
    plan = tmp_path / "plan.yaml"
    plan.write_text(MINIMAL_PLAN)
    code = run(["--debug", "validate", str(plan), "--format", "json"])
    captured = capsys.readouterr()
    assert code == 1
    assert json.loads(captured.out)["valid"] is False
    assert "Traceback" in captured.err
