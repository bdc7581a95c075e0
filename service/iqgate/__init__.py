"""iqgate: an explainable image-quality gate for medical imaging."""

__version__ = "0.1.0"
