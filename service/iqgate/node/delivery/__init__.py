"""Delivery: one loop (claim, lease, send, back-off, dead letters) over a Sender per transport."""
