"""What Python itself would print (thread tracebacks, warnings, stdlib logs, usage errors) is
redacted too, in a real CLI process."""

from __future__ import annotations

import io
import logging
import subprocess
import sys
import textwrap

from elax_plan.log import configure_logging
from tests.apply.support import run_cli
from tests.leaks.support import sentinel

_PROGRAM = textwrap.dedent(
    """
    import sys, threading, warnings
    from elax_plan.cli._output import install_hooks
    install_hooks()
    token = sys.argv[1]
    def fail():
        raise RuntimeError(f"in a thread: GET https://h/x?access_token={token}")
    thread = threading.Thread(target=fail, name="heartbeat")
    thread.start()
    thread.join()
    warnings.warn(f"Unverified request to https://user:{token}@h/x")
    raise RuntimeError(f"fatal: https://h/y?X-Amz-Signature={token}")
    """
)


def test_thread_tracebacks_and_warnings_are_redacted() -> None:
    """Uncaught exceptions (a thread, the main thread) and warnings print credentials as ***."""
    token = sentinel("token")
    done = subprocess.run(
        [sys.executable, "-c", _PROGRAM, token], capture_output=True, text=True, timeout=60
    )
    assert "Exception in thread heartbeat" in done.stderr
    assert "RuntimeError: in a thread: GET https://h/x?access_token=***" in done.stderr
    assert "UserWarning: Unverified request to https://***@h/x" in done.stderr
    assert "RuntimeError: fatal: https://h/y?X-Amz-Signature=***" in done.stderr, "main thread"
    assert token not in done.stdout + done.stderr


def test_standard_library_log_records_are_redacted() -> None:
    """A library's own log record (aiohttp, botocore…) is rendered like ours, and redacted."""
    token = sentinel("token")
    stream = io.StringIO()
    configure_logging(log_format="json", stream=stream)
    try:
        logging.getLogger("aiohttp.client").error("Unclosed session for https://h/x?sig=%s", token)
    finally:
        configure_logging(stream=io.StringIO())
    line = stream.getvalue()
    assert '"event":"Unclosed session for https://h/x?sig=***"' in line
    assert token not in line


def test_usage_errors_are_redacted() -> None:
    """click's usage error repeats the bad argument; a credential in it is shown as ***."""
    token = sentinel("token")
    done = run_cli("plan", "plan.yaml", "--format", f"https://h/x?token={token}")
    assert done.returncode == 1
    assert "Invalid value for '--format': 'https://h/x?token=***'" in done.stderr
    assert token not in done.stdout + done.stderr
