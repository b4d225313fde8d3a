"""``plan --changed-from GIT_REF``: which plans a change since a git ref touches.

Owns two answers. ``local_inputs``: the local files a plan reads besides itself — its
``source.uri`` files and globs, ``verify.workload``, ``verify.compare.baseline.results``
and the program ``indexer.command`` runs when that is a path (the store, the state and
the summary are what a run writes, not what it reads). ``keep_changed``: the plans whose
file or one of those inputs changed, where "changed" is what ``git`` reports in the plan
file's repository: committed since the current branch forked from the ref (``git
merge-base REF HEAD``; the ref itself when they share no history), staged or not yet, and
untracked files that are not ignored. A deleted file counts, and a file a glob would
match counts whether or not it exists now.

A plan that cannot be loaded is kept (what it reads is unknown, and its error belongs in
the report). git runs as a subprocess; when it is missing, the plan file is outside a
repository or the ref is unknown, the error is one paragraph with git's own message and
the next step (exit 1). Nothing here writes anything.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterable, Sequence
from fnmatch import fnmatchcase
from pathlib import Path

from elax_plan.apply.operator import git
from elax_plan.errors import ElaxError
from elax_plan.spec import PlanSpec, is_local, local_path

GIT_TIMEOUT_S = 60.0
_MAGIC = frozenset("*?[")

Loaded = tuple[Path, PlanSpec | ElaxError]


def local_inputs(spec: PlanSpec) -> list[str]:
    """The absolute local paths (globs kept) a plan reads, besides the plan file itself."""
    cwd = Path.cwd()
    urls = list(spec.source.uris)
    if spec.verify.workload is not None:
        urls.append(spec.verify.workload)
    compare = spec.verify.compare
    if compare is not None and compare.baseline.results is not None:
        urls.append(compare.baseline.results)
    out = [str(local_path(url, cwd)) for url in urls if is_local(url)]
    command = spec.indexer.command
    if command and "/" in command[0]:
        out.append(str(local_path(command[0], cwd)))
    return out


def keep_changed(loaded: Sequence[Loaded], ref: str) -> tuple[list[Loaded], list[str]]:
    """The plans a change since ``ref`` touches, and the files of those it does not."""
    changed_by_repo: dict[Path, frozenset[Path]] = {}
    kept: list[Loaded] = []
    left_out: list[str] = []
    for path, spec in loaded:
        top = repository_root(path)
        if top not in changed_by_repo:
            changed_by_repo[top] = changed_files(top, ref)
        changed = changed_by_repo[top]
        inputs = [str(path.absolute())]
        if isinstance(spec, PlanSpec):
            inputs += local_inputs(spec)
        if not isinstance(spec, PlanSpec) or any(touches(i, changed) for i in inputs):
            kept.append((path, spec))
        else:
            left_out.append(str(path))
    return kept, left_out


def touches(pattern: str, changed: Iterable[Path]) -> bool:
    """Whether a changed file is ``pattern`` (an absolute path) or matches it as a glob
    (``*`` and ``?`` within a folder, ``**`` across folders)."""
    parts = _real_parts(pattern)
    if not any(_has_magic(p) for p in parts):
        return Path(*parts) in changed
    return any(_match(parts, c.parts) for c in changed)


def _has_magic(text: str) -> bool:
    return any(c in text for c in _MAGIC)


def _real_parts(pattern: str) -> tuple[str, ...]:
    """``pattern``'s parts with its fixed leading folders resolved as git reports them."""
    parts = Path(pattern).parts
    fixed = next((i for i, p in enumerate(parts) if _has_magic(p)), len(parts))
    prefix = Path(os.path.realpath(Path(*parts[:fixed]))) if fixed else Path(parts[0])
    return prefix.parts + parts[fixed:]


def _match(pattern: Sequence[str], parts: Sequence[str]) -> bool:
    if not pattern:
        return not parts
    head, rest = pattern[0], pattern[1:]
    if head == "**":
        return any(_match(rest, parts[i:]) for i in range(len(parts) + 1))
    return bool(parts) and fnmatchcase(parts[0], head) and _match(rest, parts[1:])


# --- git -------------------------------------------------------------------------------------


def repository_root(plan_file: Path) -> Path:
    """The top folder of the git repository ``plan_file`` is in."""
    folder = plan_file.absolute().parent
    top = _git(
        folder,
        "rev-parse",
        "--show-toplevel",
        failed=f"--changed-from: {plan_file} is not in a git repository.",
        hint="--changed-from compares plan files with a git ref: run it in a clone, or "
        "leave it out to plan every plan named.",
    )
    return Path(os.path.realpath(top.strip()))


def changed_files(top: Path, ref: str) -> frozenset[Path]:
    """Every file of the repository at ``top`` that differs from ``ref`` (module docstring)."""
    if ref.startswith("-") or not ref.strip():
        raise ElaxError(
            f"--changed-from {ref!r} is not a git ref.",
            hint="Name a commit, branch or tag, such as origin/main.",
        )
    _git(
        top,
        "rev-parse",
        "--verify",
        f"{ref}^{{commit}}",
        failed=f"--changed-from {ref}: no such commit, branch or tag in the repository {top}.",
        hint="Name a ref that exists there; in CI, fetch it first (GitHub Actions: "
        "actions/checkout with fetch-depth: 0, then --changed-from origin/<base branch>).",
    )
    base = _merge_base(top, ref)
    diff = _git(
        top,
        "diff",
        "--name-only",
        "--no-renames",
        "-z",
        base,
        "--",
        failed=f"--changed-from {ref}: git cannot compare the working tree with it.",
        hint="Check the ref and the repository with `git diff --name-only REF`.",
    )
    untracked = _git(
        top,
        "ls-files",
        "--others",
        "--exclude-standard",
        "-z",
        failed=f"--changed-from {ref}: git cannot list the untracked files of {top}.",
        hint="Check the repository with `git status`.",
    )
    names = [n for n in (diff + "\0" + untracked).split("\0") if n]
    return frozenset(Path(os.path.realpath(top / n)) for n in names)


def _merge_base(top: Path, ref: str) -> str:
    """Where HEAD forked from ``ref`` (so changes made on ``ref`` since do not count); the
    ref itself when they share no history (or the clone is too shallow to tell)."""
    try:
        return _git(top, "merge-base", ref, "HEAD", failed="", hint="").strip()
    except ElaxError:
        return ref


def _git(folder: Path, *args: str, failed: str, hint: str) -> str:
    try:
        done = git(folder, *args, timeout=GIT_TIMEOUT_S)
    except FileNotFoundError:
        raise ElaxError(
            "--changed-from needs git, and there is no `git` on PATH.",
            hint="Install git, or leave --changed-from out to plan every plan named.",
        ) from None
    except subprocess.TimeoutExpired:
        raise ElaxError(
            f"{failed} git did not answer within {GIT_TIMEOUT_S:.0f} s (git {args[0]}).",
            hint=hint,
        ) from None
    if done.returncode != 0:
        said = " ".join(done.stderr.split()) or f"git {args[0]} exited {done.returncode}"
        raise ElaxError(failed, f"git said: {said}.", hint)
    return done.stdout
