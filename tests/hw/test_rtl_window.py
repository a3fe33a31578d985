"""sliding_window.v in Verilator against the windows computed in numpy, in FINN's three
orders (MVAU, depthwise, parallel), with strides, dilations and non-square images, frames
back to back: every beat right under random input gaps and output back-pressure, and at
full rate no slower than FINN's own generator (``estimates.swg_frame_cycles``: per frame
max(output beats, input beats) a window row, at least the input beats)."""

import numpy as np
import pytest

from groupnet.hw.rtl.layers import RTL_DIR
from groupnet.hw.sim.verilator import build, pack, run_stream, unpack

pytestmark = pytest.mark.verilator

SWG = RTL_DIR / "sliding_window.v"


def out_dim(n, k, s, d):
    return (n - (k - 1) * d - 1) // s + 1


def windows(x, k, s, d, simd, depthwise, parallel):
    """FINN's stream of windows of ``x`` (frames, H, W, C): a list of beats (elements)."""
    n, h, w, c = x.shape
    (kh, kw), (sh, sw), (dh, dw) = k, s, d
    beats = []
    for f in range(n):
        for oy in range(out_dim(h, kh, sh, dh)):
            for ox in range(out_dim(w, kw, sw, dw)):
                px = [[x[f, oy * sh + i * dh, ox * sw + j * dw] for j in range(kw)]
                      for i in range(kh)]
                if parallel:
                    beats.append(np.concatenate([p for row in px for p in row]))
                    continue
                folds = [(i, j, cf) for i in range(kh) for j in range(kw)
                         for cf in range(c // simd)]
                if depthwise:
                    folds.sort(key=lambda t: (t[2], t[0], t[1]))
                beats += [px[i][j][cf * simd:(cf + 1) * simd] for i, j, cf in folds]
    return beats


def frame_bound(h, w, c, k, s, d, simd, parallel):
    """FINN's default-style generator: OH window rows of max(out, in beats) each, at
    least the input (``swg_frame_cycles``); a parallel window: one input beat a pixel."""
    folds = c // simd
    oh, ow = out_dim(h, k[0], s[0], d[0]), out_dim(w, k[1], s[1], d[1])
    if parallel:
        return h * w
    row = max(ow * k[0] * k[1] * folds, s[1] * w * folds)
    return max(oh * row, h * w * folds)


def run_swg(tmp_path, h, w, c, simd, bits, k, s, d, depthwise=0, parallel=0, frames=3,
            p_valid=1.0, p_ready=1.0, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.integers(0, 1 << bits, (frames, h, w, c))
    params = {"H": h, "W": w, "C": c, "SIMD": simd, "BITS": bits, "KH": k[0], "KW": k[1],
              "SH": s[0], "SW": s[1], "DH": d[0], "DW": d[1], "DEPTHWISE": depthwise,
              "PARALLEL": parallel}
    model = build([SWG], "sliding_window", params)
    beats_in = [pack(x[f, i, j, cf * simd:(cf + 1) * simd], bits)
                for f in range(frames) for i in range(h) for j in range(w)
                for cf in range(c // simd)]
    want = windows(x, k, s, d, simd, depthwise, parallel)
    run = run_stream(model, beats_in, len(want), p_valid, p_ready, seed)
    assert not run.stalled
    got = [unpack(words, len(ref), bits, False) for words, ref in zip(run.outputs, want)]
    bad = [i for i, (g, r) in enumerate(zip(got, want)) if not np.array_equal(g, r)]
    assert len(got) == len(want) and not bad, f"first wrong beat {bad[:1]} of {len(want)}"
    return run


# (H, W, C, SIMD, BITS, K, S, D, depthwise, parallel): the demo accelerator's ten windows'
# kinds, FINN's CNV, and the segmentation nets' dilated ones
CASES = [
    (32, 32, 1, 1, 8, (3, 3), (1, 1), (1, 1), 0, 1),      # stem, 8-bit pixels, parallel
    (30, 30, 16, 16, 1, (3, 3), (1, 1), (1, 1), 0, 1),    # parallel
    (28, 28, 16, 8, 1, (2, 2), (2, 2), (1, 1), 1, 0),     # max pool's windows
    (14, 14, 16, 8, 1, (3, 3), (1, 1), (1, 1), 0, 0),     # the demo's critical path
    (5, 5, 32, 1, 1, (3, 3), (1, 1), (1, 1), 0, 0),
    (3, 3, 64, 1, 1, (3, 3), (1, 1), (1, 1), 0, 0),       # one window a frame
    (16, 12, 8, 4, 1, (3, 3), (1, 1), (2, 2), 0, 0),      # dilated, non-square
    (17, 17, 4, 2, 2, (3, 3), (2, 2), (1, 1), 0, 0),      # stride 2, a row left over
    (20, 20, 4, 4, 1, (3, 3), (1, 1), (4, 4), 0, 1),      # dilated, parallel
    (11, 13, 2, 2, 1, (3, 2), (2, 1), (1, 2), 0, 1),      # parallel, mixed
    (9, 9, 6, 3, 1, (3, 3), (2, 2), (1, 1), 1, 0),        # depthwise, stride 2, K 3
    (1, 24, 4, 2, 1, (1, 3), (1, 2), (1, 1), 0, 0),       # 1D (FINN's [1, W] windows)
    (20, 1, 2, 1, 1, (5, 1), (1, 1), (2, 1), 1, 0),       # 1D along H, dilated, depthwise
]


@pytest.mark.parametrize("case", CASES, ids=[f"{c[0]}x{c[1]}c{c[2]}s{c[3]}k{c[5][0]}"
                                             f"st{c[6][0]}d{c[7][0]}{'dw' * c[8]}"
                                             f"{'par' * c[9]}" for c in CASES])
def test_windows_at_full_rate(case, tmp_path):
    h, w, c, simd, bits, k, s, d, dw, par = case
    frames = 3
    run = run_swg(tmp_path, h, w, c, simd, bits, k, s, d, dw, par, frames)
    bound = frame_bound(h, w, c, k, s, d, simd, par)
    # frames back to back: the steady state is the bound; one frame's fill on top
    assert run.cycles <= frames * bound + (d[0] * (k[0] - 1) + 1) * w * (c // simd) + 12, \
        (run.cycles, bound)


@pytest.mark.parametrize("case", CASES[3:7] + CASES[9:10], ids=lambda c: f"{c[0]}x{c[1]}")
def test_frames_back_to_back_take_max_of_input_and_output_beats(case, tmp_path):
    """The steady state (6 frames against 3) is max(input beats, output beats) a frame:
    ``estimates.window_frame_cycles``, the model of the layer-alone simulation."""
    from groupnet.hw.estimates import window_frame_cycles
    h, w, c, simd, bits, k, s, d, dw, par = case
    runs = [run_swg(tmp_path / str(n), h, w, c, simd, bits, k, s, d, dw, par, n).cycles
            for n in (3, 6)]

    class Node:                                   # the attributes FINN's node would have
        attrs = {"IFMDim": [h, w], "OFMDim": [out_dim(h, k[0], s[0], d[0]),
                 out_dim(w, k[1], s[1], d[1])], "ConvKernelDim": list(k),
                 "IFMChannels": c, "SIMD": simd, "parallel_window": par}

        def get_nodeattr(self, name):
            return self.attrs[name]
    assert (runs[1] - runs[0]) == 3 * window_frame_cycles(Node())


@pytest.mark.parametrize("case,p_valid,p_ready,seed", [
    (CASES[3], 0.7, 0.4, 1), (CASES[2], 0.5, 0.9, 2), (CASES[1], 0.8, 0.3, 3),
    (CASES[6], 0.6, 0.6, 4), (CASES[9], 0.9, 0.5, 5), (CASES[7], 0.3, 1.0, 6)])
def test_windows_under_gaps_and_backpressure(case, p_valid, p_ready, seed, tmp_path):
    h, w, c, simd, bits, k, s, d, dw, par = case
    run_swg(tmp_path, h, w, c, simd, bits, k, s, d, dw, par, 2, p_valid, p_ready, seed)
