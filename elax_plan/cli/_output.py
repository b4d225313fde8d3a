"""Everything the CLI puts on the terminal or in a file it was asked to write, redacted last.

Owns the CLI's output boundary: ``echo`` (stdout, or stderr with ``err=True``),
``write_file`` (``plan --out``), ``format_traceback`` (what ``--debug``
shows) and ``install_hooks``, which routes what Python itself would print —
an uncaught exception in the main thread or any other thread, a warning — through the
same redaction. Each applies ``spec.redact`` to the final text (registered
secret values; credential-shaped URL parts; bearer tokens), so no command
module has to remember to. Logs are redacted by ``elax_plan.log``; state
objects by the state backends. It decides nothing about what is printed.
"""

from __future__ import annotations

import io
import sys
import threading
import traceback
import warnings
from pathlib import Path
from types import TracebackType
from typing import TextIO

import click

from elax_plan.spec import redact, redact_bytes

__all__ = ["echo", "format_traceback", "install_hooks", "show_click_error", "write_file"]


def echo(message: str = "", *, err: bool = False, nl: bool = True) -> None:
    """``click.echo`` of ``message`` with every secret redacted."""
    click.echo(redact(message), err=err, nl=nl)


def write_file(path: str | Path, data: bytes) -> None:
    """Write ``data`` to ``path``, redacted (``OSError`` is the caller's to report)."""
    Path(path).write_bytes(redact_bytes(data))


def format_traceback(exc: BaseException) -> str:
    """The full traceback of ``exc`` (chained causes and notes included), redacted.

    Rendered to a string first, never printed directly: exception messages and reprs
    of requests, headers and URLs in it may carry credentials.
    """
    return redact("".join(traceback.format_exception(exc)))


def show_click_error(exc: click.ClickException) -> None:
    """What ``exc.show()`` prints (usage, hint, message), redacted, on stderr."""
    buffer = io.StringIO()
    exc.show(file=buffer)
    echo(buffer.getvalue(), err=True, nl=False)


def install_hooks() -> None:
    """Route Python's own printing of uncaught exceptions and warnings through ``redact``."""
    sys.excepthook = _excepthook
    threading.excepthook = _thread_excepthook
    warnings.showwarning = _showwarning


def _excepthook(kind: type[BaseException], exc: BaseException, tb: TracebackType | None) -> None:
    echo(format_traceback(exc.with_traceback(tb)), err=True, nl=False)


def _thread_excepthook(args: threading.ExceptHookArgs) -> None:
    if args.exc_type is SystemExit or args.exc_value is None:
        return
    name = args.thread.name if args.thread is not None else "a thread"
    echo(f"Exception in thread {name}:", err=True)
    echo(format_traceback(args.exc_value), err=True, nl=False)


def _showwarning(
    message: Warning | str,
    category: type[Warning],
    filename: str,
    lineno: int,
    file: TextIO | None = None,
    line: str | None = None,
) -> None:
    text = warnings.formatwarning(message, category, filename, lineno, line)
    if file is None:
        echo(text, err=True, nl=False)
    else:
        file.write(redact(text))
