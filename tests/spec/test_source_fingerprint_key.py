"""source.fingerprint: the plan key choosing how changed source files are told apart."""

from __future__ import annotations

from pathlib import Path

from elax_plan.spec import parse_plan
from tests.spec.helpers import MINIMAL_PLAN, issues_of

WITH_KEY = MINIMAL_PLAN.replace(
    "  uri: data/*.ndjson\n", "  uri: data/*.ndjson\n  fingerprint: {}\n"
)


def test_fingerprint_defaults_to_auto(tmp_path: Path) -> None:
    """Unwritten, source.fingerprint is auto (ETag, or size + mtime + edge blocks)."""
    assert parse_plan(MINIMAL_PLAN, base_dir=tmp_path).source.fingerprint == "auto"


def test_fingerprint_content_is_accepted(tmp_path: Path) -> None:
    """source.fingerprint: content loads (whole-file hashes)."""
    spec = parse_plan(WITH_KEY.format("content"), base_dir=tmp_path)
    assert spec.source.fingerprint == "content"


def test_an_unknown_fingerprint_mode_is_refused_at_its_line(tmp_path: Path) -> None:
    """Any other value is a located plan error naming the key."""
    ((line, _, message),) = issues_of(WITH_KEY.format("etag"), tmp_path)
    assert line == 10 and "source.fingerprint" in message, message
