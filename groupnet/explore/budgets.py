"""A sweep's families compared at equal binary-op budgets (issue 30): accuracy per seed,
mean and spread, who leads each budget, and the per-board hardware front.

A *family* is a design point without its seed (``bnn_cnv width=0.3536``); its *budget* is
its binary operations per image (``op_counts``) over the sweep's smallest, rounded to a
power of two (1x, 2x, 4x). Accuracies are the finished trainings' own metrics. The report
ranks a budget's families by TEST accuracy (mean over seeds); the top two are not ranked
when their seed ranges overlap ("within seed spread") or when either has one seed only
("1 seed: no spread yet"). Which family the validation mean (the split every choice of
the protocol is made on) puts first is said beside.
"""

from __future__ import annotations

import math
import re
from statistics import mean

from . import pareto

SEED = re.compile(r"\s*\bseed=\d+")
HW = ("status", "lut", "lut_pct", "fps_est", "bram18", "dsp", "latency_us", "bottleneck",
      "clock_mhz")                  # the store's hardware columns a report keeps


def family_of(label: str) -> str:
    """A point's label without its seed: 'bnn_cnv seed=1 width=0.3536' -> 'bnn_cnv width=0.3536'."""
    return SEED.sub("", label).strip()


def budget_of(macs: int, base: int) -> int:
    """Binary ops as a multiple of ``base``, to the nearest power of two."""
    return 2 ** round(math.log2(macs / base))


def summarise(points: list[dict]) -> list[dict]:
    """One row per family from one dict per planned point (family, seed, binary_macs,
    val_accuracy, test_accuracy: None until trained): budget, per-seed accuracies, seeds
    done of planned, mean, spread (max - min) and range per split; by budget, then test
    mean (best first, untrained families last)."""
    base = min(p["binary_macs"] for p in points)
    fams: dict[str, dict] = {}
    for p in points:
        f = fams.setdefault(p["family"], {
            "family": p["family"], "binary_macs": p["binary_macs"],
            "budget": budget_of(p["binary_macs"], base), "seeds": {}, "planned": 0})
        f["planned"] += 1
        if p.get("test_accuracy") is not None:
            f["seeds"][p["seed"]] = {"val": p.get("val_accuracy"), "test": p["test_accuracy"]}
    for f in fams.values():
        f["done"] = len(f["seeds"])
        for split in ("val", "test"):
            vs = [s[split] for s in f["seeds"].values() if s[split] is not None]
            f[f"{split}_mean"] = mean(vs) if vs else None
            f[f"{split}_range"] = [min(vs), max(vs)] if vs else None
            f[f"{split}_spread"] = max(vs) - min(vs) if len(vs) > 1 else None
    return sorted(fams.values(), key=lambda f: (f["budget"], f["test_mean"] is None,
                                                -(f["test_mean"] or 0), f["family"]))


def verdicts(rows: list[dict]) -> list[dict]:
    """Per budget: leader and runner-up on the test mean, and whether that is a ranking
    ('leads'), 'within seed spread' (their test ranges overlap), 'one seed' (either has
    one seed only), 'alone' (one family trained) or 'none' (nothing trained)."""
    out = []
    for budget in sorted({r["budget"] for r in rows}):
        fam = [r for r in rows if r["budget"] == budget]
        done = [r for r in fam if r["done"]]
        v = {"budget": budget, "binary_macs": min(r["binary_macs"] for r in fam),
             "untrained": [r["family"] for r in fam if not r["done"]]}
        if not done:
            out.append({**v, "kind": "none"})
            continue
        a = done[0]
        v.update(leader=a["family"], val_leader=max(
            (r for r in done if r["val_mean"] is not None), key=lambda r: r["val_mean"],
            default={"family": None})["family"])
        if len(done) == 1:
            out.append({**v, "kind": "alone"})
            continue
        b = done[1]
        kind = ("one seed" if min(a["done"], b["done"]) < 2 else
                "within seed spread" if a["test_range"][0] <= b["test_range"][1] else "leads")
        out.append({**v, "kind": kind, "runner_up": b["family"],
                    "lead": a["test_mean"] - b["test_mean"]})
    return out


def _pc(v: float | None) -> str:
    return "-" if v is None else f"{100 * v:.2f}"


def budget_table(rows: list[dict], seeds: list[int]) -> str:
    s = " / ".join(f"s{x}" for x in seeds)
    lines = [f"| budget | family | binary ops/image | seeds done | val acc. % ({s}) | val mean % "
             f"(spread) | test acc. % ({s}) | test mean % (spread) |", "|---" * 8 + "|"]
    for r in rows:
        def cells(split):
            per = " / ".join(_pc(r["seeds"][x][split]) if x in r["seeds"] else "-" for x in seeds)
            sp = r[f"{split}_spread"]
            return per, _pc(r[f"{split}_mean"]) + (f" ({100 * sp:.2f})" if sp is not None else "")
        (vp, vm), (tp, tm) = cells("val"), cells("test")
        lines.append(f"| {r['budget']}x | `{r['family']}` | {r['binary_macs'] / 1e6:.2f} M | "
                     f"{r['done']} of {r['planned']} | {vp} | {vm} | {tp} | {tm} |")
    return "\n".join(lines) + "\n"


def paragraph(rows: list[dict], planned: int) -> str:
    """The budgets' verdicts in words, every number from ``rows``."""
    by = {r["family"]: r for r in rows}
    done = sum(r["done"] for r in rows)
    out = [f"**Partial sweep: {done} of {planned} points done**; every number below can "
           "change as the rest finish." if done < planned else
           f"All {planned} points done."]
    for v in verdicts(rows):
        head = f"**{v['budget']}x** ({v['binary_macs'] / 1e6:.1f} M binary ops/image):"
        if v["kind"] == "none":
            out.append(f"{head} nothing trained yet.")
            continue
        a = by[v["leader"]]
        if v["kind"] == "alone":
            sp = a["test_spread"]
            text = (f"only `{a['family']}` trained, test mean {_pc(a['test_mean'])}% "
                    f"({a['done']} of {a['planned']} seeds"
                    + (f", spread {100 * sp:.2f} points)." if sp is not None else ")."))
        else:
            b = by[v["runner_up"]]
            means = f"test means {_pc(a['test_mean'])}% vs {_pc(b['test_mean'])}%"
            if v["kind"] == "leads":
                text = (f"`{a['family']}` leads `{b['family']}` by {100 * v['lead']:.2f} points "
                        f"on test ({means}; seed spreads {100 * a['test_spread']:.2f} and "
                        f"{100 * b['test_spread']:.2f} points).")
            elif v["kind"] == "within seed spread":
                text = (f"`{a['family']}` and `{b['family']}` are within seed spread on test "
                        f"({means}; seed ranges {_pc(a['test_range'][0])}-"
                        f"{_pc(a['test_range'][1])}% and {_pc(b['test_range'][0])}-"
                        f"{_pc(b['test_range'][1])}%): not ranked.")
            else:
                one = ", ".join(f"`{r['family']}` {r['done']} of {r['planned']}"
                                for r in (a, b) if r["done"] < 2)
                text = (f"`{a['family']}` is ahead of `{b['family']}` by {100 * v['lead']:.2f} "
                        f"points on test ({means}); 1 seed: no spread yet ({one} seeds).")
        if v["kind"] != "alone":
            text += (" The validation mean puts it first too." if v["val_leader"] == a["family"]
                     else f" The validation mean puts `{v['val_leader']}` first.")
        if v["untrained"]:
            text += " Not trained yet: " + ", ".join(f"`{f}`" for f in v["untrained"]) + "."
        out.append(f"{head} {text}")
    return "\n\n".join(out) + "\n"


def board_rows(rows: list[dict], hw: list[dict]) -> dict[str, list[dict]]:
    """Per board, one row per family with a build: its test mean, LUT / FPS / BRAM18 (mean
    over the seeds built), on the accuracy x LUT x FPS front (``pareto.front``) or not.
    ``hw``: one dict per point and board (family, board, and the store's HW columns)."""
    by = {r["family"]: r for r in rows}
    out = {}
    for board, recs in sorted(pareto.by_board(hw).items()):
        fams = []
        for fam in dict.fromkeys(h["family"] for h in recs):
            ok = [h for h in recs if h["family"] == fam and h.get("status") == "ok"]
            r = {"family": fam, "budget": by[fam]["budget"], "quality": by[fam]["test_mean"],
                 "seeds": len(ok), "status": "ok" if ok else
                 next(h.get("status") for h in recs if h["family"] == fam)}
            if ok:
                r.update({k: mean(h[k] for h in ok) for k in ("lut", "fps_est", "bram18")},
                         clock_mhz=ok[0].get("clock_mhz"))
            fams.append(r)
        on = {id(r) for r in pareto.front(fams)}
        for r in fams:
            r["front"] = id(r) in on
        out[board] = sorted(fams, key=lambda r: (r["budget"], -(r["quality"] or 0)))
    return out


def board_table(rows: list[dict]) -> str:
    mhz = {r["clock_mhz"] for r in rows if r.get("clock_mhz")}
    clock = f" at {mhz.pop():.0f} MHz" if len(mhz) == 1 else ""
    lines = [f"| family | budget | test mean % | LUT (est.) | FPS (FINN estimate{clock}) | "
             "BRAM18 (est.) | on the front |", "|---|---|---|---|---|---|---|"]
    for r in rows:
        hw = (f"{r['lut']:,.0f} | {r['fps_est']:,.0f} | {r['bram18']:.0f}" if r["status"] == "ok"
              else f"{r['status']} | | ")
        lines.append(f"| `{r['family']}` | {r['budget']}x | {_pc(r['quality'])} | {hw} | "
                     f"{'yes' if r['front'] else ''} |")
    return "\n".join(lines) + "\n"


def plot_board(hw: list[dict], board: str, path) -> None:
    """Test accuracy against LUT on one board, a marker per family (every seed), the
    colour its estimated FPS."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.colors import Normalize

    pts = [h for h in hw if h["board"] == board and h.get("status") == "ok"]
    fig, ax = plt.subplots(figsize=(7, 5.2))
    norm = Normalize(min(h["fps_est"] for h in pts), max(h["fps_est"] for h in pts) + 1)
    for fam, marker in zip(dict.fromkeys(h["family"] for h in pts), "osD^vPX*hp<>"):
        mine = [h for h in pts if h["family"] == fam]
        sc = ax.scatter([h["lut"] for h in mine], [100 * h["test_accuracy"] for h in mine],
                        c=[h["fps_est"] for h in mine], norm=norm, cmap="viridis",
                        marker=marker, s=60, edgecolors="k", linewidths=0.5, label=fam)
    fig.colorbar(sc, ax=ax, label="frames/s (FINN estimate)")
    ax.set(xlabel="LUT (FINN estimate)", ylabel="test accuracy (%)",
           title=f"{board}: one marker per seed")
    ax.grid(alpha=0.3)
    legend = ax.legend(fontsize=7, ncol=2, loc="upper center", bbox_to_anchor=(0.5, -0.14))
    for handle in legend.legend_handles:       # the family's marker; colour is FPS
        handle.set_array(None)
        handle.set_facecolor("lightgrey")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
