"""The delivery loops of the settings: one per destination, each with its transport's sender."""

from __future__ import annotations

from iqgate.config import Destination, DicomDestination, DicomWebDestination, Settings
from iqgate.node.delivery.dimse import DimseSender
from iqgate.node.delivery.loop import DeliveryLoop
from iqgate.node.delivery.policy import ExponentialBackoff
from iqgate.node.delivery.sender import Sender
from iqgate.node.delivery.stowrs import StowRsSender
from iqgate.node.delivery.webhook import WebhookSender
from iqgate.node.ops.events import StageEvents
from iqgate.node.store.spool import Spool


def sender_for(destination: Destination, settings: Settings) -> Sender:
    """The sender of a destination's transport."""
    if isinstance(destination, DicomDestination):
        return DimseSender(destination, settings.ae_title, settings.forward_timeout_s)
    if isinstance(destination, DicomWebDestination):
        return StowRsSender(destination, settings.forward_timeout_s)
    return WebhookSender(destination, settings.forward_timeout_s)


def delivery_loops(settings: Settings, spool: Spool, metrics: StageEvents) -> list[DeliveryLoop]:
    """One :class:`DeliveryLoop` per destination of ``settings``, sharing one retry policy."""
    retry = ExponentialBackoff.from_settings(settings)
    return [
        DeliveryLoop(
            str(destination),
            sender_for(destination, settings),
            spool,
            metrics,
            retry,
            lease_s=settings.forward_timeout_s * 4,
        )
        for destination in settings.destinations
    ]
