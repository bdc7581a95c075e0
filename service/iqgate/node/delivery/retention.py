"""Results retention: result files older than the retention period are removed once every
destination has them.

Results live under ``results_dir/<study UID>/<series UID>/``
(:mod:`iqgate.node.outputs.results`). A series
folder is held while a job of that series is unfinished (received, being assessed,
assessed, or with results waiting for a destination: a dead letter keeps its job there
until an operator retries or gives up) and while a delivery still pending or dead names
one of its files. In any other folder, a file whose last change is older than the
retention period is deleted, then the folders left empty. Age is the file's own
modification time, so a result written while the purge runs is never taken, and a job
whose row the spool purge already removed leaves nothing held.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

from iqgate.node.store.queries import SpoolQueries
from iqgate.node.store.states import UNFINISHED, DeliveryState


@dataclass(frozen=True)
class PurgedResults:
    """What one pass of :func:`purge_results` removed."""

    files: int
    size_bytes: int


def held_results(query: SpoolQueries) -> tuple[set[tuple[str, str]], set[Path]]:
    """(study UID, series UID) of every unfinished job, and the files of every delivery
    still pending or dead: what retention must keep."""
    series = {(job.study_uid, job.series_uid) for job in query.jobs(UNFINISHED)}
    files = {
        delivery.path.resolve()
        for state in (DeliveryState.PENDING, DeliveryState.DEAD)
        for delivery in query.deliveries(state)
    }
    return series, files


def purge_results(
    query: SpoolQueries, results_dir: Path, older_than_s: float, *, now: float | None = None
) -> PurgedResults:
    """Delete the result files under ``results_dir`` older than ``older_than_s`` that no
    unfinished job or undelivered output holds, and the folders this leaves empty."""
    if not results_dir.is_dir():
        return PurgedResults(0, 0)
    cutoff = (time.time() if now is None else now) - older_than_s
    held_series, held_files = held_results(query)
    files = size = 0
    for series_dir in sorted(p for p in results_dir.glob("*/*") if p.is_dir()):
        if (series_dir.parent.name, series_dir.name) in held_series:
            continue
        for path in sorted(series_dir.iterdir()):
            if not path.is_file() or path.resolve() in held_files:
                continue
            stat = path.stat()
            if stat.st_mtime <= cutoff:
                path.unlink(missing_ok=True)
                files += 1
                size += stat.st_size
        _remove_if_empty(series_dir)
        _remove_if_empty(series_dir.parent)
    return PurgedResults(files, size)


def _remove_if_empty(folder: Path) -> None:
    try:
        folder.rmdir()
    except OSError:  # not empty (or already gone): kept
        pass
