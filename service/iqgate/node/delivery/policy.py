"""The retry policy the delivery loop hands the store: exponential back-off with a limit."""

from __future__ import annotations

from dataclasses import dataclass

from iqgate.config import Settings


@dataclass(frozen=True)
class ExponentialBackoff:
    """Retry after ``base_s``, doubling per attempt up to ``max_s``; give up at ``limit``."""

    limit: int
    base_s: float
    max_s: float

    @classmethod
    def from_settings(cls, settings: Settings) -> ExponentialBackoff:
        """The back-off of the ``retry_limit``, ``retry_base_s`` and ``retry_max_s`` settings."""
        return cls(settings.retry_limit, settings.retry_base_s, settings.retry_max_s)

    def retry_after_s(self, attempts: int) -> float | None:
        """Seconds until attempt ``attempts + 1``, or None after the last allowed one."""
        if attempts >= self.limit:
            return None
        return min(self.max_s, self.base_s * 2 ** (attempts - 1))
