"""The saliency engine: NormGrad and the paper's baselines, batched, on CPU and CUDA.

>>> from iqgate.explain import METHODS
>>> METHODS[-1]
'normgrad-conv3x3'
"""

from iqgate.explain.engine import METHODS, explain, explain_many, normgrad_layer_maps

__all__ = ["METHODS", "explain", "explain_many", "normgrad_layer_maps"]
