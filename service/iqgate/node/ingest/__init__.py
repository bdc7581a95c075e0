"""Receiving: the storage SCP and its handlers, header reading, file meta, file recovery."""
