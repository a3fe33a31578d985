"""Shared by the benchmark scripts: a zoo checkpoint exported and built through the
'estimates' step (the FINN environment prepared for the steps that follow)."""

from __future__ import annotations

from pathlib import Path


def zoo_build(variant: str, board: str, folder: str | Path,
              untrained_ok: bool = False) -> tuple[Path, dict]:
    """Build ``models/zoo/<variant>.pt`` for ``board`` (default folding) in ``folder``;
    returns the build folder and the checkpoint payload. ``untrained_ok``: a variant
    without a zoo checkpoint is built untrained (seed 0; payload ``{"untrained": True}``):
    enough for cycles and bit-exactness, not for accuracy."""
    from groupnet.hw.build import BuildConfig, run_build
    from groupnet.hw.finn_env import prepare
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
    run_build(BuildConfig(model=str(onnx), out=str(out), board=board, to_step="estimates"),
              progress=False)
    prepare(out / "finn_tmp")
    return out, payload
