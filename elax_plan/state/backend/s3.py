"""``S3Backend``: ``s3://`` with conditional PUT and DELETE (``If-None-Match``/``If-Match``).

Single-request PUTs with ``If-None-Match: *`` (create) and ``If-Match: <ETag>``
(replace), ``DeleteObject`` with ``If-Match``; reads are one ``GetObject`` so
the bytes and the ETag come from the same object version. The calls go through
s3fs's ``_call_s3`` (its session, retries and error translation); s3fs forwards
``IfNoneMatch``/``IfMatch`` to botocore unchanged. A 412 ``PreconditionFailed``
(or a 409 ``ConditionalRequestConflict``, which AWS returns when two
conditional writes race) becomes ``Conflict``. Objects are always below the
5 GB single-PUT limit, so s3fs never switches to a multipart upload that would
drop the condition. ``append_lines`` is the base class's compare-and-swap loop.

A missing bucket, refused credentials or an unreachable endpoint become a
``StateError`` naming the state URL (never the credentials) and what to check.
It must not know what the bytes mean.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import fsspec.asyn

from elax_plan.errors import Conflict, StateError
from elax_plan.spec.secrets import display_url, redact
from elax_plan.state.backend.base import StateBackend, Versioned, check_key

__all__ = ["S3Backend"]

_CONDITION_FAILED = {"PreconditionFailed", "ConditionalRequestConflict", "412", "409"}
_ACCESS_DENIED = {
    "AccessDenied",
    "InvalidAccessKeyId",
    "SignatureDoesNotMatch",
    "ExpiredToken",
    "InvalidToken",
    "AllAccessDisabled",
    "403",
}


def _client_error(exc: BaseException) -> tuple[str, str] | None:
    """(code, message) of the botocore ``ClientError`` behind an s3fs exception, if any."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        response = getattr(current, "response", None)
        if isinstance(response, Mapping):
            error = response.get("Error") or {}
            code = str(error.get("Code") or "")
            status = response.get("ResponseMetadata", {}).get("HTTPStatusCode")
            return code or str(status or ""), str(error.get("Message") or "")
        current = current.__cause__ or current.__context__
    return None


def _is_unreachable(exc: BaseException) -> bool:
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        name = type(current).__name__
        if name in {
            "EndpointConnectionError",
            "ConnectTimeoutError",
            "ReadTimeoutError",
            "ConnectionClosedError",
            "ClientConnectorError",
            "ServerDisconnectedError",
        } or isinstance(current, ConnectionError | TimeoutError):
            return True
        current = current.__cause__ or current.__context__
    return False


class S3Backend(StateBackend):
    """``s3://``: conditional PUT/DELETE through s3fs's client (``If-None-Match``/``If-Match``)."""

    def __init__(self, url: str, fs: Any, root: str, endpoint: str | None) -> None:
        super().__init__(url)
        self._fs = fs
        bucket, _, prefix = root.strip("/").partition("/")
        self.bucket = bucket
        self.prefix = prefix.strip("/")
        self._endpoint = display_url(endpoint) if endpoint else "the default AWS endpoint"

    def _key(self, key: str) -> str:
        check_key(key)
        return f"{self.prefix}/{key}" if self.prefix else key

    def _call(self, method: str, key: str, action: str, **kwargs: Any) -> dict[str, Any]:
        """One S3 call; missing objects and failed conditions come back as codes."""
        fs = self._fs

        async def run() -> dict[str, Any]:
            resp: dict[str, Any] = await fs._call_s3(method, Bucket=self.bucket, **kwargs)
            body = resp.get("Body")
            if body is not None:
                try:
                    resp["Data"] = await body.read()
                finally:
                    body.close()
            return resp

        try:
            return dict(fsspec.asyn.sync(fs.loop, run))
        except Exception as exc:
            raise self._translate(exc, key, action) from exc

    def _translate(self, exc: Exception, key: str, action: str) -> Exception:
        where = self.location(key)
        error = _client_error(exc)
        code, message = error if error else ("", "")
        if code in _CONDITION_FAILED:
            return _ConditionFailed()
        if code in {"NoSuchKey", "404"} or (not code and isinstance(exc, FileNotFoundError)):
            return _Missing()
        if code == "NoSuchBucket":
            return StateError(
                f"Cannot {action} {where}: bucket '{self.bucket}' does not exist"
                f" at {self._endpoint}.",
                None,
                "Create the bucket, or fix state.uri (and endpoint_url in state.storage_options)"
                " in the plan.",
            )
        if code in _ACCESS_DENIED or isinstance(exc, PermissionError):
            return StateError(
                f"Cannot {action} {where}: access denied by {self._endpoint}"
                f" ({redact(message or code or str(exc))}).",
                "elax-plan needs s3:GetObject, s3:PutObject, s3:DeleteObject and s3:ListBucket"
                " on the state location.",
                "Check the credentials (state.storage_options, AWS_PROFILE or the environment)"
                " and the bucket policy.",
            )
        if _is_unreachable(exc):
            return StateError(
                f"Cannot {action} {where}: the S3 endpoint {self._endpoint} is unreachable"
                f" ({type(exc).__name__}).",
                None,
                "Check endpoint_url in state.storage_options, the network, and that the"
                " S3 service is running; then retry.",
            )
        detail = f"{code}: {message}" if code else f"{type(exc).__name__}: {exc}"
        return StateError(
            f"Cannot {action} {where}: S3 answered {redact(detail)}.",
            None,
            "Check state.uri and state.storage_options in the plan, then retry.",
        )

    def read(self, key: str) -> Versioned | None:
        try:
            resp = self._call("get_object", key, "read", Key=self._key(key))
        except _Missing:
            return None
        return Versioned(bytes(resp["Data"]), str(resp["ETag"]))

    def _conditional_put(self, key: str, data: bytes, operation: str, **cond: str) -> str:
        try:
            resp = self._call("put_object", key, "write", Key=self._key(key), Body=data, **cond)
        except (_ConditionFailed, _Missing):
            raise Conflict(self.location(key), operation, self.read(key)) from None
        return str(resp["ETag"])

    def _create(self, key: str, data: bytes) -> str:
        return self._conditional_put(key, data, "create", IfNoneMatch="*")

    def _replace(self, key: str, data: bytes, expected_version: str) -> str:
        return self._conditional_put(key, data, "replace", IfMatch=expected_version)

    def _put(self, key: str, data: bytes) -> str:
        resp = self._call("put_object", key, "write", Key=self._key(key), Body=data)
        return str(resp["ETag"])

    def delete(self, key: str, expected_version: str | None = None) -> None:
        cond = {} if expected_version is None else {"IfMatch": expected_version}
        try:
            self._call("delete_object", key, "delete", Key=self._key(key), **cond)
        except (_ConditionFailed, _Missing):
            if expected_version is None:
                return
            raise Conflict(self.location(key), "delete", self.read(key)) from None

    def list(self, prefix: str) -> list[str]:
        base = self._key(prefix.rstrip("/"))
        path = f"{self.bucket}/{base}"
        try:
            self._fs.invalidate_cache(path)
            found = self._fs.find(path)
        except FileNotFoundError:
            return []
        except Exception as exc:
            raise self._translate(exc, prefix, "list") from exc
        start = len(self.bucket) + 1 + (len(self.prefix) + 1 if self.prefix else 0)
        return sorted(str(p)[start:] for p in found if str(p).startswith(path + "/"))


class _ConditionFailed(Exception):
    """Internal: S3 refused a condition (412/409); turned into ``Conflict`` by the caller."""


class _Missing(Exception):
    """Internal: S3 said NoSuchKey."""
