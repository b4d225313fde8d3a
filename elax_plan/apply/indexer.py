"""The indexer apply drives itself (``indexer.mode: command``): run it, time it, report it.

The real elacsym has no indexer daemon: ``indexed_wal`` moves only when ``elax-cli
compact`` runs on the node's data root (CONTRACT §5). With ``indexer.mode: command``
apply runs it — the execution plan's argv as a subprocess (no shell) with the plan's
timeout, or the embedded emulator's in-process compaction — and this module owns one
such run: its ``compaction`` event (trigger, exit code, duration, the tail of its output)
and its failure, ``IndexerFailed``, which stops the run resumably. Callers guarantee that
none of the run's writes is in flight (the command takes no lock, hazard H2); a stop
request terminates the command.
"""

from __future__ import annotations

import shlex
import subprocess
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from elax_plan.errors import IndexerFailed
from elax_plan.live.target import TargetClient
from elax_plan.retry import Interrupted
from elax_plan.spec import format_duration, redact

OUTPUT_LINES = 20  # of stdout and of stderr, kept for the event and the failure message
POLL_S = 0.2  # how often a running command is checked against the stop event
KILL_GRACE_S = 5.0  # after SIGTERM, before SIGKILL


@dataclass(frozen=True, slots=True)
class Compaction:
    """One run of the indexer."""

    trigger: str  # "before_writes" | "lag" | "after_writes"
    duration_s: float
    exit_code: int
    stdout: str
    stderr: str

    def to_json(self) -> dict[str, Any]:
        return {
            "trigger": self.trigger,
            "duration_s": round(self.duration_s, 3),
            "exit_code": self.exit_code,
            "stdout": self.stdout,
            "stderr": self.stderr,
        }


class Compactor:
    """Runs the plan's indexer; ``runs`` counts them."""

    def __init__(
        self,
        indexer: Mapping[str, Any],
        namespace: str,
        client: TargetClient,
        *,
        stop: threading.Event,
        on_event: Callable[[str, dict[str, Any]], None],
    ) -> None:
        command = indexer.get("command")
        self.argv: list[str] | None = list(command) if command is not None else None
        self.timeout = float(indexer["timeout_s"])
        self.namespace = namespace
        self.client = client
        self.stop = stop
        self.on_event = on_event
        self.runs = 0

    @property
    def shown(self) -> str:
        """The command as the plan shows it."""
        if self.argv is None:
            return "the embedded emulator's compaction"
        return f"`{redact(shlex.join(self.argv))}`"

    def run(self, trigger: str) -> Compaction:
        """Index the namespace now; ``IndexerFailed`` when it fails, ``Interrupted`` on stop."""
        if self.stop.is_set():
            raise Interrupted()
        self.on_event("compaction_started", {"trigger": trigger})
        started = time.monotonic()
        if self.argv is None:
            line = self.client.compact_in_process(self.namespace)
            result = Compaction(trigger, time.monotonic() - started, 0, line, "")
        else:
            code, out, err = self._subprocess(self.argv)
            result = Compaction(trigger, time.monotonic() - started, code, out, err)
        self.runs += 1
        self.on_event("compaction", result.to_json())
        if result.exit_code != 0:
            raise IndexerFailed(
                f"The indexer command {self.shown} exited with {result.exit_code} after "
                f"{format_duration(result.duration_s)}"
                + (f": {result.stderr}" if result.stderr else "."),
                detail="Nothing was lost: the writes so far are checkpointed.",
                hint="Fix the command (indexer.command) or what it reports, then run "
                "`elax-plan apply` again: the run resumes from its checkpoint.",
            )
        return result

    def _subprocess(self, argv: Sequence[str]) -> tuple[int, str, str]:
        try:
            # Its own session: a terminal's Ctrl-C reaches apply, which stops the command
            # itself below, instead of the command dying first and looking like a failure.
            process = subprocess.Popen(
                list(argv),
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                start_new_session=True,
            )
        except OSError as exc:
            raise IndexerFailed(
                f"The indexer command {self.shown} could not be started: {exc.strerror or exc}.",
                hint="Check indexer.command (an argv list; the program must be on PATH or "
                "given by its path), then run `elax-plan apply` again.",
            ) from exc
        deadline = time.monotonic() + self.timeout
        while True:
            try:
                out, err = process.communicate(timeout=POLL_S)
                break
            except subprocess.TimeoutExpired:
                if self.stop.is_set():
                    self._end(process)
                    raise Interrupted() from None
                if time.monotonic() >= deadline:
                    self._end(process)
                    raise IndexerFailed(
                        f"The indexer command {self.shown} did not finish within "
                        f"{format_duration(self.timeout)} (indexer.timeout) and was stopped.",
                        detail="A compaction that never ends can mean empty WAL batches at "
                        "the end of the namespace (the real command then loops, hazard H3).",
                        hint="Raise indexer.timeout if the namespace is just large, then run "
                        "`elax-plan apply` again: the run resumes from its checkpoint.",
                    ) from None
        return process.returncode, _tail(out), _tail(err)

    @staticmethod
    def _end(process: subprocess.Popen[bytes]) -> None:
        process.terminate()
        try:
            process.communicate(timeout=KILL_GRACE_S)
        except subprocess.TimeoutExpired:
            process.kill()
            process.communicate()


def compactor_for(
    indexer: Mapping[str, Any],
    namespace: str,
    client: TargetClient,
    stop: threading.Event,
    on_event: Callable[[str, dict[str, Any]], None],
) -> Compactor | None:
    """The compactor of an execution plan's ``indexer`` section; ``None`` unless mode command."""
    if indexer["mode"] != "command":
        return None
    return Compactor(indexer, namespace, client, stop=stop, on_event=on_event)


def _tail(data: bytes) -> str:
    lines = data.decode("utf-8", errors="replace").strip().splitlines()
    return redact("\n".join(lines[-OUTPUT_LINES:]))
