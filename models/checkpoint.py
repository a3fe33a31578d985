"""Checkpoint files: a model's weights plus everything needed to rebuild it.

A checkpoint is a ``torch.save`` dict with ``format``, ``variant`` and ``config`` (the
registry name and keyword arguments), ``state_dict``, and ``metrics`` (what was measured
when it was written). Training checkpoints (``last.pt``) add the optimizer, scheduler and
RNG states for resuming.
"""

from __future__ import annotations

import os
from pathlib import Path

import torch
from torch import nn

from groupnet.errors import UserError
from groupnet.paths import portable

from .registry import UnknownModelError, create_model

FORMAT = "groupnet-checkpoint/1"


class CheckpointError(UserError, RuntimeError):
    """A checkpoint is missing, unreadable or does not fit the requested variant."""


def save_checkpoint(path: str | os.PathLike, model: nn.Module, metrics: dict | None = None,
                    **extra) -> Path:
    """Write atomically (temp file + rename): an interrupted save never leaves a torn file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    config = dict(model.config)
    payload = {"format": FORMAT, "variant": config.pop("variant"), "config": config,
               "state_dict": model.state_dict(), "metrics": portable(metrics or {}), **extra}
    tmp = path.with_name(path.name + ".tmp")
    torch.save(payload, tmp)
    os.replace(tmp, path)
    return path


def read_checkpoint(path: str | os.PathLike) -> dict:
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path}: checkpoint not found")
    try:
        payload = torch.load(path, map_location="cpu", weights_only=False)
    except Exception as err:  # noqa: BLE001 - any unpickling failure means a bad file
        raise CheckpointError(f"{path}: not a readable checkpoint ({err})") from None
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        raise CheckpointError(f"{path}: not a groupnet checkpoint (no '{FORMAT}' header); "
                              "train one with `groupnet train`")
    return payload


def binary_weight_keys(model: nn.Module) -> list[str]:
    """State-dict keys of the binary (+-1) weight tensors: only their signs matter."""
    from brevitas.nn import QuantConv2d, QuantLinear
    return [f"{name}.weight" for name, mod in model.named_modules()
            if isinstance(mod, (QuantConv2d, QuantLinear))]


def compact_checkpoint(src: str | os.PathLike, dst: str | os.PathLike,
                       metrics: dict | None = None) -> Path:
    """A model checkpoint for the zoo: each binary layer's latent float weights replaced
    by their signs as int8 (sign(0) = +1, as the quantizer takes it), about a quarter of
    the size. The model it loads computes exactly what the original does (the quantizer
    only ever sees the sign); it cannot continue training where the original stopped.
    ``metrics``: the payload's metrics instead of the original's."""
    payload = read_checkpoint(src)
    if metrics is not None:
        payload["metrics"] = metrics
    model = create_model(payload["variant"], **payload["config"])
    keys = binary_weight_keys(model)
    state = dict(payload["state_dict"])
    for key in keys:
        state[key] = torch.where(state[key] >= 0, 1, -1).to(torch.int8)
    payload = {**payload, "state_dict": state, "binary_weights_int8": keys}
    dst = Path(dst)
    tmp = dst.with_name(dst.name + ".tmp")
    torch.save(payload, tmp)
    os.replace(tmp, dst)
    return dst


def load_checkpoint(path: str | os.PathLike, variant: str | None = None,
                    ) -> tuple[nn.Module, dict]:
    """Rebuild the model a checkpoint was trained as; returns ``(model in eval mode, payload)``.

    ``variant``: if given, the checkpoint must have been trained as this variant.
    """
    payload = read_checkpoint(path)
    trained_as = payload["variant"]
    if variant is not None and variant != trained_as:
        raise CheckpointError(f"{path}: checkpoint was trained as '{trained_as}', "
                              f"not '{variant}'; pass the matching variant")
    try:
        model = create_model(trained_as, **payload["config"])
    except (UnknownModelError, TypeError) as err:
        raise CheckpointError(f"{path}: cannot rebuild variant '{trained_as}': {err}") from None
    load_weights(model, payload, path)
    model.eval()
    return model, payload


def load_weights(model: nn.Module, payload: dict, path: str | os.PathLike,
                 latent_scale: dict[str, torch.Tensor] | None = None) -> None:
    """Load a checkpoint's weights into ``model`` (built as ``payload['variant']``).

    A compact checkpoint's binary weights (signs) become float, times ``latent_scale[key]``
    where given (a fine-tune's starting latent magnitude)."""
    state = dict(payload["state_dict"])
    for key in payload.get("binary_weights_int8") or []:       # a compact zoo checkpoint
        state[key] = state[key].float() * (latent_scale or {}).get(key, 1.0)
    try:
        model.load_state_dict(state)
    except RuntimeError as err:
        first = str(err).strip().splitlines()[1:2] or [str(err)]
        raise CheckpointError(f"{path}: weights do not fit variant '{payload['variant']}' "
                              f"({first[0].strip()})") from None


ZOO = Path(__file__).with_name("zoo")


def zoo_checkpoint(variant: str) -> Path:
    """The committed, trained checkpoint of ``variant`` (``models/zoo/<variant>.pt``)."""
    path = ZOO / f"{variant}.pt"
    if not path.is_file():
        have = sorted(p.stem for p in ZOO.glob("*.pt"))
        raise CheckpointError(f"no zoo checkpoint for '{variant}' (zoo: {', '.join(have)}); "
                              f"train one with `groupnet train {variant}`")
    return path


# --------------------------------------------- quantizer statistics (resume points)
def stats_collectors(model: nn.Module) -> dict[str, nn.Module]:
    """Brevitas scaling modules that collect runtime statistics; their step counter and
    running buffer are not in the state dict (loading one ends the collection)."""
    return {name: mod for name, mod in model.named_modules()
            if hasattr(mod, "collect_stats_steps") and hasattr(mod, "counter")
            and hasattr(mod, "buffer")}


def stats_state(model: nn.Module) -> dict:
    return {name: {"counter": int(mod.counter), "buffer": mod.buffer.detach().clone()}
            for name, mod in stats_collectors(model).items()}


def load_stats_state(model: nn.Module, state: dict) -> None:
    for name, mod in stats_collectors(model).items():
        if name in state:
            mod.counter = state[name]["counter"]
            mod.buffer.copy_(state[name]["buffer"])
