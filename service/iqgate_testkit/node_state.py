"""A running node's state, read through the store's read-only query API."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from iqgate.node.store.queries import SpoolQueries
from iqgate.node.store.states import FINISHED, DeliveryState, JobState
from iqgate_testkit.peers import NodeProcess


@contextmanager
def spool_query(spool: Path) -> Iterator[SpoolQueries]:
    """Read-only queries on a node's spool folder (the store's query API)."""
    query = SpoolQueries.open(spool)
    try:
        yield query
    finally:
        query.close()


def job_states(node: NodeProcess) -> dict[str, JobState]:
    """SOP Instance UID -> job state."""
    with spool_query(node.spool) as query:
        return query.job_states()


def all_finished(node: NodeProcess, expected_jobs: int) -> bool:
    """Whether the spool holds ``expected_jobs`` jobs, each delivered or failed."""
    states = job_states(node)
    return len(states) >= expected_jobs and all(s in FINISHED for s in states.values())


def delivery_uids(node: NodeProcess, state: DeliveryState | None = None) -> set[str]:
    """SOP Instance UIDs of the outputs queued for delivery (optionally in one state)."""
    with spool_query(node.spool) as query:
        return {d.sop_instance_uid for d in query.deliveries(state)}
