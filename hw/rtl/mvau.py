"""Parameters and memory files of ``mvau_stream.v`` from a matrix, thresholds and folding.

The same folding (PE, SIMD) as the FINN MVAU node describes the RTL: see
``mvau_stream.v`` for the stream order and the memory layouts written here.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

RTL = Path(__file__).with_name("mvau_stream.v")
# cycles from a vector's last fold firing to its output beat on out_tdata (the pipeline of
# mvau_stream.v; the fold rate is one per cycle regardless)
LATENCY = 9


@dataclass
class MVAUConfig:
    weights: np.ndarray            # (MW, MH); {0,1} for XNOR, {-1,+1} for w_bits 1, else
                                   # signed w_bits-bit integers
    thresholds: np.ndarray | None  # (MH or 1, N_THRES), ascending; None: no activation
    pe: int
    simd: int
    in_bits: int
    in_signed: bool
    xnor: bool
    out_bits: int
    act_val: int = 0
    w_bits: int = 1                # 1: binary/bipolar; >= 2: signed integer weights

    @property
    def mw(self) -> int:
        return self.weights.shape[0]

    @property
    def mh(self) -> int:
        return self.weights.shape[1]

    @property
    def out_signed(self) -> bool:
        """Raw accumulators are signed, except XNOR popcounts; thresholded outputs are
        signed when they start below 0 (``act_val``)."""
        if self.thresholds is None:
            return not self.xnor
        return self.act_val < 0

    def acc_range(self) -> tuple[int, int]:
        if self.xnor:
            return 0, self.mw
        lo_in = -(1 << (self.in_bits - 1)) if self.in_signed else 0
        hi_in = (1 << (self.in_bits - 1)) - 1 if self.in_signed else (1 << self.in_bits) - 1
        w_max = 1 if self.w_bits == 1 else 1 << (self.w_bits - 1)   # |most negative|
        bound = self.mw * max(abs(lo_in), abs(hi_in)) * w_max
        return -bound, bound

    def acc_bits(self) -> int:
        lo, hi = self.acc_range()
        # thresholds are clipped to [lo, hi + 1]: room for hi + 1 and lo, signed
        return max(int(hi + 1).bit_length(), int(-lo).bit_length()) + 1

    def check(self) -> None:
        if self.w_bits > 1:
            lo, hi = -(1 << (self.w_bits - 1)), (1 << (self.w_bits - 1)) - 1
            if self.xnor or self.weights.min() < lo or self.weights.max() > hi:
                raise ValueError(f"{self.w_bits}-bit weights must be signed integers in "
                                 f"[{lo}, {hi}] (no XNOR mode)")
        if self.mw % self.simd or self.mh % self.pe:
            raise ValueError(f"SIMD={self.simd} must divide MW={self.mw} and PE={self.pe} "
                             f"must divide MH={self.mh}")


def reference(cfg: MVAUConfig, x: np.ndarray) -> np.ndarray:
    """What the RTL computes, in numpy: x is (N, MW) integers -> (N, MH)."""
    if cfg.xnor:
        acc = (x[:, :, None] == cfg.weights[None, :, :]).sum(axis=1)
    else:
        acc = x @ cfg.weights
    if cfg.thresholds is None:
        return acc
    t = np.broadcast_to(cfg.thresholds, (cfg.mh, cfg.thresholds.shape[1]))
    return (acc[:, :, None] >= t[None]).sum(axis=2) + cfg.act_val


def bank_words(word_bits: int) -> int:
    """Words of one block RAM at this word width (ECP5 DP16KD / 7-series RAMB18 aspect
    ratios): a deeper weight memory is banked (hw/rtl/mvau_stream.v, ``BD``)."""
    for bits, words in ((1, 16384), (2, 8192), (4, 4096), (9, 2048), (18, 1024)):
        if word_bits <= bits:
            return words
    return 512


def _hex(value: int, bits: int) -> str:
    return f"{value & ((1 << bits) - 1):0{(bits + 3) // 4}x}"


def write_memories(cfg: MVAUConfig, folder: Path) -> dict:
    """Write weights.hex / thresholds.hex into ``folder``; return the Verilog parameters
    (memory files by relative name: run the simulation with ``cwd=folder``)."""
    cfg.check()
    folder.mkdir(parents=True, exist_ok=True)
    sf, nf = cfg.mw // cfg.simd, cfg.mh // cfg.pe
    wb = cfg.w_bits
    if wb == 1:
        fields = (cfg.weights > 0).astype(np.int64)        # {-1,+1} -> {0,1}; {0,1} stays
    else:
        fields = cfg.weights.astype(np.int64) & ((1 << wb) - 1)   # two's complement
    lines = []
    for n in range(nf):
        for s in range(sf):
            word = 0
            for p in range(cfg.pe):
                col = fields[s * cfg.simd:(s + 1) * cfg.simd, n * cfg.pe + p]
                for i, b in enumerate(col):
                    word |= int(b) << ((p * cfg.simd + i) * wb)
            lines.append(_hex(word, cfg.pe * cfg.simd * wb))
    (folder / "weights.hex").write_text("\n".join(lines) + "\n")
    bd = bank_words(cfg.pe * cfg.simd * wb)
    if len(lines) > bd:      # a deep memory's banks (whatever ram_style the RTL gets)
        zero = _hex(0, cfg.pe * cfg.simd * wb)
        for b in range(0, len(lines), bd):
            bank = lines[b:b + bd] + [zero] * max(0, b + bd - len(lines))
            (folder / f"weights.hex.{b // bd:02x}").write_text("\n".join(bank) + "\n")
    acc_bits = cfg.acc_bits()
    n_thres = 0
    if cfg.thresholds is not None:
        lo, hi = cfg.acc_range()
        t = np.broadcast_to(cfg.thresholds, (cfg.mh, cfg.thresholds.shape[1]))
        t = np.clip(np.ceil(t), lo, hi + 1).astype(np.int64)   # integer acc: >= t <=> >= ceil t
        n_thres = t.shape[1]
        lines = []
        for n in range(nf):
            word = 0
            for p in range(cfg.pe):
                for j in range(n_thres):
                    field = int(t[n * cfg.pe + p, j]) & ((1 << acc_bits) - 1)
                    word |= field << ((p * n_thres + j) * acc_bits)
            lines.append(_hex(word, cfg.pe * n_thres * acc_bits))
        (folder / "thresholds.hex").write_text("\n".join(lines) + "\n")
    else:
        (folder / "thresholds.hex").write_text("0\n")
    return {"MW": cfg.mw, "MH": cfg.mh, "SIMD": cfg.simd, "PE": cfg.pe,
            "IN_BITS": cfg.in_bits, "IN_SIGNED": int(cfg.in_signed), "XNOR": int(cfg.xnor),
            "W_BITS": cfg.w_bits,
            "ACC_BITS": acc_bits, "N_THRES": n_thres, "OUT_BITS": cfg.out_bits,
            "ACT_VAL": cfg.act_val,
            # relative: the simulation runs in `folder`, so one build serves any weights
            "WEIGHT_FILE": "weights.hex", "THRES_FILE": "thresholds.hex"}
