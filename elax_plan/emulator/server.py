"""Serve an emulator over a real socket with uvicorn until SIGINT/SIGTERM.

Owns the socket (bound before the "listening" line is printed, so a client
that reads the line can connect at once, port 0 included) and the shutdown
order: stop accepting, finish in-flight requests, stop the indexer. This is
the one place an emulator owns its process, so the only one that accepts the
``crash_during_append`` fault.
"""

from __future__ import annotations

import signal
import socket
import threading
from collections.abc import Callable

import uvicorn

from elax_plan.emulator.app import AsgiApp, Emulator
from elax_plan.emulator.config import EmulatorConfig


def bind(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    sock.listen(128)
    sock.set_inheritable(True)
    return sock


def serve(
    config: EmulatorConfig,
    host: str = "127.0.0.1",
    port: int = 3000,
    announce: Callable[[str], None] = print,
) -> None:
    """Run until a signal arrives; ``announce`` gets the listening line."""
    sock = bind(host, port)
    bound_port = sock.getsockname()[1]
    emulator = Emulator(config, owns_process=True).start()
    server = uvicorn.Server(
        uvicorn.Config(
            AsgiApp(emulator),
            log_level="warning",
            access_log=False,
            lifespan="off",
            timeout_graceful_shutdown=10,
        )
    )
    shown = f"[{host}]" if ":" in host else host
    announce(
        f"elacsym emulator listening on http://{shown}:{bound_port} ({config.layout_description})"
    )
    # uvicorn handles SIGINT/SIGTERM while it serves and re-raises the signal afterwards;
    # with these handlers in place that re-raise is a no-op and the process exits 0.
    previous = {
        sig: signal.signal(sig, lambda *_: None)
        for sig in (signal.SIGINT, signal.SIGTERM)
        if threading.current_thread() is threading.main_thread()
    }
    try:
        server.run(sockets=[sock])
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        emulator.close()
        sock.close()
