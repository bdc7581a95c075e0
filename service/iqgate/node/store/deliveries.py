"""The delivery queue: outputs leased per destination, attempts and dead letters."""

from __future__ import annotations

import time
from typing import Protocol

from iqgate.node.store.database import Database
from iqgate.node.store.jobs import finish_if_delivered
from iqgate.node.store.records import Delivery
from iqgate.node.store.states import DeliveryState, JobState


class RetryPolicy(Protocol):
    """When a delivery that failed ``attempts`` times is tried again (the caller's policy)."""

    def retry_after_s(self, attempts: int) -> float | None:
        """Seconds until the next attempt, or None to give up (a dead letter)."""
        ...


class DeliveryQueue:
    """Outputs waiting for their destinations; taken with a lease, so at least once."""

    def __init__(self, db: Database) -> None:
        self._db = db

    def claim(self, destination: str, limit: int, lease_s: float) -> list[Delivery]:
        """Lease up to ``limit`` due deliveries for one destination (results ready only)."""
        now = time.time()
        with self._db.transaction() as db:
            rows = db.execute(
                "UPDATE deliveries SET lease_expires = ? WHERE id IN (SELECT d.id FROM "
                "deliveries d JOIN jobs j ON j.id = d.job_id WHERE d.destination = ? "
                "AND d.state = ? AND d.next_attempt_at <= ? AND j.state = ? "
                "AND (d.lease_expires IS NULL OR d.lease_expires < ?) ORDER BY d.id LIMIT ?) "
                "RETURNING *",
                (
                    now + lease_s,
                    destination,
                    DeliveryState.PENDING.value,
                    now,
                    JobState.RESULTS_READY.value,
                    now,
                    limit,
                ),
            ).fetchall()
        return [Delivery.from_row(r) for r in sorted(rows, key=lambda r: r["id"])]

    def succeeded(self, delivery_id: int) -> None:
        """Record a delivered output; the job is delivered when all its outputs are."""
        with self._db.transaction() as db:
            row = db.execute(
                "UPDATE deliveries SET state = ?, lease_expires = NULL, last_error = NULL, "
                "attempts = attempts + 1 WHERE id = ? RETURNING job_id",
                (DeliveryState.DELIVERED.value, delivery_id),
            ).fetchone()
            if row is not None:
                finish_if_delivered(db, row["job_id"])

    def failed(self, delivery_id: int, error: str, policy: RetryPolicy) -> bool:
        """Record a failed attempt, due again when ``policy`` says; True when now dead."""
        with self._db.transaction() as db:
            attempts = (
                db.execute(
                    "SELECT attempts FROM deliveries WHERE id = ?", (delivery_id,)
                ).fetchone()[0]
                + 1
            )
            delay = policy.retry_after_s(attempts)
            dead = delay is None
            db.execute(
                "UPDATE deliveries SET attempts = ?, state = ?, next_attempt_at = ?, "
                "lease_expires = NULL, last_error = ? WHERE id = ?",
                (
                    attempts,
                    (DeliveryState.DEAD if dead else DeliveryState.PENDING).value,
                    time.time() + (delay or 0.0),
                    error[:500],
                    delivery_id,
                ),
            )
        return dead

    def release(self, delivery_id: int) -> None:
        """Give a leased delivery back without counting an attempt (e.g. on shutdown)."""
        with self._db.transaction() as db:
            db.execute("UPDATE deliveries SET lease_expires = NULL WHERE id = ?", (delivery_id,))
