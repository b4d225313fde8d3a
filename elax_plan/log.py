"""Logging for the whole tool: structlog configured once, at the CLI entry point.

Owns the processor chain (level, ISO timestamp, context variables such as a
bound ``run_id``, secret redaction) and the two renderers (``console`` for
people, ``json`` for machines), always on stderr so stdout stays for plans and
summaries. Redaction runs twice: on the event's values before rendering and on
the rendered line after it, so a registered secret (or a credential-shaped URL
part, ``spec.redact``) cannot reach a log line by any route. Records of the
standard ``logging`` module (httpx, botocore, aiohttp, asyncio…) at warning
level and above go through the same chain instead of Python's bare fallback
printer. Library modules only call ``structlog.get_logger()``; they must not
configure anything.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import MutableMapping
from typing import Any, TextIO, cast

import orjson
import structlog
from structlog.typing import EventDict, Processor, WrappedLogger

from elax_plan.spec.secrets import redact, redact_value

LEVELS = ("debug", "info", "warning", "error")


def redact_secrets(_logger: WrappedLogger, _method: str, event_dict: EventDict) -> EventDict:
    """structlog processor: every registered secret value in the event becomes ``***``."""
    redacted: MutableMapping[str, Any] = {}
    for key, value in event_dict.items():
        redacted[key] = redact_value(value)
    return dict(redacted)


def _json_dumps(obj: Any, **_: Any) -> str:
    return orjson.dumps(obj, default=str).decode()


class _RedactingRenderer:
    """Wraps a renderer so the finished line is scrubbed too (e.g. a secret in a repr)."""

    def __init__(self, renderer: Processor) -> None:
        self._renderer = renderer

    def __call__(self, logger: WrappedLogger, method: str, event_dict: EventDict) -> str:
        rendered = self._renderer(logger, method, event_dict)
        return redact(rendered if isinstance(rendered, str) else str(rendered))


def configure_logging(
    *,
    log_format: str = "console",
    level: str = "info",
    color: bool = True,
    stream: TextIO | None = None,
) -> None:
    """Configure structlog for this process; call once from the CLI entry point.

    ``stream`` defaults to the current ``sys.stderr``.
    """
    if level not in LEVELS:
        raise ValueError(f"unknown log level {level!r}; one of {', '.join(LEVELS)}")
    renderer: Processor
    if log_format == "json":
        renderer = structlog.processors.JSONRenderer(serializer=_json_dumps)
    else:
        renderer = structlog.dev.ConsoleRenderer(
            colors=color and _isatty(stream or sys.stderr),
            exception_formatter=structlog.dev.plain_traceback,
        )
    exc_info: Processor = (
        structlog.processors.format_exc_info if log_format == "json" else structlog.dev.set_exc_info
    )
    processors: list[Processor] = [
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        exc_info,
        redact_secrets,
        _RedactingRenderer(renderer),
    ]
    structlog.configure(
        processors=processors,
        wrapper_class=structlog.make_filtering_bound_logger(getattr(logging, level.upper())),
        logger_factory=_StderrLoggerFactory(stream),
        cache_logger_on_first_use=False,
    )
    formatter = structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=processors[:4],
        processors=[
            structlog.stdlib.ProcessorFormatter.remove_processors_meta,
            redact_secrets,
            _RedactingRenderer(renderer),
        ],
    )
    _route_stdlib_logging(_StdlibHandler(formatter, stream), max(logging.WARNING, _level(level)))


def _level(name: str) -> int:
    return int(getattr(logging, name.upper()))


def _route_stdlib_logging(handler: logging.Handler, level: int) -> None:
    """Replace our previous handler on the root logger with ``handler`` at ``level``."""
    root = logging.getLogger()
    for old in [h for h in root.handlers if isinstance(h, _StdlibHandler)]:
        root.removeHandler(old)
    handler.setLevel(level)
    root.addHandler(handler)


class _StdlibHandler(logging.Handler):
    """Writes standard-library log records, rendered (and redacted) like our own lines."""

    def __init__(self, formatter: logging.Formatter, stream: TextIO | None) -> None:
        super().__init__()
        self.setFormatter(formatter)
        self._stream = stream

    def emit(self, record: logging.LogRecord) -> None:
        try:
            stream = self._stream if self._stream is not None else sys.stderr
            stream.write(redact(self.format(record)) + "\n")
            stream.flush()
        except Exception:
            self.handleError(record)


class _StderrLoggerFactory:
    """Loggers that write to ``stream``, or to whatever ``sys.stderr`` is at write time.

    Binding the ``sys.stderr`` object of the moment would break once it is replaced
    and closed (test runners capturing output do exactly that).
    """

    def __init__(self, stream: TextIO | None) -> None:
        self._stream = stream

    def __call__(self, *args: Any) -> structlog.PrintLogger:
        stream = self._stream if self._stream is not None else cast(TextIO, _CurrentStderr())
        return structlog.PrintLogger(stream)


class _CurrentStderr:
    """A file-like object that forwards to the current ``sys.stderr``."""

    def write(self, text: str) -> int:
        return sys.stderr.write(text)

    def flush(self) -> None:
        sys.stderr.flush()


def _isatty(stream: TextIO) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):
        return False


def get_logger(name: str | None = None) -> Any:
    """A structlog logger (``structlog.get_logger``), for symmetry with ``configure_logging``."""
    return structlog.get_logger(name)
