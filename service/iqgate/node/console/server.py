"""The console's process: the spool follower and the web server (uvicorn), until stopped.

Served over HTTPS with the node's certificate and key when ``IQGATE_TLS_CERT`` is set.
The session cookie is ``Secure`` then, or when a trusted proxy header is configured
(the proxy terminates HTTPS); on plain HTTP it is not, and a warning says so at start.
Uvicorn's access log is off: its lines would carry URLs, and the audit log records who
saw what.
"""

from __future__ import annotations

import os
import secrets
import threading
from multiprocessing.synchronize import Event as ProcessEvent

import uvicorn

from iqgate.config import Settings
from iqgate.node.console.audit import AuditLog
from iqgate.node.console.follower import SpoolFollower
from iqgate.node.console.index import INDEX_NAME, ConsoleIndex
from iqgate.node.console.security import Access
from iqgate.node.console.users import UsersFile
from iqgate.node.console.web import Console, build_app
from iqgate.node.ops.logs import get_logger
from iqgate.node.store.spool import Spool

log = get_logger("console")
SHUTDOWN_GRACE_S = 2


def session_secret(settings: Settings) -> str:
    """``IQGATE_CONSOLE_SESSION_SECRET``, else a random one kept (mode 0600) in
    ``console_dir/session.key`` so that sessions survive a restart."""
    if settings.console_session_secret:
        return settings.console_session_secret
    path = settings.console_dir / "session.key"
    path.parent.mkdir(parents=True, exist_ok=True)
    if not path.exists():
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(descriptor, "w") as handle:
            handle.write(secrets.token_hex(32))
    return path.read_text().strip()


def open_console(settings: Settings) -> Console:
    """The console's state: index, audit log, access, the spool for the operations."""
    index = ConsoleIndex(settings.console_dir / INDEX_NAME)
    return Console(
        index=index,
        audit=AuditLog(settings.console_dir / "audit.jsonl"),
        access=Access(
            users=UsersFile(settings.console_users_file),
            session_s=settings.console_session_s,
            trusted_user_header=settings.console_trusted_user_header,
            trusted_proxies=tuple(settings.console_trusted_proxies),
        ),
        spool=Spool(settings.spool_dir, max_bytes=settings.spool_max_bytes),
        exports_dir=settings.console_dir / "exports",
        stopping=threading.Event(),
    )


def serve_console(settings: Settings, stop: ProcessEvent, ready: ProcessEvent) -> None:
    """Follow the spool and serve the console until ``stop`` is set."""
    console = open_console(settings)
    follower = SpoolFollower(
        settings.spool_dir,
        console.index,
        settings.console_dir / "images",
        settings.console_retention_s,
    )
    secure = settings.tls_enabled or settings.console_trusted_user_header is not None
    if not secure:
        log.warning(
            "console_plain_http",
            consequence="session cookies are not Secure; set IQGATE_TLS_CERT/KEY or serve "
            "the console behind an HTTPS proxy",
        )
    app = build_app(console, session_secret(settings), secure_cookie=secure)
    config = uvicorn.Config(
        app,
        host=settings.console_host,
        port=int(settings.console_port or 0),
        access_log=False,
        log_config=None,
        timeout_graceful_shutdown=SHUTDOWN_GRACE_S,
        ssl_certfile=str(settings.tls_cert) if settings.tls_cert else None,
        ssl_keyfile=str(settings.tls_key) if settings.tls_key else None,
    )
    server = uvicorn.Server(config)
    http = threading.Thread(target=server.run, name="console-http", daemon=True)
    follower.start()
    http.start()
    while not server.started:
        if not http.is_alive():
            raise OSError(f"the console could not listen on port {settings.console_port}")
        stop.wait(0.05)
    log.info("console_started", port=settings.console_port, https=settings.tls_enabled)
    ready.set()
    try:
        while not stop.wait(0.5) and http.is_alive():
            pass
    finally:
        console.stopping.set()
        server.should_exit = True
        http.join(SHUTDOWN_GRACE_S + 5)
        follower.stop()
        console.index.close()
        console.spool.close()
