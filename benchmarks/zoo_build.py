"""Shared by the benchmark scripts: a zoo checkpoint exported and built through the
'estimates' step (``groupnet.flow``), opened as a ``Build`` for the steps that follow."""

from __future__ import annotations

from pathlib import Path


def zoo_build(variant: str, board: str, folder: str | Path,
              untrained_ok: bool = False) -> tuple["Build", dict]:
    """Build ``models/zoo/<variant>.pt`` for ``board`` (default folding) in ``folder``;
    returns the build folder and the checkpoint payload. ``untrained_ok``: a variant
    without a zoo checkpoint is built untrained (seed 0; payload ``{"untrained": True}``):
    enough for cycles and bit-exactness, not for accuracy."""
    from groupnet.flow import build_model
    from groupnet.hw.build import Build, BuildConfig
    from groupnet.models.checkpoint import load_checkpoint, zoo_checkpoint
    from groupnet.models.export import export_qonnx

    folder = Path(folder)
    zoo = Path(__file__).resolve().parents[1] / "models" / "zoo" / f"{variant}.pt"
    if untrained_ok and not zoo.exists():
        import torch
        from groupnet.models import create_model
        torch.manual_seed(0)
        model, payload = create_model(variant).eval(), {"untrained": True}
    else:
        model, payload = load_checkpoint(zoo_checkpoint(variant))
    onnx = export_qonnx(model, folder / f"{variant}.onnx")
    out = folder / variant
    build_model(BuildConfig(model=str(onnx), out=str(out), board=board, to_step="estimates"),
                progress=False)
    return Build.open(out), payload


def threshold_count(dataflow: Path) -> int:
    """Threshold values stored in the accelerator (MVAU and Thresholding layers)."""
    from qonnx.core.modelwrapper import ModelWrapper
    model = ModelWrapper(str(dataflow))
    total = 0
    for node in model.graph.node:
        if node.op_type.startswith("MVAU") and len(node.input) > 2:
            total += model.get_initializer(node.input[2]).size
        elif node.op_type.startswith("Thresholding"):
            total += model.get_initializer(node.input[1]).size
    return int(total)


def estimate_smallest_board(onnx: str | Path, folder: str | Path,
                            boards: tuple[str, ...] | None = None) -> dict:
    """A results row for the smallest board ``onnx`` fits (``groupnet.flow.smallest_board``,
    default folding and budget): that board, FINN's estimates and the thresholds stored,
    or ``{"board": None}`` when it fits none."""
    from groupnet.flow import BOARD_LADDER, smallest_board
    from groupnet.hw.build import BuildPaths
    est = smallest_board(onnx, folder, boards or BOARD_LADDER)
    if est["board"] is None:
        return {"board": None, "not_fitting": est["not_fitting"]}
    return {"board": est["board"], "fps": est["fps"], "lut": est["lut"],
            "thresholds": threshold_count(BuildPaths(est["build"]).dataflow),
            "bram18": est["bram18"], "dsp": est["dsp"],
            "lut_pct": est["utilization"]["lut"], "bottleneck": est["bottleneck"],
            "not_fitting": est["not_fitting"]}
