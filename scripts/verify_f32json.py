"""Exhaustive check of elax_plan._f32json against orjson: every finite float32 bit pattern.

For each chunk of 2**22 consecutive bit patterns, the finite values are formatted as one row by
both ``row_json`` and ``orjson.dumps(..., option=OPT_SERIALIZE_NUMPY)`` and the texts compared;
a chunk that differs is compared value by value and the mismatches are reported (up to
``--show`` examples). Exit status 1 if anything differs.

    python scripts/verify_f32json.py                 # all 2**32 patterns (a few minutes)
    python scripts/verify_f32json.py --chunks 0:64   # the first 64 chunks only
    python scripts/verify_f32json.py --so /tmp/_f32json.so   # check another build of it
"""

from __future__ import annotations

import argparse
import importlib.machinery
import importlib.util
import sys
import time
from collections.abc import Callable
from types import ModuleType

import numpy as np
import orjson

CHUNK_BITS = 22
CHUNKS = 1 << (32 - CHUNK_BITS)


def load(so: str | None) -> ModuleType:
    """The extension: the installed one, or the build at path `so`."""
    if so is None:
        import elax_plan._f32json as module

        return module
    loader = importlib.machinery.ExtensionFileLoader("_f32json", so)
    spec = importlib.util.spec_from_loader("_f32json", loader)
    assert spec is not None
    module = importlib.util.module_from_spec(spec)
    loader.exec_module(module)
    return module


def check_chunk(
    row_json: Callable[[np.ndarray, int], bytes | None], index: int
) -> list[tuple[int, bytes, bytes]]:
    """Mismatches (bit pattern, ours, orjson's) among the finite values of chunk `index`."""
    bits = np.arange(index << CHUNK_BITS, (index + 1) << CHUNK_BITS, dtype=np.uint64)
    values = bits.astype(np.uint32).view(np.float32)
    finite = np.isfinite(values)
    values = np.ascontiguousarray(values[finite])
    ours = row_json(values, 0)
    theirs = orjson.dumps(values, option=orjson.OPT_SERIALIZE_NUMPY)
    if ours == theirs:
        return []
    kept = bits[finite]
    if ours is None:
        return [(int(kept[0]), b"None", theirs[:40])]
    a = ours[1:-1].split(b",")
    b = theirs[1:-1].split(b",")
    if len(a) != len(b):
        return [(int(kept[0]), b"count %d" % len(a), b"count %d" % len(b))]
    return [(int(kept[i]), a[i], b[i]) for i in range(len(a)) if a[i] != b[i]]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--chunks", default=f"0:{CHUNKS}", help="range START:STOP of chunks")
    parser.add_argument("--so", help="path of a build of the extension to check instead")
    parser.add_argument("--show", type=int, default=20, help="mismatches to print")
    args = parser.parse_args()
    start, stop = (int(part) for part in args.chunks.split(":"))
    module = load(args.so)
    row_json = module.row_json

    began = time.monotonic()
    mismatches: list[tuple[int, bytes, bytes]] = []
    total = 0
    for index in range(start, stop):
        found = check_chunk(row_json, index)
        total += len(found)
        mismatches.extend(found[: max(0, args.show - len(mismatches))])
        if index % 64 == 63 or index == stop - 1:
            done = index - start + 1
            print(
                f"chunks {done}/{stop - start} ({done << CHUNK_BITS} patterns), "
                f"{total} mismatches, {time.monotonic() - began:.0f} s",
                flush=True,
            )
    for pattern, ours, theirs in mismatches:
        value = np.array([pattern], dtype=np.uint32).view(np.float32)[0]
        print(f"  0x{pattern:08x} {value!r}: ours {ours.decode()} orjson {theirs.decode()}")
    print(
        f"{'OK' if total == 0 else 'MISMATCH'}: {total} mismatches over chunks [{start}, {stop}) "
        f"of 2**{CHUNK_BITS} bit patterns each (non-finite ones skipped), "
        f"{time.monotonic() - began:.0f} s"
    )
    return 1 if total else 0


if __name__ == "__main__":
    sys.exit(main())
