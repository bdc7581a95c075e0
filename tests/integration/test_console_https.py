"""The console serves HTTPS with the node's certificate, and its session cookie is Secure."""

from __future__ import annotations

import ssl
import threading
import urllib.request

from iqgate.config import Settings
from iqgate.node.console.server import serve_console
from iqgate_testkit.certificates import make_pki
from iqgate_testkit.peers import free_port


def test_the_console_serves_https_with_the_nodes_certificate(tmp_path):
    pki = make_pki(tmp_path / "pki")
    port = free_port()
    settings = Settings(
        spool_dir=tmp_path / "spool",
        console_dir=tmp_path / "console",
        console_users_file=tmp_path / "users.json",
        console_port=port,
        console_host="127.0.0.1",
        tls_cert=pki.server_cert,
        tls_key=pki.server_key,
    )
    stop, ready = threading.Event(), threading.Event()
    server = threading.Thread(target=serve_console, args=(settings, stop, ready), daemon=True)
    server.start()
    try:
        assert ready.wait(30), "the console did not start"
        context = ssl.create_default_context(cafile=str(pki.ca))
        with urllib.request.urlopen(f"https://127.0.0.1:{port}/login", context=context) as answer:
            assert answer.status == 200
            cookie = answer.headers["set-cookie"]
        assert "secure" in cookie and "httponly" in cookie
    finally:
        stop.set()
        server.join(30)
    assert not server.is_alive()
