"""Secret rules: credentials may only come from interpolation, never from the plan's text.

Owns refusing a literal ``target.api_key``, credential-like storage options and passwords
in URLs, and registering interpolated ones for redaction. Must never quote such a value.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from elax_plan.spec.secrets import is_credential_name, register_secret
from elax_plan.spec.validate.checker import Checker, path_text, value_at
from elax_plan.spec.yaml_loader import NodePath

_SECRET_OPTION_SECTIONS = (("target",), ("source",), ("state",))
_URL_PATHS: tuple[NodePath, ...] = (
    ("target", "url"),
    ("target", "store"),
    ("state", "uri"),
    ("verify", "workload"),
    ("verify", "compare", "baseline", "url"),
    ("verify", "compare", "baseline", "results"),
)
API_KEY_PATHS: tuple[NodePath, ...] = (
    ("target", "api_key"),
    ("verify", "compare", "baseline", "api_key"),
)


def secret_issues(checker: Checker, data: dict[str, Any]) -> None:
    """Literal credentials in ``data``; interpolated ones are registered for redaction."""
    for path in API_KEY_PATHS:
        api_key = value_at(data, path)
        if isinstance(api_key, str) and api_key and not checker.interpolated(path):
            checker.add(
                path,
                f"{path_text(path)} is written in the plan file; secrets may only come from the "
                "environment: write api_key: ${ELAX_API_KEY} and export ELAX_API_KEY",
            )
        elif isinstance(api_key, str) and api_key:
            register_secret(api_key)
    for section in _SECRET_OPTION_SECTIONS:
        options = value_at(data, (*section, "storage_options"))
        if isinstance(options, dict):
            _check_options(checker, (*section, "storage_options"), options)
    for url_path in _URL_PATHS:
        _check_url_password(checker, url_path, value_at(data, url_path))
    uris = value_at(data, ("source", "uri"))
    if isinstance(uris, str):
        _check_url_password(checker, ("source", "uri"), uris)
    elif isinstance(uris, list):
        for index, uri in enumerate(uris):
            _check_url_password(checker, ("source", "uri", index), uri)


def _check_options(checker: Checker, path: NodePath, options: dict[str, Any]) -> None:
    for key, value in options.items():
        child: NodePath = (*path, key)
        if isinstance(value, dict):
            _check_options(checker, child, value)
            continue
        if not is_credential_name(key) or value in (None, "", False):
            continue
        if checker.interpolated(child) and isinstance(value, str):
            register_secret(value)
            continue
        checker.add(
            child,
            f"{path_text(child)} looks like a credential written in the plan file; secrets may "
            f"only come from the environment: write {key}: ${{SOME_ENV_VAR}} and export it",
        )


def _check_url_password(checker: Checker, path: NodePath, url: Any) -> None:
    if not isinstance(url, str) or "@" not in url:
        return
    try:
        password = urlsplit(url).password
    except ValueError:
        return
    if not password:
        return
    if checker.interpolated(path):
        register_secret(password)
        return
    checker.add(
        path,
        f"{path_text(path)} has a password written in the URL; secrets may only come from the "
        "environment: write the password part as ${SOME_ENV_VAR}",
    )
