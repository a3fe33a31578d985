"""Model registry: ``create_model(name, **overrides)`` and ``list_models()``.

Each variant is a short function decorated with :func:`register_model` that returns a
model from keyword arguments; ``overrides`` replace its defaults (e.g. ``k=2``,
``width=0.5``, ``dataset="cifar10"``). Every model carries ``model.config``: the variant
name and the exact keyword arguments it was built with, which checkpoints store so that a
checkpoint always knows how to rebuild its model.
"""

from __future__ import annotations

import inspect
from typing import Callable

from torch import nn

from groupnet.errors import UserError

_REGISTRY: dict[str, Callable[..., nn.Module]] = {}


class UnknownModelError(UserError, KeyError):
    def __str__(self) -> str:  # KeyError would quote the message
        return self.args[0]


def register_model(fn: Callable[..., nn.Module]) -> Callable[..., nn.Module]:
    name = fn.__name__
    if name in _REGISTRY:
        raise ValueError(f"model '{name}' registered twice")
    _REGISTRY[name] = fn
    return fn


def _load_variants() -> None:
    """Register every variant (the modules register theirs when imported)."""
    from . import abcnet, detnet, groupnet, segnet  # noqa: F401


def list_models(pattern: str | None = None) -> list[str]:
    import fnmatch
    _load_variants()
    names = sorted(_REGISTRY)
    return [n for n in names if pattern is None or fnmatch.fnmatch(n, pattern)]


def model_defaults(name: str) -> dict:
    fn = _lookup(name)
    return {p.name: p.default for p in inspect.signature(fn).parameters.values()
            if p.default is not inspect.Parameter.empty}


def _lookup(name: str) -> Callable[..., nn.Module]:
    _load_variants()
    try:
        return _REGISTRY[name]
    except KeyError:
        raise UnknownModelError(
            f"unknown model '{name}': `groupnet list` shows the registered variants") from None


def create_model(name: str, **overrides) -> nn.Module:
    fn = _lookup(name)
    defaults = model_defaults(name)
    unknown = set(overrides) - set(defaults)
    if unknown:
        raise TypeError(f"model '{name}' has no option(s) {sorted(unknown)}; "
                        f"options: {sorted(defaults)}")
    kwargs = {**defaults, **overrides}
    model = fn(**kwargs)
    model.config = {"variant": name, **kwargs}
    return model
