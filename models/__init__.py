"""Group-Net models in Brevitas: topologies, quantizers, data, training and QONNX export.

``models`` ends at a QONNX file; ``hw`` starts from one and never imports this package.
The registry's names load torch and the variants on first use, so that a torch-free part
(``groupnet.models.data``: the dataset table the command line reads) stays cheap to import.
"""

__all__ = ["create_model", "list_models", "model_defaults", "UnknownModelError"]


def __getattr__(name: str):
    if name in __all__:
        from . import registry
        return getattr(registry, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
