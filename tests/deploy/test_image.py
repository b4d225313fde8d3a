"""The Docker image, without Docker (this machine has no engine): the Dockerfile builds and
installs only through scripts/build_wheel.sh and scripts/install_wheel.sh, and the slow test
here runs those two scripts on a fresh clone — the wheel, an empty venv with the image's
extras, `elax-plan --version` — then applies the quickstart with the installed command."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from fnmatch import fnmatch
from pathlib import Path

import pytest
import yaml

from elax_plan import __version__

REPO = Path(__file__).resolve().parents[2]
BUILD = "sh scripts/build_wheel.sh /src /dist"
INSTALL = "sh /tmp/install_wheel.sh /tmp/dist /opt/elax-plan"


def instructions(path: Path) -> list[tuple[str, str]]:
    """The Dockerfile's instructions as (KEYWORD, arguments), continuation lines joined."""
    out: list[tuple[str, str]] = []
    pending = ""
    for raw in path.read_text().splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        pending = f"{pending} {line}".strip()
        if pending.endswith("\\"):
            pending = pending[:-1].rstrip()
            continue
        keyword, _, args = pending.partition(" ")
        out.append((keyword.upper(), " ".join(args.split())))
        pending = ""
    return out


def test_the_dockerfile_installs_only_through_the_shared_scripts() -> None:
    steps = instructions(REPO / "Dockerfile")
    froms = [args for kw, args in steps if kw == "FROM"]
    assert froms == ["${PYTHON_IMAGE} AS build", "${PYTHON_IMAGE}"]
    assert ("ARG", "PYTHON_IMAGE=python:3.11-slim-bookworm") in steps
    runs = [args for kw, args in steps if kw == "RUN"]
    assert BUILD in runs
    assert any(r.startswith(INSTALL + " &&") for r in runs)
    # pip, the venv and the extras live in the scripts, which the slow test runs.
    assert not [r for r in runs if "pip" in r or "venv" in r]
    final = steps[max(i for i, (kw, _) in enumerate(steps) if kw == "FROM") :]
    assert ("USER", "10001:10001") in final
    assert ("ENTRYPOINT", '["elax-plan"]') in final


def test_the_action_installs_through_the_same_scripts() -> None:
    action = yaml.safe_load((REPO / "action.yml").read_text())
    install = action["runs"]["steps"][1]["run"]
    assert 'sh "$ACTION_PATH/scripts/build_wheel.sh"' in install
    assert 'sh "$ACTION_PATH/scripts/install_wheel.sh"' in install


def dockerignored(path: str) -> bool:
    patterns = [
        line.strip()
        for line in (REPO / ".dockerignore").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]
    parts = path.split("/")
    prefixes = ["/".join(parts[: i + 1]) for i in range(len(parts))]
    return any(fnmatch(p, pattern) for p in prefixes for pattern in patterns)


def test_dockerignore_keeps_what_the_build_needs_and_drops_the_rest() -> None:
    needed = [
        "pyproject.toml",
        "setup.py",
        "README.md",
        "scripts/build_wheel.sh",
        "scripts/install_wheel.sh",
        "elax_plan/_f32json.c",
        "elax_plan/cli/apply.py",
        "elax_plan/schemas/plan.schema.json",
    ]
    assert [p for p in needed if dockerignored(p)] == []
    dropped = [
        ".git/HEAD",
        ".venv/bin/python",
        "elax_plan/_f32json.cpython-311-x86_64-linux-gnu.so",
    ]
    assert all(dockerignored(p) for p in dropped)


def _run(args: list[str | Path], cwd: Path, env: dict[str, str]) -> str:
    done = subprocess.run(
        [str(a) for a in args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=240,
        stdin=subprocess.DEVNULL,
    )
    assert done.returncode == 0, f"{args}:\n{done.stdout}\n{done.stderr}"
    return done.stdout


@pytest.mark.slow
@pytest.mark.timeout(300)
@pytest.mark.skipif(not (REPO / ".git").exists(), reason="needs the git checkout to clone")
def test_the_wheel_from_a_fresh_clone_installs_and_runs_the_quickstart(tmp_path: Path) -> None:
    """The Dockerfile's steps: build the wheel from a fresh clone, install it with the
    extras into an empty venv, `elax-plan --version`; then the quickstart from an empty
    directory with only the plan and its data, run by the installed command."""
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    env["PYTHON"] = sys.executable  # python3 of the image; here the suite's interpreter
    started = time.monotonic()
    src, dist, venv, work = (tmp_path / d for d in ("src", "dist", "venv", "work"))
    _run(["git", "clone", "--quiet", "--depth", "1", f"file://{REPO}", src], tmp_path, env)
    _run(["sh", src / "scripts" / "build_wheel.sh", src, dist], tmp_path, env)
    built = time.monotonic()
    version = _run(["sh", src / "scripts" / "install_wheel.sh", dist, venv], tmp_path, env)
    assert version.strip() == f"elax-plan, version {__version__}"
    installed = time.monotonic()
    # The venv's own package and extras, not the checkout's.
    probe = "import elax_plan, pyarrow, zstandard, json; print(json.dumps(elax_plan.__file__))"
    where = json.loads(_run([venv / "bin" / "python", "-c", probe], tmp_path, env))
    assert Path(where).is_relative_to(venv)
    (work / "plans").mkdir(parents=True)
    shutil.copy(src / "plans" / "quickstart.yaml", work / "plans")
    shutil.copytree(src / "plans" / "data", work / "plans" / "data")
    out = _run(
        [venv / "bin" / "elax-plan", "apply", "plans/quickstart.yaml", "--auto-approve"], work, env
    )
    assert "Backfill succeeded" in out
    assert (work / ".elax-demo" / "summary.md").read_text().startswith("# ✅ Backfill succeeded")
    print(
        f"clone + wheel {built - started:.1f} s, install {installed - built:.1f} s, "
        f"quickstart {time.monotonic() - installed:.1f} s"
    )
