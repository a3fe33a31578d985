"""The one place where finn-plus is prepared for use and external tools are looked up.

finn-plus assumes it runs inside its own CLI with Vivado installed: some modules read
``XILINX_VIVADO`` at import time and transformations need FINN settings (a build folder).
:func:`prepare` makes the pure-Python parts usable without that (no user ever sets a FINN
environment variable by hand), and :func:`toolchain` is the single tool check that every
Vivado/Vitis-dependent step goes through.
"""

from __future__ import annotations

import contextlib
import os
import shutil
from dataclasses import dataclass
from pathlib import Path

from groupnet.errors import UserError


class ToolMissing(UserError, RuntimeError):
    """A step needs an external tool (Vivado, Vitis HLS, ...) that is not installed."""


@dataclass(frozen=True)
class Toolchain:
    vivado: str | None
    vitis_hls: str | None

    @property
    def available(self) -> bool:
        return bool(self.vivado and self.vitis_hls)

    def why_missing(self) -> str:
        missing = [name for name, path in (("vivado", self.vivado),
                                           ("vitis_hls / vitis-run", self.vitis_hls)) if not path]
        return (f"{' and '.join(missing)} not found on PATH (and XILINX_VIVADO unset): "
                "IP generation, FIFO sizing, stitched IP, synthesis and bitfile need AMD "
                "Vivado/Vitis 2022.2 or newer; source its settings64.sh and run again")


def toolchain() -> Toolchain:
    """Vivado and Vitis HLS, if installed (the only tool check of the Vivado path)."""
    vivado = shutil.which("vivado")
    if vivado is None and os.environ.get("XILINX_VIVADO"):
        candidate = Path(os.environ["XILINX_VIVADO"]) / "bin" / "vivado"
        vivado = str(candidate) if candidate.exists() else None
    hls = shutil.which("vitis_hls") or shutil.which("vitis-run")
    return Toolchain(vivado, hls)


def require_toolchain(step: str) -> Toolchain:
    tools = toolchain()
    if not tools.available:
        raise ToolMissing(f"step {step}: {tools.why_missing()}")
    return tools


_PREPARED: Path | None = None


@contextlib.contextmanager
def finn_settings(work_dir: str | os.PathLike):
    """finn-plus's settings (its build/scratch folder) set to ``work_dir`` for the duration
    of the block; the environment and FINN's settings are restored afterwards."""
    global _PREPARED
    import finn.util.settings as settings
    work_dir = Path(work_dir).resolve()
    work_dir.mkdir(parents=True, exist_ok=True)
    saved = (os.environ.get("FINN_BUILD_DIR"), settings._SETTINGS, _PREPARED)
    os.environ["FINN_BUILD_DIR"] = str(work_dir)
    settings._SETTINGS = None
    settings.get_settings()
    _PREPARED = work_dir
    try:
        yield work_dir
    finally:
        env, settings._SETTINGS, _PREPARED = saved
        if env is None:
            os.environ.pop("FINN_BUILD_DIR", None)
        else:
            os.environ["FINN_BUILD_DIR"] = env


def prepare(work_dir: str | os.PathLike) -> None:
    """Make finn-plus's pure-Python transformations usable, with scratch files under
    ``work_dir`` (FINN writes generated code and temporary models there)."""
    global _PREPARED
    work_dir = Path(work_dir).resolve()
    work_dir.mkdir(parents=True, exist_ok=True)
    if _PREPARED == work_dir:
        return
    os.environ["FINN_BUILD_DIR"] = str(work_dir)
    import finn.util.settings as settings
    settings._SETTINGS = None          # re-read for the new build folder
    settings.get_settings()
    _PREPARED = work_dir


def finn_builder_steps():
    """finn-plus's own build steps module (Vivado path only).

    Importing it without Vivado raises at import time (an unconditional
    ``from finn.xsi import SimEngine``, Vivado's simulator). Without Vivado the name is
    bound to None for that one import (and removed again), so the module's pure graph
    rewriting can be used and tested here; its Vivado calls still fail where they run.
    """
    import sys
    if "finn.builder.build_dataflow_steps" in sys.modules:
        return sys.modules["finn.builder.build_dataflow_steps"]
    import finn.xsi as xsi
    if os.environ.get("XILINX_VIVADO"):
        import finn.builder.build_dataflow_steps as steps
        return steps
    xsi.SimEngine = None
    try:
        import finn.builder.build_dataflow_steps as steps
    finally:
        del xsi.SimEngine
    return steps
