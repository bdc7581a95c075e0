"""The node's HTTP servers: route tables served over HTTP or HTTPS.

The operations endpoint answers GET on ``/metrics`` (Prometheus), ``/healthz`` and
``/readyz``; the STOW-RS endpoint (:mod:`iqgate.node.ingest.stowrs`) takes POST routes,
each given the request with its body (up to a size limit) and, over TLS, the client's
certificate.
"""

from __future__ import annotations

import ssl
import sys
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import BinaryIO

from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from iqgate.node.ops.logs import get_logger
from iqgate.node.ops.metrics import NodeMetrics

log = get_logger("http")
Response = tuple[int, str, bytes]
"""(HTTP status, content type, body)."""
Route = Callable[[], Response]


@dataclass(frozen=True)
class HttpRequest:
    """A POST request as a POST route sees it."""

    path: str
    headers: Mapping[str, str]
    body: bytes
    client_host: str
    client_certificate: dict[str, object] | None
    """The verified client certificate (``ssl.SSLSocket.getpeercert``), or None."""


PostRoute = Callable[[HttpRequest], Response]
NOT_FOUND: Response = (404, "text/plain", b"not found\n")


def route_for(routes: Mapping[str, PostRoute], path: str) -> PostRoute | None:
    """The POST route of ``path``: the route of a key equal to it or a folder above it."""
    for prefix, route in routes.items():
        if path == prefix or path.startswith(prefix.rstrip("/") + "/"):
            return route
    return None


def operations_routes(
    metrics: NodeMetrics, healthy: Callable[[], bool], ready: Callable[[], bool]
) -> dict[str, Route]:
    """The node's operations routes: ``/metrics``, ``/healthz`` and ``/readyz``."""
    return {
        "/metrics": lambda: (200, CONTENT_TYPE_LATEST, generate_latest(metrics.registry)),
        "/healthz": lambda: (
            (200, "text/plain", b"ok\n") if healthy() else (503, "text/plain", b"unhealthy\n")
        ),
        "/readyz": lambda: (
            (200, "text/plain", b"ready\n") if ready() else (503, "text/plain", b"not ready\n")
        ),
    }


def read_chunked(stream: BinaryIO, max_bytes: int) -> bytes | None:
    """A chunked transfer-coded body (RFC 9112 7.1), or None once it is over ``max_bytes``
    (the rest is left unread). Raises ``ValueError`` for a malformed chunk size."""
    parts: list[bytes] = []
    total = 0
    while True:
        size = int(stream.readline(1024).split(b";", 1)[0].strip() or b"0", 16)
        if size == 0:
            while stream.readline(1024).strip():  # trailer fields, up to the empty line
                pass
            return b"".join(parts)
        total += size
        if total > max_bytes:
            return None
        parts.append(stream.read(size))
        stream.readline(1024)  # the CRLF after the chunk


class QuietServer(ThreadingHTTPServer):
    """A threaded HTTP server that logs a failed request (a refused TLS handshake, a
    client gone) as one line instead of printing its traceback."""

    daemon_threads = True

    def handle_error(self, request: object, client_address: tuple[str, int]) -> None:
        error = sys.exc_info()[1]
        log.warning("http_request_failed", peer=client_address[0], error=repr(error)[:300])


class OperationsServer:
    """A small threaded HTTP server: GET on a route table (path -> route), POST on
    ``post_routes`` (path or folder -> route, bodies up to ``max_body_bytes``), over TLS
    when given an ``ssl_context`` (the handshake runs in the request's thread)."""

    def __init__(
        self,
        host: str,
        port: int,
        routes: Mapping[str, Route],
        *,
        post_routes: Mapping[str, PostRoute] | None = None,
        max_body_bytes: int = 0,
        ssl_context: ssl.SSLContext | None = None,
        timeout_s: float | None = None,
    ) -> None:
        posts = dict(post_routes or {})

        class Handler(BaseHTTPRequestHandler):
            timeout = timeout_s

            def setup(self) -> None:
                super().setup()
                if isinstance(self.connection, ssl.SSLSocket):
                    self.connection.do_handshake()

            def do_GET(self) -> None:
                route = routes.get(self.path.split("?", 1)[0])
                self._answer(route() if route else NOT_FOUND)

            def do_POST(self) -> None:
                path = self.path.split("?", 1)[0]
                route = route_for(posts, path)
                if route is None:
                    self._answer(NOT_FOUND)
                    return
                try:
                    body = self._body()
                except ValueError:
                    self.close_connection = True
                    self._answer((400, "text/plain", b"malformed body length or chunk\n"))
                    return
                if body is None:
                    self.close_connection = True
                    self._answer(
                        (413, "text/plain", f"body over {max_body_bytes} bytes\n".encode())
                    )
                    return
                certificate = (
                    self.connection.getpeercert()
                    if isinstance(self.connection, ssl.SSLSocket)
                    else None
                )
                request = HttpRequest(
                    path,
                    self.headers,
                    body,
                    str(self.client_address[0]),
                    certificate or None,
                )
                self._answer(route(request))

            def _body(self) -> bytes | None:
                """The request body (chunked or of Content-Length; none: empty), or None
                when it is over ``max_body_bytes``."""
                if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
                    return read_chunked(self.rfile, max_body_bytes)
                length = int(self.headers.get("Content-Length") or 0)
                return None if length > max_body_bytes else self.rfile.read(length)

            def _answer(self, response: Response) -> None:
                status, content_type, body = response
                self.send_response(status)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: object) -> None:
                return

        self._server = QuietServer((host, port), Handler)
        if ssl_context is not None:
            self._server.socket = ssl_context.wrap_socket(
                self._server.socket, server_side=True, do_handshake_on_connect=False
            )
        self._thread = threading.Thread(target=self._server.serve_forever, name="http", daemon=True)

    @property
    def port(self) -> int:
        """The bound port."""
        return int(self._server.server_address[1])

    def start(self) -> None:
        """Serve in a background thread."""
        self._thread.start()

    def stop(self) -> None:
        """Stop serving."""
        self._server.shutdown()
        self._server.server_close()
