"""Group-Net models in Brevitas: topologies, quantizers, data, training and QONNX export.

``models`` ends at a QONNX file; ``hw`` starts from one and never imports this package.
"""

from . import groupnet as _variants  # noqa: F401  (registers the variants)
from . import segnet as _seg_variants  # noqa: F401
from . import detnet as _det_variants  # noqa: F401
from . import abcnet as _abc_variants  # noqa: F401
from .registry import UnknownModelError, create_model, list_models, model_defaults

__all__ = ["create_model", "list_models", "model_defaults", "UnknownModelError"]
