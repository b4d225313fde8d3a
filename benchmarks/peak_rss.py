"""Run a command and report the peak RSS of that command alone.

``ru_maxrss`` of a child started straight from a large process is wrong: on Linux, ``exec``
records the peak RSS of the address space it replaces — the parent's, shared through ``vfork``
or copied by ``fork`` — so a benchmark holding 300 MB of bodies would see every child at 300 MB.
This launcher is a small process: the command it forks inherits only its few megabytes, and
``wait4`` then gives the command's own peak.

    python -m benchmarks.peak_rss OUT.json -- COMMAND [ARGS...]

Writes ``{"exit_code": …, "peak_rss_kb": …, "user_s": …, "sys_s": …}`` to OUT.json and exits
with the command's exit code. Standard streams are the command's own.
"""

from __future__ import annotations

import json
import os
import sys


def main() -> int:
    out, separator, *command = sys.argv[1:]
    if separator != "--" or not command:
        raise SystemExit(__doc__)
    pid = os.fork()
    if pid == 0:
        try:
            os.execvp(command[0], command)
        finally:
            os._exit(127)
    _, status, usage = os.wait4(pid, 0)
    code = os.waitstatus_to_exitcode(status)
    with open(out, "w") as f:
        json.dump(
            {
                "exit_code": code,
                "peak_rss_kb": usage.ru_maxrss,
                "user_s": usage.ru_utime,
                "sys_s": usage.ru_stime,
            },
            f,
        )
    return code if code >= 0 else 128 - code


if __name__ == "__main__":
    raise SystemExit(main())
