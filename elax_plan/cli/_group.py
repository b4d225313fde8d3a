"""The root ``elax-plan`` command group, its common flags and error handling.

Every message, traceback and usage error leaves through ``_output`` (redacted);
``--debug`` tracebacks are rendered to text and redacted, never printed raw.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

import click

from elax_plan import __version__
from elax_plan.cli._output import echo, format_traceback, install_hooks, show_click_error
from elax_plan.errors import EXIT_ERROR, EXIT_INTERRUPTED, ElaxError, exit_code_for
from elax_plan.log import configure_logging

F = TypeVar("F", bound=Callable[..., Any])


@dataclass(frozen=True)
class GlobalOptions:
    """Flags every command shares; available as ``click.get_current_context().obj``."""

    log_format: str = "console"
    log_level: str = "info"
    color: bool = True
    quiet: bool = False
    debug: bool = False


class ElaxGroup(click.Group):
    """A click group that turns exceptions into one-paragraph messages and exit codes."""

    def main(
        self,
        args: Sequence[str] | None = None,
        prog_name: str | None = None,
        complete_var: str | None = None,
        standalone_mode: bool = True,
        **extra: Any,
    ) -> Any:
        """Like click's, except that usage errors exit 1: exit 2 means "changes pending"."""
        if not standalone_mode:
            return super().main(args, prog_name, complete_var, False, **extra)
        # A real process (not ``run`` in tests): Python's own printing is redacted too.
        install_hooks()
        try:
            result = super().main(args, prog_name, complete_var, False, **extra)
        except click.exceptions.Exit as exc:
            sys.exit(exc.exit_code)
        except click.ClickException as exc:
            show_click_error(exc)
            sys.exit(EXIT_ERROR)
        except click.exceptions.Abort:
            echo("Aborted.", err=True)
            sys.exit(EXIT_INTERRUPTED)
        sys.exit(result if isinstance(result, int) else 0)

    def invoke(self, ctx: click.Context) -> Any:
        """The command's exit code: what it returned, or ``exit_code_for`` its exception.

        The one place exit codes are decided; ``main`` (or ``run``) hands it to the process.
        """
        try:
            return super().invoke(ctx)
        except ElaxError as exc:
            echo(f"Error: {exc.message}", err=True)
            if _debug(ctx):
                echo(format_traceback(exc), err=True, nl=False)
            return exit_code_for(exc)
        except (click.exceptions.Exit, click.exceptions.Abort, click.ClickException):
            raise
        except KeyboardInterrupt as exc:
            echo("Interrupted.", err=True)
            return exit_code_for(exc)
        except Exception as exc:
            if _debug(ctx):
                echo(format_traceback(exc), err=True, nl=False)
            echo(
                f"Error: internal error ({type(exc).__name__}: {exc}). This is a bug in "
                "elax-plan; re-run with --debug and report the traceback (secrets in it are "
                "shown as ***).",
                err=True,
            )
            return exit_code_for(exc)


def _debug(ctx: click.Context) -> bool:
    root = ctx.find_root()
    return isinstance(root.obj, GlobalOptions) and root.obj.debug


@click.group(cls=ElaxGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="elax-plan")
@click.option(
    "--log-format",
    type=click.Choice(["console", "json"]),
    default="console",
    show_default=True,
    help="Log line format on stderr.",
)
@click.option(
    "--log-level",
    type=click.Choice(["debug", "info", "warning", "error"]),
    default="info",
    show_default=True,
    help="Lowest log level shown.",
)
@click.option("--no-color", is_flag=True, help="Plain output without colour (also: NO_COLOR).")
@click.option("--quiet", "-q", is_flag=True, help="Only errors and the command's result.")
@click.option("--debug", is_flag=True, help="Show tracebacks for errors.")
@click.pass_context
def main(
    ctx: click.Context, log_format: str, log_level: str, no_color: bool, quiet: bool, debug: bool
) -> None:
    """Plan, apply and verify backfills into elacsym, the Terraform way.

    Write a plan file (YAML), review `elax-plan plan PLAN.yaml` in a pull
    request, then run `elax-plan apply PLAN.yaml`. Exit codes: 0 success,
    1 error, 2 changes pending (`plan --detailed-exitcode`), 3 verification
    failed, 130 interrupted.
    """
    color = not no_color and not os.environ.get("NO_COLOR")
    ctx.obj = GlobalOptions(log_format, log_level, color, quiet, debug)
    configure_logging(log_format=log_format, level="error" if quiet else log_level, color=color)


def run(argv: Sequence[str] | None = None) -> int:
    """Run the CLI with ``argv`` and return the exit code (for tests)."""
    try:
        # Without standalone mode, click returns the code of a ctx.exit() instead
        # of raising Exit; commands themselves return None.
        result = main.main(
            args=list(argv) if argv is not None else sys.argv[1:], standalone_mode=False
        )
        if isinstance(result, int):
            return result
    except click.exceptions.Exit as exc:
        return int(exc.exit_code)
    except click.ClickException as exc:
        show_click_error(exc)
        return EXIT_ERROR
    except click.exceptions.Abort:
        return EXIT_INTERRUPTED
    return 0
