"""Changed source files through plan and apply: rewrites that keep size and mtime, content
fingerprints, and ledgers written with the previous fingerprint format."""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Any

import orjson

from tests.apply.conftest import Setup
from tests.apply.support import Dataset, assert_exact, make_dataset, run_cli


def rewrite_in_place(path: Path, start: int = 0, end: int | None = None) -> None:
    """Swap the digits 1 and 2 in the vectors of the lines that start in [start:end) and
    restore the file's mtime: new vectors, same ids, same size, same modification time (as
    `cp -p` or a restore from backup leaves a file)."""
    st = path.stat()
    swap = bytes.maketrans(b"12", b"21")
    out, at = [], 0
    for line in path.read_bytes().splitlines(keepends=True):
        if start <= at < (end if end is not None else st.st_size):
            line = re.sub(rb'"vector":\[[^\]]*\]', lambda m: m[0].translate(swap), line)
        out.append(line)
        at += len(line)
    path.write_bytes(b"".join(out))
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))
    assert (path.stat().st_size, path.stat().st_mtime_ns) == (st.st_size, st.st_mtime_ns)


def dataset_of(files: list[Path]) -> Dataset:
    """The documents the files hold now (last one wins), as make_dataset describes them."""
    docs: dict[str, tuple[list[float], dict[str, Any]]] = {}
    for path in files:
        for line in path.read_bytes().splitlines():
            row = orjson.loads(line)
            docs[str(row.pop("id"))] = (row.pop("vector"), row)
    return Dataset(files, docs)


def ledger(tmp_path: Path) -> dict[str, Any]:
    state: dict[str, Any] = json.loads((tmp_path / "state" / "backfill" / "state.json").read_text())
    return state


def test_a_rewrite_that_keeps_size_and_mtime_is_planned_as_changed(
    setup: Setup, tmp_path: Path
) -> None:
    """A source file rewritten with the same size and its mtime restored is `~` changed, not
    `=` done, and apply writes its new rows: the namespace ends up with the new content."""
    _, plan, data = setup()
    assert run_cli("apply", str(plan), "--auto-approve").returncode == 0
    rewrite_in_place(data.files[0])
    shown = run_cli("--no-color", "plan", str(plan), "--detailed-exitcode")
    assert shown.returncode == 2, shown.stdout + shown.stderr
    assert f"~ {data.files[0]}" in shown.stdout
    assert f"= {data.files[1]}" in shown.stdout
    done = run_cli("apply", str(plan), "--auto-approve")
    assert done.returncode == 0, done.stderr
    assert_exact(tmp_path / "store", "docs", dataset_of(data.files))


def test_content_fingerprints_see_a_change_in_the_middle_of_a_large_file(
    setup: Setup, tmp_path: Path
) -> None:
    """source.fingerprint: content: a same-size, same-mtime change in the middle of a file
    larger than the two 64 KiB blocks auto mode hashes is `~` changed; auto mode misses it."""
    dataset = make_dataset(tmp_path / "src", files=1, rows=3000)
    _, plan, _ = setup(dataset=dataset)
    big = dataset.files[0]
    assert big.stat().st_size > 3 * 64 * 1024
    assert run_cli("apply", str(plan), "--auto-approve").returncode == 0
    size = big.stat().st_size
    rewrite_in_place(big, size // 2 - 2000, size // 2 + 2000)
    auto = run_cli("--no-color", "plan", str(plan), "--detailed-exitcode")
    assert auto.returncode == 0 and "No changes" in auto.stdout, auto.stdout
    text = plan.read_text()
    plan.write_text(re.sub(r"(\n  uri: [^\n]+\n)", r"\1  fingerprint: content\n", text, count=1))
    content = run_cli("--no-color", "plan", str(plan), "--detailed-exitcode")
    assert content.returncode == 2, content.stdout + content.stderr
    assert f"~ {big}" in content.stdout
    done = run_cli("apply", str(plan), "--auto-approve")
    assert done.returncode == 0, done.stderr
    assert_exact(tmp_path / "store", "docs", dataset_of([big]))
    assert "sha256=" in ledger(tmp_path)["files"][big.as_uri()]["fingerprint"]


def test_a_ledger_with_the_previous_fingerprint_format_is_kept_and_upgraded(
    setup: Setup, tmp_path: Path
) -> None:
    """Fingerprints recorded before the blocks hash existed (size+mtime) still match when
    size and mtime agree: no file is `~` after upgrading; the next apply that writes records
    the new form for those files too, without re-sending their rows."""
    _, plan, data = setup()
    assert run_cli("apply", str(plan), "--auto-approve").returncode == 0
    path = tmp_path / "state" / "backfill" / "state.json"
    state = ledger(tmp_path)
    for entry in state["files"].values():
        assert ";blocks=" in entry["fingerprint"]
        entry["fingerprint"] = entry["fingerprint"].split(";blocks=")[0]  # the old format
    path.write_text(json.dumps(state, indent=2, sort_keys=True) + "\n")
    shown = run_cli("--no-color", "plan", str(plan), "--detailed-exitcode")
    assert shown.returncode == 0 and "No changes" in shown.stdout, shown.stdout
    extra = make_dataset(tmp_path / "src", files=1, rows=10, start_id=5000, prefix="more")
    done = run_cli("apply", str(plan), "--auto-approve")
    assert done.returncode == 0, done.stderr
    assert "10 rows written" in done.stdout
    files = ledger(tmp_path)["files"]
    for f in data.files + extra.files:
        assert ";blocks=" in files[f.as_uri()]["fingerprint"], files[f.as_uri()]
    again = run_cli("--no-color", "plan", str(plan), "--detailed-exitcode")
    assert again.returncode == 0 and "No changes" in again.stdout
