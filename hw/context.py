"""The typed objects of a build: its config, its folder layout, the context the steps get,
and :class:`Build`, an opened build folder that every stage after ``run_build`` takes.

``build.json`` is the whole record of a build: ``BuildConfig.from_record`` reads it back,
so a resumed build, ``groupnet sim``/``report``/``deploy`` and the benchmarks see the same
board, clock and paths as the build itself (never an untyped dict).
"""

from __future__ import annotations

import contextlib
import json
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from qonnx.core.modelwrapper import ModelWrapper

from groupnet.errors import UserError

from .boards import Board, get_board

# the build's steps in order (their functions: steps.STEPS, which imports this module)
DEFAULT_STEPS = ("prepare", "qonnx_to_finn", "streamline", "convert_to_hw",
                 "dataflow_partition", "specialize_layers", "minimize_bit_width", "folding",
                 "estimates", "hw_codegen", "size_fifos",
                 # FINN's steps that need Vivado / Vitis HLS
                 "hw_ipgen", "set_fifo_depths", "create_stitched_ip", "synthesize_bitfile",
                 "make_driver", "deployment_package")
RTL_LAYERS = ("finn", "groupnet")

def read_onnx(path: str | Path, fix: str = "export one with `groupnet export CHECKPOINT "
              "-o MODEL.onnx`") -> ModelWrapper:
    """An ONNX file as a ModelWrapper; a file that is not one is a one-line BuildError."""
    try:
        return ModelWrapper(str(path))
    except Exception as err:  # noqa: BLE001 - protobuf/onnx raise many kinds
        raise BuildError(f"{path}: not a readable ONNX model ({type(err).__name__}: "
                         f"{str(err).splitlines()[0] if str(err) else 'no details'}); "
                         f"{fix}") from None


class BuildError(UserError, RuntimeError):
    """Bad build request (user error): one line, what and how to fix."""


@dataclass
class BuildConfig:
    model: str                          # input QONNX file (from `groupnet export`)
    out: str                            # output folder (layout above)
    board: str = "pynq-z2"              # key of hw.boards.BOARDS
    clock_mhz: float | None = None      # default: the board's clock
    target_fps: float | None = None     # fold for this throughput with least resources ...
    budget: float = 0.7                 # ... else: fastest folding within this board fraction
    folding: str | None = None          # ... or this folding JSON (FINN format)
    steps: tuple[str, ...] = DEFAULT_STEPS
    from_step: str | None = None        # resume: start here from the saved previous model
    to_step: str | None = None          # stop after this step
    force: bool = False                 # allow overwriting an existing build in `out`
    verify: bool = False                # check Python execution after VERIFY_AFTER steps
    rtl_layers: str = "finn"            # layer implementations: FINN's HLS/RTL, or "groupnet":
                                        # hw/rtl where it implements the layer (after folding)
    size_fifos: bool = True             # step size_fifos: FIFO depths by simulation

    @classmethod
    def from_yaml(cls, path: str | os.PathLike, **overrides) -> "BuildConfig":
        """Read ``builds/<board>/<variant>/build.yaml``; paths in it are relative to the
        repository root (the folder holding ``builds/``); ``out`` defaults to ``out/``
        beside the YAML and ``folding`` to ``folding.json`` beside it if present."""
        import yaml
        path = Path(path)
        try:
            data = yaml.safe_load(path.read_text()) or {}
        except FileNotFoundError:
            raise BuildError(f"{path}: build config not found") from None
        except yaml.YAMLError as err:
            raise BuildError(f"{path}: not valid YAML ({err})") from None
        known = {f for f in cls.__dataclass_fields__}
        unknown = set(data) - known
        if unknown:
            raise BuildError(f"{path}: unknown setting(s) {sorted(unknown)}; "
                             f"known: {sorted(known)}")
        root = path.resolve().parent
        while root != root.parent and not (root / "builds").is_dir():
            root = root.parent
        if "model" in data:
            data["model"] = str((root / data["model"]))
        data.setdefault("out", str(path.parent / "out"))
        if "folding" in data and data["folding"]:
            data["folding"] = str(path.parent / data["folding"])
        data.update({k: v for k, v in overrides.items() if v is not None})
        if "steps" in data:
            data["steps"] = tuple(data["steps"])
        if "model" not in data:
            raise BuildError(f"{path}: no 'model' (the .onnx to build)")
        return cls(**data)

    # FINN's DataflowBuildConfig keys that mean something here -> ours; the others
    # (Vivado flow, verification steps, ...) are listed in the one-line error unless they
    # are in FINN_IGNORED (FINN-only settings with no effect on this flow's outputs)
    FINN_KEYS = {"output_dir": "out", "board": "board", "target_fps": "target_fps",
                 "folding_config_file": "folding", "synth_clk_period_ns": "clock_mhz",
                 "steps": "steps", "start_step": "from_step", "stop_step": "to_step"}
    FINN_IGNORED = ("generate_outputs", "shell_flow_type", "fpga_part", "auto_fifo_depths",
                    "auto_fifo_strategy", "verbose", "save_intermediate_models",
                    "enable_build_pdb_debug", "mvau_wwidth_max", "standalone_thresholds",
                    "minimize_bit_width", "specialize_layers_config_file", "verify_steps",
                    "verify_input_npy", "verify_expected_output_npy", "force_python_rtlsim",
                    "rtlsim_batch_size", "large_fifo_mem_style", "default_swg_exception",
                    "split_large_fifos", "vitis_platform", "vitis_floorplan_file",
                    "vitis_opt_strategy", "stitched_ip_gen_dcp", "signature")

    @classmethod
    def from_finn_json(cls, path: str | os.PathLike, model: str, **overrides) -> "BuildConfig":
        """FINN's ``dataflow_build_config.json`` (the keys that apply: output_dir, board,
        synth_clk_period_ns, target_fps, folding_config_file, steps, start/stop_step);
        paths in it are relative to the file, as FINN reads them."""
        from .boards import BOARDS
        path = Path(path)
        try:
            data = json.loads(path.read_text())
        except FileNotFoundError:
            raise BuildError(f"{path}: FINN build config not found") from None
        except json.JSONDecodeError as err:
            raise BuildError(f"{path}: not valid JSON ({err})") from None
        unknown = set(data) - set(cls.FINN_KEYS) - set(cls.FINN_IGNORED)
        if unknown:
            raise BuildError(f"{path}: FINN setting(s) {sorted(unknown)} have no meaning in "
                             f"this flow; it reads {sorted(cls.FINN_KEYS)}")
        out = {cls.FINN_KEYS[k]: v for k, v in data.items() if k in cls.FINN_KEYS}
        if "board" in out:          # FINN's board names ("Pynq-Z2") or ours ("pynq-z2")
            by_finn = {b.finn_name.lower(): b.name for b in BOARDS.values()}
            out["board"] = by_finn.get(str(out["board"]).lower(), str(out["board"]).lower())
        if "clock_mhz" in out:
            out["clock_mhz"] = 1e3 / float(out["clock_mhz"])
        for key in ("out", "folding"):
            if key in out:
                out[key] = str(path.parent / out[key])
        if "steps" in out:
            out["steps"] = tuple(s.removeprefix("step_") for s in out["steps"])
        for key in ("from_step", "to_step"):
            if key in out:
                out[key] = out[key].removeprefix("step_")
        out.update({k: v for k, v in overrides.items() if v is not None})
        out.setdefault("out", str(path.parent / "output"))
        return cls(model=str(model), **out)

    @classmethod
    def from_record(cls, data: dict) -> "BuildConfig":
        """The config as ``build.json`` records it (``asdict`` of the original)."""
        known = {f for f in cls.__dataclass_fields__}
        data = {k: v for k, v in data.items() if k in known}
        if "steps" in data:
            data["steps"] = tuple(data["steps"])
        return cls(**data)


# what a build folder holds once through the 'estimates' step (``Build.open(need=...)``)
ESTIMATED = ("dataflow.onnx", "report/estimates.json")


@dataclass
class BuildPaths:
    root: Path

    def __post_init__(self):
        self.root = Path(self.root)
        for name, rel in (("config", "build.json"), ("input", "input.onnx"),
                          ("intermediate", "intermediate_models"), ("parent", "parent.onnx"),
                          ("dataflow", "dataflow.onnx"), ("folding", "folding.json"),
                          ("report", "report"), ("partitions", "partitions"),
                          ("finn_tmp", "finn_tmp"), ("bitstream", "bitstream")):
            setattr(self, name, self.root / rel)
        self.estimates = self.report / "estimates.json"
        self.verification = self.report / "verification.json"
        self.times = self.report / "time_per_step.json"
        self.status = self.report / "status.json"
        self.reference = self.report / "reference_scores.npy"
        self.bitstream_report = self.report / "bitstream.json"
        self.fifo_depths = self.root / "fifo_depths.json"

    def step_model(self, index: int, name: str) -> Path:
        return self.intermediate / f"{index:02d}_{name}.onnx"


@dataclass
class BuildContext:
    cfg: BuildConfig
    board: Board
    paths: BuildPaths
    clock_mhz: float
    images: np.ndarray | None = None
    reference: np.ndarray | None = None
    log: list = field(default_factory=list)

    def finn_config(self):
        """finn-plus's DataflowBuildConfig for its Vivado steps (untested here).

        FIFO depths sized by `groupnet sim --size-fifos` replace FINN's Vivado-based FIFO
        sizing: ``finn_fifo_config.json`` (``fifo_handoff``, FINN's fifo_sizing.json format)
        is passed as ``fifo_config_file``."""
        from finn.builder.build_dataflow_config import (DataflowBuildConfig,
                                                        DataflowOutputType, ShellFlowType)

        from .fifo_handoff import FINN_FIFO_CONFIG, write_finn_fifo_config
        sized = (self.paths.root / "fifo_depths.json").is_file()
        fifo_config = None      # a Path: finn-plus 1.6.1 calls .open() on it
        if sized:
            fifo_config = self.paths.root / FINN_FIFO_CONFIG
            if not fifo_config.is_file():
                write_finn_fifo_config(self.paths.root, self.board.part)
        return DataflowBuildConfig(
            auto_fifo_depths=not sized, fifo_config_file=fifo_config,
            output_dir=str(self.paths.root / "finn"),
            synth_clk_period_ns=1e3 / self.clock_mhz,
            board=self.board.finn_name, fpga_part=self.board.part,
            shell_flow_type=ShellFlowType.VIVADO_ZYNQ,
            generate_outputs=[DataflowOutputType.STITCHED_IP, DataflowOutputType.BITFILE,
                              DataflowOutputType.PYNQ_DRIVER,
                              DataflowOutputType.DEPLOYMENT_PACKAGE],
            save_intermediate_models=True)




@dataclass
class Build:
    """An opened build folder: what ``groupnet sim``, ``report``, ``deploy``, the synthesis
    and the benchmarks take instead of re-reading the folder by hand.

    ``with Build.open(DIR) as build:`` also sets up finn-plus for the folder (its settings
    and scratch directory, restored on exit), which FINN's Python execution needs.
    """
    paths: BuildPaths
    config: BuildConfig
    board: Board
    clock_mhz: float
    record: dict = field(repr=False)

    @classmethod
    def open(cls, folder: str | os.PathLike, need: tuple[str, ...] = ("dataflow.onnx",),
             error: type[Exception] | None = None) -> "Build":
        """Read ``folder/build.json``; ``need``: files (relative) that must exist, else
        ``error`` (default BuildError) says which and how to make them."""
        error = error or BuildError
        paths = BuildPaths(Path(folder))
        how = (f"run `groupnet build MODEL --out {paths.root}` first (through the "
               "'estimates' step)")
        if not paths.config.is_file():
            raise error(f"{paths.root}: no build here ({paths.config.name} not found); {how}")
        for rel in need:
            if not (paths.root / rel).is_file():
                raise error(f"{paths.root / rel} not found: {how}")
        try:
            record = json.loads(paths.config.read_text())
            config = BuildConfig.from_record(record["config"])
            board = get_board(record["board"]["name"])
            clock = float(record["clock_mhz"])
        except (ValueError, KeyError, TypeError) as err:
            raise error(f"{paths.config}: not a readable build record ({type(err).__name__}: "
                        f"{err}); rebuild with `groupnet build MODEL --out {paths.root} "
                        "--force`") from None
        read_status(paths)          # a build whose process is gone is marked so
        return cls(paths, config, board, clock, record)

    # ---- what the folder holds
    @property
    def root(self) -> Path:
        return self.paths.root

    @property
    def part(self) -> str:
        """The part FINN's code generators and estimators see (an ECP5 board's Xilinx
        proxy: ``Board.finn_part``); the board's own part is ``board.part``."""
        return self.board.finn_part

    @property
    def clock_period_ns(self) -> float:
        return 1e3 / self.clock_mhz

    def dataflow(self) -> ModelWrapper:
        return read_onnx(self.paths.dataflow, self._rebuild)

    def parent(self) -> ModelWrapper:
        return read_onnx(self.paths.parent, self._rebuild)

    @property
    def _rebuild(self) -> str:
        return f"rebuild it with `groupnet build MODEL --out {self.root} --force`"

    def estimates(self) -> dict:
        return json.loads(self.paths.estimates.read_text())

    @property
    def fifo_depths_path(self) -> Path:
        return self.paths.fifo_depths

    def fifo_depths(self) -> dict[str, int] | None:
        """Depths sized by the build's size_fifos step (or ``groupnet sim --size-fifos``),
        or None (unsized)."""
        path = self.fifo_depths_path
        return json.loads(path.read_text()) if path.is_file() else None

    def write_report(self, name: str, data) -> Path:
        """``report/<name>`` (JSON, written atomically)."""
        return write_json(self.paths.report / name, data)

    def report(self, name: str) -> dict | None:
        """``report/<name>`` (JSON) as written by a step or a verb, or None when absent:
        ``time_per_step.json``, ``verification.json``, ``simulation.json``,
        ``bitstream.json``, ``synth.json``, ..."""
        path = self.paths.report / name
        return json.loads(path.read_text()) if path.is_file() else None

    # ---- FINN set up for this folder
    def finn(self):
        """Context: finn-plus's settings point at this build's scratch folder."""
        from .finn_env import finn_settings
        return finn_settings(self.paths.finn_tmp)

    def __enter__(self) -> "Build":
        self._finn = self.finn()
        self._finn.__enter__()
        return self

    def __exit__(self, *exc) -> None:
        self._finn.__exit__(*exc)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OSError):
        return True
    return True


def read_status(paths: BuildPaths) -> dict:
    """``report/status.json``; a "running" build whose process is gone (killed: SIGKILL,
    power) is rewritten as "killed" (its "step" says where it was)."""
    try:
        status = json.loads(paths.status.read_text())
    except (OSError, ValueError):
        return {}
    pid = status.get("pid")
    if status.get("state") == "running" and isinstance(pid, int) and pid != os.getpid() \
            and not _alive(pid):
        status = {**status, "state": "killed",
                  "reason": f"process {pid} ended without recording an outcome"}
        with contextlib.suppress(OSError):          # a read-only copy stays as it is
            write_json(paths.status, status)
    return status


def write_json(path: Path, data) -> Path:
    """JSON written atomically (temp file + rename): never a torn file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(data, indent=2, default=str) + "\n")
    os.replace(tmp, path)
    return path


def as_build(build: "Build | str | os.PathLike", **open_kwargs) -> Build:
    """A Build from a Build or a folder path (library functions accept both)."""
    return build if isinstance(build, Build) else Build.open(build, **open_kwargs)
