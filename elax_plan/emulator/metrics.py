"""Prometheus text: the real node's stub, and the emulator's own series.

The real node always answers the three-line stub ``REAL_STUB`` (its recorder
and its metrics crate disagree on versions, CONTRACT §6.4). The emulator's
series are what the code *means* to export — API requests (only the statuses
its handlers produce: 200/400/412/500; axum-level rejections are not counted),
per-namespace writes, queries and rows, indexer parts — plus emulator-only
gauges: the WAL lag and the racing-append outcomes (hazard H1). They start
as the stub gauge until something was recorded. ``/_emulator/metrics`` always
serves them; ``/metrics`` too unless ``metrics="real"``.
"""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Iterable

from elax_plan.emulator.indexer import IndexerStats
from elax_plan.emulator.namespace import Namespace

CONTENT_TYPE = "text/plain; version=0.0.4"
REAL_STUB = (
    b"# HELP elax_metrics_up Exporter health indicator\n"
    b"# TYPE elax_metrics_up gauge\n"
    b"elax_metrics_up 1\n"
)
_COUNTED_STATUSES = {200, 400, 412, 500}


def _label(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


class Metrics:
    """Request counters recorded by the app; gauges are read from live state at render time."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.requests: Counter[tuple[str, int]] = Counter()
        # API requests received (before any injected latency), by route: lets a test act
        # while a request is inside the server.
        self.received: Counter[str] = Counter()

    def receive(self, route: str) -> None:
        with self._lock:
            self.received[route] += 1

    def record(self, route: str, status: int) -> None:
        if status in _COUNTED_STATUSES:
            with self._lock:
                self.requests[(route, status)] += 1

    def render(self, namespaces: Iterable[Namespace], indexer: IndexerStats) -> bytes:
        with self._lock:
            requests = dict(self.requests)
        ns_list = [ns for ns in namespaces if ns.loaded]
        lines: list[str] = []
        if requests:
            lines += [
                "# TYPE elax_api_requests_total counter",
                *(
                    f'elax_api_requests_total{{route="{r}",status="{s}"}} {n}'
                    for (r, s), n in sorted(requests.items())
                ),
            ]
        if ns_list:
            lines.append("# TYPE elax_core_write_requests_total counter")
            lines += [
                f'elax_core_write_requests_total{{namespace="{_label(ns.name)}"}} {ns.write_count}'
                for ns in ns_list
            ]
            lines.append("# TYPE elax_core_query_requests_total counter")
            lines += [
                f'elax_core_query_requests_total{{namespace="{_label(ns.name)}"}} {ns.query_count}'
                for ns in ns_list
            ]
            lines.append("# TYPE elax_core_rows_cached gauge")
            lines += [
                f'elax_core_rows_cached{{namespace="{_label(ns.name)}"}} {len(ns.documents)}'
                for ns in ns_list
            ]
            lines.append(
                "# HELP elax_emulator_wal_lag_batches wal_highwater - indexed_wal "
                "(emulator only; the real node does not export it)"
            )
            lines.append("# TYPE elax_emulator_wal_lag_batches gauge")
            for ns in ns_list:
                r = ns.current_router()
                lines.append(
                    f'elax_emulator_wal_lag_batches{{namespace="{_label(ns.name)}"}} '
                    f"{max(0, r.wal_highwater - r.indexed_wal)}"
                )
            raced = [(ns.name, dict(ns.races.outcomes)) for ns in ns_list if ns.races.outcomes]
            if raced:
                lines.append(
                    "# HELP elax_emulator_append_races_total racing appends by outcome "
                    "(hazard H1; emulator only)"
                )
                lines.append("# TYPE elax_emulator_append_races_total counter")
                lines += [
                    f'elax_emulator_append_races_total{{namespace="{_label(n)}",'
                    f'outcome="{outcome}"}} {count}'
                    for n, outcomes in raced
                    for outcome, count in sorted(outcomes.items())
                ]
        if indexer.parts_materialized or indexer.parts_compacted:
            lines.append("# TYPE elax_indexer_parts_total counter")
            for stage, counts in (
                ("materialize", indexer.parts_materialized),
                ("compact", indexer.parts_compacted),
            ):
                lines += [
                    f'elax_indexer_parts_total{{namespace="{_label(n)}",stage="{stage}"}} {c}'
                    for n, c in sorted(counts.items())
                ]
        if indexer.compactions:
            lines.append("# TYPE elax_indexer_compactions_total counter")
            lines += [
                f'elax_indexer_compactions_total{{namespace="{_label(n)}"}} {c}'
                for n, c in sorted(indexer.compactions.items())
            ]
        if not lines:
            lines = ["# TYPE elax_metrics_up gauge", "elax_metrics_up 1"]
        return ("\n".join(lines) + "\n").encode()
