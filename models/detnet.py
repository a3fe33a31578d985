"""Object detection Group-Nets: an anchor-free, single-level detector (FCOS-style).

Topology (``build_detnet``), for an H x W input (96 x 96 scenes), stride 8:

    stem    conv 3x3 (8-bit pixels, binary weights, one branch), sign, 2x2 pool   H/2
    group 1 conv 3x3, 2x2 pool                                                 H/4
    group 2 conv 3x3, 2x2 pool                                                 H/8
    tower 1 conv 3x3 (K binary branches, sign)
    tower 2 conv 3x3 (K binary branches), output requantized to a 4-bit integer
    head    1x1 conv with binary weights on that 4-bit input -> C + 5 integer maps
            (C class scores, 4 box distances, 1 centerness), x one power-of-two scale

Backbone and head tower are binary Group-Net groups; the predictor takes 4-bit activations
(binary weights): FINN maps it to an MVAU with INT4 inputs and bipolar weights (no XNOR),
the multi-bit predictor that binary detectors keep (the authors' FCOS configs keep the
predictors in higher precision). The accelerator returns the integer maps; decoding,
thresholds and NMS run on the host (``groupnet_driver.detection``, numpy), with the
host-side affine parameters of :class:`Decoder` learned in training and shipped in the
model's metadata.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from .blocks import Branch, Group, Layer
from .quant import integer_act
from .data import dataset_info
from .groupnet import GroupNet, _check, _scaled, _stem
from .registry import register_model
from .segnet import ScoreMap

DET_CHANNELS = (32, 64, 128, 128)    # stem, group 1, group 2, tower (width 1.0)
DET_STRIDE = 8
DET_AGG_BITS = 4
PREDICTOR_IN_BITS = 4


class IntegerGroup(nn.Module):
    """A Group-Net group whose output is an ``out_bits`` integer (scale 1) instead of a
    sign: clamp(sum_k q(branch_k(x))), or q(branch output) at K = 1. Every quantizer here
    has scale 1, so the next layer's outputs are integers (the accelerator's raw values),
    and the requantization of the integer sum is a pure clamp: a finer-scaled sum would
    put exact halves under the rounding, where round-half-even (PyTorch) and FINN's
    thresholds disagree."""

    def __init__(self, in_ch: int, layers: list[Layer], k: int, precision: str,
                 agg_bits: int, out_bits: int):
        super().__init__()
        self.k = k
        self.branches = nn.ModuleList(Branch(in_ch, layers, precision) for _ in range(k))
        binary = precision == "binary"
        self.aggregate = (integer_act(agg_bits) if binary else nn.Identity()) if k > 1 else None
        self.out = integer_act(out_bits) if binary else nn.Identity()
        self.out_ch = layers[-1].out_ch

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.aggregate is None:
            return self.out(self.branches[0](x))
        y = self.aggregate(self.branches[0](x))
        for branch in self.branches[1:]:
            y = y + self.aggregate(branch(x))
        return self.out(y)


class Decoder(nn.Module):
    """The host-side affine maps from the accelerator's integer maps to class logits, box
    distances and centerness logits (``groupnet_driver.detection.decode``)."""

    def __init__(self, num_classes: int, stride: int, prior: float = 0.01):
        super().__init__()
        self.stride = stride
        self.cls_scale = nn.Parameter(torch.tensor(1.0))
        self.cls_bias = nn.Parameter(torch.full((num_classes,), -math.log((1 - prior) / prior)))
        self.box_scale = nn.Parameter(torch.tensor(0.1))
        self.box_bias = nn.Parameter(torch.tensor(math.log(1.5)))
        self.ctr_scale = nn.Parameter(torch.tensor(1.0))
        self.ctr_bias = nn.Parameter(torch.tensor(0.0))

    def forward(self, z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        c = z.shape[1] - 5
        cls = self.cls_scale * z[:, :c] + self.cls_bias[None, :, None, None]
        dist = self.stride * torch.exp((self.box_scale * z[:, c:c + 4]
                                        + self.box_bias).clamp(-20, 20))
        ctr = self.ctr_scale * z[:, c + 4] + self.ctr_bias
        return cls, dist, ctr

    def params(self, input_scale: float = 1.0) -> dict:
        """For ``groupnet_driver.detection.decode``. ``input_scale``: what the maps it is
        given were multiplied by to make this module's input (the score layer's
        power-of-two scale, for the accelerator's integer maps)."""
        return {"stride": self.stride, "cls_scale": self.cls_scale.item() * input_scale,
                "cls_bias": self.cls_bias.detach().tolist(),
                "box_scale": self.box_scale.item() * input_scale,
                "box_bias": self.box_bias.item(),
                "ctr_scale": self.ctr_scale.item() * input_scale,
                "ctr_bias": self.ctr_bias.item()}


def build_detnet(dataset: str = "fashion-mnist-boxes", k: int = 4, width: float = 0.25,
                 agg_bits: int = DET_AGG_BITS, precision: str = "binary") -> GroupNet:
    _check(k, precision, "group")
    info = dataset_info(dataset)
    if info.task != "detection":
        raise ValueError(f"detectors take a detection dataset, not {dataset} "
                         "(e.g. fashion-mnist-boxes)")
    if info.height % DET_STRIDE or info.width % DET_STRIDE:
        raise ValueError(f"input {info.height}x{info.width} is not a multiple of the stride "
                         f"{DET_STRIDE}")
    c0, c1, c2, c3 = (_scaled(c, width) for c in DET_CHANNELS)
    stem = _stem(info.channels, Layer(c0, pad=1), precision, pool=True)
    body = nn.ModuleList([
        Group(c0, [Layer(c1, pad=1)], k, precision, agg_bits, pool=True),
        Group(c1, [Layer(c2, pad=1)], k, precision, agg_bits, pool=True),
        Group(c2, [Layer(c3, pad=1)], k, precision, agg_bits),
        IntegerGroup(c3, [Layer(c3, pad=1)], k, precision, agg_bits, PREDICTOR_IN_BITS),
    ])
    head = ScoreMap(c3, info.num_classes + 5, precision)
    model = GroupNet(stem, body, head, info.shape, k, precision)
    model.task = "detection"
    model.stride = DET_STRIDE
    model.decoder = Decoder(info.num_classes, DET_STRIDE)
    return model


# ------------------------------------------------------------------------------ loss
def _targets(boxes: list[torch.Tensor], h: int, w: int, stride: int, num_classes: int,
             radius: float = 1.5):
    """FCOS targets per cell: class (-1 = background), distances l,t,r,b, centerness.
    A cell is positive for a box when its centre lies in the box and within ``radius``
    strides of the box centre; among several boxes, the smallest wins."""
    n = len(boxes)
    ys, xs = torch.meshgrid(torch.arange(h), torch.arange(w), indexing="ij")
    cx = ((xs.reshape(-1) + 0.5) * stride).float()
    cy = ((ys.reshape(-1) + 0.5) * stride).float()
    cls_t = torch.full((n, h * w), -1, dtype=torch.long)
    box_t = torch.zeros(n, h * w, 4)
    for i, b in enumerate(boxes):
        if not len(b):
            continue
        x0, y0, x1, y1, c = b.unbind(1)
        l_, t_ = cx[:, None] - x0[None], cy[:, None] - y0[None]
        r_, b_ = x1[None] - cx[:, None], y1[None] - cy[:, None]
        inside = torch.stack([l_, t_, r_, b_], -1).min(-1).values > 0
        bcx, bcy = (x0 + x1) / 2, (y0 + y1) / 2
        near = ((cx[:, None] - bcx[None]).abs() < radius * stride) & \
               ((cy[:, None] - bcy[None]).abs() < radius * stride)
        ok = inside & near
        area = ((x1 - x0) * (y1 - y0))[None].expand_as(ok).clone()
        area[~ok] = float("inf")
        best_area, best = area.min(1)
        pos = torch.isfinite(best_area)
        cls_t[i, pos] = c[best[pos]].long()
        dist = torch.stack([l_, t_, r_, b_], -1)[torch.arange(h * w), best]
        box_t[i, pos] = dist[pos]
    lr, tb = box_t[..., [0, 2]], box_t[..., [1, 3]]
    ctr_t = torch.sqrt((lr.min(-1).values / lr.max(-1).values.clamp_min(1e-6)).clamp(0)
                       * (tb.min(-1).values / tb.max(-1).values.clamp_min(1e-6)).clamp(0))
    return cls_t, box_t, ctr_t


def _giou_loss(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """GIoU loss of l,t,r,b distances from the same point."""
    pa = (pred[:, 0] + pred[:, 2]) * (pred[:, 1] + pred[:, 3])
    ta = (target[:, 0] + target[:, 2]) * (target[:, 1] + target[:, 3])
    wi = torch.min(pred[:, 0], target[:, 0]) + torch.min(pred[:, 2], target[:, 2])
    hi = torch.min(pred[:, 1], target[:, 1]) + torch.min(pred[:, 3], target[:, 3])
    inter = wi.clamp(0) * hi.clamp(0)
    union = pa + ta - inter
    wc = torch.max(pred[:, 0], target[:, 0]) + torch.max(pred[:, 2], target[:, 2])
    hc = torch.max(pred[:, 1], target[:, 1]) + torch.max(pred[:, 3], target[:, 3])
    enclose = wc * hc + 1e-6
    giou = inter / union.clamp_min(1e-6) - (enclose - union) / enclose
    return 1 - giou


def detection_loss(model: nn.Module, maps: torch.Tensor, boxes: list[torch.Tensor]
                   ) -> torch.Tensor:
    """FCOS loss: sigmoid focal loss (alpha 0.25, gamma 2) on the classes, GIoU on the
    boxes weighted by centerness, BCE on the centerness; normalized by the positives."""
    cls, dist, ctr = model.decoder(maps)
    n, c, h, w = cls.shape
    cls_t, box_t, ctr_t = _targets(boxes, h, w, model.decoder.stride, c)
    cls = cls.reshape(n, c, h * w).transpose(1, 2)
    onehot = torch.zeros_like(cls)
    pos = cls_t >= 0
    onehot[pos, cls_t[pos]] = 1.0
    num_pos = max(1.0, float(pos.sum()))
    p = torch.sigmoid(cls)
    ce = F.binary_cross_entropy_with_logits(cls, onehot, reduction="none")
    pt = p * onehot + (1 - p) * (1 - onehot)
    focal = (0.25 * onehot + 0.75 * (1 - onehot)) * (1 - pt) ** 2 * ce
    loss = focal.sum() / num_pos
    if pos.any():
        d = dist.reshape(n, 4, h * w).transpose(1, 2)[pos]
        weight = ctr_t[pos]
        loss = loss + (_giou_loss(d, box_t[pos]) * weight).sum() / weight.sum().clamp_min(1e-6)
        loss = loss + F.binary_cross_entropy_with_logits(
            ctr.reshape(n, h * w)[pos], ctr_t[pos], reduction="sum") / num_pos
    return loss


def detection_distillation_loss(model: nn.Module, maps: torch.Tensor,
                                boxes: list[torch.Tensor], teacher: nn.Module,
                                teacher_maps: torch.Tensor, alpha: float) -> torch.Tensor:
    """(1 - a) FCOS loss to the boxes + a dense teacher term: every cell's class
    probabilities pulled to the teacher's (focal-weighted BCE to the teacher's sigmoid,
    normalized by the number of labelled boxes), its box to the
    teacher's (GIoU) and its centerness to the teacher's, both weighted by the teacher's
    confidence in the cell (its highest class probability), so the student also learns
    where the teacher sees an object the labels' sampling radius leaves out."""
    hard = detection_loss(model, maps, boxes)
    cls, dist, ctr = model.decoder(maps)
    with torch.no_grad():
        t_cls, t_dist, t_ctr = teacher.decoder(teacher_maps)
        tp = torch.sigmoid(t_cls)
    n, c, h, w = cls.shape
    p = torch.sigmoid(cls)
    ce = F.binary_cross_entropy_with_logits(cls, tp, reduction="none")
    focal = (p - tp).abs() ** 2 * ce                        # quality-focal weighting
    num_pos = max(1.0, float(sum(len(b) for b in boxes)))
    soft = focal.sum() / num_pos
    conf = tp.max(1).values.reshape(-1)                     # teacher confidence per cell
    d = dist.permute(0, 2, 3, 1).reshape(-1, 4)
    td = t_dist.permute(0, 2, 3, 1).reshape(-1, 4)
    weight = conf.sum().clamp_min(1e-6)
    soft = soft + (_giou_loss(d, td) * conf).sum() / weight
    soft = soft + (F.binary_cross_entropy_with_logits(
        ctr.reshape(-1), torch.sigmoid(t_ctr.reshape(-1)), reduction="none") * conf).sum() / weight
    return (1 - alpha) * hard + alpha * soft


# ------------------------------------------------------------------------------ eval
def host_decode_params(model: nn.Module) -> dict:
    """Decoding parameters for the integer maps (``integer_scores``, what the accelerator
    returns): the decoder's, with the score layer's power-of-two scale folded in."""
    model.eval()
    return model.decoder.params(input_scale=model.head.frozen)

@torch.no_grad()
def evaluate_detection(model: nn.Module, images, boxes, batch_size: int = 200) -> dict:
    """mAP@0.5 and COCO mAP@[.5:.95] (pycocotools) of the host decoding of the integer
    maps, the same decoding the board's driver runs."""
    import numpy as np

    from groupnet.hw.driver.groupnet_driver.detection import coco_map, decode
    model.eval()
    params = host_decode_params(model)
    dets = []
    for start in range(0, len(images), batch_size):
        x = torch.from_numpy(images[start:start + batch_size]).float()
        dets += decode(model.integer_scores(x).numpy(), params, tuple(images.shape[-2:]))
    result = coco_map(dets, boxes, model.head.fc.out_channels - 5, tuple(images.shape[-2:]))
    return {**result, "n": int(len(images)), "detections": dets,
            "mean_boxes": float(np.mean([len(d["boxes"]) for d in dets])) if dets else 0.0}


# ------------------------------------------------------------------------------ variants
@register_model
def fp_detnet(dataset: str = "fashion-mnist-boxes", width: float = 0.25) -> GroupNet:
    """Full-precision reference (float weights, ReLU)."""
    return build_detnet(dataset, k=1, width=width, precision="fp")


@register_model
def bnn_detnet(dataset: str = "fashion-mnist-boxes", width: float = 0.25) -> GroupNet:
    """Plain binary twin (K=1)."""
    return build_detnet(dataset, k=1, width=width)


@register_model
def groupnet_detnet_k4(dataset: str = "fashion-mnist-boxes", width: float = 0.25,
                       k: int = 4, agg_bits: int = DET_AGG_BITS) -> GroupNet:
    return build_detnet(dataset, k=k, width=width, agg_bits=agg_bits)


@register_model
def test_groupnet_detnet(dataset: str = "fashion-mnist-boxes", k: int = 2,
                         agg_bits: int = DET_AGG_BITS) -> GroupNet:
    """Tiny (2/4/8/8 channels): tests."""
    return build_detnet(dataset, k=k, width=1 / 16, agg_bits=agg_bits)
