"""Experiments on top of the engine: speed, training, pointing game, randomisation, reports."""

from iqgate.study.pointing import pointing_game

__all__ = ["pointing_game"]
