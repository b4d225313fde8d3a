"""Who holds a lease: the process's identity on this host (host name, boot id, PID
namespace, pid and its start time), and ``holder_is_gone`` — the one judgement that may break
a lease before it expires, made only when the holder ran on this machine and has exited.
"""

from __future__ import annotations

import dataclasses
import getpass
import os
import socket
from dataclasses import dataclass
from typing import Any


def _read_text(path: str) -> str | None:
    try:
        with open(path, encoding="ascii") as f:
            return f.read().strip() or None
    except OSError:
        return None


def _proc_stat(pid: int) -> tuple[str, str] | None:
    """(state letter, start time in clock ticks since boot) of ``pid``; None if absent."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            raw = f.read()
    except (FileNotFoundError, ProcessLookupError):
        return None
    # The command name (field 2) may contain spaces and ')': split after the last ')'.
    fields = raw[raw.rindex(b")") + 2 :].split()
    return fields[0].decode(), fields[19].decode()


def _has_proc() -> bool:
    return os.path.isdir("/proc/self")


def _user() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        # No passwd entry (common in containers): the numeric id still identifies.
        return str(os.getuid()) if hasattr(os, "getuid") else "unknown"


def _pid_namespace() -> str | None:
    try:
        return os.readlink("/proc/self/ns/pid")
    except OSError:
        return None


@dataclass(frozen=True, slots=True)
class Holder:
    """The process holding a lease, with what is needed to tell whether it still exists."""

    host: str
    pid: int
    user: str
    start_time: str | None = None
    boot_id: str | None = None
    pid_namespace: str | None = None

    @classmethod
    def of_process(cls, pid: int) -> Holder:
        """A holder for process ``pid`` on this machine (this process by default)."""
        stat = _proc_stat(pid) if _has_proc() else None
        return cls(
            host=socket.gethostname(),
            pid=pid,
            user=_user(),
            start_time=stat[1] if stat else None,
            boot_id=_read_text("/proc/sys/kernel/random/boot_id"),
            pid_namespace=_pid_namespace(),
        )

    @classmethod
    def current(cls) -> Holder:
        return cls.of_process(os.getpid())

    def describe(self) -> str:
        return f"user {self.user} on host {self.host} (pid {self.pid})"

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, raw: Any) -> Holder:
        if not isinstance(raw, dict):
            raise ValueError("holder is not an object")
        host, pid, user = raw.get("host"), raw.get("pid"), raw.get("user")
        if not isinstance(host, str) or not isinstance(pid, int) or not isinstance(user, str):
            raise ValueError("holder needs host, pid and user")
        optional = {}
        for name in ("start_time", "boot_id", "pid_namespace"):
            value = raw.get(name)
            if value is not None and not isinstance(value, str):
                raise ValueError(f"holder.{name} is not a string")
            optional[name] = value
        return cls(host=host, pid=pid, user=user, **optional)


def holder_is_gone(holder: Holder) -> bool:
    """True only when we can be sure: ``holder`` ran on this machine and no longer exists.

    A holder elsewhere (other host, other boot, other PID namespace) is never
    judged: its lease is broken only by expiry.
    """
    me = Holder.current()
    if (holder.host, holder.boot_id, holder.pid_namespace) != (
        me.host,
        me.boot_id,
        me.pid_namespace,
    ):
        return False
    if _has_proc():
        stat = _proc_stat(holder.pid)
        if stat is None or stat[0] in ("Z", "X"):
            # Gone, or a zombie: it has exited and only waits to be reaped.
            return True
        # A different start time means the PID now belongs to another process.
        return holder.start_time is not None and stat[1] != holder.start_time
    try:
        os.kill(holder.pid, 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    return False
