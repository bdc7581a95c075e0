"""The exception hierarchy of iqgate.

Bad arguments raise the built-in ``ValueError`` or ``TypeError``; conditions that
arise while iqgate does its work raise a subclass of :class:`IqgateError`.
"""


class IqgateError(Exception):
    """Base class of every error iqgate raises on its own account."""


class SaliencyError(IqgateError):
    """A saliency map cannot be computed for this model and input."""


class ModelPackageError(IqgateError):
    """A model package or checkpoint is missing, corrupt or inconsistent."""


class ImagingError(IqgateError):
    """A DICOM dataset's pixel data cannot be turned into model input."""


class RoutingFileError(IqgateError):
    """A site routing file cannot be read, or does not fit the model packages."""
