"""What the delivery loop needs of a transport: a :class:`Sender`."""

from __future__ import annotations

import threading
from collections.abc import Iterator, Sequence
from typing import Protocol

from iqgate.node.store.records import Delivery


class Sender(Protocol):
    """Sends outputs to one destination over one transport (DIMSE, STOW-RS, webhook...)."""

    def send(
        self, deliveries: Sequence[Delivery], stop: threading.Event
    ) -> Iterator[tuple[Delivery, str | None]]:
        """Send ``deliveries``, yielding each one handled with None when it arrived or the
        reason it did not. Deliveries not yielded (``stop`` was set, the link dropped)
        go back to the queue without counting an attempt."""
        ...
