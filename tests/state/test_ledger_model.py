"""The ledger document: its JSON shape, migrations, damage handling and secret hygiene."""

from __future__ import annotations

import dataclasses
import uuid
from typing import Any

import orjson
import pytest

from elax_plan.errors import StateError
from elax_plan.spec.secrets import Secret
from elax_plan.state import (
    STATE_VERSION,
    Ack,
    FileEntry,
    Ledger,
    LedgerStore,
    RunFiles,
    TargetIdentity,
    acquire,
    migrate,
    open_backend,
)
from elax_plan.state.ledger import MIGRATIONS, Verification
from tests.state.conftest import FakeClock


def _ledger() -> Ledger:
    target = TargetIdentity.of("http://127.0.0.1:3000", "file:///data", "products")
    return Ledger.new("p", target, "cosine", 4)


def test_document_shape() -> None:
    """state.json carries state_version 1, lineage, serial and the per-file fields of SPEC §6."""
    entry = FileEntry(url="file:///d/a.ndjson", fingerprint="size=3;mtime=x", size=3, rows=1)
    raw = orjson.loads(_ledger().with_file(entry).to_json())
    assert raw["state_version"] == STATE_VERSION == 1
    assert uuid.UUID(raw["lineage"]).version == 4 and raw["serial"] == 0
    assert raw["target"] == {
        "url": "http://127.0.0.1:3000",
        "store": "file:///data",
        "namespace": "products",
    }
    assert raw["files"]["file:///d/a.ndjson"] == {
        "fingerprint": "size=3;mtime=x",
        "size": 3,
        "status": "pending",
        "resume": {},
        "rows": 1,
        "bytes": 0,
        "wal_first": None,
        "wal_last": None,
        "acks": [],
    }
    assert raw["run"]["verification"] == {"status": "none", "summary": None, "checks": None}


def test_acks_round_trip_and_may_be_absent() -> None:
    """A file's acknowledged writes are kept as [seq, digest, start, upserts, proof]; older ledgers
    without them load with none."""
    ledger = _ledger()
    entry = FileEntry(
        url="file:///d/b.ndjson",
        fingerprint="f",
        acks=(Ack(3, "00ff", {"offset": 10, "line": 1, "row": 0}, 7, "12:1.5"),),
    )
    raw = orjson.loads(ledger.with_file(entry).to_json())
    assert raw["files"]["file:///d/b.ndjson"]["acks"] == [
        [3, "00ff", {"offset": 10, "line": 1, "row": 0}, 7, "12:1.5"]
    ]
    back = Ledger.from_json(ledger.with_file(entry).to_json(), "state.json")
    assert tuple(back.files["file:///d/b.ndjson"].acks) == entry.acks
    del raw["files"]["file:///d/b.ndjson"]["acks"]
    older = Ledger.from_json(orjson.dumps(raw), "state.json")
    assert tuple(older.files["file:///d/b.ndjson"].acks) == ()


def test_verification_checks_round_trip_and_may_be_absent() -> None:
    """The digest of the checks behind a verdict is kept; ledgers written without it load."""
    ledger = _ledger()
    verified = ledger.with_run(
        dataclasses.replace(ledger.run, verification=Verification("passed", "s.md", "ab12"))
    )
    assert Ledger.from_json(verified.to_json(), "x").run.verification.checks == "ab12"
    raw = orjson.loads(verified.to_json())
    del raw["run"]["verification"]["checks"]
    assert Ledger.from_json(orjson.dumps(raw), "x").run.verification == Verification(
        "passed", "s.md", None
    )


def test_lineage_is_new_per_ledger() -> None:
    """Every new ledger gets its own lineage."""
    assert _ledger().lineage != _ledger().lineage


def test_future_version_is_refused() -> None:
    """A ledger from a newer elax-plan is refused with a message saying to upgrade."""
    raw = orjson.loads(_ledger().to_json())
    raw["state_version"] = STATE_VERSION + 1
    with pytest.raises(StateError, match="newer than this elax-plan") as caught:
        Ledger.from_json(orjson.dumps(raw), "s3://b/p/state.json")
    assert "s3://b/p/state.json" in str(caught.value) and "Upgrade" in str(caught.value)


def test_missing_version_is_refused() -> None:
    """A JSON object without state_version is not taken for a ledger."""
    with pytest.raises(StateError, match="not an elax-plan ledger"):
        Ledger.from_json(b'{"lineage": "x"}', "file:///s/p/state.json")


def test_migration_steps_run_in_order() -> None:
    """migrate applies one step per version up to the current one, and stamps each version."""
    calls: list[int] = []

    def step(n: int) -> Any:
        def run(raw: dict[str, Any]) -> dict[str, Any]:
            calls.append(n)
            return {**raw, f"from_{n}": True}

        return run

    out = migrate({"state_version": 0}, location="x", steps={0: step(0), 1: step(1)}, current=2)
    assert calls == [0, 1] and out == {"state_version": 2, "from_0": True, "from_1": True}
    with pytest.raises(StateError, match="cannot migrate"):
        migrate({"state_version": 0}, location="x", steps={1: step(1)}, current=2)
    assert MIGRATIONS == {}  # version 1 is the first format: nothing to migrate yet


def test_damaged_ledger_names_the_file() -> None:
    """Invalid JSON or a wrong field type gives a StateError naming the ledger's location."""
    with pytest.raises(StateError, match="not valid JSON") as caught:
        Ledger.from_json(b"{", "file:///s/p/state.json")
    assert "file:///s/p/state.json" in str(caught.value)
    raw = orjson.loads(_ledger().to_json())
    raw["serial"] = "three"
    with pytest.raises(StateError, match=r"damaged.*serial"):
        Ledger.from_json(orjson.dumps(raw), "file:///s/p/state.json")


def test_secrets_never_reach_state_files(tmp_path: Any) -> None:
    """Credentials in URLs and registered secret values are not written to ledger or run files."""
    secret = f"s3cr3t-{uuid.uuid4().hex}"
    Secret(secret)  # registers the value, as loading a plan does
    backend = open_backend((tmp_path / "state").as_uri())
    clock = FakeClock()
    lease = acquire(backend, "p", clock=clock)
    target = TargetIdentity.of(
        f"http://admin:{secret}@10.0.0.1:3000/?token={secret}", "s3://b", "n"
    )
    assert target.url == "http://***@10.0.0.1:3000/?token=***"
    writer = LedgerStore(backend, "p").claim(lease)
    entry = FileEntry(url=f"file:///d/{secret}.ndjson", fingerprint="size=1")
    writer.save(Ledger.new("p", target, "cosine", None).with_file(entry))
    run = RunFiles(backend, "p", "20261125T190000Z-abcdef")
    run.append_events([{"event": "retry", "message": f"bad key {secret}"}])
    run.write_summary(f"# Summary {secret}\n", {"api_key": secret})
    for path in (tmp_path / "state").rglob("*"):
        if path.is_file():
            assert secret not in path.read_text(), path


def test_reserved_and_invalid_plan_names() -> None:
    """A plan named like the namespace-record folder, or with a path in it, is refused."""
    backend = open_backend("memory://names")
    for bad in ("namespaces", "../x", "A"):
        with pytest.raises(StateError, match="cannot name a state folder"):
            acquire(backend, bad)
