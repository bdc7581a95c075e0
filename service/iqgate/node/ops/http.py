"""The operations endpoint: a GET route table served over HTTP; the node's routes are
``/metrics`` (Prometheus), ``/healthz`` and ``/readyz``."""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from iqgate.node.ops.metrics import NodeMetrics

Response = tuple[int, str, bytes]
"""(HTTP status, content type, body)."""
Route = Callable[[], Response]


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


class OperationsServer:
    """A small threaded HTTP server answering GET on a route table (path -> route)."""

    def __init__(self, host: str, port: int, routes: Mapping[str, Route]) -> None:
        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                route = routes.get(self.path.split("?", 1)[0])
                status, content_type, body = (
                    route() if route else (404, "text/plain", b"not found\n")
                )
                self.send_response(status)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: object) -> None:
                return

        self._server = ThreadingHTTPServer((host, port), Handler)
        self._server.daemon_threads = True
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
