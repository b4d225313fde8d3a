"""Measure the emulator's ingest ceiling: MB/s of ~1 MiB write bodies from one client.

Starts ``elax-plan emulator`` as a separate process on a temporary file:// store
(the way benchmarks and operators run it), pre-builds the bodies (768-d
float vectors, a few text attributes), then posts them one after another over
a keep-alive connection. Prints one JSON line with the figures.

    .venv/bin/python -m benchmarks.emulator_ingest [--requests 200] [--dims 768]
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import numpy as np
import orjson

# The ceiling is measured with the background indexer running beside the writes (the
# design's indexer fleet), as it always was; `-- --indexer none` measures the API path alone
# (a later --indexer wins).
DEFAULT_ARGS = ("--indexer", "background")


def build_bodies(count: int, dims: int, target_bytes: int, seed: int = 7) -> list[bytes]:
    rng = np.random.default_rng(seed)
    bodies: list[bytes] = []
    next_id = 0
    for _ in range(count):
        docs: list[bytes] = []
        size = len(b'{"upserts":[]}')
        while True:
            vec = rng.standard_normal(dims).astype(np.float32)
            doc = orjson.dumps(
                {
                    "id": str(next_id),
                    "vector": vec,
                    "attributes": {"title": f"product {next_id}", "category": f"c{next_id % 17}"},
                },
                option=orjson.OPT_SERIALIZE_NUMPY,
            )
            if size + len(doc) + 1 > target_bytes and docs:
                break
            docs.append(doc)
            size += len(doc) + 1
            next_id += 1
        bodies.append(b'{"upserts":[' + b",".join(docs) + b"]}")
    return bodies


def start_emulator(store: str, *extra: str) -> tuple[subprocess.Popen[str], str]:
    proc = subprocess.Popen(
        [sys.executable, "-m", "elax_plan", "emulator", "--store", store, "--port", "0", *extra],
        stdout=subprocess.PIPE,
        text=True,
    )
    line: list[str] = []
    reader = threading.Thread(target=lambda: line.append(proc.stdout.readline()))  # type: ignore[union-attr]
    reader.start()
    reader.join(60)
    if not line or " listening on " not in line[0]:
        proc.kill()
        raise SystemExit("emulator did not start")
    return proc, line[0].split(" listening on ", 1)[1].split(" ", 1)[0]


@contextmanager
def running_emulator(store: str, *extra: str) -> Iterator[str]:
    """An emulator process on ``store`` for the ``with`` block; yields its URL, then stops it."""
    proc, url = start_emulator(store, *extra)
    try:
        yield url
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(30)


def replay(
    url: str,
    namespace: str,
    bodies: Sequence[bytes],
    concurrency: int = 1,
    library: str = "http.client",
) -> float:
    """POST ``bodies`` in order from ``concurrency`` keep-alive connections; seconds taken.

    The minimal client: one connection per thread, each thread taking the next body as soon as
    its previous one is acknowledged. Every answer must be 200 with a ``wal_sequence`` (the
    same acknowledgement check apply makes). ``library``: stdlib ``http.client`` (the baseline)
    or ``httpx`` (the HTTP library apply uses, to show what it costs by itself).
    """
    parts = urlsplit(url)
    path = f"/v2/namespaces/{namespace}"
    headers = {"content-type": "application/json"}
    lock = threading.Lock()
    next_body = iter(range(len(bodies)))
    errors: list[BaseException] = []

    def stdlib_poster() -> tuple[Callable[[bytes], tuple[int, bytes]], Callable[[], None]]:
        conn = http.client.HTTPConnection(parts.hostname or "127.0.0.1", parts.port, timeout=120)

        def post(body: bytes) -> tuple[int, bytes]:
            conn.request("POST", path, body=body, headers=headers)
            response = conn.getresponse()
            return response.status, response.read()

        return post, conn.close

    def httpx_poster() -> tuple[Callable[[bytes], tuple[int, bytes]], Callable[[], None]]:
        client = httpx.Client(base_url=url, timeout=120)

        def post(body: bytes) -> tuple[int, bytes]:
            response = client.post(path, content=body, headers=headers)
            return response.status_code, response.content

        return post, client.close

    poster = {"http.client": stdlib_poster, "httpx": httpx_poster}[library]

    def worker() -> None:
        post, close = poster()
        try:
            while True:
                with lock:
                    i = next(next_body, None)
                if i is None or errors:
                    return
                status, answer = post(bodies[i])
                if status != 200 or "wal_sequence" not in orjson.loads(answer):
                    raise RuntimeError(f"POST {path} answered {status}: {answer[:200]!r}")
        except BaseException as exc:
            errors.append(exc)
        finally:
            close()

    threads = [threading.Thread(target=worker) for _ in range(max(1, concurrency))]
    start = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    elapsed = time.perf_counter() - start
    if errors:
        raise errors[0]
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=200)
    parser.add_argument("--dims", type=int, default=768)
    parser.add_argument("--body-bytes", type=int, default=1024 * 1024)
    parser.add_argument(
        "emulator_args",
        nargs="*",
        help="extra emulator flags after --, e.g. -- --indexer none (the API path alone)",
    )
    args = parser.parse_args()
    bodies = build_bodies(args.requests, args.dims, args.body_bytes)
    total = sum(len(b) for b in bodies)
    with tempfile.TemporaryDirectory(prefix="elax-bench-") as tmp:
        store = Path(tmp, "store").as_uri()
        proc, url = start_emulator(store, *DEFAULT_ARGS, *args.emulator_args)
        try:
            with httpx.Client(base_url=url, timeout=60) as client:
                headers = {"content-type": "application/json"}
                client.post("/v2/namespaces/warmup", content=bodies[0], headers=headers)
                start = time.perf_counter()
                for body in bodies:
                    r = client.post("/v2/namespaces/bench", content=body, headers=headers)
                    r.raise_for_status()
                elapsed = time.perf_counter() - start
        finally:
            proc.send_signal(signal.SIGTERM)
            proc.wait(30)
    print(
        json.dumps(
            {
                "emulator_args": [*DEFAULT_ARGS, *args.emulator_args],
                "requests": len(bodies),
                "bytes": total,
                "seconds": round(elapsed, 3),
                "mb_per_s": round(total / elapsed / 1e6, 1),
                "requests_per_s": round(len(bodies) / elapsed, 1),
                "cores": os.cpu_count(),
                "python": sys.version.split()[0],
            }
        )
    )


if __name__ == "__main__":
    main()
