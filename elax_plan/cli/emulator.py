"""``elax-plan emulator``: run the local elacsym emulator; ``emulator compact`` indexes a data root."""

from __future__ import annotations

from typing import TYPE_CHECKING

import click

from elax_plan.cli._group import main
from elax_plan.cli._output import echo
from elax_plan.errors import ElaxError

if TYPE_CHECKING:
    from elax_plan.emulator import Compat
from elax_plan.spec.units import parse_duration


class Duration(click.ParamType):  # type: ignore[type-arg]  # generic only in newer click
    """A duration with its unit, as in plan files: ``500ms``, ``2s``, ``1m``."""

    name = "duration"

    def convert(
        self, value: object, param: click.Parameter | None, ctx: click.Context | None
    ) -> float:
        if isinstance(value, float):
            return value
        try:
            return parse_duration(value)
        except ValueError as exc:
            self.fail(f"{value!r} {exc}", param, ctx)


def _storage_option(value: str) -> tuple[str, object]:
    key, sep, raw = value.partition("=")
    if not sep or not key:
        raise click.BadParameter(f"{value!r} is not KEY=VALUE", param_hint="--storage-option")
    parsed: object = raw
    if raw.lower() in ("true", "false"):
        parsed = raw.lower() == "true"
    return key, parsed


@main.group("emulator", invoke_without_command=True)
@click.option(
    "--store",
    default=None,
    help="fsspec URL holding everything (file://, memory://, s3://); or use --data-root.",
)
@click.option(
    "--data-root",
    default=None,
    metavar="DIR",
    help="The real layout: WAL, router.json and part manifests in this local directory.",
)
@click.option(
    "--object-store",
    default=None,
    metavar="URL",
    help="With --data-root: fsspec URL for part assets (default: the data root).",
)
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option(
    "--port", default=3000, show_default=True, type=int, help="Port (0 picks a free one)."
)
@click.option(
    "--storage-option",
    "storage_options",
    multiple=True,
    metavar="KEY=VALUE",
    help="Passed to fsspec for --store or --object-store, e.g. "
    "endpoint_url=http://127.0.0.1:9000 (repeatable).",
)
@click.option(
    "--max-body-bytes",
    default=2 * 1024 * 1024,
    show_default=True,
    type=click.IntRange(min=1),
    help="Request body cap; larger bodies get 413 (real elacsym: 2 MiB).",
)
@click.option(
    "--indexer",
    type=click.Choice(["none", "background"]),
    default="none",
    show_default=True,
    help="none: like the real server, indexed_wal moves only when `elax-plan emulator "
    "compact` runs (and appends re-read router.json). background: the design's indexer "
    "daemon, standing in for an operator's indexer fleet.",
)
@click.option(
    "--reread-router",
    is_flag=True,
    help="Re-read router.json on every append and list wal/ as the real store does "
    "(implied by --indexer none, the default, by --data-root and by --recover-from-parts).",
)
@click.option(
    "--recover-from-parts",
    is_flag=True,
    help="Rebuild a namespace from its parts plus the WAL after indexed_wal (the real node "
    "replays the WAL alone, so a trimmed WAL loses documents); implies --reread-router.",
)
@click.option(
    "--index-rows-per-s",
    type=click.FloatRange(min=0, min_open=True),
    default=None,
    help="Background indexer pace in upserts per second (default: unlimited).",
)
@click.option(
    "--index-interval",
    type=Duration(),
    default="200ms",
    show_default=True,
    help="Pause between background indexer runs.",
)
@click.option(
    "--rows-per-part",
    default=256,
    show_default=True,
    type=click.IntRange(min=1),
    help="Upserts the background indexer puts in one part before it starts the next "
    "(`emulator compact` uses elax-cli's 256).",
)
@click.option(
    "--max-active-parts",
    default=4,
    show_default=True,
    type=click.IntRange(min=1),
    help="Once a namespace has more parts than this, the background indexer compacts them "
    "into one (`emulator compact`: 4, as elax-cli).",
)
@click.option(
    "--metrics",
    "metrics_mode",
    type=click.Choice(["rich", "real"]),
    default="real",
    show_default=True,
    help="real: GET /metrics answers the real node's 3-line stub; rich: the emulator's "
    "series there too. They are always at /_emulator/metrics.",
)
@click.option(
    "--compat",
    type=click.Choice(["72e6998", "ac782e1", "c152c2d"]),
    default="ac782e1",
    show_default=True,
    help="The elacsym version to answer as (CONTRACT §0).",
)
@click.option(
    "--fail-rate",
    default=0.0,
    type=click.FloatRange(0, 1),
    help="Fraction of API requests failed before any work: half 503, half 429 with Retry-After.",
)
@click.option("--latency", type=Duration(), default="0s", help="Added to every API request.")
@click.option(
    "--race-appends",
    is_flag=True,
    help="Reproduce hazard H1 as the real code has it: overlapping appends may overwrite "
    "each other (two 200s), tear a WAL file, or answer 500 after writing (seeded by --seed).",
)
@click.option(
    "--regress-highwater-after",
    type=click.IntRange(min=1),
    default=None,
    metavar="N",
    help="Reproduce a racing append's late router update (hazard H1): after N appends to a "
    "namespace, wal_highwater goes back by one, so the next append overwrites an "
    "acknowledged WAL file. Once per namespace.",
)
@click.option(
    "--crash-during-append",
    type=click.IntRange(min=1),
    default=None,
    metavar="N",
    help="The N-th append (all namespaces) writes half its WAL file, then the process "
    "kills itself (SIGKILL).",
)
@click.option("--seed", type=int, default=None, help="Seed for injected faults and races.")
@click.pass_context
def emulator_command(
    ctx: click.Context,
    store: str | None,
    data_root: str | None,
    object_store: str | None,
    host: str,
    port: int,
    storage_options: tuple[str, ...],
    max_body_bytes: int,
    indexer: str,
    reread_router: bool,
    recover_from_parts: bool,
    index_rows_per_s: float | None,
    index_interval: float,
    rows_per_part: int,
    max_active_parts: int,
    metrics_mode: str,
    compat: str,
    fail_rate: float,
    latency: float,
    race_appends: bool,
    regress_highwater_after: int | None,
    crash_during_append: int | None,
    seed: int | None,
) -> None:
    """Run a local elacsym emulator (API, storage layout, optional indexer).

    It serves the elacsym HTTP API of CONTRACT.md on HOST:PORT and keeps the
    real storage layout (namespaces/<ns>/wal/, router.json, parts/) under
    --store, or under --data-root with part assets on --object-store. A second
    emulator on the same store serves the same data. Like the real server it
    has no indexer daemon unless --indexer background: `elax-plan emulator
    compact` indexes a data root as `elax-cli compact` does. It is a stand-in
    for tests and rehearsals, not a production database. Stop it with Ctrl-C
    or SIGTERM.
    """
    if ctx.invoked_subcommand is not None:
        return
    from elax_plan.emulator import EmulatorConfig, serve

    if (store is None) == (data_root is None):
        raise ElaxError(
            "Give the emulator exactly one of --store URL and --data-root DIR.",
            hint="--store keeps everything under one fsspec URL; --data-root is the real layout.",
        )
    try:
        config = EmulatorConfig(
            store_url=store or "",
            storage_options=dict(_storage_option(o) for o in storage_options),
            data_root=data_root,
            object_store=object_store,
            max_body_bytes=max_body_bytes,
            indexer="none" if indexer == "none" else "background",
            reread_router=reread_router,
            recover_from_parts=recover_from_parts,
            index_rows_per_s=index_rows_per_s,
            index_interval=index_interval,
            rows_per_part=rows_per_part,
            max_active_parts=max_active_parts,
            metrics="real" if metrics_mode == "real" else "rich",
            compat=_compat(compat),
            fail_rate=fail_rate,
            latency=latency,
            race_appends=race_appends,
            regress_highwater_after=regress_highwater_after,
            crash_during_append=crash_during_append,
            seed=seed,
        )
    except ValueError as exc:
        raise ElaxError(f"Invalid emulator settings: {exc}.") from exc
    try:
        serve(config, host, port, announce=lambda line: echo(line, err=False))
    except OSError as exc:
        raise ElaxError(
            f"Cannot start the emulator on {host}:{port}: {exc.strerror or exc}.",
            hint="Pick another --port (0 chooses a free one) or stop what is using it.",
        ) from exc


def _compat(value: str) -> Compat:
    if value == "72e6998":
        return "72e6998"
    if value == "c152c2d":
        return "c152c2d"
    return "ac782e1"


@emulator_command.command("compact")
@click.option(
    "--data-root",
    required=True,
    metavar="DIR",
    help="The data root a server may be running on (elax-cli's --root).",
)
@click.option(
    "--object-store",
    default=None,
    metavar="URL",
    help="fsspec URL of the part assets (default: the data root).",
)
@click.option(
    "--storage-option",
    "storage_options",
    multiple=True,
    metavar="KEY=VALUE",
    help="Passed to fsspec for --object-store (repeatable).",
)
@click.option(
    "--max-runs",
    type=click.IntRange(min=1),
    default=None,
    metavar="N",
    help="Give up after N indexer runs (the real command loops forever when the newest "
    "WAL batches are empty, hazard H3). Default: no limit, like elax-cli.",
)
@click.argument("namespace")
def compact_command(
    data_root: str,
    object_store: str | None,
    storage_options: tuple[str, ...],
    max_runs: int | None,
    namespace: str,
) -> None:
    """Index NAMESPACE under --data-root until idle, as `elax-cli compact` does.

    It cuts a part every 256 upserts, merges more than 4 active parts into
    one, and prints `compacted namespace '<ns>' to <n> parts
    (indexed_wal=<w>)`; errors print `Error: …` on stderr and exit 1. It
    takes no lock: run beside writes, it sets wal_highwater back (hazard H2)
    exactly as the real command does.
    """
    from elax_plan.emulator import CompactError, compact

    try:
        result = compact(
            data_root,
            namespace,
            object_store=object_store,
            storage_options=dict(_storage_option(o) for o in storage_options),
            max_runs=max_runs,
        )
    except CompactError as exc:
        click.echo(exc.report(), err=True)
        raise SystemExit(1) from exc
    click.echo(result.line())
