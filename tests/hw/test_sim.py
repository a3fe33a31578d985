"""Stitched RTL simulation of whole Group-Net accelerators in Verilator."""

import json
import os

import numpy as np
import pytest
from qonnx.core.modelwrapper import ModelWrapper
from qonnx.custom_op.registry import getCustomOp

from groupnet.hw.build import BuildConfig, run_build
from groupnet.hw.finn_env import prepare
from groupnet.hw.sim.run import simulate, size_fifos
from groupnet.hw.sim.verilator import SimError

pytestmark = pytest.mark.verilator


def _built(exported, tmp_path_factory, name: str):
    out = tmp_path_factory.mktemp("sim") / name
    run_build(BuildConfig(model=str(exported(name)), out=str(out), to_step="estimates"),
              progress=False)
    prepare(out / "finn_tmp")
    return out


@pytest.fixture(scope="module")
def cnv(exported, tmp_path_factory):
    return _built(exported, tmp_path_factory, "test_groupnet_cnv")


@pytest.fixture(scope="module")
def resnet(exported, tmp_path_factory):
    return _built(exported, tmp_path_factory, "test_groupnet_resnet")


def test_groupnet_accelerator_is_bit_exact_on_real_images(cnv, images):
    result = simulate(cnv, images[:8])
    assert result["bit_exact"] and result["frames"] == 8
    assert result["cycles_per_frame"] >= 0.95 * result["bound_cycles_per_frame"]
    assert result["latency_cycles"] > result["cycles_per_frame"]
    assert result["fps"] == pytest.approx(1e8 / result["cycles_per_frame"])
    names = {r["name"] for r in result["layers"]}
    df = ModelWrapper(str(cnv / "dataflow.onnx"))
    assert names == {n.name for n in df.graph.node}          # every layer simulated
    mvaus = [r for r in result["layers"] if r["name"].startswith("MVAU")]
    assert all(0 < r["active_cycles"] <= result["cycles"] for r in mvaus)


def test_random_gaps_and_backpressure_stay_bit_exact(cnv, images):
    result = simulate(cnv, images[:4], backpressure=0.4, input_rate=0.6, seed=3)
    assert result["bit_exact"]


def test_residual_shortcut_deadlock_is_named_then_sized(resnet, images):
    """With 2-entry FIFOs the shortcut of a residual group cannot hold the rows the
    branches need: the simulation must stop with the place, not hang."""
    with pytest.raises(SimError, match="deadlock.*FIFO"):
        simulate(resnet, images[:3], fifo_depths={})
    sizing = size_fifos(resnet, images[:6])
    assert sizing["throughput_kept"]
    assert (resnet / "fifo_depths.json").is_file()
    shortcut = [d for e, d in sizing["depths"].items()
                if e.startswith("s_DuplicateStreams") and "ElementwiseAdd" in e]
    assert shortcut and max(shortcut) > 2
    result = simulate(resnet, images[:6])                    # picks up fifo_depths.json
    assert result["bit_exact"]
    df = ModelWrapper(str(resnet / "dataflow.onnx"))         # written back for FINN's build
    adds = [n for n in df.graph.node if n.op_type.startswith("ElementwiseAdd")]
    assert any(max(getCustomOp(n).get_nodeattr("inFIFODepths")) > 2 for n in adds)


def test_cli_sim_contract(cnv):
    import subprocess
    import sys
    proc = subprocess.run([sys.executable, "-m", "groupnet.cli", "sim", str(cnv), "-n",
                           "4", "--backpressure", "random", "--json"],
                          capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout)
    for key in ("bit_exact", "frames", "cycles_per_frame", "bound_cycles_per_frame", "fps",
                "latency_cycles", "sim_cycles_per_s"):
        assert key in out
    assert out["bit_exact"] is True and out["frames"] == 4
    assert (cnv / "report" / "simulation.png").stat().st_size > 10_000
    assert json.loads((cnv / "report" / "simulation.json").read_text())["layers"]


def test_sim_without_build_is_a_clear_error(tmp_path):
    import subprocess
    import sys
    proc = subprocess.run([sys.executable, "-m", "groupnet.cli", "sim", str(tmp_path)],
                          capture_output=True, text=True)
    assert proc.returncode == 2 and "run `groupnet build" in proc.stderr



def test_depth_two_edges_are_direct_connections_once_sized(cnv, images):
    """Unsized, every edge has its FIFO, as finn-plus inserts them; once sized (which
    checks the throughput that way) the depth-2 edges are direct connections, unless
    asked for: same outputs, a cycle less latency per edge."""
    assert simulate(cnv, images[:6])["direct_edges"] == 0
    try:
        sizing = size_fifos(cnv, images[:6])
        sized = simulate(cnv, images[:6])                  # reads fifo_depths.json
        fifos = simulate(cnv, images[:6], shallow_fifos=True)
    finally:
        (cnv / "fifo_depths.json").unlink(missing_ok=True)
    assert sizing["throughput_kept"]
    assert sized["bit_exact"] and fifos["bit_exact"]
    assert sized["direct_edges"] > 0 and fifos["direct_edges"] == 0
    assert len(fifos["fifos"]) == len(sized["fifos"]) + sized["direct_edges"]
    assert sized["cycles_per_frame"] == sizing["cycles_per_frame_sized"]
    assert fifos["latency_cycles"] > sized["latency_cycles"]


def test_batches_side_by_side_and_no_stats_give_the_same_cycles(cnv, images):
    """Frames split into batches simulated side by side (each from reset) and a design
    without its counters: the same outputs, steady-state cycles per frame and latency as
    one run with counters; counters summed over the batches."""
    one = simulate(cnv, images[:12])
    split = simulate(cnv, images[:12], jobs=2)
    bare = simulate(cnv, images[:12], stats=False)
    assert one["batches"] == 1 and split["batches"] == 2 and bare["batches"] == 1
    for res in (split, bare):
        assert res["bit_exact"] and res["frames"] == 12
        assert res["cycles_per_frame"] == one["cycles_per_frame"]
        assert res["latency_cycles"] == one["latency_cycles"]
    assert bare["cycles"] == one["cycles"]
    assert bare["layers"] == [] and bare["fifos"] == [] and bare["simulated_bottleneck"] is None
    # two pipeline fills instead of one; every layer's counters add up to the cycles
    assert one["cycles"] < split["cycles"] < one["cycles"] + one["latency_cycles"] + 100
    assert {r["name"] for r in split["layers"]} == {r["name"] for r in one["layers"]}
    assert all(r["active_cycles"] >= 0 for r in split["layers"])
    assert max(f["peak"] for f in split["fifos"]) <= 2
    assert simulate(cnv, images[:5], jobs=2)["batches"] == 1   # at least 4 frames a batch


def test_no_stats_stuck_stream_still_says_what_to_do(resnet, images):
    with pytest.raises(SimError, match="deadlock.*without --no-stats"):
        simulate(resnet, images[:3], fifo_depths={}, stats=False)


def test_cli_sim_jobs_and_no_stats(cnv):
    import subprocess
    import sys
    proc = subprocess.run([sys.executable, "-m", "groupnet.cli", "sim", str(cnv), "-n",
                           "8", "--jobs", "2", "--no-stats"], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    assert "BIT-EXACT" in proc.stdout and "in 2 batches side by side" in proc.stdout
    assert "bottleneck" not in proc.stdout.split("\n", 2)[2] and "picture" not in proc.stdout
    perf = json.loads((cnv / "report" / "rtlsim_performance.json").read_text())
    assert perf["batches"] == 2 and perf["N"] == 8
    # the default: one batch per usable core (at least 4 frames each)
    proc = subprocess.run([sys.executable, "-m", "groupnet.cli", "sim", str(cnv), "-n",
                           "8", "--json"], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    assert result["batches"] == min(len(os.sched_getaffinity(0)), 2) and result["bit_exact"]
    proc = subprocess.run([sys.executable, "-m", "groupnet.cli", "sim", str(cnv), "--jobs",
                           "0"], capture_output=True, text=True)
    assert proc.returncode == 2 and "'0' is not a positive number or 'auto'" in proc.stderr


def test_rtl_sources_and_finn_windows_choose_what_the_layers_are_built_from(
        cnv, images, tmp_path):
    """``stitch(rtl_sources=...)`` builds this project's modules from the given files (an
    earlier revision's RTL, say), ``finn_windows`` the sliding windows from FINN's; both
    reach Verilator through ``simulate``."""
    from qonnx.core.modelwrapper import ModelWrapper

    from groupnet.hw.sim.stitch import OWN_SOURCES, stitch
    old = tmp_path / "old"
    old.mkdir()
    copies = [old / p.name for p in OWN_SOURCES]
    for src, dest in zip(OWN_SOURCES, copies):
        dest.write_text(src.read_text())
    model = ModelWrapper(str(cnv / "dataflow.onnx"))
    design = stitch(model, tmp_path / "a", "xc7z020clg400-1", rtl_sources=copies)
    assert set(copies) <= set(design.sources)
    assert not set(OWN_SOURCES) & set(design.sources)
    assert not any("finn_gen" in p.parts for p in design.sources)
    assert design.finn_layers == []
    finn = stitch(model, tmp_path / "b", "xc7z020clg400-1", rtl_sources=copies[:-1],
                  finn_windows=True)
    assert any("finn_gen" in p.parts for p in finn.sources)
    windows = [n.name for n in model.graph.node if "ConvolutionInputGenerator" in n.op_type]
    assert windows and finn.finn_layers == windows
    from groupnet.hw.sim.run import _kind               # what a simulation says it ran
    assert "FINN" not in _kind(False, design.finn_layers)
    assert _kind(False, finn.finn_layers).endswith(", ".join(windows))
    (old / "mvau_stream.v").write_text("module mvau_stream(; endmodule\n")   # broken
    with pytest.raises(SimError, match="verilator could not compile"):
        simulate(cnv, images[:2], rtl_sources=copies, verilator_flags=("--threads", "2"))


def test_median_speed_of_repeated_runs():
    from groupnet.hw.sim.run import median_speed
    run = dict(batches=1, cycles=1000, cycles_per_frame=100.0, latency_cycles=150, frames=10)
    runs = [{**run, "wall_seconds": w, "sim_cycles_per_wall_s": 1000 / w,
             "sim_cycles_per_s": 2000 / w} for w in (1.0, 4.0, 2.0)]
    assert median_speed(runs) == {"batches": 1, "cycles": 1000, "cycles_per_frame": 100.0,
                                  "latency_cycles": 150, "wall_frames_per_s": 5.0,
                                  "wall_cycles_per_s": 500.0, "cpu_cycles_per_s": 1000.0}


def test_netlist_check_simulates_the_netlist_beside_the_rtl(monkeypatch):
    from groupnet.hw.sim import run
    calls = []

    def fake(build, images, netlist=False, stats=True):
        calls.append((netlist, stats))
        return {"bit_exact": True, "cycles_per_frame": 101.0 if netlist else 100.0,
                "verilator_build_s": 12.4, "sim_seconds": 0.123}
    monkeypatch.setattr(run, "simulate", fake)
    assert run.netlist_check("b", [0, 1, 2]) == {
        "frames": 3, "bit_exact": True, "cycles_per_frame": 101.0,
        "rtl_cycles_per_frame": 100.0, "verilator_build_s": 12, "sim_seconds": 0.1}
    assert calls == [(True, True), (False, False)]
