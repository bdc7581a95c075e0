"""Reference receivers for the load campaign: what a C-STORE costs without iqgate.

``python -m iqgate_testkit.soak.receivers PORT FOLDER [--fsync]`` runs the minimal pynetdicom receiver
(the reference of docs/reliability.md): the C-STORE handler writes ``event.encoded_dataset()`` straight to a
file and answers success. With ``--fsync`` it also fsyncs the file and its folder before
answering: the floor of any durable receiver (no parsing, no job table). With
``--status 0xA700`` it stores nothing and answers that status: a PACS in trouble.
"""

from __future__ import annotations

import argparse
import itertools
import os
import sys
import threading
from pathlib import Path

from pynetdicom import AE, evt
from pynetdicom.presentation import AllStoragePresentationContexts

SUCCESS = 0x0000


def _fsync_path(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def serve(port: int, folder: Path, *, fsync: bool, status: int = SUCCESS) -> None:
    """Receive until killed, one file per instance, unique names."""
    folder.mkdir(parents=True, exist_ok=True)
    counter = itertools.count()
    lock = threading.Lock()

    def on_store(event: evt.Event) -> int:
        if status != SUCCESS:
            return status
        with lock:
            number = next(counter)
        path = folder / f"{number:08d}.dcm"
        with path.open("wb") as handle:
            handle.write(event.encoded_dataset())
            if fsync:
                handle.flush()
                os.fsync(handle.fileno())
        if fsync:
            _fsync_path(folder)
        return SUCCESS

    ae = AE(ae_title="REFERENCE")
    ae.maximum_pdu_size = 0
    ae.maximum_associations = 64
    ae.require_called_aet = False
    ae.supported_contexts = AllStoragePresentationContexts
    ae.start_server(("127.0.0.1", port), evt_handlers=[(evt.EVT_C_STORE, on_store)])


def command(port: int, folder: Path, *options: str) -> list[str]:
    """The command line that runs :func:`serve` in a process of its own."""
    return [sys.executable, "-m", "iqgate_testkit.soak.receivers", str(port), str(folder), *options]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("port", type=int)
    parser.add_argument("folder", type=Path)
    parser.add_argument("--fsync", action="store_true", help="fsync file and folder first")
    parser.add_argument("--status", type=lambda v: int(v, 0), default=SUCCESS, help="answer this")
    args = parser.parse_args()
    serve(args.port, args.folder, fsync=args.fsync, status=args.status)


if __name__ == "__main__":
    main()
