"""Brevitas quantizers, defined once and specialised by keyword.

Four kinds are used in every Group-Net variant, each chosen so that FINN can map the
exported graph onto an integer datapath:

- ``BinaryWeight``: weights are exactly +-1 (constant scale 1). Batch norm after each
  binary layer absorbs any per-channel scale, so no float weight scale reaches hardware.
- ``BinaryAct``: sign activation with a straight-through estimator clipped to [-1, 1]
  (hardtanh STE), scale exactly 1.0 as FINN requires for bipolar tensors. sign(0) = +1,
  the same convention as QONNX's BipolarQuant and FINN's thresholds.
- ``InputQuant``: unsigned 8-bit with scale exactly 1: the model takes raw pixel values
  0..255, which pass unchanged; the first layer therefore sees UINT8 data.
- ``SharedIntAct``: a signed few-bit quantizer with a learned **power-of-two** scale. One
  instance is shared by all operands of an integer sum (the K branch outputs of a group, or
  the shortcut and branches of a residual block), so that the sum is an integer sum with
  one scale. Power-of-two scales make every float product int * scale exact in float32,
  so the PyTorch model, QONNX execution and integer hardware agree exactly, also at ties.
  ``narrow_range=False``: finn-plus derives the XNOR MVAU's output bias from the datatype
  minimum, which is only right for the full signed range.
"""

from __future__ import annotations

from brevitas.core.bit_width import BitWidthImplType
from brevitas.core.quant import QuantType
from brevitas.core.restrict_val import FloatToIntImplType, RestrictValueType
from brevitas.core.scaling import ScalingImplType
from brevitas.core.zero_point import ZeroZeroPoint
from brevitas.inject import ExtendedInjector
from brevitas.nn import QuantIdentity
from brevitas.quant.fixed_point import Int8ActPerTensorFixedPoint
from brevitas.quant.solver import ActQuantSolver, WeightQuantSolver


class _ConstScaleQuant(ExtendedInjector):
    bit_width_impl_type = BitWidthImplType.CONST
    scaling_impl_type = ScalingImplType.CONST
    restrict_scaling_type = RestrictValueType.FP
    zero_point_impl = ZeroZeroPoint
    float_to_int_impl_type = FloatToIntImplType.ROUND
    scaling_per_output_channel = False
    narrow_range = True
    signed = True
    quant_type = QuantType.BINARY
    bit_width = 1


class BinaryWeight(_ConstScaleQuant, WeightQuantSolver):
    """Weights in {-1, +1} exactly."""
    scaling_const = 1.0


class BinaryAct(_ConstScaleQuant, ActQuantSolver):
    """Sign activation, output in {-1, +1}, clipped straight-through estimator."""
    min_val = -1.0
    max_val = 1.0


class TernaryWeight(_ConstScaleQuant, WeightQuantSolver):
    """2-bit weights as brevitas_examples' CNV_2W2A has them (``CommonWeightQuant`` at
    ``weight_bit_width=2``): signed, narrow range, scale 1, so values in {-1, 0, +1}."""
    quant_type = QuantType.INT
    bit_width = 2
    scaling_const = 1.0


class TernaryAct(_ConstScaleQuant, ActQuantSolver):
    """2-bit activations as brevitas_examples' CNV_1W2A / CNV_2W2A have them
    (``CommonActQuant`` at ``act_bit_width=2``, min -1, max 1): signed, narrow range,
    scale 1, so values in {-1, 0, +1}: round(clamp(x, -1, 1))."""
    quant_type = QuantType.INT
    bit_width = 2
    min_val = -1.0
    max_val = 1.0


class InputQuant(_ConstScaleQuant, ActQuantSolver):
    """Raw 8-bit pixels 0..255 with scale 1 (identity on integer inputs)."""
    quant_type = QuantType.INT
    bit_width = 8
    signed = False
    narrow_range = False
    min_val = 0.0
    max_val = 255.0


class IntegerAct(_ConstScaleQuant, ActQuantSolver):
    """Signed integers with scale exactly 1 (set ``bit_width``, ``min_val``, ``max_val``):
    a layer after it sees integer inputs, so its outputs are integers (the detector's
    predictor input); the batch norm before it learns the magnitude."""
    quant_type = QuantType.INT
    narrow_range = False


class SharedIntAct(Int8ActPerTensorFixedPoint):
    """Signed integer activation with a learned power-of-two scale (set ``bit_width``)."""
    narrow_range = False
    collect_stats_steps = 100
    high_percentile_q = 99.0


def binary_act() -> QuantIdentity:
    return QuantIdentity(act_quant=BinaryAct, return_quant_tensor=False)


def ternary_act() -> QuantIdentity:
    return QuantIdentity(act_quant=TernaryAct, return_quant_tensor=False)


def input_quant() -> QuantIdentity:
    return QuantIdentity(act_quant=InputQuant, return_quant_tensor=False)


def integer_act(bit_width: int) -> QuantIdentity:
    """Signed ``bit_width``-bit integers, scale 1 (:class:`IntegerAct`)."""
    lo, hi = -(1 << (bit_width - 1)), (1 << (bit_width - 1)) - 1
    return QuantIdentity(act_quant=IntegerAct, bit_width=bit_width, min_val=float(lo),
                         max_val=float(hi), return_quant_tensor=False)


def shared_int_act(bit_width: int, init_percentile: float = 99.0) -> QuantIdentity:
    """A shared integer quantizer; its scale starts at the given percentile of the first
    batches it sees (rounded up to a power of two) and is learned afterwards."""
    return QuantIdentity(act_quant=SharedIntAct, bit_width=bit_width,
                         high_percentile_q=init_percentile, return_quant_tensor=False)


# ------------------------------------------------------------------- training fast paths
# Brevitas builds each quantizer from generic parts (clamp as two `where`s, STE rounding as
# an autograd function, zero points, delay wrappers), about ten element-wise ops forward and
# as many backward. While training, the two activation quantizers that run on every
# feature map are replaced by one autograd function each that computes the SAME values and
# the same gradients (tests/models/test_fast_quant.py compares both, bit for bit, against
# Brevitas). Evaluation and export always run through Brevitas itself.

import torch  # noqa: E402  (kept beside the code that needs it)


class _SignSTE(torch.autograd.Function):
    """sign(x) with sign(0) = +1; gradient 1{-1 <= x <= 1} (Brevitas' clamped binary STE)."""

    @staticmethod
    def forward(ctx, x: torch.Tensor) -> torch.Tensor:
        ctx.save_for_backward(x.abs() <= 1.0)
        return torch.where(x >= 0.0, 1.0, -1.0).to(x.dtype)

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> torch.Tensor:
        (inside,) = ctx.saved_tensors
        return torch.where(inside, grad, 0.0)


def sign_ste(x: torch.Tensor) -> torch.Tensor:
    """Training-time equivalent of :class:`BinaryAct` (values and gradients)."""
    return _SignSTE.apply(x)


class _TernarySTE(torch.autograd.Function):
    """round(x) clamped to [-1, 1] (:class:`TernaryAct`, scale 1) with Brevitas' gradients:
    straight-through rounding, zero gradient where the rounded value is clamped."""

    @staticmethod
    def forward(ctx, x: torch.Tensor) -> torch.Tensor:
        rounded = torch.round(x)
        ctx.save_for_backward(rounded.abs() <= 1.0)
        return rounded.clamp(-1.0, 1.0)

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> torch.Tensor:
        (inside,) = ctx.saved_tensors
        return torch.where(inside, grad, 0.0)


def ternary_ste(x: torch.Tensor) -> torch.Tensor:
    """Training-time equivalent of :class:`TernaryAct` (values and gradients)."""
    return _TernarySTE.apply(x)


class _IntQuantSTE(torch.autograd.Function):
    """clamp(round(x / s), lo, hi) * s with Brevitas' gradients: straight-through rounding,
    zero gradient where the rounded value is clamped, and the scale's gradient
    sum(g * q) - sum(g * s * 1{in range} * (x / s) / s) in the order autograd forms it."""

    @staticmethod
    def forward(ctx, x: torch.Tensor, scale: torch.Tensor, lo: float, hi: float):
        scaled = x / scale
        rounded = torch.round(scaled)
        q = rounded.clamp(lo, hi)
        inside = q == rounded                    # not clamped
        ctx.save_for_backward(scaled, scale, q, inside)
        return q * scale

    @staticmethod
    def backward(ctx, grad: torch.Tensor):
        scaled, scale, q, inside = ctx.saved_tensors
        grad_q = torch.where(inside, grad * scale, 0.0)
        grad_x = grad_q / scale
        grad_scale = None
        if ctx.needs_input_grad[1]:
            from_mul = (grad * q).sum()
            from_div = (-grad_q * (scaled / scale)).sum()
            grad_scale = (from_mul + from_div).reshape(scale.shape)
        return grad_x, grad_scale, None, None


def int_quant_ste(quant: QuantIdentity, x: torch.Tensor) -> torch.Tensor:
    """Training-time equivalent of a signed, zero-point-free integer ``QuantIdentity``
    (:class:`SharedIntAct`): the scale comes from the quantizer's own scaling module (which
    also collects its runtime statistics), the rounding and clamping from one function."""
    tq = quant.act_quant.fused_activation_quant_proxy.tensor_quant
    bit_width = tq.msb_clamp_bit_width_impl()
    scale = tq.scaling_impl(x, tq.int_scaling_impl(bit_width))
    lo = float(tq.int_quant.min_int(bit_width))
    hi = float(tq.int_quant.max_int(bit_width))
    return _IntQuantSTE.apply(x, scale, lo, hi)
