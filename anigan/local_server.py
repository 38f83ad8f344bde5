"""Small HTTP servers on this machine: a thread per request, served from a background thread or the caller's.

Used by the demo booru and by `anigan serve`. Binding to anything but loopback is the caller's
decision to make explicit; `is_loopback` tells the two apart without resolving names.
"""

from __future__ import annotations

import ipaddress
import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

LOOPBACK = "127.0.0.1"


def is_loopback(host: str) -> bool:
    """True for "localhost" and loopback IP literals (127.0.0.0/8, ::1); names are not resolved."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    context: Any  # what the handlers serve: `self.server.context` in a request handler


class _Server6(_Server):
    address_family = socket.AF_INET6


class LocalServer:
    """`handler` served on (host, port); port 0 picks a free one. Use as a context manager or start()/stop().

    Each request handler reaches `context` as `self.server.context`.
    """

    def __init__(self, handler: type[BaseHTTPRequestHandler], context: Any, host: str = LOOPBACK, port: int = 0, name: str = "http") -> None:
        self._server = (_Server6 if ":" in host else _Server)((host, port), handler)
        self._server.context = context
        self._name = name
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"

    def start(self) -> "LocalServer":
        """Serve from a background thread."""
        # A short poll interval: stop() waits up to one interval, and tests start many servers.
        self._thread = threading.Thread(target=self._server.serve_forever, args=(0.05,), name=self._name, daemon=True)
        self._thread.start()
        return self

    def serve_forever(self) -> None:
        """Serve from this thread until interrupted."""
        self._server.serve_forever()

    def stop(self) -> None:
        # shutdown() waits for a serve loop to end, so it would hang if none was started.
        if self._thread is not None:
            self._server.shutdown()
            self._thread.join()
            self._thread = None
        self._server.server_close()

    def __enter__(self) -> "LocalServer":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
