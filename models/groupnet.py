"""Group-Net topologies: a CNV-style VGG net and a ResNet-style net, and their variants.

Both share one skeleton: ``stem`` (8-bit pixels -> binary, a single branch as in the
paper, whose first layer is not decomposed) -> ``body`` (groups) -> ``head`` (binary FC
to class scores). See ``blocks.py`` for the groups and README "Models" for where and why
this departs from the paper.
"""

from __future__ import annotations

import torch
from torch import nn

from .blocks import (PRECISIONS, Group, Layer, ResidualGroup, ScaledLogits, SharedInt,
                     Sign, TransitionGroup, act_bits, norm, weight_bits, weight_layer)
from .data import dataset_info
from .quant import input_quant
from .registry import register_model

# FINN's CNV: six 3x3 convs (pool after the 2nd and 4th), two FC layers, FC classifier.
CNV_CONVS = (64, 64, 128, 128, 256, 256)
CNV_POOL_AFTER = (1, 3)
CNV_FCS = (512, 512)
CNV_INPUT_SIZE = 32   # unpadded convs need 32x32; smaller inputs are zero-padded in conv 0


class GroupNet(nn.Module):
    """stem -> body -> flatten -> head. ``groups`` names each group for reports."""

    def __init__(self, stem: nn.Module, body: nn.ModuleList, head: nn.Module,
                 input_shape: tuple[int, int, int], k: int, precision: str):
        super().__init__()
        self.stem = stem
        self.body = body
        self.head = head
        self.input_shape = input_shape
        self.k = k
        self.precision = precision

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x))

    def features(self, x: torch.Tensor) -> torch.Tensor:
        x = self.stem(x)
        for group in self.body:
            x = group(x)
        return x

    def integer_scores(self, x: torch.Tensor) -> torch.Tensor:
        """The score layer's outputs without the positive output scale: what the
        accelerator returns (integers for a binary net). Their argmax is the forward's,
        also on ties once upsampled, where the scaled floats would round differently."""
        return self.head.fc(self.features(x))


class Flatten(nn.Module):
    """Between the conv and FC parts (a module so the body stays one list); flattens each
    tensor of a list of per-branch inputs (soft-gated groups)."""

    def forward(self, x: torch.Tensor | list[torch.Tensor]) -> torch.Tensor | list[torch.Tensor]:
        if isinstance(x, list):
            return [t.flatten(1) for t in x]
        return x.flatten(1)


def _check(k: int, precision: str, decomposition: str) -> None:
    if k < 1:
        raise ValueError(f"k must be >= 1, got {k}")
    if precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {PRECISIONS}, got '{precision}'")
    if precision != "binary" and k != 1:
        raise ValueError(f"the {precision} network has one branch (k=1)")
    if decomposition not in ("group", "layer"):
        raise ValueError(f"decomposition must be 'group' or 'layer', got '{decomposition}'")


def _stem(in_ch: int, spec: Layer, precision: str, pool: bool = False) -> nn.Sequential:
    mods = [input_quant()] if precision != "fp" else []
    mods += [weight_layer(in_ch, spec, precision, zero_pad=True), norm(spec), Sign(precision)]
    if pool:
        mods.append(nn.MaxPool2d(2))
    return nn.Sequential(*mods)


def _scaled(ch: int, width: float) -> int:
    return max(1, int(round(ch * width)))


def build_cnv(dataset: str = "fashion-mnist", k: int = 4, width: float = 1.0,
              decomposition: str = "group", agg_bits: int = 2,
              precision: str = "binary", soft_gates: bool = False) -> GroupNet:
    """CNV (FINN's binary VGG benchmark) with every layer after the first as Group-Net.

    ``decomposition="group"`` (the paper's method): the groups are {conv1},
    {conv2, conv3}, {conv4, conv5}, {fc0, fc1}; each branch is a whole binary sub-network.
    ``decomposition="layer"`` (the paper's ablation): every layer is its own group.
    ``soft_gates``: learned soft connections between adjacent groups (every group but the
    last feeds branch k of the next one through its own gate, see ``blocks.SoftGate``).
    """
    _check(k, precision, decomposition)
    info = dataset_info(dataset)
    convs = [_scaled(c, width) for c in CNV_CONVS]
    fcs = [_scaled(c, width) for c in CNV_FCS]
    if info.height > CNV_INPUT_SIZE or info.height != info.width:
        raise ValueError(f"CNV takes square inputs up to {CNV_INPUT_SIZE}px, "
                         f"{dataset} is {info.height}x{info.width}")
    stem_pad = (CNV_INPUT_SIZE - info.height) // 2
    stem = _stem(info.channels, Layer(convs[0], pad=stem_pad), precision)

    if decomposition == "group":
        plan = [[1], [2, 3], [4, 5]]
    else:
        plan = [[1], [2], [3], [4], [5]]
    body: list[nn.Module] = []
    ch = convs[0]
    for idx in plan:
        layers = [Layer(convs[i]) for i in idx]
        pool = idx[-1] in CNV_POOL_AFTER
        body.append(Group(ch, layers, k, precision, agg_bits, pool=pool,
                          soft_gates=soft_gates))
        ch = layers[-1].out_ch
    body.append(Flatten())
    feat = ch * _cnv_spatial() ** 2
    fc_plan = [[0, 1]] if decomposition == "group" else [[0], [1]]
    for i, idx in enumerate(fc_plan):
        layers = [Layer(fcs[j], kernel=0) for j in idx]
        last = i == len(fc_plan) - 1         # the classifier takes one binary tensor
        body.append(Group(feat, layers, k, precision, agg_bits,
                          soft_gates=soft_gates and not last))
        feat = layers[-1].out_ch
    head = ScaledLogits(feat, info.num_classes, precision)
    return GroupNet(stem, nn.ModuleList(body), head, info.shape, k, precision)


def _cnv_spatial() -> int:
    size = CNV_INPUT_SIZE - 2          # conv0 (padded input to 32, valid conv)
    for i in range(1, len(CNV_CONVS)):
        size -= 2
        if i in CNV_POOL_AFTER:
            size //= 2
    return size


def build_resnet(dataset: str = "fashion-mnist", k: int = 4, width: float = 1.0,
                 blocks: tuple[int, int] = (2, 2), shortcut_bits: int = 4,
                 precision: str = "binary") -> GroupNet:
    """A small ResNet-style Group-Net (the paper's home topology), sized for 28-32 px.

    stem (conv 3x3, 32 ch, 2x2 pool) -> stage 1: ``blocks[0]`` residual groups ->
    transition group (to 64 ch, 2x2 pool) -> stage 2: ``blocks[1]`` residual groups ->
    binary FC classifier. Each residual group's branch is conv-sign-conv (a whole basic
    block per branch, the paper's group-wise decomposition); shortcut and branch outputs
    share one ``shortcut_bits``-bit quantizer per stage.
    """
    _check(k, precision, "group")
    info = dataset_info(dataset)
    c1, c2 = _scaled(32, width), _scaled(64, width)
    q1 = SharedInt(precision, shortcut_bits, 99.7)
    q2 = SharedInt(precision, shortcut_bits, 99.7)
    stem_mods = [input_quant()] if precision == "binary" else []
    stem_mods += [weight_layer(info.channels, Layer(c1, pad=1), precision, zero_pad=True),
                  norm(Layer(c1)), q1, nn.MaxPool2d(2)]
    stem = nn.Sequential(*stem_mods)
    basic = [Layer(c1, pad=1), Layer(c1, pad=1)]
    body: list[nn.Module] = [ResidualGroup(c1, basic, k, precision, q1)
                             for _ in range(blocks[0])]
    body.append(TransitionGroup(c1, [Layer(c2, pad=1)], k, precision, q2))
    basic = [Layer(c2, pad=1), Layer(c2, pad=1)]
    body += [ResidualGroup(c2, basic, k, precision, q2) for _ in range(blocks[1])]
    body += [Sign(precision), Flatten()]
    spatial = info.height // 4
    head = ScaledLogits(c2 * spatial * spatial, info.num_classes, precision)
    return GroupNet(stem, nn.ModuleList(body), head, info.shape, k, precision)


# ------------------------------------------------------------------------------ variants
# Widths: full (the FINN CNV / GPU sizes), ``_h`` half width (the zoo trained here on 2 CPU
# cores; K=4 at half width has the binary-op count and weight bits of K=1 at full width),
# ``_s`` quarter width (laptop-sized, the demo). Every Group-Net variant (K >= 2) takes
# ``agg_bits``: the width of the shared integer that each branch output is quantized to
# before the K outputs are summed (2, 3 or 4; README "Models").
AGG_BITS = 2


def _groupnet_cnv(dataset: str, width: float, k: int, agg_bits: int,
                  decomposition: str = "group", soft_gates: bool = False) -> GroupNet:
    return build_cnv(dataset, k=k, width=width, decomposition=decomposition,
                     agg_bits=agg_bits, soft_gates=soft_gates)


@register_model
def fp_cnv(dataset: str = "fashion-mnist", width: float = 1.0) -> GroupNet:
    """Full-precision CNV reference (ReLU, float weights)."""
    return build_cnv(dataset, k=1, width=width, precision="fp")


@register_model
def bnn_cnv(dataset: str = "fashion-mnist", width: float = 1.0) -> GroupNet:
    """Plain binary CNV (K=1): FINN's CNV-w1a1 topology."""
    return build_cnv(dataset, k=1, width=width)


@register_model
def groupnet_cnv_k2(dataset: str = "fashion-mnist", width: float = 1.0, k: int = 2,
                    agg_bits: int = AGG_BITS, decomposition: str = "group") -> GroupNet:
    return _groupnet_cnv(dataset, width, k, agg_bits, decomposition)


@register_model
def groupnet_cnv_k4(dataset: str = "fashion-mnist", width: float = 1.0, k: int = 4,
                    agg_bits: int = AGG_BITS, decomposition: str = "group") -> GroupNet:
    return _groupnet_cnv(dataset, width, k, agg_bits, decomposition)


@register_model
def groupnet_cnv_k4_layerwise(dataset: str = "fashion-mnist", width: float = 1.0,
                              k: int = 4, agg_bits: int = AGG_BITS) -> GroupNet:
    """Ablation: layer-wise decomposition (every layer its own group)."""
    return _groupnet_cnv(dataset, width, k, agg_bits, "layer")


@register_model
def fp_resnet(dataset: str = "fashion-mnist", width: float = 1.0) -> GroupNet:
    return build_resnet(dataset, k=1, width=width, precision="fp")


@register_model
def bnn_resnet(dataset: str = "fashion-mnist", width: float = 1.0) -> GroupNet:
    return build_resnet(dataset, k=1, width=width)


@register_model
def groupnet_resnet_k4(dataset: str = "fashion-mnist", width: float = 1.0,
                       k: int = 4, agg_bits: int = 4) -> GroupNet:
    """``agg_bits``: the stage's shared integer (shortcut and branch outputs)."""
    return build_resnet(dataset, k=k, width=width, shortcut_bits=agg_bits)


# Half width: the zoo trained on the 2-core CPU (docs/results.md). Their aggregation width
# is the recipe pilot's choice (4 bits, docs/models.md "The zoo recipe").
AGG_BITS_H = 4

@register_model
def fp_cnv_h(dataset: str = "fashion-mnist", width: float = 0.5) -> GroupNet:
    return build_cnv(dataset, k=1, width=width, precision="fp")


@register_model
def bnn_cnv_h(dataset: str = "fashion-mnist", width: float = 0.5) -> GroupNet:
    return build_cnv(dataset, k=1, width=width)


@register_model
def groupnet_cnv_h_k2(dataset: str = "fashion-mnist", width: float = 0.5, k: int = 2,
                      agg_bits: int = AGG_BITS_H) -> GroupNet:
    return _groupnet_cnv(dataset, width, k, agg_bits)


@register_model
def groupnet_cnv_h_k4(dataset: str = "fashion-mnist", width: float = 0.5, k: int = 4,
                      agg_bits: int = AGG_BITS_H) -> GroupNet:
    return _groupnet_cnv(dataset, width, k, agg_bits)


# Quarter width: laptop-sized (the demo and the first zoo).
@register_model
def fp_cnv_s(dataset: str = "fashion-mnist", width: float = 0.25) -> GroupNet:
    return build_cnv(dataset, k=1, width=width, precision="fp")


@register_model
def bnn_cnv_s(dataset: str = "fashion-mnist", width: float = 0.25) -> GroupNet:
    return build_cnv(dataset, k=1, width=width)


@register_model
def groupnet_cnv_s_k2(dataset: str = "fashion-mnist", width: float = 0.25, k: int = 2,
                      agg_bits: int = AGG_BITS) -> GroupNet:
    return _groupnet_cnv(dataset, width, k, agg_bits)


@register_model
def groupnet_cnv_s_k4(dataset: str = "fashion-mnist", width: float = 0.25, k: int = 4,
                      agg_bits: int = AGG_BITS) -> GroupNet:
    return _groupnet_cnv(dataset, width, k, agg_bits)


@register_model
def groupnet_cnv_s_k4_sg(dataset: str = "fashion-mnist", width: float = 0.25, k: int = 4,
                         agg_bits: int = AGG_BITS) -> GroupNet:
    """groupnet_cnv_s_k4 with learned soft-gated connections between groups."""
    return _groupnet_cnv(dataset, width, k, agg_bits, soft_gates=True)


# Value approximation, FINN's own (issue 30): CNV with 2-bit activations (and weights) in
# {-1, 0, +1}, quantized as brevitas_examples' CNV_1W2A / CNV_2W2A; one branch. Same
# topology and widths as the Group-Nets (the stem's input stays raw 8-bit pixels).
@register_model
def cnv_w1a2(dataset: str = "fashion-mnist", width: float = 1.0) -> GroupNet:
    """FINN's CNV-w1a2: binary weights, 2-bit activations (2 binary MACs per MAC)."""
    return build_cnv(dataset, k=1, width=width, precision="w1a2")


@register_model
def cnv_w2a2(dataset: str = "fashion-mnist", width: float = 1.0) -> GroupNet:
    """FINN's CNV-w2a2: 2-bit weights and activations (4 binary MACs per MAC)."""
    return build_cnv(dataset, k=1, width=width, precision="w2a2")


@register_model
def cnv_s_w1a2(dataset: str = "fashion-mnist", width: float = 0.25) -> GroupNet:
    return build_cnv(dataset, k=1, width=width, precision="w1a2")


@register_model
def cnv_s_w2a2(dataset: str = "fashion-mnist", width: float = 0.25) -> GroupNet:
    return build_cnv(dataset, k=1, width=width, precision="w2a2")


# Tiny variants for tests: train in seconds, exercise every block kind.
@register_model
def test_groupnet_cnv(dataset: str = "fashion-mnist", k: int = 2, agg_bits: int = AGG_BITS,
                      decomposition: str = "group") -> GroupNet:
    return _groupnet_cnv(dataset, 1 / 16, k, agg_bits, decomposition)


@register_model
def test_groupnet_cnv_sg(dataset: str = "fashion-mnist", k: int = 2,
                         agg_bits: int = AGG_BITS, decomposition: str = "group") -> GroupNet:
    return _groupnet_cnv(dataset, 1 / 16, k, agg_bits, decomposition, soft_gates=True)


@register_model
def test_groupnet_resnet(dataset: str = "fashion-mnist", k: int = 2,
                         agg_bits: int = 4) -> GroupNet:
    return build_resnet(dataset, k=k, width=0.125, blocks=(1, 1), shortcut_bits=agg_bits)


@register_model
def test_bnn_cnv(dataset: str = "fashion-mnist") -> GroupNet:
    return build_cnv(dataset, k=1, width=1 / 16)


@register_model
def test_cnv_w1a2(dataset: str = "fashion-mnist") -> GroupNet:
    return build_cnv(dataset, k=1, width=1 / 16, precision="w1a2")


@register_model
def test_cnv_w2a2(dataset: str = "fashion-mnist") -> GroupNet:
    return build_cnv(dataset, k=1, width=1 / 16, precision="w2a2")


def op_counts(model: GroupNet) -> dict[str, int]:
    """Multiply-accumulates per image: ``binary`` (binary operations: XNOR-popcount MACs of
    every layer after the stem, classifier included: what the K branches of a Group-Net
    cost, K per MAC of the K=1 net; a MAC of a ``w1a2`` layer counts as 2 binary MACs, of
    ``w2a2`` as 4 (weight bits x activation bits), an ABC-Net layer's M x N base pairs as
    M x N) and ``stem`` (MACs of the 8-bit first layer). Counted from one forward pass of
    a zero image (in eval mode, where an ABC-Net layer runs one conv per base pair)."""
    from brevitas.nn import QuantConv2d, QuantLinear
    counts = {"binary": 0, "stem": 0}
    stem = {id(m) for m in model.stem.modules()}
    bits = (weight_bits(model.precision) or 1) * (act_bits(model.precision) or 1)

    def hook(mod, inp, out):
        if id(mod) in stem:
            counts["stem"] += out[0].numel() * mod.weight[0].numel()
        else:
            counts["binary"] += out[0].numel() * mod.weight[0].numel() * bits

    layers = (QuantConv2d, QuantLinear, nn.Conv2d, nn.Linear)
    hooks = [m.register_forward_hook(hook) for m in model.modules() if isinstance(m, layers)]
    was_training = model.training
    try:
        with torch.no_grad():
            model.eval()(torch.zeros(1, *model.input_shape))
    finally:
        for h in hooks:
            h.remove()
        model.train(was_training)
    return counts
