"""Experiments on top of the engine: speed, training, pointing game, randomisation, reports."""
