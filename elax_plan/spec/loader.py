"""``load_plan``: a plan file (or text) → ``PlanSpec``, or one ``PlanInvalid`` naming every problem.

Owns the order of the steps and the file-level problems: missing file,
directory, unreadable, too large, binary or not UTF-8. Reading the file is its
only I/O (no network, ever), and it never reads more than ``MAX_PLAN_BYTES`` + 1
bytes, whatever ``stat`` says (a device such as ``/dev/zero`` reports size 0).
Steps: bytes → text → YAML with marks → ``${…}`` interpolation → secrets
registered by field (``secret_fields``) → schema, secret and semantic checks →
``PlanSpec``.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Mapping
from pathlib import Path

import structlog

from elax_plan.spec.build import build_plan
from elax_plan.spec.interpolate import interpolate
from elax_plan.spec.issues import PlanInvalid, PlanIssue
from elax_plan.spec.model import PlanSpec
from elax_plan.spec.secret_fields import register_plan_secrets
from elax_plan.spec.validate import check
from elax_plan.spec.yaml_loader import load_yaml

# A plan is a page of YAML; anything this big is a dataset passed by mistake.
MAX_PLAN_BYTES = 4 * 1024 * 1024

_log = structlog.get_logger(__name__)


def load_plan(
    path: str | Path,
    variables: Mapping[str, str] | None = None,
    env: Mapping[str, str] | None = None,
    *,
    base_dir: Path | None = None,
    allow_memory_state: bool = False,
) -> PlanSpec:
    """Read, interpolate, validate and build the plan at ``path``.

    ``variables`` are the ``--var`` values, ``env`` defaults to ``os.environ``,
    ``base_dir`` (for relative local paths) to the current directory. Raises
    ``PlanInvalid`` (a ``PlanFileError``) listing every problem as
    ``FILE:LINE:COL: message``.

    ``state.uri: memory://`` is refused unless ``allow_memory_state`` (for tests and
    library callers that keep every step in one process): the CLI never sets it, since
    such state vanishes with the process and an interrupted apply could not resume.
    """
    shown = str(path)
    data = _read(Path(path), shown)
    return parse_plan(
        data,
        file=shown,
        variables=variables,
        env=env,
        base_dir=base_dir,
        source_path=Path(path),
        allow_memory_state=allow_memory_state,
    )


def parse_plan(
    content: bytes | str,
    *,
    file: str = "<plan>",
    variables: Mapping[str, str] | None = None,
    env: Mapping[str, str] | None = None,
    base_dir: Path | None = None,
    source_path: Path | None = None,
    allow_memory_state: bool = False,
) -> PlanSpec:
    """``load_plan`` for content already in memory (``file`` names it in messages)."""
    raw = content.encode("utf-8") if isinstance(content, str) else content
    digest = hashlib.sha256(raw).hexdigest()
    text = _decode(raw, file)
    loaded = load_yaml(text, file)
    given = dict(variables or {})
    interpolated = interpolate(
        loaded.data,
        loaded.marks,
        file=file,
        variables=given,
        env=os.environ if env is None else env,
    )
    # Before anything can show a value: every message from here on is scrubbed of them.
    register_plan_secrets(interpolated.data, interpolated.values)
    base = base_dir if base_dir is not None else Path.cwd()
    validated, issues = check(
        interpolated.data,
        loaded.marks,
        interpolated.sources,
        file=file,
        base_dir=base,
        silenced=interpolated.failed,
        allow_memory_state=allow_memory_state,
    )
    issues = interpolated.issues + issues
    if issues or validated is None:
        raise PlanInvalid(file, issues)
    unused = sorted(set(given) - interpolated.used_variables)
    if unused:
        _log.warning(
            "--var given but not used by the plan",
            file=file,
            variables=unused,
            hint="check the spelling of ${var.NAME} in the plan",
        )
    spec = build_plan(
        validated,
        source_path=(source_path or Path(file)).absolute(),
        digest=digest,
        base_dir=base,
    )
    _log.debug("plan loaded", file=file, name=spec.name, digest=digest)
    return spec


def _read(path: Path, shown: str) -> bytes:
    try:
        if path.is_dir():
            raise PlanInvalid(
                shown, [PlanIssue(shown, "is a directory; give the path of a plan YAML file")]
            )
        # Read at most one byte past the limit whatever stat says: a device or a pipe
        # (/dev/zero, /dev/stdin) reports size 0 and may never end.
        with path.open("rb") as handle:
            data = handle.read(MAX_PLAN_BYTES + 1)
            size = os.fstat(handle.fileno()).st_size
        if len(data) > MAX_PLAN_BYTES:
            if size > MAX_PLAN_BYTES:
                amount = f"is {size:,} bytes"
            else:
                amount = f"is larger than 4MiB ({MAX_PLAN_BYTES:,} bytes)"
            raise PlanInvalid(
                shown,
                [
                    PlanIssue(
                        shown,
                        f"{amount}; a plan file is at most {MAX_PLAN_BYTES:,} bytes "
                        "(is this a dataset? point source.uri at data, and elax-plan at the plan)",
                    )
                ],
            )
        return data
    except FileNotFoundError:
        raise PlanInvalid(
            shown,
            [
                PlanIssue(
                    shown,
                    f"no such file (looked in {Path.cwd()}); check the path, or start from "
                    "plans/quickstart.yaml",
                )
            ],
        ) from None
    except PermissionError:
        raise PlanInvalid(
            shown, [PlanIssue(shown, "permission denied; make the file readable to this user")]
        ) from None
    except OSError as exc:
        raise PlanInvalid(
            shown, [PlanIssue(shown, f"cannot be read ({exc.strerror or exc}); check the path")]
        ) from None
    except ValueError:  # "embedded null byte": no file has such a name
        raise PlanInvalid(
            shown, [PlanIssue(shown, "the path contains a NUL character; check the path")]
        ) from None


def _decode(raw: bytes, file: str) -> str:
    if raw.startswith((b"\xff\xfe", b"\xfe\xff")):
        raise PlanInvalid(
            file,
            [PlanIssue(file, "is UTF-16 text; save it as UTF-8 (every editor can)", 1, 1)],
        )
    nul = raw.find(b"\x00")
    if nul >= 0:
        line, column = _byte_position(raw, nul)
        raise PlanInvalid(
            file,
            [
                PlanIssue(
                    file,
                    "contains a NUL byte: this is a binary file, not a YAML plan; check the path",
                    line,
                    column,
                )
            ],
        )
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line, column = _byte_position(raw, exc.start)
        raise PlanInvalid(
            file,
            [
                PlanIssue(
                    file,
                    "is not valid UTF-8 text here (a binary file, or another encoding such as "
                    "Latin-1); save the plan as UTF-8",
                    line,
                    column,
                )
            ],
        ) from None


def _byte_position(raw: bytes, index: int) -> tuple[int, int]:
    line_start = raw.rfind(b"\n", 0, index) + 1
    line = raw.count(b"\n", 0, index) + 1
    column = len(raw[line_start:index].decode("utf-8", errors="replace")) + 1
    return line, column
