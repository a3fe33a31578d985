"""Building blocks of Group-Net: binary layers, branches, groups and residual groups.

Vocabulary (used the same way in ``hw/``):

- a *branch* is a stack of binary layers (1-bit weights, 1-bit activations between them)
  that ends at a batch-norm output (its pre-activation);
- a *group* runs K homogeneous branches on the same binary input and aggregates their
  outputs with an integer sum; the sum's sign is the next group's binary input;
- a *residual group* adds the K branch outputs to an integer shortcut.

``precision="fp"`` builds the same topology with float weights, ReLU and no quantizers:
the full-precision reference. ``"w1a2"`` / ``"w2a2"`` (value approximation, FINN's own):
2-bit activations (and weights) in {-1, 0, +1} as brevitas_examples' CNV_1W2A / CNV_2W2A
quantize them, in place of the signs (and binary weights); see ``weight_bits``/``act_bits``. ``relax(True)`` makes a binary model use hardtanh instead of
sign and skip the integer quantizers (binary weights stay): the first stage of the
two-stage schedule (weights first, then activations).
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import torch
import torch.nn.functional as F
from brevitas.nn import QuantConv2d, QuantLinear
from torch import nn

from .quant import (BinaryWeight, TernaryWeight, binary_act, int_quant_ste, shared_int_act,
                    sign_ste, ternary_act, ternary_ste)

PRECISIONS = ("binary", "fp", "w1a2", "w2a2")
# quantized precisions: bits of the weights and of the activations between layers
WEIGHT_BITS = {"binary": 1, "w1a2": 1, "w2a2": 2}
ACT_BITS = {"binary": 1, "w1a2": 2, "w2a2": 2}


def weight_bits(precision: str) -> int | None:
    return WEIGHT_BITS.get(precision)


def act_bits(precision: str) -> int | None:
    return ACT_BITS.get(precision)


@dataclass(frozen=True)
class Layer:
    """One conv (``kernel > 0``) or fully connected (``kernel == 0``) layer."""
    out_ch: int
    kernel: int = 3
    stride: int = 1
    pad: int = 0       # padding of a binary (+-1) input is done with -1, see PadMinusOne
    dilation: int = 1

    @property
    def is_fc(self) -> bool:
        return self.kernel == 0

    def dilated(self, rate: int) -> "Layer":
        """This conv with dilation ``rate`` and the padding that keeps the map size."""
        return replace(self, dilation=rate, pad=rate * (self.kernel - 1) // 2)


class Sign(nn.Module):
    """Binary activation (sign, STE); ReLU for the full-precision reference; the 2-bit
    activation {-1, 0, +1} for ``w1a2`` / ``w2a2``.

    ``fast`` (training only): the same values and gradients from one autograd function
    instead of Brevitas' generic quantizer (``quant.sign_ste``, ``quant.ternary_ste``)."""

    def __init__(self, precision: str):
        super().__init__()
        bits = act_bits(precision)
        self.quant = None if bits is None else binary_act() if bits == 1 else ternary_act()
        self.binary = bits == 1
        self.relaxed = False
        self.fast = True

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.quant is None:
            return F.relu(x)
        if self.relaxed:
            return F.hardtanh(x)
        if self.training and self.fast:
            return sign_ste(x) if self.binary else ternary_ste(x)
        return self.quant(x)


class SharedInt(nn.Module):
    """A shared integer quantizer (identity for the full-precision reference).

    The same instance is applied to every operand of one integer sum, so all operands
    carry the same (power-of-two) scale and the sum is exact integer arithmetic.
    """

    def __init__(self, precision: str, bit_width: int, init_percentile: float = 99.0):
        super().__init__()
        self.bit_width = bit_width
        self.quant = (shared_int_act(bit_width, init_percentile)
                      if precision != "fp" else None)
        self.relaxed = False
        self.fast = True         # training only: quant.int_quant_ste, same values/gradients

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.quant is None or self.relaxed:
            return x
        if self.training and self.fast:
            return int_quant_ste(self.quant, x)
        return self.quant(x)


class PadMinusOne(nn.Module):
    """Spatial padding of a +-1 tensor with -1.

    Zero is not a value a bipolar stream can carry; FINN pads binary streams with the
    encoded value 0, which means -1. Padding with -1 in PyTorch makes the model compute
    exactly what the hardware computes.
    """

    def __init__(self, pad: int):
        super().__init__()
        self.pad = pad

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.pad(x, (self.pad,) * 4, value=-1.0)


def weight_layer(in_ch: int, spec: Layer, precision: str, zero_pad: bool = False) -> nn.Module:
    """A conv/linear layer with binary weights (or float ones for the reference).

    ``zero_pad`` pads inside the conv (only for integer inputs, where 0 is a real value).
    """
    pad = spec.pad if zero_pad else 0
    ternary = weight_bits(precision) == 2
    quant = TernaryWeight if ternary else BinaryWeight
    if spec.is_fc:
        if precision == "fp":
            return nn.Linear(in_ch, spec.out_ch, bias=False)
        layer = QuantLinear(in_ch, spec.out_ch, bias=False, weight_quant=quant)
    elif precision == "fp":
        return nn.Conv2d(in_ch, spec.out_ch, spec.kernel, spec.stride, pad,
                         dilation=spec.dilation, bias=False)
    else:
        layer = QuantConv2d(in_ch, spec.out_ch, spec.kernel, spec.stride, pad,
                            dilation=spec.dilation, bias=False, weight_quant=quant)
    if ternary:   # as brevitas_examples' CNV: PyTorch's init would round every weight to 0
        nn.init.uniform_(layer.weight, -1.0, 1.0)
    return layer


def norm(spec: Layer) -> nn.Module:
    return nn.BatchNorm1d(spec.out_ch) if spec.is_fc else nn.BatchNorm2d(spec.out_ch)


class Branch(nn.Sequential):
    """Binary layers with sign between them; ends at the last batch norm's output."""

    def __init__(self, in_ch: int, layers: list[Layer], precision: str):
        mods: list[nn.Module] = []
        for i, spec in enumerate(layers):
            if i > 0:
                mods.append(Sign(precision))
            if spec.pad and not spec.is_fc:
                mods.append(PadMinusOne(spec.pad) if act_bits(precision) == 1
                            else nn.ZeroPad2d(spec.pad))       # 0 is a 2-bit value
            mods += [weight_layer(in_ch, spec, precision), norm(spec)]
            in_ch = spec.out_ch
        super().__init__(*mods)


class SoftGate(nn.Module):
    """Learned soft connection from one group into branch k of the next group (Group-Net's
    soft-gated connections between groups): branch k's input is the sign of

        g_k * b_k + (1 - g_k) * y,    g_k = sigmoid(theta_k) quantized to {0, 1/2, 1},

    where ``b_k`` is branch k's own quantized output and ``y`` the group's integer sum.
    The gate is rounded with a straight-through estimator, so training sees the gate the
    hardware applies. Three levels keep the hardware free of multipliers: only the sign
    reaches the next branch, so g = 1/2 is sign(b_k + y) (one integer add, the 1/2 is
    absorbed into the sign's threshold), g = 0 is sign(y) (the plain group output) and
    g = 1 is sign(b_k) (branch k runs on its own output). A finer gate (n/N, N > 2) would
    need integer constant multiplies (e.g. 3 * b_k) in the fabric.
    """

    LEVELS = 2          # g in {0, 1/LEVELS, ..., 1}

    def __init__(self):
        super().__init__()
        self.theta = nn.Parameter(torch.zeros(()))      # g = 1/2: b_k + y at the start
        self.frozen: int | None = None

    def level(self) -> torch.Tensor:
        """The gate as an integer n in 0..LEVELS (g = n / LEVELS), straight-through."""
        n = torch.sigmoid(self.theta) * self.LEVELS
        return n + (n.round() - n).detach()

    def train(self, mode: bool = True) -> "SoftGate":
        """Entering eval mode fixes the gate as a Python integer: the ONNX exporter traces
        parameters symbolically and cannot branch on their value."""
        super().train(mode)
        self.frozen = None if mode else int(self.level().detach().round())
        return self

    def forward(self, own: torch.Tensor, total: torch.Tensor) -> torch.Tensor:
        if self.training:
            g = self.level() / self.LEVELS
            return g * own + (1 - g) * total
        # the same values with the quantized gate as a constant, so that the exported
        # graph holds no multiply by 0 or 1 (products and sums of power-of-two-scaled
        # integers are exact: both forms give identical floats)
        n = self.frozen if torch.compiler.is_exporting() else int(self.level().round())
        if n is None:
            raise RuntimeError("export a SoftGate model in eval mode (call model.eval())")
        if n == 0:
            return total
        if n == self.LEVELS:
            return own
        return (own + total) * 0.5


# Where a group's shared quantizer starts its scale (percentile of |branch output| on the
# first batches, mapped to the largest level): 2 bits clip hard, wider integers keep the tail.
AGG_INIT_PERCENTILE = {2: 80.0, 3: 95.0}


class Group(nn.Module):
    """K homogeneous binary branches on one binary input, aggregated by an integer sum.

    Each branch output is quantized by ONE shared signed ``agg_bits``-bit quantizer, so the
    aggregation sum_k lambda_k * b_k of the paper becomes an integer sum with a single
    scale; each branch's lambda_k is folded into its own batch-norm affine. With K = 1 the
    branch output goes straight to the sign (a plain binary layer stack).
    Output: sign of the sum, max-pooled if ``pool``.

    ``soft_gates``: the output is instead a list of K binary tensors, one per branch of
    the next group, each the sign of a learned mix of its branch's output and the sum
    (:class:`SoftGate`). The input may be such a list (one tensor per branch).

    ``dilations``: one dilation rate per branch (Binary Parallel Atrous Convolution:
    branch i's convs all use rate ``dilations[i]``, padded to keep the map size), so the
    K branches of one group see K receptive fields.
    """

    def __init__(self, in_ch: int, layers: list[Layer], k: int, precision: str,
                 agg_bits: int = 2, pool: bool = False, soft_gates: bool = False,
                 dilations: tuple[int, ...] | None = None):
        super().__init__()
        if soft_gates and (k < 2 or precision != "binary"):
            raise ValueError("soft gates connect the K >= 2 branches of binary groups")
        if dilations is not None and len(dilations) != k:
            raise ValueError(f"{len(dilations)} dilation rates for {k} branches")
        self.k = k
        self.dilations = tuple(dilations) if dilations is not None else None
        self.branches = nn.ModuleList(
            Branch(in_ch, [spec.dilated(dilations[i]) if dilations and not spec.is_fc
                           else spec for spec in layers], precision)
            for i in range(k))
        if not 2 <= agg_bits <= 8:
            raise ValueError(f"agg_bits must be in 2..8, got {agg_bits}")
        self.aggregate = (SharedInt(precision, agg_bits, AGG_INIT_PERCENTILE.get(agg_bits, 99.0))
                          if k > 1 else None)
        self.gates = nn.ModuleList(SoftGate() for _ in range(k)) if soft_gates else None
        self.act = Sign(precision)
        self.pool = nn.MaxPool2d(2) if pool else nn.Identity()
        self.out_ch = layers[-1].out_ch

    def forward(self, x: torch.Tensor | list[torch.Tensor]
                ) -> torch.Tensor | list[torch.Tensor]:
        inputs = x if isinstance(x, list) else [x] * self.k
        outs = [branch(inp) for branch, inp in zip(self.branches, inputs)]
        if self.aggregate is None:
            return self.pool(self.act(outs[0]))
        outs = [self.aggregate(out) for out in outs]
        y = outs[0]
        for out in outs[1:]:
            y = y + out
        if self.gates is None:
            return self.pool(self.act(y))
        return [self.pool(self.act(gate(out, y))) for gate, out in zip(self.gates, outs)]


class ResidualGroup(nn.Module):
    """Group-Net's residual block: h' = q(h + sum_k q(branch_k(sign(h)))).

    ``q`` is the stage's shared integer quantizer (``shortcut``), applied to the shortcut
    (upstream), every branch output and again after the add (requantization), so every
    operand of the add has one scale and the result stays a few-bit integer.
    """

    def __init__(self, ch: int, layers: list[Layer], k: int, precision: str,
                 shortcut: SharedInt):
        super().__init__()
        self.k = k
        self.sign = Sign(precision)
        self.branches = nn.ModuleList(Branch(ch, layers, precision) for _ in range(k))
        self.q = shortcut
        self.out_ch = layers[-1].out_ch

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        a = self.sign(h)
        y = h
        for branch in self.branches:
            y = y + self.q(branch(a))
        return self.q(y)


class TransitionGroup(nn.Module):
    """A group that changes width and resolution between residual stages:
    h' = pool(q(sum_k q(branch_k(sign(h))))), with the next stage's quantizer ``q``."""

    def __init__(self, ch: int, layers: list[Layer], k: int, precision: str,
                 quant: SharedInt, pool: bool = True):
        super().__init__()
        self.k = k
        self.sign = Sign(precision)
        self.branches = nn.ModuleList(Branch(ch, layers, precision) for _ in range(k))
        self.q = quant
        self.pool = nn.MaxPool2d(2) if pool else nn.Identity()
        self.out_ch = layers[-1].out_ch

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        a = self.sign(h)
        y = self.q(self.branches[0](a))
        for branch in self.branches[1:]:
            y = y + self.q(branch(a))
        return self.pool(self.q(y))


class ScaledLogits(nn.Module):
    """Last layer: binary FC with a single learned positive output scale.

    One positive scalar keeps the argmax of the integer popcount scores (so hardware can
    stop at the integers); it only tempers the softmax during training. It is stored as
    the value itself (used as ``|scale|``), not as a logarithm: an ``exp`` in the graph
    would be evaluated by two different libraries and differ in the last bit.
    """

    def __init__(self, in_features: int, num_classes: int, precision: str):
        super().__init__()
        self.fc = weight_layer(in_features, Layer(num_classes, kernel=0), precision)
        self.scale = nn.Parameter(torch.tensor(0.05))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(x) * self.scale.abs()


def set_fast_training(model: nn.Module, fast: bool) -> None:
    """Use the training fast paths of the activation quantizers (or Brevitas' own)."""
    for mod in model.modules():
        if isinstance(mod, (Sign, SharedInt)) or hasattr(mod, "fast"):   # abcnet's too
            mod.fast = fast


def set_relaxed(model: nn.Module, relaxed: bool) -> None:
    """Switch binary activations to hardtanh and skip integer quantizers (or back)."""
    for mod in model.modules():
        if isinstance(mod, (Sign, SharedInt)):
            mod.relaxed = relaxed
