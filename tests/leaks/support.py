"""What the secret-leak tests share: a signed HTTP source, sentinel secrets, and the haystack.

``SignedSource`` serves a folder over HTTP on loopback and answers only requests
that carry the right ``sig`` query parameter and ``Authorization`` header, like a
presigned object URL behind an authenticating proxy: a plan that reads rows from
it proves the real, signed URL was used, while every output must show
``sig=***``. It never logs a request (the URL holds the signature).

``haystack`` gathers everything a run could have put a secret into: captured
output, every file under the test's folder, every object in the buckets.
"""

from __future__ import annotations

import functools
import os
import subprocess
import sys
import threading
import uuid
from collections.abc import Iterable, Mapping
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, quote, urlsplit

REPO_ROOT = Path(__file__).resolve().parents[2]


def sentinel(label: str) -> str:
    """A unique value that cannot occur by chance in any output."""
    return f"leak-{label}-{uuid.uuid4().hex[:16]}"


class _SignedServer(ThreadingHTTPServer):
    sig: str
    bearer: str
    refused: int
    served: list[str]


class _SignedHandler(SimpleHTTPRequestHandler):
    server: _SignedServer

    def _allowed(self) -> bool:
        query = parse_qs(urlsplit(self.path).query)
        header = self.headers.get("Authorization")
        if query.get("sig") == [self.server.sig] and header == f"Bearer {self.server.bearer}":
            self.server.served.append(urlsplit(self.path).path)
            return True
        self.server.refused += 1
        self.send_error(403)
        return False

    def do_GET(self) -> None:
        if self._allowed():
            super().do_GET()

    def do_HEAD(self) -> None:
        if self._allowed():
            super().do_HEAD()

    def log_message(self, format: str, *args: Any) -> None:
        """Silent: the request line holds the signature."""


class SignedSource:
    """An HTTP server on 127.0.0.1 for ``root``; see the module docstring."""

    def __init__(self, root: Path, sig: str = "", bearer: str = "") -> None:
        handler = functools.partial(_SignedHandler, directory=str(root))
        self._server = _SignedServer(("127.0.0.1", 0), handler)
        self._server.sig, self._server.bearer = sig, bearer
        self._server.refused, self._server.served = 0, []
        self.base_url = f"http://127.0.0.1:{self._server.server_address[1]}"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    def expect(self, sig: str, bearer: str) -> None:
        """Accept only this signature and bearer token from now on."""
        self._server.sig, self._server.bearer = sig, bearer

    @property
    def served(self) -> list[str]:
        return self._server.served

    @property
    def refused(self) -> int:
        return self._server.refused

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(10)


def forms(value: str) -> set[str]:
    """A secret as it could appear anywhere: raw, percent-encoded, JSON-escaped."""
    return {value, quote(value, safe=""), value.replace("/", "\\/")}


def haystack(
    outputs: Iterable[tuple[str, str]],
    folders: Iterable[Path] = (),
    objects: Mapping[str, bytes] | None = None,
) -> dict[str, bytes]:
    """Everything to search: ``(name, text)`` outputs, files in or under ``folders``, objects."""
    found: dict[str, bytes] = {name: text.encode() for name, text in outputs}
    for folder in folders:
        paths = sorted(folder.rglob("*")) if folder.is_dir() else [folder]
        for path in paths:
            if path.is_file() and not path.is_symlink():
                found[str(path)] = path.read_bytes()
    found.update(objects or {})
    return found


def leaks(secrets: Mapping[str, str], places: Mapping[str, bytes]) -> list[str]:
    """Every (secret name, place) where a form of the secret occurs; [] is the goal."""
    return [
        f"{name} in {where}"
        for name, value in secrets.items()
        for where, content in places.items()
        if any(form.encode() in content for form in forms(value))
    ]


def bucket_objects(fs: Any, *buckets: str) -> dict[str, bytes]:
    """Every object under the given buckets (an ``s3fs`` filesystem), by path."""
    fs.invalidate_cache()
    found: dict[str, bytes] = {}
    for bucket in buckets:
        for path in fs.find(bucket):
            found[f"s3://{path}"] = fs.cat_file(path)
    return found


def run_faulty_cli(
    *args: str, env: Mapping[str, str], timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    """``elax-plan ARGS`` in a subprocess with the test-only fault of ``tests.leaks.fault``."""
    return subprocess.run(
        [sys.executable, "-m", "tests.leaks.fault", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        stdin=subprocess.DEVNULL,
        cwd=REPO_ROOT,
        env={**os.environ, **env, "PYTHONPATH": _python_path()},
    )


def _python_path() -> str:
    """PYTHONPATH with the repository last, so ``tests`` imports and an existing path wins."""
    existing = os.environ.get("PYTHONPATH")
    return f"{existing}{os.pathsep}{REPO_ROOT}" if existing else str(REPO_ROOT)
