"""On start: every complete spooled file gets its job row back; stale files go."""

from __future__ import annotations

from pydicom import dcmread

from iqgate.node.ingest.header import PARSE_ERRORS, instance_info
from iqgate.node.store.records import FileRecovery
from iqgate.node.store.spool import Spool


def recover_files(spool: Spool) -> FileRecovery:
    """Reconcile the spool's files with its job table.

    Temporary files are deleted (never acknowledged). A file under ``objects/`` without
    a job row is complete (it was named there only after its fsync): a power cut undid
    its row after the acknowledgement, or the process died before answering. Its job is
    recreated from the file's header and file meta (a failed job of the same SOP
    Instance takes the new file; an active one keeps its own and the file is deleted).
    Call only while no other process receives into this spool.
    """
    removed = spool.files.remove_temporary()
    known = spool.query.recorded_paths()
    recorded = 0
    for path in spool.files.complete():
        if spool.files.relative(path) in known:
            continue
        try:
            header = dcmread(path, stop_before_pixels=True)
            calling = header.file_meta.get("SourceApplicationEntityTitle", "") or ""
            info = instance_info(header, str(calling).strip())
        except (*PARSE_ERRORS, AttributeError):
            path.unlink(missing_ok=True)
            removed += 1
            continue
        stat = path.stat()
        result = spool.record_file(path, info, size=stat.st_size, received_at=stat.st_mtime)
        recorded += 0 if result.duplicate else 1
        removed += 1 if result.duplicate else 0
    return FileRecovery(recorded=recorded, removed=removed)
