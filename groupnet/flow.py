"""The model-to-hardware flow: the one module that uses both ``models`` and ``hw``.

``models`` ends at a QONNX file and ``hw`` starts from one (neither imports the other);
this module joins them for the CLI, the benchmarks, the tests and the notebooks:

- :func:`build_model`: a checkpoint or an .onnx file -> export (for a checkpoint) -> FINN
  build -> bit-exactness of every stage on real test images, and for a checkpoint also of
  the PyTorch model itself;
- :func:`test_images`: the test images a model or a build was made for (the dataset named
  in its metadata), for verification, simulation and deployment;
- :func:`estimate`, :func:`smallest_board` (what explore, the zoo tables and the
  benchmarks use), :func:`smallest_board_row` (its results row), :func:`build_zoo_model`.
"""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import numpy as np

DEFAULT_DATASET = "fashion-mnist"


class FlowCheckFailed(AssertionError):
    """A stage's outputs differ from the model's (a bug to report, not a user error)."""


def dataset_of(onnx_path: str | Path) -> str:
    """The dataset an exported model was trained on (its ``groupnet.dataset`` metadata)."""
    from groupnet.models.export import read_metadata
    path = Path(onnx_path)
    meta = read_metadata(path) if path.is_file() else {}
    return meta.get("groupnet.dataset", DEFAULT_DATASET)


def test_images(model_or_build: str | Path, n: int | None, data_dir: str | None = None,
                dataset: str | None = None) -> tuple[np.ndarray, np.ndarray]:
    """``n`` test images and labels of the dataset of an .onnx file or a build folder
    (``dataset`` overrides the metadata)."""
    from groupnet.models.data import load_dataset
    path = Path(model_or_build)
    onnx = path / "input.onnx" if path.is_dir() else path
    return load_dataset(dataset or dataset_of(onnx), "test", data_dir, n)


test_images.__test__ = False      # not a pytest test, despite the name


def model_input_shape(model_or_build: str | Path) -> tuple[int, ...] | None:
    """The input shape (batch 1) of an .onnx file or of a build folder's input model."""
    from onnx import load
    path = Path(model_or_build)
    onnx = path / "input.onnx" if path.is_dir() else path
    if not onnx.is_file() or onnx.suffix != ".onnx":
        return None
    dims = load(str(onnx), load_external_data=False).graph.input[0].type.tensor_type.shape.dim
    return tuple(int(d.dim_value) for d in dims)


def load_images(path: str | Path, labels: str | Path | None = None, n: int | None = None
                ) -> tuple[np.ndarray, np.ndarray | None]:
    """Images (and labels) from .npy files: uint8 N x C x H x W (N x H x W: one channel);
    labels one integer per image. Bad files are one line naming them."""
    from groupnet.errors import UserError

    def read(p) -> np.ndarray:
        p = Path(p)
        if not p.is_file():
            raise UserError(f"{p}: file not found")
        try:
            return np.load(p, allow_pickle=False)
        except Exception as err:  # noqa: BLE001 - numpy raises many kinds
            raise UserError(f"{p}: not a .npy array ({type(err).__name__}: {err})") from None

    images = read(path)
    if images.ndim == 3:
        images = images[:, None]
    if images.ndim != 4 or not len(images):
        raise UserError(f"{path}: images of shape {images.shape}; expected N x C x H x W "
                        "(uint8 pixels)")
    if images.dtype != np.uint8:
        if not np.issubdtype(images.dtype, np.integer) or images.min() < 0 or images.max() > 255:
            raise UserError(f"{path}: {images.dtype} images; the accelerator takes uint8 "
                            "pixels 0..255 (save them with images.astype(np.uint8))")
        images = images.astype(np.uint8)
    lab = None
    if labels is not None:
        lab = read(labels).reshape(-1)
        if len(lab) != len(images) or not np.issubdtype(lab.dtype, np.integer):
            raise UserError(f"{labels}: {len(lab)} {lab.dtype} labels for {len(images)} "
                            f"images in {path}; expected one integer class per image")
        lab = lab.astype(np.int64)
    return images[:n], (lab[:n] if lab is not None else None)


def images_for(model_or_build: str | Path, n: int | None, data_dir: str | None = None,
               dataset: str | None = None, images: str | Path | None = None,
               labels: str | Path | None = None) -> tuple[np.ndarray, np.ndarray | None]:
    """Test images for a model or build: from ``images`` (.npy, with ``labels``), else the
    dataset (``dataset``, else the model's metadata). Checked against the model's input
    shape before any long work: a mismatch is one line saying what to pass."""
    from groupnet.errors import UserError
    want = model_input_shape(model_or_build)
    if images is not None:
        x, y = load_images(images, labels, n)
        source = str(images)
    else:
        if labels is not None:
            raise UserError("--labels goes with --images")
        name = dataset or dataset_of(Path(model_or_build) / "input.onnx"
                                     if Path(model_or_build).is_dir() else model_or_build)
        from groupnet.models.data import dataset_info
        info = dataset_info(name)
        shape = tuple(info.shape)
        if want is not None and tuple(want[1:]) != shape:
            raise UserError(
                f"{model_or_build} takes {'x'.join(map(str, want[1:]))} images; the {name} "
                f"test images are {'x'.join(map(str, shape))}: pass --images FILE.npy (uint8 "
                f"N x {' x '.join(map(str, want[1:]))}, with --labels FILE.npy) or --dataset")
        x, y = test_images(model_or_build, n, data_dir, name)
        source = f"the {name} test set"
    if want is not None and tuple(x.shape[1:]) != tuple(want[1:]):
        raise UserError(f"{source}: images of shape {'x'.join(map(str, x.shape[1:]))}; "
                        f"{model_or_build} takes {'x'.join(map(str, want[1:]))} (C x H x W)")
    return x, y


def pytorch_scores(checkpoint: str | Path, images: np.ndarray) -> np.ndarray:
    """Integer class scores of the PyTorch model (its binary classifier's outputs), one
    row per image (a segmentation net's score maps flattened in NCHW order, as the
    exported model's output is)."""
    import torch

    from groupnet.models.checkpoint import load_checkpoint
    model, _ = load_checkpoint(checkpoint)
    captured = []
    hook = model.head.fc.register_forward_hook(lambda m, i, o: captured.append(o.detach()))
    with torch.no_grad():
        model(torch.from_numpy(images).float())
    hook.remove()
    return captured[0].double().numpy().reshape(len(images), -1)


def export_checkpoint(checkpoint: str | Path, onnx_path: str | Path) -> Path:
    """A checkpoint exported to QONNX (with its metrics in the metadata), overwriting."""
    from groupnet.models.checkpoint import load_checkpoint
    from groupnet.models.export import export_qonnx
    model, payload = load_checkpoint(checkpoint)
    return export_qonnx(model, onnx_path, metrics=payload.get("metrics"), force=True)


def build_model(cfg, verify_images: int = 0, data_dir: str | None = None,
                progress: bool = True, images: np.ndarray | None = None,
                dataset: str | None = None) -> dict:
    """Build ``cfg.model`` (a checkpoint .pt or an .onnx file) as ``hw.build.BuildConfig``
    ``cfg`` says; returns the build status. ``verify_images``: check the Python execution
    of the graph after every stage on that many real test images (``images`` instead, if
    given), and, for a checkpoint, the exported model against PyTorch too. A mismatch
    raises :class:`FlowCheckFailed` (the build folder records which stage)."""
    from groupnet.hw.boards import get_board
    from groupnet.hw.build import BuildError, BuildPaths, run_build
    from groupnet.hw.verify import VerifyError
    from groupnet.outdir import check_output

    get_board(cfg.board)                         # an unknown board first: one line
    if not Path(cfg.model).is_file():
        raise BuildError(f"{cfg.model}: model file not found (make one with "
                         "`groupnet export CHECKPOINT -o MODEL.onnx`)")
    check_output(cfg.out, "build", inputs=(cfg.model,))   # before the export beside it
    source = cfg.model
    checkpoint = None
    if Path(cfg.model).suffix == ".pt":          # a checkpoint: export it next to the build
        checkpoint = cfg.model
        onnx = Path(cfg.out).with_name(Path(cfg.out).name + ".export.onnx")
        cfg = replace(cfg, model=str(export_checkpoint(checkpoint, onnx)))
    verify = verify_images > 0 or images is not None
    if verify and images is None:
        images, _ = test_images(cfg.model, verify_images, data_dir, dataset)
    cfg = replace(cfg, verify=verify)
    try:
        status = run_build(cfg, images, progress=progress, source=source)
    except VerifyError as err:
        raise FlowCheckFailed(str(err)) from None
    paths = BuildPaths(Path(cfg.out))
    if checkpoint is not None and verify and paths.reference.exists():
        same = bool(np.array_equal(np.load(paths.reference), pytorch_scores(checkpoint, images)))
        ver = json.loads(paths.verification.read_text())
        ver["pytorch"] = {"bit_exact": same, "n": int(len(images))}
        paths.verification.write_text(json.dumps(ver, indent=2) + "\n")
        if not same:
            raise FlowCheckFailed("PyTorch and QONNX integer scores differ")
    return status


def derive_folding(build_yaml: str | Path, work: str | Path, budget: float | None = None
                   ) -> dict:
    """The folding a committed build config should carry: its model built for its board
    with the default budget search (``budget`` or the config's), through 'estimates'.
    ``builds/update_foldings.py`` writes it beside the config; a test checks the
    committed files against it."""
    from groupnet.hw.build import BuildConfig, BuildPaths
    cfg = BuildConfig.from_yaml(build_yaml, out=str(Path(work) / "b"), to_step="estimates")
    cfg = replace(cfg, folding=None, force=True, budget=budget or cfg.budget)
    build_model(cfg, progress=False)
    return json.loads(BuildPaths(Path(cfg.out)).folding.read_text())


# boards from the smallest up: where a model that does not fit the first one goes next
BOARD_LADDER = ("pynq-z2", "ultra96-v2", "kv260", "zcu104")


def estimate(model: str | Path, board: str, out: str | Path, *, budget: float | None = None,
             target_fps: float | None = None, verify_images: int = 0,
             to_step: str = "estimates", progress: bool = False) -> dict:
    """``model`` (.onnx or checkpoint) built for ``board`` through 'estimates' (or
    ``to_step``) in ``out`` (replaced; the default folding search, or ``budget`` /
    ``target_fps``): FINN's
    estimates (FPS, latency, LUT, BRAM18, DSP, utilization, bottleneck, layers) with
    ``fits: True``; ``{"fits": False, "error": why}`` when no folding fits the board.
    ``verify_images``: the build's bit-exact checks on that many test images."""
    from groupnet.hw.build import Build, BuildConfig
    from groupnet.hw.context import ESTIMATED
    from groupnet.hw.folding import FoldingError
    fold = {k: v for k, v in (("budget", budget), ("target_fps", target_fps)) if v is not None}
    cfg = BuildConfig(model=str(model), out=str(out), board=board, to_step=to_step,
                      force=True, **fold)
    try:
        build_model(cfg, verify_images, progress=progress)
    except FoldingError as err:
        return {"board": board, "fits": False, "error": str(err)}
    estimates = Build.open(out, need=ESTIMATED).estimates()
    return {"board": board, "fits": True, "build": str(out), **estimates}


def smallest_board(model: str | Path, folder: str | Path,
                   boards: tuple[str, ...] = BOARD_LADDER, **options) -> dict:
    """The first of ``boards`` that ``model`` fits (each tried in ``folder/<board>``): that
    board's :func:`estimate`, with ``not_fitting`` (why each smaller board did not);
    ``{"board": None, ...}`` when it fits none. ``options``: :func:`estimate`'s."""
    tried = []
    for board in boards:
        est = estimate(model, board, Path(folder) / board, **options)
        if est["fits"]:
            return {**est, "not_fitting": tried}
        tried.append(f"{board}: {est['error']}")
    return {"board": None, "fits": False, "not_fitting": tried}


def smallest_board_row(model: str | Path, folder: str | Path,
                       boards: tuple[str, ...] | None = None, **options) -> dict:
    """:func:`smallest_board` (default folding and budget, or ``options``) as a results
    row: the board, FINN's estimates and the thresholds stored, or ``{"board": None}``
    when it fits none; ``not_fitting`` says why each smaller board did not."""
    from qonnx.core.modelwrapper import ModelWrapper

    from groupnet.hw.build import BuildPaths
    from groupnet.hw.estimates import threshold_count
    est = smallest_board(model, folder, boards or BOARD_LADDER, **options)
    if est["board"] is None:
        return {"board": None, "not_fitting": est["not_fitting"]}
    dataflow = ModelWrapper(str(BuildPaths(Path(est["build"])).dataflow))
    return {"board": est["board"], "fps": est["fps"], "lut": est["lut"],
            "thresholds": threshold_count(dataflow),
            "bram18": est["bram18"], "dsp": est["dsp"],
            "lut_pct": est["utilization"]["lut"], "bottleneck": est["bottleneck"],
            "not_fitting": est["not_fitting"]}


def build_zoo_model(variant: str, board: str, folder: str | Path,
                    untrained_ok: bool = False) -> tuple["Build", dict]:
    """``models/zoo/<variant>.pt`` exported and built for ``board`` (default folding)
    through 'estimates' in ``folder/<variant>``: the opened build and the checkpoint's
    payload. ``untrained_ok``: a variant without a zoo checkpoint is built untrained (seed
    0; payload ``{"untrained": True}``): enough for cycles and bit-exactness, not for
    accuracy."""
    import torch

    from groupnet.hw.build import Build, BuildConfig
    from groupnet.models import create_model
    from groupnet.models.checkpoint import ZOO, load_checkpoint, zoo_checkpoint
    from groupnet.models.export import export_qonnx
    folder = Path(folder)
    if untrained_ok and not (ZOO / f"{variant}.pt").is_file():
        torch.manual_seed(0)
        model, payload = create_model(variant).eval(), {"untrained": True}
    else:
        model, payload = load_checkpoint(zoo_checkpoint(variant))
    onnx = export_qonnx(model, folder / f"{variant}.onnx")
    out = folder / variant
    build_model(BuildConfig(model=str(onnx), out=str(out), board=board, to_step="estimates"),
                progress=False)
    return Build.open(out), payload


def estimate_and_simulate(model: str | Path, board: str, out: str | Path, images: np.ndarray,
                          frames: int | None = None, verify_images: int = 4,
                          sizing_images: int = 6) -> dict:
    """``model`` (checkpoint or .onnx) built for ``board`` through 'estimates' in ``out``
    (replaced; bit-exact checks on the first ``verify_images`` of ``images``), its FIFOs
    sized by simulating the first ``sizing_images``, then simulated in Verilator on the
    first ``frames`` (default: all): the opened ``build``, its ``estimates``, the
    ``sizing`` and the ``sim`` result (``hw.sim.run``'s)."""
    from groupnet.hw.build import Build, BuildConfig
    from groupnet.hw.sim.run import simulate, size_fifos
    build_model(BuildConfig(model=str(model), out=str(out), board=board, to_step="estimates",
                            force=True), images=images[:verify_images], progress=False)
    built = Build.open(out)
    sizing = size_fifos(out, images[:sizing_images])
    return {"build": built, "estimates": built.estimates(), "sizing": sizing,
            "sim": simulate(out, images[:frames])}


def smallest_bitstream(model: str | Path, folder: str | Path, boards: tuple[str, ...],
                       clock_mhz: float, images: np.ndarray, on_error=None) -> dict:
    """``hw.bitstream.bitstream`` (timing failures kept) on the first of ``boards`` (ECP5
    boards, smallest first) that ``model`` fits: by FINN's estimate
    (:func:`smallest_board`), then by synthesis (a design Yosys finds too large moves up
    one size; ``on_error(board, error)`` hears why). Returns the bitstream report with
    ``build`` (its folder), or ``{"board": None, "note": why}``."""
    from groupnet.hw.bitstream import BitstreamError, bitstream
    from groupnet.hw.build import Build
    fit = smallest_board(model, folder, boards)
    if fit["board"] is None:
        return {"board": None, "note": "fits no board (FINN estimate)"}
    for board in boards[boards.index(fit["board"]):]:
        out = Path(folder) / board
        if not out.is_dir():
            estimate(model, board, out)
        try:
            return {**bitstream(Build.open(out), clock_mhz=clock_mhz, images=images,
                                keep_failing=True, progress=True), "build": str(out)}
        except BitstreamError as err:           # too large after synthesis: one size up
            if on_error:
                on_error(board, err)
    return {"board": None, "note": "fits no board after synthesis"}
