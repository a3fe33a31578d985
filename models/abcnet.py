"""ABC-Net-style value approximation (Lin et al. 2017) on the CNV topology.

Every layer after the stem approximates its weights by M binary bases and its input
activations by N shifted binarizations:

    W ~ sum_m alpha_m B_m,   B_m = sign(W~ + u_m),   W~ = (W - mean) / std per out channel,
    A ~ sum_n beta_n A_n,    A_n = sign(x + v_n),
    conv(A, W) ~ sum_m sum_n alpha_m beta_n conv(A_n, B_m)

with fixed shifts u_m spread over [-1, 1] (ABC-Net's u_i) and learned shifts v_n (one
scalar per base per layer). Each of the M x N terms is a binary convolution (one XNOR
MVAU in FINN) and the layer output is their sum.

Hardware constraint (FACTS "Group-Net through FINN"): free float alpha_m / beta_n leave
FLOAT32 multiplies in the fabric. Here all scales are one shared scale (alpha_m = beta_n =
1: integer multiples of one scale, the multiple 1), which the batch norm after the sum
absorbs: the M x N popcounts add as integers. ABC-Net's least-squares alphas (and any
unequal multiple, which would need a constant multiplier per MVAU output) are not built.

Note: conv(A_n, B_m) is linear, so the layer equals ONE convolution of the integer
activation sum_n A_n (N + 1 levels) with the integer weight sum_m B_m (M + 1 levels):
training uses that single convolution (the same values, M x N times cheaper); evaluation
and export run the M x N binary convolutions, which is what the hardware is given.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .blocks import Layer, norm, weight_layer
from .data import dataset_info
from .groupnet import CNV_CONVS, CNV_FCS, CNV_INPUT_SIZE, CNV_POOL_AFTER, Flatten, GroupNet
from .groupnet import _cnv_spatial, _scaled
from .quant import binary_act, input_quant, sign_ste
from .registry import register_model

ACT_SHIFT_SPREAD = 0.5        # v_n start evenly spread over [-0.5, 0.5]


class ShiftedSigns(nn.Module):
    """N shifted binarizations of one tensor: [sign(x + v_1), ..., sign(x + v_N)] (a list).

    In FINN each is a threshold on the layer's integer sum (the shift and the batch norm
    fold into it)."""

    def __init__(self, n: int):
        super().__init__()
        starts = torch.linspace(-ACT_SHIFT_SPREAD, ACT_SHIFT_SPREAD, n) if n > 1 \
            else torch.zeros(1)
        self.shifts = nn.ParameterList(nn.Parameter(v.clone()) for v in starts)
        self.quants = nn.ModuleList(binary_act() for _ in range(n))
        self.fast = True

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        if self.training and self.fast:
            return [sign_ste(x + v) for v in self.shifts]
        return [q(x + v) for q, v in zip(self.quants, self.shifts)]


class BinaryBases(nn.Module):
    """One conv / FC layer as M binary weight bases applied to N binary inputs.

    ``weight`` is the latent float weight; ``pairs[m * n + j]`` is a binary Brevitas layer
    whose weight is set to B_m whenever the module enters eval mode (as ``SoftGate`` fixes
    its level), applied to input j: what evaluation and export run, M x N binary layers
    summed (one layer per pair: FINN refuses a quantized weight shared by two layers)."""

    def __init__(self, in_ch: int, spec: Layer, m: int, n: int):
        super().__init__()
        self.spec = spec
        ref = weight_layer(in_ch, spec, "fp")            # the latent weight's shape and init
        self.weight = nn.Parameter(ref.weight.detach().clone())
        self.register_buffer("u", torch.linspace(-1.0, 1.0, m) if m > 1 else torch.zeros(1))
        self.n = n
        self.pairs = nn.ModuleList(weight_layer(in_ch, spec, "binary") for _ in range(m * n))
        for b in self.pairs:
            b.weight.requires_grad_(False)

    def base_weights(self) -> list[torch.Tensor]:
        w = self.weight
        dims = tuple(range(1, w.dim()))
        z = (w - w.mean(dims, keepdim=True)) / (w.std(dims, keepdim=True) + 1e-8)
        return [sign_ste(z + u) for u in self.u]

    def train(self, mode: bool = True) -> "BinaryBases":
        super().train(mode)
        if not mode:
            with torch.no_grad():
                for i, w in enumerate(self.base_weights()):
                    for b in self.pairs[i * self.n:(i + 1) * self.n]:
                        b.weight.copy_(w)
        return self

    def forward(self, acts: list[torch.Tensor]) -> torch.Tensor:
        if self.training:      # one conv of the integer sums: the same values (linearity)
            a = acts[0]
            for t in acts[1:]:
                a = a + t
            w = self.base_weights()
            weight = w[0]
            for t in w[1:]:
                weight = weight + t
            if self.spec.is_fc:
                return F.linear(a, weight)
            return F.conv2d(a, weight, stride=self.spec.stride, dilation=self.spec.dilation)
        if len(acts) != self.n:
            raise ValueError(f"{len(acts)} activation bases for a layer of {self.n}")
        out = None
        for i, pair in enumerate(self.pairs):
            y = pair(acts[i % self.n])
            out = y if out is None else out + y
        return out


class ABCGroup(nn.Module):
    """An ABC-Net layer: M x N binary base pairs summed, batch norm, N shifted signs (each
    max-pooled if ``pool``)."""

    def __init__(self, in_ch: int, spec: Layer, m: int, n: int, pool: bool = False):
        super().__init__()
        self.layer = BinaryBases(in_ch, spec, m, n)
        self.bn = norm(spec)
        self.act = ShiftedSigns(n)
        self.pool = nn.MaxPool2d(2) if pool else nn.Identity()
        self.out_ch = spec.out_ch

    def forward(self, acts: list[torch.Tensor]) -> list[torch.Tensor]:
        return [self.pool(a) for a in self.act(self.bn(self.layer(acts)))]


class ABCLogits(nn.Module):
    """The classifier: M x N binary base pairs summed, one positive output scale (as
    ``blocks.ScaledLogits``; ``fc`` gives the integer scores)."""

    def __init__(self, in_features: int, num_classes: int, m: int, n: int):
        super().__init__()
        self.fc = BinaryBases(in_features, Layer(num_classes, kernel=0), m, n)
        self.scale = nn.Parameter(torch.tensor(0.05))

    def forward(self, acts: list[torch.Tensor]) -> torch.Tensor:
        return self.fc(acts) * self.scale.abs()


def build_abc_cnv(dataset: str = "fashion-mnist", m: int = 2, n: int = 2,
                  width: float = 1.0) -> GroupNet:
    """CNV with every layer after the stem an ABC-Net layer of M weight bases and N
    activation bases. The stem (8-bit pixels, one binary-weight conv) ends in N shifted
    signs, as every later layer does."""
    if m < 1 or n < 1:
        raise ValueError(f"m and n must be >= 1, got m={m}, n={n}")
    info = dataset_info(dataset)
    if info.height > CNV_INPUT_SIZE or info.height != info.width:
        raise ValueError(f"CNV takes square inputs up to {CNV_INPUT_SIZE}px, "
                         f"{dataset} is {info.height}x{info.width}")
    convs = [_scaled(c, width) for c in CNV_CONVS]
    fcs = [_scaled(c, width) for c in CNV_FCS]
    pad = (CNV_INPUT_SIZE - info.height) // 2
    first = Layer(convs[0], pad=pad)
    stem = nn.Sequential(input_quant(), weight_layer(info.channels, first, "binary",
                                                     zero_pad=True),
                         norm(first), ShiftedSigns(n))
    body: list[nn.Module] = []
    ch = convs[0]
    for i in range(1, len(convs)):
        body.append(ABCGroup(ch, Layer(convs[i]), m, n, pool=i in CNV_POOL_AFTER))
        ch = convs[i]
    body.append(Flatten())
    feat = ch * _cnv_spatial() ** 2
    for f in fcs:
        body.append(ABCGroup(feat, Layer(f, kernel=0), m, n))
        feat = f
    head = ABCLogits(feat, info.num_classes, m, n)
    model = GroupNet(stem, nn.ModuleList(body), head, info.shape, 1, "abc")
    model.bases = (m, n)
    return model


@register_model
def abc_cnv(dataset: str = "fashion-mnist", width: float = 1.0, m: int = 2,
            n: int = 2) -> GroupNet:
    """ABC-Net-style CNV: M weight bases x N activation bases per layer (M x N binary
    MACs per MAC)."""
    return build_abc_cnv(dataset, m, n, width)


@register_model
def abc_cnv_s(dataset: str = "fashion-mnist", width: float = 0.25, m: int = 2,
              n: int = 2) -> GroupNet:
    return build_abc_cnv(dataset, m, n, width)


@register_model
def test_abc_cnv(dataset: str = "fashion-mnist", m: int = 2, n: int = 2) -> GroupNet:
    return build_abc_cnv(dataset, m, n, 1 / 16)
