"""``elax-plan wal restore``: archived WAL objects go back byte for byte, never over others.

The archive is made the way an elax-plan that still trimmed made it (``trim_wal`` in
archive mode through ``WalStoreWriter``), on file:// and on S3 (moto). An emulator that,
like every released elacsym, rebuilds from the WAL alone loses those documents at a
restart and serves them again once they are restored.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import fsspec
import httpx
import pytest

from elax_plan.apply.trim import trim_wal
from elax_plan.apply.wal_store import WalStoreWriter
from elax_plan.cli._group import run
from elax_plan.emulator import EmbeddedTransport, Emulator, EmulatorConfig
from elax_plan.spec import load_plan
from elax_plan.state import LeaseKey, acquire, open_backend
from tests.apply.support import write_plan
from tests.conftest import S3Server, make_bucket

BATCHES = 6
KEEP_LAST = 2


@dataclass
class Archived:
    """A namespace whose first WAL objects were archived, and a plan on its store."""

    store_url: str
    options: dict[str, Any]
    fs: Any
    root: str
    plan: Path
    env: dict[str, str]
    originals: dict[int, bytes]

    def folder(self, name: str) -> dict[str, bytes]:
        """File name → bytes under ``namespaces/docs/<name>/``."""
        path = f"{self.root}/namespaces/docs/{name}"
        self.fs.invalidate_cache()
        if not self.fs.exists(path):
            return {}
        return {
            p.rstrip("/").rsplit("/", 1)[-1]: self.fs.cat_file(p)
            for p in self.fs.ls(path, detail=False)
        }

    def ids_after_restart(self) -> set[str]:
        """The ids a freshly started node (WAL alone, as released elacsym) serves."""
        config = EmulatorConfig(self.store_url, storage_options=self.options, indexer="none")
        with Emulator(config) as e, _client(e) as c:
            r = c.post(
                "/v2/namespaces/docs/query",
                json={"vector": [1.0, 1.0], "top_k": 1000, "ann_params": {"use_ivf": False}},
            )
            assert r.status_code == 200, r.text
            return {h["id"] for h in r.json()["hits"]}


def _client(e: Emulator) -> httpx.Client:
    return httpx.Client(transport=EmbeddedTransport(e), base_url="http://embedded")


def name(seq: int) -> str:
    return f"WAL-{seq:020d}.json"


@pytest.fixture(params=["file", "s3"])
def archived(request: pytest.FixtureRequest, tmp_path: Path) -> Archived:
    env: dict[str, str] = {}
    target_extra = ""
    if request.param == "file":
        store_url, options = (tmp_path / "store").as_uri(), {}
    else:
        s3: S3Server = request.getfixturevalue("s3_server")
        store_url, options = f"s3://{make_bucket(s3)}/root", s3.storage_options()
        env = {
            "ELAX_TEST_S3_ENDPOINT": s3.endpoint_url,
            "ELAX_TEST_S3_KEY": options["key"],
            "ELAX_TEST_S3_SECRET": options["secret"],
        }
        target_extra = (
            "  storage_options:\n    endpoint_url: ${ELAX_TEST_S3_ENDPOINT}\n"
            "    key: ${ELAX_TEST_S3_KEY}\n    secret: ${ELAX_TEST_S3_SECRET}\n"
        )
    fs, root = fsspec.core.url_to_fs(store_url, skip_instance_cache=True, **options)
    config = EmulatorConfig(store_url, storage_options=options, indexer="none")
    with Emulator(config) as e, _client(e) as c:
        for b in range(BATCHES):
            docs = [{"id": str(b * 10 + i), "vector": [float(i), 1.0]} for i in range(10)]
            assert c.post("/v2/namespaces/docs", json={"upserts": docs}).status_code == 200
        e.compact("docs")
    store = WalStoreWriter(store_url, options)
    wal = {o.sequence for o in store.read_namespace("docs").wal_objects}
    originals = {s: store.read_wal_object("docs", s) or b"" for s in wal}
    # What an elax-plan that still trimmed did after a verified run.
    trimmed = trim_wal(store, "docs", mode="archive", older_than=0, keep_last=KEEP_LAST)
    assert trimmed.objects == BATCHES - KEEP_LAST
    plan = write_plan(
        tmp_path / "plan.yaml",
        url="http://127.0.0.1:9",
        store=store_url,
        source=f"{tmp_path / 'src'}/*.ndjson",
        state=(tmp_path / "state").as_uri(),
        target_extra=target_extra,
        dims=2,
    )
    return Archived(store_url, options, fs, root, plan, env, originals)


def restore(a: Archived, *args: str, monkeypatch: pytest.MonkeyPatch) -> int:
    for key, value in a.env.items():
        monkeypatch.setenv(key, value)
    return run(["wal", "restore", str(a.plan), *args])


def test_restore_brings_back_every_archived_object_byte_for_byte(
    archived: Archived, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """The archived objects go back to wal/ with their exact bytes, the archive empties, a
    restarted node serves every document again, and a second restore does nothing."""
    a = archived
    everything = {str(i) for i in range(BATCHES * 10)}
    lost = a.ids_after_restart()
    assert lost == everything - {str(i) for i in range((BATCHES - KEEP_LAST) * 10)}

    assert restore(a, "--dry-run", monkeypatch=monkeypatch) == 0
    out = capsys.readouterr().out
    assert "Would restore 4 WAL objects" in out and "sequences 1–4" in out, out
    assert len(a.folder("wal-archive")) == BATCHES - KEEP_LAST, "a dry run changes nothing"

    assert restore(a, monkeypatch=monkeypatch) == 0
    out = capsys.readouterr().out
    assert "Restored 4 WAL objects" in out and "Restart the elacsym node(s)" in out, out
    assert a.folder("wal") == {name(s): data for s, data in a.originals.items()}
    assert a.folder("wal-archive") == {}
    assert a.ids_after_restart() == everything

    assert restore(a, monkeypatch=monkeypatch) == 0
    assert "Nothing to restore" in capsys.readouterr().out
    assert a.folder("wal") == {name(s): data for s, data in a.originals.items()}


def test_a_different_wal_object_is_never_replaced(
    archived: Archived, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """wal/ holding other bytes for an archived sequence refuses the whole restore, naming
    the object; nothing moves. Same bytes on both sides (an interrupted restore) only
    removes the archived copy."""
    a = archived
    wal = f"{a.root}/namespaces/docs/wal"
    a.fs.pipe_file(f"{wal}/{name(2)}", b'{"namespace":"docs","operations":[]}')
    a.fs.pipe_file(f"{wal}/{name(3)}", a.originals[3])  # restored before an interruption
    before = (a.folder("wal"), a.folder("wal-archive"))

    assert restore(a, monkeypatch=monkeypatch) == 1
    err = capsys.readouterr().err
    assert f"already holds different bytes for {name(2)}" in err, err
    assert name(3) not in err and "is never replaced" in err
    assert (a.folder("wal"), a.folder("wal-archive")) == before

    a.fs.rm_file(f"{wal}/{name(2)}")
    assert restore(a, monkeypatch=monkeypatch) == 0
    out = capsys.readouterr().out
    assert "Restored 3 WAL objects" in out and "1 already back in wal/" in out, out
    assert a.folder("wal") == {name(s): data for s, data in a.originals.items()}
    assert a.folder("wal-archive") == {}


def test_restore_waits_for_no_apply_and_leaves_other_names(
    archived: Archived, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """The plan's lease held (an apply running) refuses the restore; a name in the archive
    that is no WAL object stays there (in wal/ it would stop the node loading)."""
    a = archived
    spec = load_plan(a.plan, env=a.env)
    lease = acquire(open_backend(spec.state.uri, spec.state.storage_options), spec.name)
    try:
        assert restore(a, monkeypatch=monkeypatch) == 1
        assert "apply by" in capsys.readouterr().err
        assert len(a.folder("wal-archive")) == BATCHES - KEEP_LAST
    finally:
        lease.release()
    a.fs.pipe_file(f"{a.root}/namespaces/docs/wal-archive/notes.txt", b"kept")
    assert restore(a, monkeypatch=monkeypatch) == 0
    out = capsys.readouterr().out
    assert "Left in namespaces/docs/wal-archive/: notes.txt" in out, out
    assert a.folder("wal-archive") == {"notes.txt": b"kept"}
    assert a.folder("wal") == {name(s): data for s, data in a.originals.items()}


def test_restore_waits_for_no_apply_of_another_plan_on_the_namespace(
    archived: Archived, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """Another plan writing the namespace (its namespace lease held) refuses the restore,
    naming it; nothing moves, and the plan's own lease is released again."""
    a = archived
    spec = load_plan(a.plan, env=a.env)
    backend = open_backend(spec.state.uri, spec.state.storage_options)
    other = acquire(backend, "other-plan", key=LeaseKey.namespace("docs"))
    try:
        assert restore(a, monkeypatch=monkeypatch) == 1
        err = capsys.readouterr().err
        assert "Namespace 'docs' is being written by plan 'other-plan'" in err, err
        assert len(a.folder("wal-archive")) == BATCHES - KEEP_LAST
        acquire(backend, spec.name).release()  # the restore let go of the plan's lease
    finally:
        other.release()
    assert restore(a, monkeypatch=monkeypatch) == 0
