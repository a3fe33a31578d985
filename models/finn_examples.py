"""FINN's own binary networks (brevitas_examples' BNN-PYNQ TFC / CNV), exported the way
FINN's end-to-end tests export them, so that a FINN user's model goes through this
toolkit's flow as it comes.

The file a FINN user has: Brevitas ``export_qonnx`` of the network, a ``Div`` by 255 in
front (FINN's ``ToTensor`` pre-processing: the accelerator takes 8-bit pixels), the input
annotated ``UINT8``, and a final ``TopK`` (k=1, FINN's ``InsertTopK``) that the hardware
maps to a LabelSelect layer. No ``groupnet.*`` metadata: the build takes its test images
from ``--images FILE.npy`` (uint8, N x C x H x W) or ``--dataset``.

Weights are random unless a checkpoint is given (the pretrained BNN-PYNQ weights are a
download, not reachable here); batch-norm statistics are randomized so that the
thresholds are non-trivial, as FINN's tests do.
"""

from __future__ import annotations

import os
import tempfile
import warnings
from pathlib import Path

import numpy as np
import torch
from torch import nn

from groupnet.errors import UserError

# name -> input shape (C, H, W) of the BNN-PYNQ networks this module exports
NETWORKS = {
    "tfc_1w1a": (1, 28, 28), "tfc_1w2a": (1, 28, 28), "tfc_2w2a": (1, 28, 28),
    "sfc_1w1a": (1, 28, 28), "lfc_1w1a": (1, 28, 28),
    "cnv_1w1a": (3, 32, 32), "cnv_1w2a": (3, 32, 32), "cnv_2w2a": (3, 32, 32),
}


class _Pixels(nn.Module):
    """FINN's ToTensor: uint8 pixels -> [0, 1] (exports as one Div node)."""

    def forward(self, x):
        return x / 255.0


def bnn_pynq(name: str, seed: int = 0) -> nn.Module:
    """The brevitas_examples network ``name`` with random weights and random, non-trivial
    batch-norm statistics (eval mode)."""
    if name not in NETWORKS:
        raise UserError(f"unknown BNN-PYNQ network '{name}'; choose from {', '.join(NETWORKS)}")
    from brevitas_examples.bnn_pynq.models import model_with_cfg
    torch.manual_seed(seed)
    model, _ = model_with_cfg(name, pretrained=False)
    gen = torch.Generator().manual_seed(seed)
    for mod in model.modules():
        if isinstance(mod, (nn.BatchNorm1d, nn.BatchNorm2d)) or \
                type(mod).__name__ == "TensorNorm":
            n = mod.running_mean.numel()
            mod.running_mean.copy_(torch.randn(n, generator=gen) * 2.0)
            mod.running_var.copy_(torch.rand(n, generator=gen) * 4.0 + 0.5)
            mod.weight.data.copy_(torch.rand(n, generator=gen) + 0.5)   # positive: no sign flips
            mod.bias.data.copy_(torch.randn(n, generator=gen) * 0.5)
    return model.eval()


def export_finn_style(model: nn.Module, path: str | os.PathLike,
                      input_shape: tuple[int, int, int], topk: bool = True) -> Path:
    """Export ``model`` as FINN's end-to-end tests do: QONNX, a Div-255 pre-processing node,
    UINT8 input annotation, a final TopK (k=1)."""
    from brevitas.export import export_qonnx
    from qonnx.core.datatype import DataType
    from qonnx.core.modelwrapper import ModelWrapper
    from qonnx.transformation.insert_topk import InsertTopK
    from qonnx.util.cleanup import cleanup_model

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp, warnings.catch_warnings():
        warnings.simplefilter("ignore")
        raw = Path(tmp) / "raw.onnx"
        # Brevitas restores the exported module's training flag afterwards: eval() it
        export_qonnx(nn.Sequential(_Pixels(), model).eval(),
                     input_t=torch.zeros(1, *input_shape), export_path=str(raw))
        wrapped = cleanup_model(ModelWrapper(str(raw)))
    for props in (wrapped.model.metadata_props, wrapped.graph.metadata_props):
        for prop in [p for p in props if p.key.startswith("pkg.torch")]:
            props.remove(prop)                     # torch.export's bookkeeping
    wrapped.set_tensor_datatype(wrapped.graph.input[0].name, DataType["UINT8"])
    if topk:
        wrapped = wrapped.transform(InsertTopK(k=1))
    wrapped.save(str(path))
    return path


def reference_outputs(model: nn.Module, images: np.ndarray) -> np.ndarray:
    """The PyTorch model's outputs on uint8 NCHW ``images`` (before TopK)."""
    with torch.no_grad():
        return model.eval()(torch.from_numpy(images.astype(np.float32)) / 255.0).numpy()


def fashion_mnist_like(images: np.ndarray, input_shape: tuple[int, int, int]) -> np.ndarray:
    """Real Fashion-MNIST images (uint8, N x 1 x 28 x 28) in the input shape of a BNN-PYNQ
    network: zero-padded to H x W and repeated over C channels (CNV takes 3 x 32 x 32)."""
    c, h, w = input_shape
    n, _, ih, iw = images.shape
    if (h, w) != (ih, iw):
        top, left = (h - ih) // 2, (w - iw) // 2
        padded = np.zeros((n, 1, h, w), np.uint8)
        padded[:, :, top:top + ih, left:left + iw] = images
        images = padded
    return np.ascontiguousarray(np.repeat(images, c, axis=1))
