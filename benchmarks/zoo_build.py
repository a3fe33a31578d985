"""Shared by the benchmark scripts: a zoo checkpoint exported and built through the
'estimates' step (the FINN environment prepared for the steps that follow)."""

from __future__ import annotations

from pathlib import Path


def zoo_build(variant: str, board: str, folder: str | Path) -> tuple[Path, dict]:
    """Build ``models/zoo/<variant>.pt`` for ``board`` (default folding) in ``folder``;
    returns the build folder and the checkpoint payload."""
    from groupnet.hw.build import BuildConfig, run_build
    from groupnet.hw.finn_env import prepare
    from groupnet.models.checkpoint import load_checkpoint, zoo_checkpoint
    from groupnet.models.export import export_qonnx

    folder = Path(folder)
    model, payload = load_checkpoint(zoo_checkpoint(variant))
    onnx = export_qonnx(model, folder / f"{variant}.onnx")
    out = folder / variant
    run_build(BuildConfig(model=str(onnx), out=str(out), board=board, to_step="estimates"),
              progress=False)
    prepare(out / "finn_tmp")
    return out, payload
