"""WAL trim (SPEC §5 step 7) against file:// and S3 (moto server), in both modes.

Trimming is only allowed on a node that recovers from its parts, so the emulator runs
with ``recover_from_parts`` and the plans assert ``node_recovers_from_parts: true``; a
plan without the assertion is refused by ``validate`` and ``plan`` (last tests).

The eligible set is made exact: ``older_than: 1ms`` (every indexed object is
old enough by the time the trim runs) and ``keep_last: 3`` (the newest three
stay), so exactly sequences 1..N-3 must move (archive) or go (delete), with
nothing else touched, and a second apply must change nothing. The S3 plans
carry the endpoint and keys through ``${ENV}``, never literally.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import fsspec
import httpx
import jsonschema
import orjson
import pytest

from elax_plan.apply.run import ApplyOptions, apply_plan
from elax_plan.apply.trim import trim_wal
from elax_plan.apply.wal_store import WalStoreWriter
from elax_plan.emulator import EmbeddedTransport, Emulator, EmulatorConfig
from elax_plan.execution_plan import format_bytes
from elax_plan.report.run_record import render_summary
from elax_plan.spec import load_plan
from tests.apply.support import Dataset, make_dataset, run_cli, write_plan
from tests.conftest import RunningEmulator, S3Server, make_bucket, wait_until

KEEP_LAST = 3
RECORD_SCHEMA = orjson.loads(
    (Path(__file__).parents[2] / "schemas" / "run-record.schema.json").read_bytes()
)
WAL_NAME = re.compile(r"WAL-(\d{20})\.json")


@dataclass
class TrimEnv:
    """An emulator on a store, a dataset, and a plan whose wal_trim section can be rewritten."""

    emu: RunningEmulator
    store_url: str
    fs: Any
    root: str
    plan: Path
    data: Dataset
    env: dict[str, str]
    base_text: str

    def set_trim(self, mode: str | None) -> None:
        """Rewrite the plan with wal_trim enabled in ``mode``, or without wal_trim."""
        trim = (
            ""
            if mode is None
            else f"wal_trim:\n  enabled: true\n  node_recovers_from_parts: true\n"
            f"  mode: {mode}\n  older_than: 1ms\n  keep_last: {KEEP_LAST}\n"
        )
        self.plan.write_text(self.base_text + trim)

    def apply(self) -> Any:
        spec = load_plan(self.plan, env=self.env)
        return apply_plan(spec, options=ApplyOptions(lease_renew=5.0))

    def objects(self, folder: str) -> dict[int, bytes]:
        """Sequence → bytes of the WAL objects in ``namespaces/docs/<folder>/``."""
        path = f"{self.root}/namespaces/docs/{folder}"
        self.fs.invalidate_cache()
        if not self.fs.exists(path):
            return {}
        out = {}
        for name in self.fs.ls(path, detail=False):
            m = WAL_NAME.fullmatch(name.rstrip("/").rsplit("/", 1)[-1])
            assert m is not None, f"unexpected object {name}"
            out[int(m[1])] = self.fs.cat_file(name)
        return out

    def everything(self) -> dict[str, bytes]:
        """Every object under the namespace (WAL, archive, router, parts) and its bytes."""
        self.fs.invalidate_cache()
        base = f"{self.root}/namespaces/docs/"
        return {p[len(base) :]: self.fs.cat_file(p) for p in self.fs.find(base)}


@pytest.fixture(params=["file", "s3"])
def trim_env(
    request: pytest.FixtureRequest,
    tmp_path: Path,
    serve_emulator: Callable[..., RunningEmulator],
) -> TrimEnv:
    """An emulator on a file:// or s3:// store and a plan for 2 × 150 rows in small chunks."""
    env: dict[str, str] = {}
    target_extra = ""
    if request.param == "file":
        store_url = (tmp_path / "store").as_uri()
        options: dict[str, Any] = {}
        fs, root = fsspec.core.url_to_fs(store_url)
    else:
        s3: S3Server = request.getfixturevalue("s3_server")
        store_url = f"s3://{make_bucket(s3)}/root"
        options = s3.storage_options()
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
    emu = serve_emulator(
        EmulatorConfig(
            store_url,
            storage_options=options,
            indexer="background",
            index_interval=0.02,
            recover_from_parts=True,
        )
    )
    data = make_dataset(tmp_path / "src", files=2, rows=150, dims=8)
    plan = write_plan(
        tmp_path / "plan.yaml",
        url=emu.url,
        store=store_url,
        source=f"{tmp_path / 'src'}/*.ndjson",
        state=(tmp_path / "state").as_uri(),
        target_extra=target_extra,
        extra="ingest:\n  chunk_bytes: 8KiB\nthrottle:\n  max_wal_lag: 1000\n  poll_interval: 20ms\n",
    )
    assert "secret: ${ELAX_TEST_S3_SECRET}" in plan.read_text() or request.param == "file"
    return TrimEnv(emu, store_url, fs, root, plan, data, env, plan.read_text())


def wal_documents(batches: dict[int, bytes]) -> dict[str, Any]:
    """Last-write-wins documents of WAL batches, in sequence order."""
    docs: dict[str, Any] = {}
    for seq in sorted(batches):
        for op in orjson.loads(batches[seq])["operations"]:
            docs[op["document"]["id"]] = op["document"]
    return docs


@pytest.mark.parametrize("mode", ["archive", "delete"])
def test_trim_moves_or_deletes_exactly_the_eligible_objects(trim_env: TrimEnv, mode: str) -> None:
    """Indexed, older than 1ms, not among the newest 3: exactly those move or go; a re-run is a no-op."""
    env = trim_env
    env.set_trim(None)
    first = env.apply()
    assert first.exit_code == 0, first.message
    originals = env.objects("wal")
    n = len(originals)
    assert sorted(originals) == list(range(1, n + 1)) and n > KEEP_LAST + 2
    total = sum(len(b) for b in originals.values())
    assert first.record is not None
    assert first.record["wal"] == {
        "namespace": "docs",
        "start": {"objects": 0, "bytes": 0},
        "end": {"objects": n, "bytes": total},
        "growth": {"objects": n, "bytes": total},
    }
    before = env.everything()

    env.set_trim(mode)
    shown = run_cli("plan", str(env.plan), env=env.env)
    assert shown.returncode == 0, shown.stderr
    eligible = range(1, n - KEEP_LAST + 1)
    size = sum(len(originals[s]) for s in eligible)
    verb = "Archive" if mode == "archive" else "Delete"
    step = next(line for line in shown.stdout.splitlines() if f"{verb} WAL" in line)
    assert step.lstrip().startswith("-"), step
    assert f"{n - KEEP_LAST} WAL objects ({format_bytes(size)}), sequences 1–{n - 3}" in step
    assert "rebuilds from the WAL alone" in shown.stdout
    destructive = "1 destructive step" if mode == "delete" else "0 destructive steps"
    assert destructive in shown.stdout

    trimmed = env.apply()
    assert trimmed.exit_code == 0, trimmed.message
    assert trimmed.record is not None
    jsonschema.validate(trimmed.record, RECORD_SCHEMA)
    assert trimmed.record["wal_trim"] == {
        "mode": mode,
        "objects": n - KEEP_LAST,
        "bytes": size,
        "first_sequence": 1,
        "last_sequence": n - KEEP_LAST,
        "archive_prefix": "namespaces/docs/wal-archive" if mode == "archive" else None,
        "errors": [],
    }
    remaining = env.objects("wal")
    assert remaining == {s: originals[s] for s in range(n - KEEP_LAST + 1, n + 1)}
    assert trimmed.record["wal"]["growth"] == {"objects": KEEP_LAST - n, "bytes": -size}
    assert f"| growth | −{n - KEEP_LAST} | −{format_bytes(size)} |" in render_summary(
        trimmed.record
    )
    archived = env.objects("wal-archive")
    if mode == "archive":
        assert archived == {s: originals[s] for s in eligible}, "copies are byte for byte"
    else:
        assert archived == {}
    after = env.everything()
    untouched = {k: v for k, v in before.items() if not k.startswith("wal/")}
    assert {
        k: v for k, v in after.items() if not k.startswith(("wal/", "wal-archive/"))
    } == untouched

    again = env.apply()
    assert again.exit_code == 0 and again.message.startswith("No changes"), again.message
    assert env.everything() == after, "a second run does nothing"
    assert trimmed.record["outcome"] == "succeeded"


def test_trim_in_the_writing_run_keeps_every_document(trim_env: TrimEnv) -> None:
    """Trim in the run that writes: archive + kept WAL hold exactly the source; summary says so."""
    env = trim_env
    env.set_trim("archive")
    done = env.apply()
    assert done.exit_code == 0, done.message
    assert done.record is not None
    kept, archived = env.objects("wal"), env.objects("wal-archive")
    n = len(kept) + len(archived)
    assert sorted(kept) == list(range(n - KEEP_LAST + 1, n + 1))
    assert sorted(archived) == list(range(1, n - KEEP_LAST + 1))
    docs = wal_documents({**archived, **kept})
    assert set(docs) == set(env.data.docs)
    for doc_id, (vector, attributes) in env.data.docs.items():
        assert docs[doc_id]["attributes"] == attributes and len(docs[doc_id]["vector"]) == len(
            vector
        )
    trim = done.record["wal_trim"]
    assert (trim["objects"], trim["first_sequence"], trim["last_sequence"]) == (n - 3, 1, n - 3)
    assert trim["bytes"] == sum(len(b) for b in archived.values())
    assert done.record["verification"] and all(c["passed"] for c in done.record["verification"])
    summary = render_summary(done.record)
    assert (
        f"archive: {n - 3} WAL object(s), {format_bytes(trim['bytes'])} (sequences 1–{n - 3}), "
        "archived under `namespaces/docs/wal-archive/`." in summary
    )
    again = env.apply()
    assert again.exit_code == 0 and again.message.startswith("No changes"), again.message
    assert env.objects("wal") == kept and env.objects("wal-archive") == archived


def test_an_interrupted_archive_is_finished_by_the_next_trim(
    emu: RunningEmulator, tmp_path: Path
) -> None:
    """A half-written copy left in wal-archive/ is replaced by a verified one; then nothing."""
    for i in range(5):
        assert (
            emu.write("docs", {"upserts": [{"id": str(i), "vector": [i, 1.0]}]}).status_code == 200
        )
    store = WalStoreWriter((tmp_path / "store").as_uri(), {})
    wait_until(lambda: store.read_namespace("docs").indexed_wal == 5, what="the index")
    wal = tmp_path / "store" / "namespaces" / "docs" / "wal"
    originals = {p.name: p.read_bytes() for p in sorted(wal.iterdir())}
    archive = wal.parent / "wal-archive"
    archive.mkdir()
    (archive / "WAL-00000000000000000001.json").write_bytes(b'{"operations": [')  # cut short
    result = trim_wal(store, "docs", mode="archive", older_than=0, keep_last=2)
    assert (result.objects, result.first_sequence, result.last_sequence) == (3, 1, 3)
    assert {p.name: p.read_bytes() for p in archive.iterdir()} == dict(list(originals.items())[:3])
    assert sorted(p.name for p in wal.iterdir()) == list(originals)[3:]
    assert trim_wal(store, "docs", mode="archive", older_than=0, keep_last=2).objects == 0


def test_wal_store_writer_touches_only_the_named_wal_object(tmp_path: Path) -> None:
    """WalStoreWriter archives or deletes exactly one WAL object; a missing one is FileNotFoundError."""
    wal = tmp_path / "namespaces" / "docs" / "wal"
    wal.mkdir(parents=True)
    for sequence in (1, 2, 3):
        (wal / f"WAL-{sequence:020d}.json").write_bytes(b'{"seq": %d}' % sequence)
    store = WalStoreWriter(tmp_path.as_uri(), {})
    store.archive("docs", 1)
    store.delete("docs", 2)
    assert sorted(p.name for p in wal.iterdir()) == [f"WAL-{3:020d}.json"]
    archived = wal.parent / "wal-archive" / f"WAL-{1:020d}.json"
    assert archived.read_bytes() == b'{"seq": 1}'
    with pytest.raises(FileNotFoundError):
        store.delete("docs", 2)
    with pytest.raises(FileNotFoundError):
        store.archive("docs", 2)


def test_a_trimmed_namespace_survives_a_restart_of_a_node_that_recovers_from_parts(
    trim_env: TrimEnv,
) -> None:
    """What the assertion buys: after the trim, a restarted recovering node serves every
    document, although most of the WAL is gone from wal/."""
    env = trim_env
    env.set_trim("delete")
    done = env.apply()
    assert done.exit_code == 0, done.message
    assert len(env.objects("wal")) == KEEP_LAST
    restarted = EmulatorConfig(
        env.store_url,
        storage_options=dict(env.emu.emulator.config.storage_options),
        indexer="none",
        recover_from_parts=True,
    )
    with (
        Emulator(restarted) as e,
        httpx.Client(transport=EmbeddedTransport(e), base_url="http://embedded") as c,
    ):
        r = c.post(
            "/v2/namespaces/docs/query",
            json={"vector": [1.0] * 8, "top_k": 1000, "ann_params": {"use_ivf": False}},
        )
        assert r.status_code == 200, r.text
        assert {h["id"] for h in r.json()["hits"]} == set(env.data.docs)


@pytest.mark.parametrize("command", ["validate", "plan"])
def test_trim_against_a_real_mode_target_is_refused_with_the_reason(
    tmp_path: Path, serve_emulator: Callable[..., RunningEmulator], command: str
) -> None:
    """wal_trim.enabled: true without node_recovers_from_parts (a real-mode emulator, which
    replays the WAL alone as every released elacsym does) is refused at its line, and nothing
    is read from or written to the store."""
    store = tmp_path / "store"
    emu = serve_emulator(EmulatorConfig(data_root=str(store), indexer="none"))
    make_dataset(tmp_path / "src", files=1, rows=10, dims=8)
    plan = write_plan(
        tmp_path / "plan.yaml",
        url=emu.url,
        store=store.as_uri(),
        source=f"{tmp_path / 'src'}/*.ndjson",
        state=(tmp_path / "state").as_uri(),
        extra="wal_trim:\n  enabled: true\n  mode: archive\n",
    )
    refused = run_cli(command, str(plan))
    assert refused.returncode == 1, refused.stdout + refused.stderr
    line = next(i for i, text in enumerate(plan.read_text().splitlines(), 1) if "enabled" in text)
    assert f"{plan}:{line}:12: wal_trim.enabled: true is refused" in refused.stderr
    assert "rebuilds a namespace from its WAL alone when a node restarts" in refused.stderr
    assert "wal_trim.node_recovers_from_parts: true" in refused.stderr
    assert not (tmp_path / "state").exists() and not (store / "namespaces").exists()


def test_an_embedded_target_that_asserts_recovery_recovers_from_its_parts(tmp_path: Path) -> None:
    """target.url: embedded with node_recovers_from_parts: the embedded emulator is started
    recovering from its parts, so the next apply's emulator (a new one, loading the store
    afresh) still finds the documents whose WAL objects the first apply deleted."""
    make_dataset(tmp_path / "src", files=1, rows=120, dims=8)
    plan = write_plan(
        tmp_path / "plan.yaml",
        url="embedded",
        store=(tmp_path / "store").as_uri(),
        source=f"{tmp_path / 'src'}/*.ndjson",
        state=(tmp_path / "state").as_uri(),
        extra="ingest:\n  chunk_bytes: 4KiB\nverify:\n  smoke_queries:\n"
        "    - name: self-match\n      sample_vectors: 40\n      top_k: 5\n"
        "wal_trim:\n  enabled: true\n  node_recovers_from_parts: true\n  mode: delete\n"
        "  older_than: 1ms\n  keep_last: 1\n",
    )
    first = apply_plan(load_plan(plan), options=ApplyOptions(lease_renew=5.0))
    assert first.exit_code == 0, first.message
    assert first.record is not None and first.record["wal_trim"]["objects"] > 1
    # A second file makes the next run write, and so verify: its smoke query samples rows
    # of both files, and those of the first live only in the parts now.
    make_dataset(tmp_path / "src", files=1, rows=30, dims=8, start_id=1000, prefix="more")
    second = apply_plan(load_plan(plan), options=ApplyOptions(lease_renew=5.0))
    assert second.exit_code == 0, second.message
    assert second.record is not None
    assert all(c["passed"] for c in second.record["verification"]), second.record
