"""The job and delivery states, and the job state machine as a transition table."""

from __future__ import annotations

from enum import Enum

from iqgate.errors import IqgateError


class SpoolError(IqgateError):
    """The spool cannot do what was asked (illegal state change, missing job...)."""


class JobState(str, Enum):
    """Where a received instance is in the pipeline."""

    RECEIVED = "received"
    ASSESSING = "assessing"
    ASSESSED = "assessed"
    RESULTS_READY = "results_ready"
    DELIVERED = "delivered"
    FAILED = "failed"


class JobVerdict(str, Enum):
    """What a job's assessment recorded: the gate's verdict, or that no model applied."""

    FLAGGED = "flagged"
    PASS = "pass"
    NOT_ASSESSED = "not_assessed"


class DeliveryState(str, Enum):
    """Where one output is on its way to one destination."""

    PENDING = "pending"
    DELIVERED = "delivered"
    DEAD = "dead"


TRANSITIONS: dict[JobState, frozenset[JobState]] = {
    JobState.RECEIVED: frozenset({JobState.ASSESSING, JobState.FAILED}),
    JobState.ASSESSING: frozenset(
        {JobState.RECEIVED, JobState.ASSESSED, JobState.RESULTS_READY, JobState.FAILED}
    ),
    JobState.ASSESSED: frozenset({JobState.RESULTS_READY, JobState.FAILED, JobState.RECEIVED}),
    JobState.RESULTS_READY: frozenset({JobState.DELIVERED, JobState.FAILED}),
    JobState.DELIVERED: frozenset(),
    JobState.FAILED: frozenset({JobState.RECEIVED}),
}
"""The allowed state changes; any other change raises :class:`SpoolError`."""

UNFINISHED = (JobState.RECEIVED, JobState.ASSESSING, JobState.ASSESSED, JobState.RESULTS_READY)
FINISHED = (JobState.DELIVERED, JobState.FAILED)


def check_transition(job_id: int, current: JobState, to: JobState) -> None:
    """Raise :class:`SpoolError` unless :data:`TRANSITIONS` allows ``current`` -> ``to``."""
    if to not in TRANSITIONS[current]:
        raise SpoolError(f"job {job_id} cannot move from {current.value} to {to.value}")
