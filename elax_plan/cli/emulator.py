"""``elax-plan emulator``: run the local elacsym emulator as a real HTTP server."""

from __future__ import annotations

import click

from elax_plan.cli._group import main
from elax_plan.errors import ElaxError
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


@main.command("emulator")
@click.option(
    "--store", required=True, help="fsspec URL of the data root (file://, memory://, s3://)."
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
    help="Passed to fsspec, e.g. endpoint_url=http://127.0.0.1:9000 (repeatable).",
)
@click.option(
    "--max-body-bytes",
    default=2 * 1024 * 1024,
    show_default=True,
    type=click.IntRange(min=1),
    help="Request body cap; larger bodies get 413 (real elacsym: 2 MiB).",
)
@click.option(
    "--index-rows-per-s",
    type=click.FloatRange(min=0, min_open=True),
    default=None,
    help="Indexer pace in upserts per second (default: unlimited).",
)
@click.option(
    "--index-interval",
    type=Duration(),
    default="200ms",
    show_default=True,
    help="Pause between indexer runs.",
)
@click.option("--stall-indexer", is_flag=True, help="Never index: WAL lag only grows.")
@click.option(
    "--rows-per-part",
    default=256,
    show_default=True,
    type=click.IntRange(min=1),
    help="Upserts the indexer puts in one part before it starts the next.",
)
@click.option(
    "--max-active-parts",
    default=4,
    show_default=True,
    type=click.IntRange(min=1),
    help="Once a namespace has more parts than this, the indexer compacts them into one.",
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
    help="Reproduce hazard H1: concurrent appends may share a sequence and overwrite each other.",
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
@click.option("--seed", type=int, default=None, help="Seed for injected faults.")
def emulator_command(
    store: str,
    host: str,
    port: int,
    storage_options: tuple[str, ...],
    max_body_bytes: int,
    index_rows_per_s: float | None,
    index_interval: float,
    stall_indexer: bool,
    rows_per_part: int,
    max_active_parts: int,
    fail_rate: float,
    latency: float,
    race_appends: bool,
    regress_highwater_after: int | None,
    seed: int | None,
) -> None:
    """Run a local elacsym emulator (API, storage layout, background indexer).

    It serves the elacsym HTTP API of CONTRACT.md on HOST:PORT and keeps the
    real storage layout (namespaces/<ns>/wal/, router.json, parts/) under
    --store. A second emulator on the same store serves the same data.
    It is a stand-in for tests and rehearsals, not a production database.
    Stop it with Ctrl-C or SIGTERM.
    """
    from elax_plan.emulator import EmulatorConfig, serve

    try:
        config = EmulatorConfig(
            store_url=store,
            storage_options=dict(_storage_option(o) for o in storage_options),
            max_body_bytes=max_body_bytes,
            index_rows_per_s=index_rows_per_s,
            index_interval=index_interval,
            stall_indexer=stall_indexer,
            rows_per_part=rows_per_part,
            max_active_parts=max_active_parts,
            fail_rate=fail_rate,
            latency=latency,
            race_appends=race_appends,
            regress_highwater_after=regress_highwater_after,
            seed=seed,
        )
    except ValueError as exc:
        raise ElaxError(f"Invalid emulator settings: {exc}.") from exc
    try:
        serve(config, host, port, announce=lambda line: click.echo(line, err=False))
    except OSError as exc:
        raise ElaxError(
            f"Cannot start the emulator on {host}:{port}: {exc.strerror or exc}.",
            hint="Pick another --port (0 chooses a free one) or stop what is using it.",
        ) from exc
