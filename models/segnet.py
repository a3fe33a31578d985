"""Semantic segmentation Group-Nets with Binary Parallel Atrous Convolution (BPAC).

Topology (``build_segnet``), for an input of H x W (64 x 64 scenes):

    stem    conv 3x3 (8-bit pixels, binary weights, one branch), sign, 2x2 max pool  H/2
    group 1 conv 3x3, 2x2 max pool                                              H/4
    group 2 conv 3x3
    group 3 BPAC: branch i is a conv 3x3 with dilation RATES[0][i]
    group 4 BPAC: branch i is a conv 3x3 with dilation RATES[1][i]
    head    binary conv 1x1 -> one integer score map per class (x one positive scale)

Every conv is padded to keep its map size (a binary input is padded with -1, as FINN's
padding of a bipolar stream does), so the output is a (classes, H/4, W/4) score map: what
the accelerator computes. Upsampling to H x W (bilinear) and the argmax are host work, as
the full-precision head of the paper is (``upsample_scores``; the board driver has the
same in numpy).

BPAC (the paper): the K branches of a group use K different dilation rates, so one group
sees K receptive fields for the cost of K branches. The rates are sized to the 16 x 16
map (output stride 4) as the paper's [2..6] / [6..10] are to its 64 x 64 maps (output
stride 8 on 512 px): :data:`RATES`. ``dilation="uniform"`` gives every branch the group's
largest rate: what the official code's branch loop does in effect (every branch ends up
with the last rate), kept as the ablation. The K=1 and full-precision references use the
group's largest rate too.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .blocks import Group, Layer, Sign, weight_layer
from .data import dataset_info
from .groupnet import GroupNet, _check, _scaled, _stem
from .registry import register_model

SEG_CHANNELS = (32, 64, 128, 128)     # stem, group 1, group 2, BPAC groups (width 1.0)
RATES = ((1, 2, 3, 4), (2, 3, 4, 5))  # per BPAC group, for K = 4 (branch i: rate i)
OUTPUT_STRIDE = 4
SEG_AGG_BITS = 4


class ScoreMap(nn.Module):
    """Binary 1x1 conv to per-class score maps, times one learned positive power-of-two
    scale (the segmentation counterpart of ``blocks.ScaledLogits``; the conv is ``fc`` in
    both, the layer whose integer outputs the accelerator returns).

    The scale is rounded to a power of two (straight-through in training): integer maps
    times 2^n are exact floats, and so are their bilinear upsamplings (weights k/8 at
    stride 4), so PyTorch, the QONNX file and the host's upsampling of the accelerator's
    integers give the same masks, ties included."""

    def __init__(self, in_ch: int, num_classes: int, precision: str):
        super().__init__()
        self.fc = weight_layer(in_ch, Layer(num_classes, kernel=1), precision)
        self.scale = nn.Parameter(torch.tensor(0.05))
        self.frozen: float | None = None

    def po2_scale(self) -> torch.Tensor:
        log2 = torch.log2(self.scale.abs().clamp_min(2.0 ** -24))
        return torch.exp2(log2 + (log2.round() - log2).detach())

    def train(self, mode: bool = True) -> "ScoreMap":
        """In eval mode the scale is a Python float (the exporter traces a constant)."""
        super().train(mode)
        self.frozen = None if mode else float(self.po2_scale().detach())
        return self

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.training or self.frozen is None:
            return self.fc(x) * self.po2_scale()
        return self.fc(x) * self.frozen


def branch_rates(group: int, k: int, dilation: str) -> tuple[int, ...]:
    """Dilation rate of each of the ``k`` branches of BPAC group ``group`` (0 or 1)."""
    rates = RATES[group]
    if dilation == "uniform" or k == 1:
        return (rates[-1],) * k
    if dilation != "bpac":
        raise ValueError(f"dilation must be 'bpac' or 'uniform', got '{dilation}'")
    if k > len(rates):     # more branches than rates: continue the sequence
        rates = rates + tuple(rates[-1] + i for i in range(1, k - len(rates) + 1))
    return rates[:k]


def build_segnet(dataset: str = "fashion-mnist-scenes", k: int = 4, width: float = 0.25,
                 dilation: str = "bpac", agg_bits: int = SEG_AGG_BITS,
                 precision: str = "binary") -> GroupNet:
    _check(k, precision, "group")
    info = dataset_info(dataset)
    if info.task != "segmentation":
        raise ValueError(f"segmentation nets take a segmentation dataset, not {dataset} "
                         "(e.g. fashion-mnist-scenes)")
    if info.height % OUTPUT_STRIDE or info.width % OUTPUT_STRIDE:
        raise ValueError(f"input {info.height}x{info.width} is not a multiple of the output "
                         f"stride {OUTPUT_STRIDE}")
    c0, c1, c2, c3 = (_scaled(c, width) for c in SEG_CHANNELS)
    stem = _stem(info.channels, Layer(c0, pad=1), precision, pool=True)
    body = nn.ModuleList([
        Group(c0, [Layer(c1, pad=1)], k, precision, agg_bits, pool=True),
        Group(c1, [Layer(c2, pad=1)], k, precision, agg_bits),
        Group(c2, [Layer(c3)], k, precision, agg_bits,
              dilations=branch_rates(0, k, dilation)),
        Group(c3, [Layer(c3)], k, precision, agg_bits,
              dilations=branch_rates(1, k, dilation)),
    ])
    head = ScoreMap(c3, info.num_classes, precision)
    model = GroupNet(stem, body, head, info.shape, k, precision)
    model.task = "segmentation"
    model.output_stride = OUTPUT_STRIDE
    return model


def upsample_scores(scores: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """Score maps (N, C, h, w) -> (N, C, H, W), bilinear (half-pixel centres, as
    ``align_corners=False``); the board driver's numpy version computes the same."""
    return F.interpolate(scores, size=size, mode="bilinear", align_corners=False)


# ------------------------------------------------------------------------------ variants
# Quarter width (8/16/32/32 channels): trains on the 2-core CPU (docs/results.md).
@register_model
def fp_segnet(dataset: str = "fashion-mnist-scenes", width: float = 0.25) -> GroupNet:
    """Full-precision reference (ReLU, float weights; one branch, the largest rates)."""
    return build_segnet(dataset, k=1, width=width, precision="fp")


@register_model
def bnn_segnet(dataset: str = "fashion-mnist-scenes", width: float = 0.25) -> GroupNet:
    """Plain binary twin (K=1, the largest rates)."""
    return build_segnet(dataset, k=1, width=width)


@register_model
def groupnet_segnet_k4(dataset: str = "fashion-mnist-scenes", width: float = 0.25,
                       k: int = 4, agg_bits: int = SEG_AGG_BITS) -> GroupNet:
    """Group-Net with BPAC: branch i of each atrous group has its own rate (RATES)."""
    return build_segnet(dataset, k=k, width=width, agg_bits=agg_bits)


@register_model
def groupnet_segnet_k4_uniform(dataset: str = "fashion-mnist-scenes", width: float = 0.25,
                               k: int = 4, agg_bits: int = SEG_AGG_BITS) -> GroupNet:
    """Ablation: every branch of an atrous group at the group's largest rate (what the
    official code's branch loop does)."""
    return build_segnet(dataset, k=k, width=width, dilation="uniform", agg_bits=agg_bits)


@register_model
def test_groupnet_segnet(dataset: str = "fashion-mnist-scenes", k: int = 2,
                         agg_bits: int = SEG_AGG_BITS, dilation: str = "bpac") -> GroupNet:
    """Tiny (2/4/4/4 channels): tests."""
    return build_segnet(dataset, k=k, width=1 / 16, dilation=dilation, agg_bits=agg_bits)


@register_model
def test_bnn_segnet(dataset: str = "fashion-mnist-scenes") -> GroupNet:
    return build_segnet(dataset, k=1, width=1 / 16)
