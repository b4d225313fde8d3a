"""Which values of a plan are secrets, decided by the field they are in; registers them.

Owns the rule that fills the registry of ``secrets`` from a plan just after
interpolation, before validation (so even an invalid plan's messages are
scrubbed). A value is a secret when it is in one of these fields:

- ``target.api_key`` and ``verify.compare.baseline.api_key``: the whole value;
- ``storage_options`` of ``target``, ``source`` and ``state``: every string
  under a key named like a credential (``key``, ``secret``, ``token``,
  ``aws_secret_access_key``, ``client_kwargs.aws_session_token``, everything
  under ``credentials: {…}``…), at any depth;
- a URL anywhere in the plan (``source.uri`` and its list items,
  ``target.url``, ``target.store``, ``state.uri``, an ``endpoint_url``…): its
  credential parts (``secrets.url_credentials``: the value of ``sig=``,
  ``X-Amz-Signature=``, ``token=``…, and the user info's password).

Every value interpolated into such a field or part is registered too, on its
own. So ``…/c1.ndjson?sig=${SRC_SIG}`` makes the value of ``SRC_SIG`` a
secret because it is a URL's signature, whatever the variable is called
(``interpolate`` adds, besides, the values of variables *named* like
credentials wherever they are used). Values shorter than
``secrets.MIN_REDACT_LENGTH`` are not registered (``register_secret``).

It does not validate (a credential written in the plan file itself is
``validate``'s error) and does no I/O.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from elax_plan.spec.secrets import is_credential_name, register_secret, url_credentials
from elax_plan.spec.yaml_loader import NodePath

__all__ = ["register_plan_secrets", "secret_values"]

_OPTION_SECTIONS = frozenset({"target", "source", "state"})


def register_plan_secrets(
    data: Any, substituted: Mapping[NodePath, tuple[str, ...]] | None = None
) -> None:
    """Register every secret ``data`` (the interpolated plan) holds, by field.

    ``substituted`` maps a path to the values ``${…}`` put there (``Interpolated.values``).
    """
    values = substituted or {}
    for path, text in _strings(data, ()):
        for secret in secret_values(path, text, values.get(path, ())):
            register_secret(secret)


def secret_values(path: NodePath, text: str, substituted: tuple[str, ...] = ()) -> list[str]:
    """The secrets in the string ``text`` at ``path``, given the values interpolated into it."""
    if is_credential_field(path):
        return [text, *substituted]
    parts = url_credentials(text)
    inside = [v for v in substituted if v and any(v in part for part in parts)]
    return [*parts, *inside]


def is_credential_field(path: NodePath) -> bool:
    """Whether the value at ``path`` is a credential as a whole (api_key, storage credentials)."""
    if path in (("target", "api_key"), ("verify", "compare", "baseline", "api_key")):
        return True
    return (
        len(path) >= 3
        and path[0] in _OPTION_SECTIONS
        and path[1] == "storage_options"
        and any(isinstance(p, str) and is_credential_name(p) for p in path[2:])
    )


def _strings(value: Any, path: NodePath) -> Iterator[tuple[NodePath, str]]:
    if isinstance(value, str):
        yield path, value
    elif isinstance(value, Mapping):
        for key, child in value.items():
            yield from _strings(child, (*path, key))
    elif isinstance(value, list | tuple):
        for index, child in enumerate(value):
            yield from _strings(child, (*path, index))
