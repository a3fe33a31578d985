"""``groupnet report``: the dataflow graph as layers and branches, as text and as a picture.

The picture (``report/dataflow.png``) draws each layer as a box: left to right in
dataflow order, one row per branch of a group (shared layers in row 0), colour by layer
kind, box width by estimated cycles per frame, so the bottleneck stands out.
"""

from __future__ import annotations

import json
from pathlib import Path

from groupnet.errors import UserError

from .topology import base_op

COLORS = {"MVAU": "#d1495b", "ConvolutionInputGenerator": "#66a182", "Thresholding": "#edae49",
          "DuplicateStreams": "#00798c", "ElementwiseAdd": "#30638e", "Pool": "#8d6a9f",
          "FMPadding": "#a5a5a5", "LabelSelect": "#003d5b"}


class ReportError(UserError, RuntimeError):
    pass


def load_estimates(build_dir: str | Path) -> dict:
    from .context import BuildPaths
    path = BuildPaths(Path(build_dir)).estimates
    if not path.is_file():
        raise ReportError(f"{path} not found: run `groupnet build ... --out {build_dir}` "
                          "first (through the 'estimates' step)")
    try:
        est = json.loads(path.read_text())
        est["layers"], est["bottleneck"]           # noqa: B018 - what the report reads
    except (ValueError, KeyError, TypeError) as err:
        raise ReportError(f"{path}: not a readable estimates report ({type(err).__name__}: "
                          f"{err}); rebuild with `groupnet build ... --out {build_dir} "
                          "--from-step estimates`") from None
    return est


def layer_table(est: dict) -> str:
    """Fixed-width table: one line per layer with its role, folding, cycles and LUTs."""
    head = (f"{'layer':34s} {'kind':26s} {'role':18s} {'PE':>4s} {'SIMD':>5s} "
            f"{'cycles':>9s} {'LUT':>7s} {'BRAM18':>6s}")
    lines = [head, "-" * len(head)]
    bottleneck = est["bottleneck"]
    for r in est["layers"]:
        role = r["role"]
        if r["group"] is not None:
            role += f" g{r['group']}" + (f" b{r['branch']}" if r["branch"] is not None else "")
        mark = "  <- bottleneck" if r["name"] == bottleneck else ""
        lines.append(f"{r['name']:34s} {r['op_type']:26s} {role:18s} {r.get('pe', ''):>4} "
                     f"{r.get('simd', ''):>5} {r['cycles']:>9d} {r['lut']:>7d} "
                     f"{r['bram18']:>6d}{mark}")
    lines.append("-" * len(head))
    lines.append(f"total: {est['lut']} LUT, {est['bram18']} BRAM18, {est['dsp']} DSP | "
                 f"{est['fps']:.0f} FPS, latency {est['latency_us']:.1f} us at "
                 f"{est['clock_mhz']:g} MHz on {est['board']} (estimates)")
    return "\n".join(lines)


def _rows(est: dict) -> list[tuple[dict, int, int]]:
    """(layer, column, row): column = position in the dataflow, row = branch lane."""
    placed, col, last_group, lane_cols = [], 0, None, {}
    for r in est["layers"]:
        if r["role"] == "branch":
            if r["group"] != last_group:
                lane_cols, last_group = {}, r["group"]
                base = col
            lane = r["branch"]
            c = lane_cols.get(lane, base)
            placed.append((r, c, lane))
            lane_cols[lane] = c + 1
            col = max(col, c + 1)
        else:
            if lane_cols:
                col = max(lane_cols.values())
                lane_cols = {}
                last_group = None
            placed.append((r, col, 0))
            col += 1
    return placed


def draw(est: dict, path: str | Path) -> Path:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.patches import Patch, Rectangle

    placed = _rows(est)
    ncols = max(c for _, c, _ in placed) + 1
    nrows = max(r for _, _, r in placed) + 1
    max_cycles = max(1, est["max_cycles"])
    fig, ax = plt.subplots(figsize=(max(8, ncols * 0.55), 1.6 + nrows * 0.9))
    for r, c, row in placed:
        kind = base_op(r["op_type"])
        width = 0.25 + 0.7 * r["cycles"] / max_cycles
        ax.add_patch(Rectangle((c + (0.95 - width) / 2, -row - 0.35), width, 0.7,
                               color=COLORS.get(kind, "#cccccc"),
                               ec="black" if r["name"] == est["bottleneck"] else "none",
                               lw=2))
        if kind == "MVAU":
            ax.text(c + 0.475, -row, f"{r.get('pe', '')}x{r.get('simd', '')}",
                    ha="center", va="center", fontsize=6, color="white")
    ax.set_xlim(-0.2, ncols + 0.2)
    ax.set_ylim(-nrows + 0.4, 0.6)
    ax.set_yticks([-i for i in range(nrows)], [f"branch {i}" if nrows > 1 else "" for i in
                                              range(nrows)])
    ax.set_xticks([])
    kinds = sorted({base_op(r["op_type"]) for r, _, _ in placed})
    ax.legend(handles=[Patch(color=COLORS.get(k, "#cccccc"), label=k) for k in kinds],
              loc="upper center", bbox_to_anchor=(0.5, -0.02), ncol=min(4, len(kinds)),
              fontsize=7, frameon=False)
    ax.set_title(f"{est.get('variant') or 'model'} on {est['board']}: "
                 f"{est['fps']:.0f} FPS (est.), box width = cycles/frame, "
                 f"outlined = bottleneck; MVAU labels PE x SIMD", fontsize=9)
    for side in ("top", "right", "left", "bottom"):
        ax.spines[side].set_visible(False)
    fig.tight_layout()
    path = Path(path)
    fig.savefig(path, dpi=130)
    plt.close(fig)
    return path


def draw_simulation(sim: dict, path: str | Path) -> Path:
    """Per-layer cycles per frame in the RTL simulation: busy / starved / blocked, with
    FINN's expected cycles as a marker and the steady-state frame time as a line."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    layers = sim["layers"]
    frames = max(1, sim["frames"])
    names = [r["name"] for r in layers]
    busy = [r["active_cycles"] / frames for r in layers]
    starved = [r["starved_cycles"] / frames for r in layers]
    blocked = [r["blocked_cycles"] / frames for r in layers]
    y = range(len(layers))
    fig, ax = plt.subplots(figsize=(9, 1.2 + 0.22 * len(layers)))
    ax.barh(y, busy, color="#d1495b", label="busy (neither starved nor blocked)")
    ax.barh(y, starved, left=busy, color="#edae49", label="starved (waiting for input)")
    ax.barh(y, blocked, left=[b + s for b, s in zip(busy, starved)], color="#a5a5a5",
            label="blocked (output not taken)")
    exp = [r["expected_cycles_per_frame"] or 0 for r in layers]
    ax.scatter(exp, list(y), marker="|", s=120, color="black", label="FINN expected cycles")
    ax.axvline(sim["cycles_per_frame"], color="#00798c", ls="--",
               label=f"simulated {sim['cycles_per_frame']:.0f} cycles/frame")
    ax.set_yticks(list(y), names, fontsize=6)
    ax.invert_yaxis()
    ax.set_xlabel("cycles per frame")
    ax.set_title(f"RTL simulation, {sim['frames']} frames: {sim['fps']:.0f} FPS at "
                 f"{sim['clock_mhz']:g} MHz (bound {sim['bound_cycles_per_frame']} cycles/frame)",
                 fontsize=9)
    ax.legend(fontsize=7, loc="lower right")
    fig.tight_layout()
    path = Path(path)
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path
