"""A namespace written through another state location is not taken for a fresh one."""

from __future__ import annotations

from pathlib import Path

from tests.apply.conftest import Setup
from tests.apply.support import run_cli


def test_another_state_location_must_assert_the_existing_metric(
    setup: Setup, tmp_path: Path
) -> None:
    """Plan A writes the namespace (cosine) with one state; plan B, with another state and
    another metric, is refused before writing; it runs once it asserts the existing metric
    and uses it."""
    _, plan, _ = setup()
    assert run_cli("apply", str(plan), "--auto-approve").returncode == 0
    other = tmp_path / "other.yaml"
    text = plan.read_text().replace((tmp_path / "state").as_uri(), (tmp_path / "s2").as_uri())
    other.write_text(text.replace("distance_metric: cosine", "distance_metric: euclidean_squared"))
    refused = run_cli("--no-color", "apply", str(other), "--auto-approve")
    assert refused.returncode == 1, refused.stdout + refused.stderr
    assert "the namespace holds writes" in refused.stderr
    assert "target.assume_existing_metric" in refused.stderr
    assert "Traceback" not in refused.stderr
    wal = tmp_path / "store" / "namespaces" / "docs" / "wal"
    before = sorted(p.name for p in wal.iterdir())
    mismatched = text.replace(
        "distance_metric: cosine",
        "distance_metric: euclidean_squared\n  assume_existing_metric: cosine",
    )
    other.write_text(mismatched)
    again = run_cli("apply", str(other), "--auto-approve")
    assert again.returncode == 1 and "mixing metrics" in again.stderr, again.stderr
    assert sorted(p.name for p in wal.iterdir()) == before, "nothing was written"
    other.write_text(
        text.replace(
            "distance_metric: cosine", "distance_metric: cosine\n  assume_existing_metric: cosine"
        )
    )
    agreed = run_cli("apply", str(other), "--auto-approve")
    assert agreed.returncode == 0, agreed.stdout + agreed.stderr
