"""How an apply ends, honestly: rejected rows, nothing written, duplicate ids, row accounting."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import orjson
import pytest

from elax_plan.apply.pipeline import FileRun, check_accounts
from elax_plan.apply.readers import ResumePoint
from elax_plan.errors import RowsUnaccounted
from tests.apply.conftest import Setup
from tests.apply.support import Dataset, last_record, run_cli, run_dirs, wal_documents

SKIP = "ingest:\n  on_invalid_row: skip\n  max_invalid_rows: 1000\n"
GOOD = [0.5] * 8


def write_lines(path: Path, records: list[Any]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"".join(orjson.dumps(r) + b"\n" for r in records))
    return path


def test_a_run_with_rejected_rows_says_so_and_exits_0(setup: Setup, tmp_path: Path) -> None:
    """Skipped rows: exit 0 (every check passed), but the run 'completed with N rejected rows',
    the summary's title is ⚠️ not ✅, and rows read = rows written + rows rejected."""
    _, plan, data = setup(extra=SKIP)
    bad = data.files[0]
    lines = bad.read_bytes().splitlines()
    lines[3:3] = [b'{"id": "x1", "vector": [1, 2]}', b'{"vector": [1,2,3,4,5,6,7,8]}', b"{oops"]
    bad.write_bytes(b"\n".join(lines) + b"\n")
    done = run_cli("apply", str(plan), "--auto-approve")
    assert done.returncode == 0, done.stderr
    rejects = run_dirs(tmp_path / "state")[-1] / "rejects.ndjson"
    assert f"Apply completed with 3 rejected rows (listed in {rejects.as_uri()}): 400 rows " in (
        done.stdout
    ), done.stdout
    assert "every check passed" in done.stdout
    assert "# ⚠️ Backfill completed with 3 rejected rows: `backfill`" in done.stdout
    assert "✅ Backfill succeeded" not in done.stdout
    workload = last_record(tmp_path / "state")["workload"]
    assert (workload["rows_read"], workload["rows"], workload["rows_rejected"]) == (403, 400, 3)


def test_a_failed_verification_also_names_the_rejected_rows(setup: Setup, tmp_path: Path) -> None:
    """Exit 3 (verification failed) with skipped rows: the message names the rejects too."""
    smoke = (
        "verify:\n  smoke_queries:\n    - name: nothing\n"
        "      bm25: {field: title, text: zzzqqq}\n      min_hits: 1\n"
    )
    _, plan, data = setup(extra=SKIP + smoke)
    bad = data.files[0]
    bad.write_bytes(bad.read_bytes() + b'{"id": "x1", "vector": [1, 2]}\n')
    done = run_cli("apply", str(plan), "--auto-approve")
    assert done.returncode == 3, done.stderr
    rejects = run_dirs(tmp_path / "state")[-1] / "rejects.ndjson"
    assert "The data was written but verification failed: " in done.stdout
    assert f"1 rejected row is listed in {rejects.as_uri()}." in done.stdout, done.stdout


def test_a_run_whose_every_row_is_rejected_fails_naming_the_rejects(
    setup: Setup, tmp_path: Path
) -> None:
    """Every row rejected: exit 1 (not '0 rows written; every check passed'), the message names
    the rejects file, nothing is verified, and the file is not taken for done: the next apply,
    after the fix, writes it."""
    src = tmp_path / "src"
    bad = write_lines(src / "part-000.ndjson", [{"id": i, "vector": [1, 2]} for i in range(5)])
    _, plan, _ = setup(extra=SKIP, dataset=Dataset([bad], {}))
    done = run_cli("apply", str(plan), "--auto-approve")
    assert done.returncode == 1, done.stdout
    rejects = run_dirs(tmp_path / "state")[-1] / "rejects.ndjson"
    assert "Apply read 5 rows and wrote none: all 5 were rejected" in done.stderr, done.stderr
    assert rejects.as_uri() in done.stderr
    assert "every check passed" not in done.stdout + done.stderr
    assert len(rejects.read_bytes().splitlines()) == 5
    record = last_record(tmp_path / "state")
    assert record["outcome"] == "failed" and record["verification"] == []
    ledger = json.loads((tmp_path / "state" / "backfill" / "state.json").read_text())
    assert ledger["files"][bad.as_uri()]["status"] == "pending"
    write_lines(bad, [{"id": i, "vector": GOOD} for i in range(5)])
    again = run_cli("apply", str(plan), "--auto-approve")
    assert again.returncode == 0, again.stderr
    assert "Apply complete: 5 rows written; every check passed." in again.stdout
    assert set(wal_documents(tmp_path / "store", "docs")) == {str(i) for i in range(5)}


def test_duplicate_ids_are_counted_reported_and_the_last_one_wins(
    setup: Setup, tmp_path: Path
) -> None:
    """Ids repeated within a file, across files and as 7 vs "7": every row is written, and the
    run says how many unique ids that made, lists each duplicate's first and last place in
    duplicates.ndjson, and states that the last one wins."""
    src = tmp_path / "src"
    a = write_lines(
        src / "a.ndjson",
        [
            {"id": 1, "vector": GOOD, "v": "a1"},
            {"id": "7", "vector": GOOD, "v": "a2"},
            {"id": 2, "vector": GOOD, "v": "a3"},
            {"id": 1, "vector": GOOD, "v": "a4"},
        ],
    )
    b = write_lines(
        src / "b.ndjson",
        [{"id": 7, "vector": GOOD, "v": "b1"}, {"id": 3, "vector": GOOD, "v": "b2"}],
    )
    _, plan, _ = setup(dataset=Dataset([a, b], {}))
    done = run_cli("apply", str(plan), "--auto-approve")
    assert done.returncode == 0, done.stderr
    duplicates = run_dirs(tmp_path / "state")[-1] / "duplicates.ndjson"
    assert (
        "Apply complete: 6 rows written for 4 unique ids: 2 rows repeated an id read earlier in "
        f"this run, and the last one wins (listed in {duplicates.as_uri()}); every check passed."
    ) in done.stdout, done.stdout
    listed = [orjson.loads(line) for line in duplicates.read_bytes().splitlines()]
    assert listed == [
        {
            "id": "1",
            "rows": 2,
            "first": {"file": a.as_uri(), "line": 1},
            "last": {"file": a.as_uri(), "line": 4},
        },
        {
            "id": "7",
            "rows": 2,
            "first": {"file": a.as_uri(), "line": 2},
            "last": {"file": b.as_uri(), "line": 1},
        },
    ]
    assert "**Duplicate ids: the last one wins.** 2 rows repeated an id" in done.stdout
    assert f"| `7` | 2 | `{a.as_uri()}:2` | `{b.as_uri()}:1` |" in done.stdout
    docs = wal_documents(tmp_path / "store", "docs")
    assert {k: v[1]["v"] for k, v in docs.items()} == {"1": "a4", "7": "b1", "2": "a3", "3": "b2"}
    record = last_record(tmp_path / "state")
    assert (record["workload"]["unique_ids"], record["workload"]["duplicate_rows"]) == (4, 2)
    assert (record["duplicates"]["rows"], record["duplicates"]["ids"]) == (2, 2)


def file_run(read: int, acked: int, rejected: int) -> FileRun:
    fr = FileRun("file:///a.ndjson", "fp", 1, ResumePoint(), ResumePoint(), rows=10)
    fr.rows += acked
    fr.read, fr.rejected, fr.done = read, rejected, True
    return fr


@pytest.mark.parametrize(("read", "acked", "rejected"), [(5, 3, 1), (5, 5, 1), (0, 1, 0)])
def test_rows_that_do_not_add_up_stop_the_run(read: int, acked: int, rejected: int) -> None:
    """rows read != acknowledged + rejected for a file is a bug: a clear error, never success."""
    with pytest.raises(RowsUnaccounted) as caught:
        check_accounts([file_run(5, 4, 1), file_run(read, acked, rejected)])
    message = str(caught.value)
    assert f"file:///a.ndjson: {read:,} read, {acked:,} acknowledged, {rejected:,} rejected" in (
        message
    )
    assert "for 1 file(s)" in message and "This is a bug in elax-plan" in message


def test_rows_that_add_up_pass_the_check() -> None:
    """read = acknowledged (in this run, a resumed file's earlier rows aside) + rejected."""
    check_accounts([file_run(5, 4, 1), file_run(0, 0, 0), file_run(7, 7, 0)])
