"""The console's audit log: one JSON line per login, logout, image view, feedback and
export, with the user, the UTC time and the SOP Instance UID where one applies.

It holds no patient name or ID (UIDs only), like the node's logs.
"""

from __future__ import annotations

import json
import os
import threading
from datetime import UTC, datetime
from pathlib import Path


class AuditLog:
    """Appends records to a JSON lines file (mode 0600)."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        os.close(os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600))
        self._lock = threading.Lock()

    def record(
        self, event: str, user: str, sop_instance_uid: str | None = None, **details: object
    ) -> None:
        """Append one record."""
        line = {
            "time": datetime.now(UTC).isoformat(),
            "event": event,
            "user": user,
            "sop_instance_uid": sop_instance_uid,
            **details,
        }
        text = json.dumps(line, sort_keys=True) + "\n"
        with self._lock, self.path.open("a", encoding="utf-8") as handle:
            handle.write(text)
