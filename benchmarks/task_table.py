"""The segmentation and detection tables: quality on the test scenes (mIoU and pixel
accuracy, or mAP@0.5 and COCO mAP), binary ops, FINN estimates on Pynq-Z2, the line-buffer
cost of each dilation rate, and simulated FPS.

A table is a list of zoo configurations (``TABLES``: models of the zoo index, their
numbers the metrics beside each checkpoint). Builds every binary model for ``--board``
through 'estimates', sizes its FIFOs and simulates ``--frames`` real test scenes in
Verilator (bit-exact check included), and writes
``benchmarks/results/<table>_summary.{json,md}`` with the issues' targets checked: Group-Net
(BPAC for segmentation, K=4 for detection) closes at least half of the K=1 ->
full-precision gap (mIoU; mAP@0.5). FPS, LUT and BRAM18 are FINN-style analytical
estimates; "simulated FPS" is the Verilator run. The models come from ``groupnet explore
models/zoo/recipes/{segmentation,detection}*.yaml`` + ``groupnet zoo add`` (docs/models.md).

    python benchmarks/task_table.py --table seg_fashion-mnist-scenes
    python benchmarks/task_table.py --table det_fashion-mnist-boxes [--reuse-hw]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"
# a table's rows: zoo configurations (`groupnet zoo list`)
TABLES = {
    "seg_fashion-mnist-scenes": ["fp_segnet", "bnn_segnet", "groupnet_segnet_k4",
                                 "groupnet_segnet_k4_uniform"],
    "det_fashion-mnist-boxes": ["groupnet_detnet_k4.kd", "bnn_detnet.kd", "bnn_detnet",
                                "fp_detnet", "groupnet_detnet_k4"],
    "det_fashion-mnist-boxes_e36": ["groupnet_detnet_k4.e36", "bnn_detnet.e36",
                                    "fp_detnet.e36"]}


def hardware_of(ckpt: Path, work: Path, board: str, frames: int, dataset: str) -> dict:
    """Estimates, sized FIFOs and ``frames`` simulated test scenes of a checkpoint."""
    from groupnet.flow import estimate_and_simulate
    from groupnet.hw.estimates import windows_by_dilation
    from groupnet.models.data import load_dataset
    images, _ = load_dataset(dataset, "test", limit=max(frames, 8))
    hw = estimate_and_simulate(ckpt, board, work / ckpt.stem, images, frames)
    est, sim = hw["estimates"], hw["sim"]
    return {"board": board, "fps_est": est["fps"], "lut": est["lut"], "bram18": est["bram18"],
            "lut_pct": est["utilization"]["lut"], "bottleneck": est["bottleneck"],
            "line_buffers": windows_by_dilation(hw["build"].dataflow(), est),
            "fifo_entries": hw["sizing"]["total_fifo_entries"],
            "sim_fps": sim["fps"], "sim_cycles_per_frame": sim["cycles_per_frame"],
            "bound_cycles_per_frame": sim["bound_cycles_per_frame"],
            "sim_bit_exact": sim["bit_exact"], "sim_frames": sim["frames"]}


def summarize(table: str, configs: list[str], board: str, frames: int, with_hw: bool,
              zoo: Path | None = None, reuse: dict | None = None) -> dict:
    """``reuse``: hardware columns by row name (the last summary's; one written before the
    zoo index names its rows by the old names) instead of building."""
    from groupnet.models.zoo_index import ZOO, load_index
    from groupnet.models.zoo_records import entries_of, task_row
    zoo = zoo or ZOO
    index = load_index(zoo)
    by_name = {e["name"]: e for e in index}
    entries = entries_of(configs, index)
    task = "detection" if any(e["dataset"] == "fashion-mnist-boxes" for e in entries) \
        else "segmentation"
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for e in entries:
            out = task_row(e, task, zoo, by_name)
            if reuse is not None and out["precision"] == "binary":
                old = [reuse[n] for n in (e["config"], *e["aliases"]) if n in reuse]
                if not old:
                    raise SystemExit(f"{table}: no hardware columns for {e['config']} in "
                                     "the last summary: run without --reuse-hw")
                out["hw"] = old[0]
            elif with_hw and out["precision"] == "binary":
                out["hw"] = hardware_of(zoo / e["file"], Path(tmp), board, frames,
                                        e["dataset"])
                print(f"{e['config']}: {out['hw']}", flush=True)
            rows.append(out)
    return {"table": table, "task": task, "board": board, "rows": rows,
            "targets": targets(rows, task)}


def targets(rows: list[dict], task: str) -> list[dict]:
    """The issue's targets, once per recipe (trained from the labels alone, distilled from
    the float model); the float model is the reference of both."""
    prefix, metric = ("detnet", "mAP@0.5") if task == "detection" else ("segnet", "mIoU")
    fp = next((r for r in rows if r["variant"] == f"fp_{prefix}" and not r["distilled"]),
              None)
    out = []
    for distilled in (False, True):
        by = {r["variant"]: r for r in rows if r["distilled"] == distilled}
        k1, gn = by.get(f"bnn_{prefix}"), by.get(f"groupnet_{prefix}_k4")
        recipe = " (distilled)" if distilled else ""
        if fp and k1 and gn:
            gap = fp["quality"] - k1["quality"]
            closed = (gn["quality"] - k1["quality"]) / gap if gap > 0 else float("nan")
            what = "Group-Net BPAC" if task == "segmentation" else "Group-Net K=4"
            out.append({"target": f"{what} closes >= half of the K=1 -> full-precision "
                                  f"{metric} gap{recipe}", "value": closed,
                        "met": closed >= 0.5})
        uni = by.get("groupnet_segnet_k4_uniform")
        if gn and uni:
            out.append({"target": f"BPAC against uniform dilation (reported as measured)"
                                  f"{recipe}", "value": gn["quality"] - uni["quality"],
                        "met": None})
    return out


def _order(row: dict) -> tuple:
    """Table order: one recipe after the other (labels alone, then distilled); within one,
    the float reference, then K=1, then Group-Net, by name."""
    return (row.get("distilled", False), row["precision"] == "binary", row["k"], row["name"])


def write(summary: dict) -> None:
    table = summary["table"]
    (RESULTS / f"{table}_summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    det = summary["task"] == "detection"
    quality = "test mAP@0.5 | test mAP@[.5:.95]" if det else "test mIoU | pixel accuracy"
    check = "mAP@0.5" if det else "mIoU"
    lines = [f"| model | K | {quality} | check {check}, last 5 epochs | binary MACs/image "
             f"| train time (CPU) | FPS (est., {summary['board']}) | LUT (est.) "
             "| BRAM18 (est.) | FPS (simulated) |",
             "|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in sorted(summary["rows"], key=_order):
        hw = r.get("hw")
        hw_cols = (f"{hw['fps_est']:,.0f} | {hw['lut']:,} | {hw['bram18']} | "
                   f"{hw['sim_fps']:,.0f}{'' if hw['sim_bit_exact'] else ' (MISMATCH)'}"
                   if hw else "- | - | - | -")
        macs = f"{r['binary_macs'] / 1e6:.1f} M" if r["binary_macs"] else "- (float)"
        second = f"{r['map']:.3f}" if det else f"{100 * r['pixel_accuracy']:.2f}%"
        checks = r.get("checks") or []
        spread = f"{min(checks):.3f}-{max(checks):.3f}" if checks else "-"
        lines.append(f"| `{r['name']}` | {r['k']} | {r['quality']:.3f} | {second} | {spread} | "
                     f"{macs} | {r['train_cpu_minutes']:.0f} min | {hw_cols} |")
    lines.append("")
    for r in summary["rows"]:
        if r.get("hw") and not det:
            cost = ", ".join(f"rate {b['rate']}: {b['windows']} windows, {b['lut']:,} LUT, "
                             f"{b['bram18']} BRAM18" for b in r["hw"]["line_buffers"])
            lines.append(f"- `{r['name']}` sliding windows by dilation rate (est.): {cost}")
    for t in summary["targets"]:
        if t["met"] is None:
            lines.append(f"- {t['target']}: {t['value']:+.3f} mIoU")
        else:
            lines.append(f"- target {t['target']}: {100 * t['value']:.0f}% of the gap "
                         f"closed: {'met' if t['met'] else 'NOT met'}")
    (RESULTS / f"{table}_summary.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--table", default="seg_fashion-mnist-scenes", choices=list(TABLES),
                    help="which table (its zoo configurations: TABLES)")
    ap.add_argument("--board", default="pynq-z2", help="the board to build for")
    ap.add_argument("--frames", type=int, default=8, help="test scenes to simulate")
    ap.add_argument("--no-hw", action="store_true", help="skip builds and simulation")
    ap.add_argument("--reuse-hw", action="store_true",
                    help="hardware columns from the table's last summary (by row name: "
                         "only when the checkpoints did not change) instead of building again")
    args = ap.parse_args()
    last = RESULTS / f"{args.table}_summary.json"
    reuse = ({r["name"]: r["hw"] for r in json.loads(last.read_text())["rows"] if r.get("hw")}
             if args.reuse_hw else None)
    summary = summarize(args.table, TABLES[args.table], args.board, args.frames,
                        not args.no_hw, reuse=reuse)
    write(summary)
    return 0


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT))
    sys.exit(main())
