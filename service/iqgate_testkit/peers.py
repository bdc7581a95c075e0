"""Real DICOM peers for integration tests: the node as a process, Orthanc, DCMTK tools.

Every server listens on 127.0.0.1 on a free port the test picks and is stopped in
teardown.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest

NODE_AE = "IQGATE"


def require(*tools: str) -> None:
    """Skip the test with a clear reason when a peer tool is not installed."""
    missing = [t for t in tools if shutil.which(t) is None]
    if missing:
        pytest.skip(f"needs {', '.join(missing)} (installed by .ci/run from Debian packages)")


def free_port() -> int:
    """A TCP port free on 127.0.0.1 right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_for(predicate, timeout_s: float, what: str, interval_s: float = 0.1) -> None:
    """Poll ``predicate`` until true, else fail the test naming ``what``."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(interval_s)
    raise AssertionError(f"timed out after {timeout_s} s waiting for {what}")


def http_get(url: str, timeout_s: float = 5.0) -> tuple[int, bytes]:
    """GET ``url``; (status, body), status 0 when nothing answers."""
    try:
        with urllib.request.urlopen(url, timeout=timeout_s) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()
    except OSError:
        return 0, b""


@dataclass
class NodeProcess:
    """``iqgate serve`` running as a child process."""

    process: subprocess.Popen[bytes]
    port: int
    http_port: int
    log_path: Path
    env: dict[str, str]

    @property
    def http_host(self) -> str:
        return self.env.get("IQGATE_HTTP_HOST", "127.0.0.1")

    @property
    def metrics_url(self) -> str:
        return f"http://{self.http_host}:{self.http_port}/metrics"

    @property
    def spool(self) -> Path:
        return Path(self.env["IQGATE_SPOOL_DIR"])

    def metrics(self) -> str:
        return http_get(self.metrics_url)[1].decode()

    def logs(self) -> str:
        return self.log_path.read_text(errors="replace")

    def kill(self) -> None:
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(10)

    def terminate(self) -> int:
        self.process.send_signal(signal.SIGTERM)
        return self.process.wait(60)


def start_node(
    workdir: Path, models_dir: Path, extra_env: dict[str, str] | None = None
) -> NodeProcess:
    """Start the node on free ports with its spool and results under ``workdir``."""
    port, http_port = free_port(), free_port()
    env = {
        **os.environ,
        "IQGATE_HOST": "127.0.0.1",
        "IQGATE_PORT": str(port),
        "IQGATE_HTTP_HOST": "127.0.0.1",
        "IQGATE_HTTP_PORT": str(http_port),
        "IQGATE_SPOOL_DIR": str(workdir / "spool"),
        "IQGATE_RESULTS_DIR": str(workdir / "results"),
        "IQGATE_MODELS_DIR": str(models_dir),
        "IQGATE_DEVICE": "cpu",
        "IQGATE_SERIES_QUIET_S": "1",
        "IQGATE_RETRY_BASE_S": "0.5",
        "IQGATE_RETRY_MAX_S": "2",
        "IQGATE_DECODE_PROCESSES": "0",
        **(extra_env or {}),
    }
    workdir.mkdir(parents=True, exist_ok=True)
    log_path = workdir / f"node-{time.monotonic_ns()}.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "iqgate.cli", "serve"],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    node = NodeProcess(process, port, http_port, log_path, env)

    def ready() -> bool:
        if process.poll() is not None:
            raise AssertionError(f"node exited with {process.returncode}:\n{node.logs()}")
        return http_get(f"http://{node.http_host}:{http_port}/readyz")[0] == 200

    wait_for(ready, 120, "the node to be ready")
    return node


@contextmanager
def running_node(
    workdir: Path, models_dir: Path, extra_env: dict[str, str] | None = None
) -> Iterator[NodeProcess]:
    """A node for the duration of a ``with`` block."""
    node = start_node(workdir, models_dir, extra_env)
    try:
        yield node
    finally:
        if node.process.poll() is None:
            node.process.kill()
            node.process.wait(10)


@dataclass
class Orthanc:
    """An Orthanc PACS with its REST API."""

    process: subprocess.Popen[bytes]
    dicom_port: int
    http_port: int
    ae_title: str = "ORTHANC"

    @property
    def destination(self) -> str:
        return f"{self.ae_title}@127.0.0.1:{self.dicom_port}"

    def get(self, path: str) -> object:
        status, body = http_get(f"http://127.0.0.1:{self.http_port}{path}")
        assert status == 200, f"Orthanc GET {path}: {status} {body[:200]!r}"
        return json.loads(body)

    def post(self, path: str, payload: object) -> object:
        request = urllib.request.Request(
            f"http://127.0.0.1:{self.http_port}{path}",
            data=json.dumps(payload).encode(),
            headers={"Content-Type": "application/json"},
            method="POST",
        )
        with urllib.request.urlopen(request, timeout=10) as response:
            return json.loads(response.read())

    def instances_of_study(self, study_uid: str) -> list[dict[str, object]]:
        found = self.post(
            "/tools/find",
            {"Level": "Instance", "Query": {"StudyInstanceUID": study_uid}, "Expand": True},
        )
        assert isinstance(found, list)
        return found


@contextmanager
def orthanc(workdir: Path, settings: dict[str, object] | None = None) -> Iterator[Orthanc]:
    """Start Orthanc from a JSON configuration on free ports, with ``settings`` added to it
    (plugins, users...); stop it afterwards."""
    require("Orthanc")
    dicom_port, http_port = free_port(), free_port()
    storage = workdir / "orthanc"
    storage.mkdir(parents=True, exist_ok=True)
    config = {
        "Name": "iqgate-test-pacs",
        "StorageDirectory": str(storage),
        "IndexDirectory": str(storage),
        "HttpPort": http_port,
        "DicomPort": dicom_port,
        "DicomAet": "ORTHANC",
        "RemoteAccessAllowed": False,
        "AuthenticationEnabled": False,
        "DicomAlwaysAllowStore": True,
        "DicomCheckCalledAet": False,
        "Plugins": [],
    } | (settings or {})
    config_path = workdir / "orthanc.json"
    config_path.write_text(json.dumps(config))
    with (workdir / "orthanc.log").open("wb") as log:
        process = subprocess.Popen(
            ["Orthanc", str(config_path)], stdout=log, stderr=subprocess.STDOUT
        )
    server = Orthanc(process, dicom_port, http_port)
    try:
        wait_for(lambda: http_get(f"http://127.0.0.1:{http_port}/system")[0] != 0, 60, "Orthanc")
        yield server
    finally:
        process.terminate()
        try:
            process.wait(15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(5)


@dataclass
class StoreScp:
    """DCMTK ``storescp`` writing every received instance to its own file."""

    process: subprocess.Popen[bytes]
    port: int
    folder: Path
    ae_title: str = "STORESCP"

    @property
    def destination(self) -> str:
        return f"{self.ae_title}@127.0.0.1:{self.port}"

    def files(self) -> list[Path]:
        return sorted(p for p in self.folder.iterdir() if p.is_file())


@contextmanager
def storescp(
    workdir: Path, port: int | None = None, options: Sequence[str] = ()
) -> Iterator[StoreScp]:
    """A plain PACS: ``storescp`` with unique file names, so re-sends are counted;
    ``options`` go before the port (TLS: ``+tls key cert +cf ca``)."""
    require("storescp")
    port = port or free_port()
    folder = workdir / "storescp"
    folder.mkdir(parents=True, exist_ok=True)
    process = subprocess.Popen(
        [
            "storescp",
            "--aetitle",
            "STORESCP",
            "--output-directory",
            str(folder),
            "--unique-filenames",
            "+B",
            *options,
            str(port),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_for(lambda: _port_open(port), 30, "storescp")
        yield StoreScp(process, port, folder)
    finally:
        process.terminate()
        process.wait(10)


def port_open(port: int, host: str = "127.0.0.1") -> bool:
    """Whether something accepts TCP connections on ``host:port``."""
    with socket.socket() as sock:
        sock.settimeout(0.2)
        return sock.connect_ex((host, port)) == 0


_port_open = port_open


def storescu(
    files: Sequence[Path],
    port: int,
    *,
    calling: str = "SCANNER",
    called: str = NODE_AE,
    options: Sequence[str] = (),
) -> subprocess.CompletedProcess[str]:
    """Run DCMTK ``storescu`` (verbose, so batch results can be parsed)."""
    require("storescu")
    return subprocess.run(
        [
            "storescu",
            "-v",
            "-aet",
            calling,
            "-aec",
            called,
            *options,
            "127.0.0.1",
            str(port),
            *map(str, files),
        ],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def echoscu(
    port: int, *, calling: str = "SCANNER", called: str = NODE_AE
) -> subprocess.CompletedProcess[str]:
    """Run DCMTK ``echoscu``."""
    require("echoscu")
    return subprocess.run(
        ["echoscu", "-aet", calling, "-aec", called, "127.0.0.1", str(port)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def dciodvfy_errors(path: Path) -> list[str]:
    """Lines of ``dciodvfy`` output that report an error (its exit code says nothing)."""
    require("dciodvfy")
    run = subprocess.run(
        ["dciodvfy", str(path)], capture_output=True, text=True, timeout=60, check=False
    )
    return [line for line in (run.stderr + run.stdout).splitlines() if line.startswith("Error")]
