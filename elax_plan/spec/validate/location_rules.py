"""Location rules: where the plan's URLs and paths point, checked without any network.

Owns the schemes each location may use (``state.uri``: only the backends with compare-and-swap,
and ``memory://`` only through the library's escape hatch; ``target.store`` and ``source.uri``:
protocols fsspec knows, looked up in its registry without importing any driver), the state kept
outside the store's ``namespaces/``, and ``summary.path``. Its only look outside the plan:
``summary.path`` is checked against the local filesystem (``stat`` and ``access``, nothing
created), because apply writes it there after all the work is done and must not find out only
then that it cannot.
"""

from __future__ import annotations

import difflib
import os
import re
from pathlib import Path
from typing import Any

from elax_plan.spec.locations import (
    is_local,
    is_within,
    join,
    local_path,
    resolve_location,
    scheme_of,
)
from elax_plan.spec.validate.checker import Checker, path_text, value_at
from elax_plan.spec.yaml_loader import NodePath

_CONTROL = re.compile(r"[\x00-\x1f\x7f]")

# The state backends with compare-and-swap (elax_plan.state.backend); a plain path is "file".
STATE_SCHEMES = frozenset({"file", "local", "s3", "s3a"})


def fsspec_protocols() -> frozenset[str]:
    """Every protocol fsspec can open: its table of known implementations plus registrations.

    Reads the registry only; no filesystem driver (s3fs, gcsfs…) is imported. Not cached:
    a filesystem may be registered at any time (a plugin, a test's fault-injecting store).
    """
    from fsspec.registry import known_implementations, registry

    return frozenset(known_implementations) | frozenset(registry)


def location_checks(
    checker: Checker, d: dict[str, Any], base_dir: Path, *, allow_memory_state: bool = False
) -> None:
    """Every rule on ``state.uri``, ``target.store``, ``source.uri`` and ``summary.path``."""
    if not _no_control_characters(checker, d):
        return
    _scheme_checks(checker, d, allow_memory_state)
    _state_store_checks(checker, d, base_dir)
    summary = value_at(d, ("summary", "path"))
    if isinstance(summary, str) and not is_local(summary):
        checker.add(
            ("summary", "path"),
            f"summary.path must be a local file path, not a {scheme_of(summary)}:// URL (the "
            "summary is always stored with the run under state.uri too)",
        )
    elif isinstance(summary, str) and summary:
        _summary_path_checks(checker, summary, base_dir)


def _no_control_characters(checker: Checker, d: dict[str, Any]) -> bool:
    """No location holds a control character (a NUL byte is not even a valid path)."""
    paths: list[NodePath] = [("state", "uri"), ("target", "store"), ("summary", "path")]
    uris = value_at(d, ("source", "uri"))
    if isinstance(uris, list):
        paths.extend(("source", "uri", i) for i in range(len(uris)))
    else:
        paths.append(("source", "uri"))
    clean = True
    for path in paths:
        value = value_at(d, path)
        if isinstance(value, str) and _CONTROL.search(value):
            clean = False
            checker.add(
                path,
                f"{path_text(path)} contains a control character (a NUL byte, tab or newline "
                "written as an escape); no file or URL can hold it. Remove it",
            )
    return clean


def _scheme_checks(checker: Checker, d: dict[str, Any], allow_memory_state: bool) -> None:
    state_path: NodePath = ("state", "uri")
    state = value_at(d, state_path)
    if isinstance(state, str) and state:
        scheme = scheme_of(state)
        if scheme == "memory" and not allow_memory_state:
            checker.add(
                state_path,
                "state.uri memory:// keeps the ledger and the lease in this process's memory: "
                "they vanish when it exits, so an interrupted apply cannot resume and another "
                "process cannot see the lease. Use a local path, file:// or s3://",
            )
        elif scheme not in STATE_SCHEMES and scheme != "memory":
            checker.add(
                state_path,
                f"state.uri{checker.shown(state_path, state)} uses {scheme}://, which elax-plan "
                "cannot keep state on: the ledger and the lease need compare-and-swap writes, "
                "which it has for local paths, file:// and s3:// (s3a://). Use one of those",
            )
    store = value_at(d, ("target", "store"))
    if isinstance(store, str) and store:
        _known_protocol(checker, ("target", "store"), store)
    uris = value_at(d, ("source", "uri"))
    if isinstance(uris, str):
        _known_protocol(checker, ("source", "uri"), uris)
    elif isinstance(uris, list):
        for index, uri in enumerate(uris):
            if isinstance(uri, str):
                _known_protocol(checker, ("source", "uri", index), uri)


def _known_protocol(checker: Checker, path: NodePath, url: str) -> None:
    scheme = scheme_of(url)
    known = fsspec_protocols()
    if scheme in known:
        return
    message = (
        f"{path_text(path)}{checker.shown(path, url)} uses {scheme}://, which fsspec does not "
        "know; use a local path, file://, s3://, sftp:// or another fsspec protocol"
    )
    close = difflib.get_close_matches(scheme, sorted(known), n=1, cutoff=0.6)
    if close and not checker.interpolated(path):
        message += f'; did you mean "{close[0]}://"?'
    checker.add(path, message)


def _state_store_checks(checker: Checker, d: dict[str, Any], base_dir: Path) -> None:
    store = value_at(d, ("target", "store"))
    state = value_at(d, ("state", "uri"))
    if isinstance(store, str) and isinstance(state, str) and store and state:
        store_url = resolve_location(store, base_dir)
        state_url = resolve_location(state, base_dir)
        namespaces = join(store_url, "namespaces")
        if is_within(state_url, namespaces):
            checker.add(
                ("state", "uri"),
                "state.uri is inside the target store's namespaces/ directory, where elacsym "
                "keeps namespaces; put the state elsewhere (e.g. a sibling directory or bucket)",
            )
        elif is_within(store_url, state_url) and is_within(state_url, store_url):
            checker.add(
                ("state", "uri"),
                "state.uri is the target store itself; the state's namespaces/<ns>.json would "
                "land in elacsym's namespaces/ directory. Use a separate location",
            )


def _summary_path_checks(checker: Checker, summary: str, base_dir: Path) -> None:
    """summary.path must be a file apply can write: looked up on the local filesystem.

    Only ``stat`` and ``access``: nothing is created, and nothing but this machine's
    filesystem is consulted (apply writes the file here, creating missing directories).
    """
    path: NodePath = ("summary", "path")
    shown = checker.shown(path, summary)
    hidden = checker.interpolated(path)
    target = local_path(summary, base_dir)
    if summary.endswith(("/", os.sep)):
        checker.add(
            path,
            f"summary.path{shown} ends with '/', so it names a directory; give a file name, "
            "e.g. summary.md inside it",
        )
        return
    if target.is_dir():
        example = "" if hidden else f" such as {summary.rstrip('/')}/summary.md"
        checker.add(
            path,
            f"summary.path{shown} is a directory; apply writes the summary to a file, so give "
            f"a file path{example}",
        )
        return
    if target.exists():
        if not os.access(target, os.W_OK):
            checker.add(
                path,
                f"summary.path{shown} exists and is not writable by this user; fix its "
                "permissions or choose another path",
            )
        return
    ancestor = target.parent
    while not ancestor.exists() and ancestor != ancestor.parent:
        ancestor = ancestor.parent
    where = "a parent directory" if hidden else str(ancestor)
    if not ancestor.is_dir():
        checker.add(
            path,
            f"summary.path{shown} cannot be created: {where} is a file, not a directory; "
            "choose another path",
        )
    elif not os.access(ancestor, os.W_OK | os.X_OK):
        checker.add(
            path,
            f"summary.path{shown} cannot be created: {where} is not writable by this user; "
            "fix its permissions or choose another path",
        )
