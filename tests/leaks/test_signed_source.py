"""A signed ``source.uri`` (``…/c1.ndjson?sig=${LEAK_SIG}``) is read with its signature and
shown, saved and keyed without it.

One plan against the embedded emulator with a ``file://`` state; its source is
served by ``SignedSource``, which refuses any request without the signature.
The variable is named ``LEAK_SIG``, nothing like a credential: the value is a
secret because it is a URL's ``sig``. ``plan --out``, ``apply`` of the saved
plan and ``plan`` again run once (module fixture); each test checks one output.
"""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.apply.support import make_dataset, run_cli
from tests.leaks.support import SignedSource, haystack, leaks, sentinel

ROWS = 30


@dataclass
class Runs:
    root: Path
    sig: str
    masked: str
    plan: subprocess.CompletedProcess[str]
    apply: subprocess.CompletedProcess[str]
    replan: subprocess.CompletedProcess[str]
    saved: str
    ledger: str


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Runs]:
    """plan --out, apply SAVED and plan again for a plan whose source URL is signed."""
    root = tmp_path_factory.mktemp("signed")
    make_dataset(root / "served", files=1, rows=ROWS, dims=8, prefix="c")
    sig, bearer = sentinel("sig"), sentinel("bearer")
    server = SignedSource(root / "served", sig, bearer)
    plan = root / "plan.yaml"
    plan.write_text(
        f"""version: 1
name: signed
target:
  url: embedded
  store: {root / "store"}
  namespace: docs
  distance_metric: cosine
source:
  uri: {server.base_url}/c-000.ndjson?sv=2024-05-04&sig=${{LEAK_SIG}}
  format: ndjson
  storage_options:
    headers: {{Authorization: "Bearer ${{LEAK_BEARER}}"}}
state:
  uri: {root / "state"}
"""
    )
    env = {"LEAK_SIG": sig, "LEAK_BEARER": bearer}
    saved = root / "saved.elaxplan"
    try:
        first = run_cli("plan", str(plan), "--out", str(saved), env=env)
        applied = run_cli("apply", str(saved), env=env)
        again = run_cli("plan", str(plan), env=env)
    finally:
        server.close()
    yield Runs(
        root=root,
        sig=sig,
        masked=f"{server.base_url}/c-000.ndjson?sv=2024-05-04&sig=***",
        plan=first,
        apply=applied,
        replan=again,
        saved=saved.read_text() if saved.exists() else "",
        ledger=(root / "state" / "signed" / "state.json").read_text(),
    )


def test_plan_and_apply_print_the_signed_uri_masked(runs: Runs) -> None:
    """plan and apply print the source file's URL with sig=***, never the signature."""
    assert runs.sig not in runs.plan.stdout + runs.plan.stderr
    assert runs.sig not in runs.apply.stdout + runs.apply.stderr
    assert (runs.plan.returncode, runs.apply.returncode) == (0, 0), runs.apply.stderr
    assert f"+ {runs.masked}" in runs.plan.stdout
    assert f"{ROWS} rows written" in runs.apply.stdout, "the file was read with its signature"


def test_saved_plan_holds_the_signed_uri_masked(runs: Runs) -> None:
    """The saved .elaxplan names the file three times (step, id, fingerprint), each masked."""
    assert runs.saved.count(runs.sig) == 0
    assert runs.saved.count(runs.masked) == 3
    assert runs.apply.returncode == 0, "and it still applies"


def test_ledger_keys_the_file_by_its_masked_url(runs: Runs) -> None:
    """state.json keys the file by its display URL; the next plan matches it: unchanged."""
    assert runs.sig not in runs.ledger
    assert f'"{runs.masked}"' in runs.ledger
    assert f"= {runs.masked}" in runs.replan.stdout
    assert "No changes" in runs.replan.stdout


def test_nothing_under_the_run_folder_holds_the_signature(runs: Runs) -> None:
    """No file the runs wrote (state, saved plan, store) holds the signature in any form."""
    places = haystack([], [runs.root / "state", runs.root / "store", runs.root / "saved.elaxplan"])
    assert leaks({"LEAK_SIG": runs.sig}, places) == []
