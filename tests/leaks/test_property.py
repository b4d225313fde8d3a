"""Property: whatever plan carries secrets, wherever they may be interpolated, no output has them.

Hypothesis draws plans with sentinel secrets in every field that may hold one:
``target.api_key``; credential keys of ``target.storage_options`` and
``state.storage_options`` (flat, nested under ``client_kwargs``, or a whole
``credentials`` mapping); ``Authorization`` and ``X-Api-Key`` headers in
``source.storage_options``; the credential parameters of one or two signed
source URLs (``sig``, ``X-Amz-Signature``, ``token``… beside ordinary ones);
and, for a remote target, the user and password of ``target.url`` (a query
string there is refused by validate). Each is referenced as ``${NAME}``, ``${NAME:-default}`` or
``${var.NAME}`` (``--var``), under a random variable name that looks like no
credential, so only the field decides. Values use the characters real tokens
use.

For each plan the real CLI runs in-process (``cli.run``): ``validate`` (text
and json), ``plan`` (text with ``--out``, markdown, json with JSON debug logs)
and, for the embedded target, ``apply`` with ``--debug`` and debug logs,
``status`` and ``summary``. Every byte printed and every file under the
example's folder (state, store, saved plan, summary copy) is searched for every
sentinel: zero hits. ``SignedSource`` refuses requests without the drawn
signature, so a passing apply also shows the real URL was used to read.
"""

from __future__ import annotations

import contextlib
import io
import os
import string
import tempfile
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from elax_plan.cli._group import run
from elax_plan.spec.secrets import is_credential_env_name
from tests.apply.support import make_dataset
from tests.leaks.support import SignedSource, haystack, leaks

URL_SAFE = string.ascii_letters + string.digits + "-._~"
TOKEN_CHARS = URL_SAFE + "+/="
CREDENTIAL_PARAMS = ["X-Amz-Signature", "X-Amz-Credential", "token", "access_token", "api_key"]
ORDINARY_PARAMS = ["sv", "sp", "se", "versionId", "X-Amz-Date"]
OPTION_KEYS = ["key", "secret", "token", "password", "aws_session_token", "account_key"]


@dataclass
class Case:
    """One drawn plan: its text, its variables (env and --var) and the secrets it holds."""

    yaml: str = ""
    env: dict[str, str] = field(default_factory=dict)
    variables: dict[str, str] = field(default_factory=dict)
    secrets: dict[str, str] = field(default_factory=dict)
    sig: str = ""
    bearer: str = ""
    embedded: bool = True


class _Refs:
    """Draws a variable name and reference form for each secret, and records its value."""

    def __init__(self, draw: st.DrawFn, case: Case) -> None:
        self.draw = draw
        self.case = case
        self.tag = uuid.uuid4().hex[:8]
        self.last = ""  # the value of the last secret drawn

    def secret(self, label: str, alphabet: str = TOKEN_CHARS) -> str:
        """A new sentinel for ``label``; the ``${…}`` text that puts it into the plan."""
        body = self.draw(st.text(alphabet=alphabet, min_size=6, max_size=24))
        value = f"SnT{self.tag}{len(self.case.secrets):02d}{body}"
        name = self.draw(
            st.from_regex(r"\A[A-Z][A-Z0-9_]{2,12}\Z").filter(
                lambda n: not is_credential_env_name(n)
            )
        )
        name = f"P{len(self.case.secrets):02d}_{name}"
        self.case.secrets[f"{label} ({name})"] = value
        self.last = value
        form = self.draw(st.sampled_from(["env", "default", "var"]))
        if form == "var":
            self.case.variables[name] = value
            return f"${{var.{name}}}"
        self.case.env[name] = value
        return f"${{{name}:-unused}}" if form == "default" else f"${{{name}}}"


def _options(refs: _Refs, label: str, indent: str) -> str:
    """YAML lines of storage options holding drawn credentials (LocalFileSystem takes any)."""
    keys = refs.draw(st.lists(st.sampled_from(OPTION_KEYS), min_size=1, max_size=3, unique=True))
    lines = [f"{indent}{k}: '{refs.secret(f'{label}.{k}')}'" for k in keys]
    shape = refs.draw(st.sampled_from(["flat", "client_kwargs", "credentials"]))
    if shape == "client_kwargs":
        secret = refs.secret(f"{label}.client_kwargs")
        lines.append(f"{indent}client_kwargs: {{aws_secret_access_key: '{secret}'}}")
    elif shape == "credentials":
        lines.append(f"{indent}credentials: {{anything: '{refs.secret(f'{label}.credentials')}'}}")
    return "\n".join(lines)


@st.composite
def cases(draw: st.DrawFn, base_url: str, root: str) -> Case:
    """A plan with sentinels in every field that may carry a secret (see the module doc)."""
    case = Case()
    refs = _Refs(draw, case)
    case.embedded = draw(st.booleans())
    if case.embedded:
        url = "embedded"
    else:
        user, password = refs.secret("url.user", URL_SAFE), refs.secret("url.password", URL_SAFE)
        url = f"http://{user}:{password}@127.0.0.1:9"
    sig_ref, case.sig = refs.secret("source.sig", URL_SAFE), refs.last
    bearer_ref, case.bearer = refs.secret("source.bearer"), refs.last
    uris = []
    for name in draw(st.lists(st.sampled_from(["c-000", "c-001"]), min_size=1, unique=True)):
        params = [f"sig={sig_ref}"]
        for param in draw(st.lists(st.sampled_from(CREDENTIAL_PARAMS), max_size=2, unique=True)):
            params.append(f"{param}={refs.secret(f'source.{param}', URL_SAFE)}")
        for param in draw(st.lists(st.sampled_from(ORDINARY_PARAMS), max_size=2, unique=True)):
            params.append(f"{param}=v1")
        order = draw(st.permutations(params))
        uris.append(f"{base_url}/{name}.ndjson?{'&'.join(order)}")
    api_key = refs.secret("target.api_key")
    headers = f'Authorization: "Bearer {bearer_ref}"'
    if draw(st.booleans()):
        headers += f', X-Api-Key: "{refs.secret("source.x-api-key")}"'
    uri_lines = "\n".join(f"    - {u}" for u in uris)
    case.yaml = f"""version: 1
name: prop
target:
  url: {url}
  api_key: {api_key}
  store: {root}/store
  storage_options:
{_options(refs, "target.storage_options", "    ")}
  namespace: docs
  distance_metric: cosine
  timeout: 2s
source:
  uri:
{uri_lines}
  format: ndjson
  storage_options:
    headers: {{{headers}}}
state:
  uri: {root}/state
  storage_options:
{_options(refs, "state.storage_options", "    ")}
verify:
  index_timeout: 30s
summary:
  path: {root}/out/summary.md
"""
    return case


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SignedSource]:
    """Two small NDJSON files behind a signature-checking server, for the whole module."""
    folder = tmp_path_factory.mktemp("served")
    make_dataset(folder, files=2, rows=12, dims=4, prefix="c")
    server = SignedSource(folder)
    yield server
    server.close()


def _run(args: list[str], outputs: list[tuple[str, str]]) -> int:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = run(args)
    outputs.append((" ".join(args[:4]), out.getvalue() + err.getvalue()))
    return code


@contextlib.contextmanager
def _environment(values: dict[str, str]) -> Iterator[None]:
    saved = {k: os.environ.get(k) for k in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


@settings(
    max_examples=25,
    deadline=None,
    database=None,  # examples hold sentinel secrets: never written to .hypothesis/
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(data=st.data())
def test_no_drawn_secret_reaches_any_output(served: SignedSource, data: st.DataObject) -> None:
    """validate, plan (every format, --out) and apply/status/summary print and write no secret."""
    server = served
    with tempfile.TemporaryDirectory() as folder:
        root = Path(folder)
        case = data.draw(cases(server.base_url, folder))
        server.expect(case.sig, case.bearer)
        plan = root / "plan.yaml"
        plan.write_text(case.yaml)
        assert not any(v in case.yaml for v in case.secrets.values())
        var_args = [a for n, v in case.variables.items() for a in ("--var", f"{n}={v}")]
        saved = str(root / "saved.elaxplan")
        outputs: list[tuple[str, str]] = []
        json_debug = ["--log-format", "json", "--log-level", "debug"]
        with _environment(case.env):
            codes = [
                _run(["validate", str(plan), *var_args], outputs),
                _run(["validate", str(plan), "--format", "json", *var_args], outputs),
                _run(["plan", str(plan), "--out", saved, *var_args], outputs),
                _run(["plan", str(plan), "--format", "markdown", *var_args], outputs),
                _run([*json_debug, "plan", str(plan), "--format", "json", *var_args], outputs),
            ]
            if case.embedded:
                debug = ["--debug", "--log-level", "debug"]
                codes.append(_run([*debug, "apply", saved, *var_args], outputs))
                codes.append(_run(["status", str(plan), *var_args], outputs))
                codes.append(_run(["summary", str(plan), *var_args], outputs))
        expected = [0] * 8 if case.embedded else [0, 0, 1, 1, 1]
        assert codes == expected, outputs
        shown = "".join(text for _, text in outputs)
        assert "sig=***" in shown, "the source files are named, their signature masked"
        assert leaks(case.secrets, haystack(outputs, [root])) == []
