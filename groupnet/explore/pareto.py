"""The accuracy x LUT x FPS Pareto front of a sweep, per board: table and picture.

A built point is on its board's front when no other point is at least as accurate, needs
at most as many LUTs and runs at least as fast (estimated FPS), and strictly better in one.
Accuracy is measured on the test set; LUT and FPS are FINN's estimates ("est."); the
front's points are also simulated (Verilator, "sim.") when the spec asks for it.
"""

from __future__ import annotations

from pathlib import Path

REFERENCE = {"bnn_cnv": "FINN CNV-w1a1 topology"}


def dominates(a: dict, b: dict) -> bool:
    ge = (a["quality"] >= b["quality"] and a["lut"] <= b["lut"] and a["fps_est"] >= b["fps_est"])
    gt = (a["quality"] > b["quality"] or a["lut"] < b["lut"] or a["fps_est"] > b["fps_est"])
    return ge and gt


def front(rows: list[dict]) -> list[dict]:
    """The non-dominated rows (status ok, measured accuracy), by LUT."""
    cand = [r for r in rows if r.get("status") == "ok" and r.get("quality") is not None]
    keep = [r for r in cand if not any(dominates(o, r) for o in cand if o is not r)]
    return sorted(keep, key=lambda r: (r["lut"], -r["quality"]))


def by_board(rows: list[dict]) -> dict[str, list[dict]]:
    out: dict[str, list[dict]] = {}
    for r in rows:
        if r.get("board") not in (None, "-"):
            out.setdefault(r["board"], []).append(r)
    return out


def fronts(rows: list[dict]) -> dict[str, list[dict]]:
    return {board: front(rs) for board, rs in by_board(rows).items()}


def _name(r: dict) -> str:
    ref = REFERENCE.get(r["variant"])
    name = f"`{r['label']}`"
    return f"{name} ({ref})" if ref else name


def _q(r: dict) -> str:
    q = r.get("quality")
    if q is None:
        return "- (untrained)"
    acc = r.get("metric", "accuracy") == "accuracy"

    def fmt(v):
        return f"{100 * v:.2f}%" if acc else f"{v:.3f}"
    # which split chose the model: val (its validation score beside), or test checks (a
    # model trained before the validation protocol: its test score is not held out)
    if r.get("protocol") == "validation":
        v = r.get("val_quality")
        return fmt(q) + (f" (val {fmt(v)})" if v is not None else "")
    return fmt(q) + " (test checks)"


def table(rows: list[dict], sims: dict[str, dict] | None = None) -> str:
    """Markdown: per board, every built point (front first), plus float references."""
    sims = sims or {}
    lines = []
    for board, rs in sorted(by_board(rows).items()):
        on = {r["key"] for r in front(rs)}
        lines += [f"**{board}**", "",
                  "| front | model | K | width | agg bits | test accuracy | binary MACs/image "
                  "| FPS (est.) | FPS (sim.) | LUT (est.) | BRAM18 (est.) | weights |",
                  "|---|---|---|---|---|---|---|---|---|---|---|---|"]
        order = sorted(rs, key=lambda r: (r["key"] not in on, r.get("lut") or 1e12))
        for r in order:
            if r["status"] == "ok":
                sim = sims.get(r["key"])
                sim_txt = (f"{sim['sim_fps']:,.0f}" + ("" if sim["bit_exact"] else " MISMATCH")
                           if sim else "")
                lines.append(
                    f"| {'yes' if r['key'] in on else ''} | {_name(r)} | {r['k']} | "
                    f"{r['width'] or '-'} | {r['agg_bits'] or '-'} | {_q(r)} | "
                    f"{r['binary_macs'] / 1e6:.1f} M | {r['fps_est']:,.0f} | {sim_txt} | "
                    f"{r['lut']:,} ({100 * r['lut_pct']:.0f}%) | {r['bram18']} | {r['origin']} |")
            else:
                why = "does not fit" if r["status"] == "nofit" else f"failed: {r.get('error', '')[:80]}"
                lines.append(f"| | {_name(r)} | {r['k']} | {r['width'] or '-'} | "
                             f"{r['agg_bits'] or '-'} | {_q(r)} | | {why} | | | | {r['origin']} |")
        lines.append("")
    refs = [r for r in rows if r.get("status") == "reference"]
    if refs:
        lines.append("Float references (no hardware): " + ", ".join(
            f"`{r['label']}` {_q(r)}" for r in refs))
    trained = [r for r in rows if r.get("status") == "trained"]
    if trained:         # a spec without boards: its checkpoints (`groupnet zoo add` takes them)
        lines += ["Trained (the spec names no boards):", ""] + [
            f"- `{r['label']}` {_q(r)}: `{r['checkpoint']}`" for r in trained]
    return "\n".join(lines).strip() + "\n"


def plot(rows: list[dict], path: str | Path, sims: dict[str, dict] | None = None) -> Path:
    """Per board: accuracy against LUT and against FPS; the front joined by a line."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import FuncFormatter, NullFormatter

    sims = sims or {}
    boards = sorted(by_board(rows))
    fig, axes = plt.subplots(len(boards) or 1, 2, figsize=(11, 3.6 * max(1, len(boards))),
                             squeeze=False)
    refs = [r for r in rows if r.get("status") == "reference" and r.get("quality") is not None]
    for (ax_lut, ax_fps), board in zip(axes, boards):
        rs = [r for r in by_board(rows)[board]
              if r["status"] == "ok" and r.get("quality") is not None]
        fr = front(rs)
        for ax, x, xlabel in ((ax_lut, "lut", "LUT (FINN estimate)"),
                              (ax_fps, "fps_est", "frames/s (FINN estimate)")):
            ks = sorted({r["k"] for r in rs})
            for k in ks:
                pts = [r for r in rs if r["k"] == k]
                ax.scatter([r[x] for r in pts], [100 * r["quality"] for r in pts],
                           label=f"K={k}", s=36, alpha=0.8)
            # the front of this pair (accuracy against this axis), as a staircase; the
            # three-way front's points ringed
            better = (lambda a, b: a >= b) if x == "fps_est" else (lambda a, b: a <= b)
            pair = [r for r in rs if not any(
                better(o[x], r[x]) and o["quality"] >= r["quality"]
                and (o[x] != r[x] or o["quality"] > r["quality"]) for o in rs)]
            line = sorted(pair, key=lambda r: r[x])
            ax.step([r[x] for r in line], [100 * r["quality"] for r in line], "k--", lw=1,
                    where="post" if x == "lut" else "pre", label="front (this pair)")
            ax.scatter([r[x] for r in fr], [100 * r["quality"] for r in fr], s=90,
                       facecolors="none", edgecolors="k", lw=0.8,
                       label="front (accuracy, LUT, FPS)")
            if x == "fps_est":
                sim = [(sims[r["key"]]["sim_fps"], 100 * r["quality"]) for r in fr
                       if r["key"] in sims]
                if sim:
                    ax.scatter(*zip(*sim), marker="x", color="k", label="simulated FPS")
                xs = [r[x] for r in rs]
                if xs and max(xs) > 10 * min(xs):
                    ax.set_xscale("log")
                    ax.xaxis.set_minor_formatter(NullFormatter())
                ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:,.0f}"))
            for r in rs:
                if REFERENCE.get(r["variant"]):
                    ax.annotate(REFERENCE[r["variant"]], (r[x], 100 * r["quality"]),
                                fontsize=7, xytext=(4, -10), textcoords="offset points")
            for ref in refs:
                ax.axhline(100 * ref["quality"], color="grey", lw=0.8, ls=":")
            ax.set_xlabel(xlabel)
            ax.set_ylabel("test accuracy (%)")
            ax.set_title(board)
            ax.grid(alpha=0.3)
        ax_lut.legend(fontsize=7)
    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
