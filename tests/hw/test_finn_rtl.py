"""This project's RTL as FINN RTL layer variants (``rtl_layers: groupnet``): the graph
pass, Python execution, generated HDL (lint, ports, Verilator against Python), the IPI
tcl, FINN's stitching up to the Vivado call, and the real Vivado build (skipped here)."""

import copy
import re
import subprocess
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
from qonnx.core.modelwrapper import ModelWrapper
from qonnx.core.onnx_exec import execute_onnx
from qonnx.custom_op.registry import getCustomOp

from groupnet.hw.boards import get_board
from groupnet.hw.build import BuildConfig, BuildError, run_build
from groupnet.hw.finn_env import prepare, toolchain
from groupnet.hw.finn_rtl import (RTL_DOMAIN, SUFFIX, GroupnetRTLError, UseGroupnetRTL,
                                  VARIANTS)
from groupnet.hw.rtl.layers import RTL_DIR
from groupnet.hw.sim.stitch import stitch
from groupnet.hw.sim.verilator import build, pack, run_stream, unpack
from groupnet.hw.steps import step_specialize_layers
from groupnet.hw.topology import base_op

GENERIC = "finn.custom_op.fpgadataflow"
PART = get_board("pynq-z2").part


@pytest.fixture(scope="module")
def gbuild(exported, tmp_path_factory):
    """A tiny Group-Net built with rtl_layers: groupnet up to FINN's hw_codegen."""
    out = tmp_path_factory.mktemp("frtl") / "g"
    run_build(BuildConfig(model=str(exported("test_groupnet_cnv")), out=str(out),
                          rtl_layers="groupnet"), progress=False)
    prepare(out / "finn_tmp")
    return out


def _model(out: Path, step: str) -> ModelWrapper:
    return ModelWrapper(str(next((out / "intermediate_models").glob(f"*_{step}.onnx"))))


def _specialized(out: Path, rtl_layers: str) -> ModelWrapper:
    """The build's graph after FINN's specialize_layers, with our variants or without."""
    ctx = SimpleNamespace(board=get_board("pynq-z2"))
    model = step_specialize_layers(_model(out, "dataflow_partition"), ctx)
    return model.transform(UseGroupnetRTL()) if rtl_layers == "groupnet" else model


def _ours(model: ModelWrapper) -> list:
    return [n for n in model.graph.node if n.op_type.endswith(SUFFIX)]


def _python_graph(model: ModelWrapper) -> ModelWrapper:
    """FINN's specialized nodes back to their generic op (which executes in Python without
    C++/RTL simulation); this project's variants stay as they are."""
    model = ModelWrapper(copy.deepcopy(model.model))
    for node in model.graph.node:
        if node.domain.startswith(GENERIC + ".") and not node.op_type.endswith(SUFFIX):
            node.op_type, node.domain = base_op(node.op_type), GENERIC
    return model


def _outputs(model: ModelWrapper, images: np.ndarray) -> np.ndarray:
    iname, oname = model.graph.input[0].name, model.graph.output[0].name
    return np.stack([execute_onnx(model, {iname: img.transpose(1, 2, 0)[None].astype(np.float32)})
                     [oname] for img in images])


# ------------------------------------------------------------------- the graph pass
def test_option_replaces_every_layer_the_rtl_implements(gbuild):
    finn, ours = _specialized(gbuild, "finn"), _specialized(gbuild, "groupnet")
    kinds = {base_op(n.op_type) for n in _ours(ours)}
    assert kinds == {"MVAU", "Thresholding", "DuplicateStreams", "ElementwiseAdd", "Pool",
                     "FMPadding", "ConvolutionInputGenerator"}
    for a, b in zip(finn.graph.node, ours.graph.node):
        assert (a.name, list(a.input), list(a.output)) == (b.name, list(b.input), list(b.output))
        assert b.op_type.endswith(SUFFIX), b.name        # every layer of this net
        assert b.domain == RTL_DOMAIN and base_op(b.op_type) == base_op(a.op_type)
        assert getCustomOp(b).get_nodeattr("finn_variant") == a.op_type
        assert {x.name for x in a.attribute} <= {x.name for x in b.attribute}
        # same stream shapes as FINN's variant (the parallel window's too)
        fa, fb = getCustomOp(a), getCustomOp(b)
        assert (fa.get_instream_width(), fa.get_outstream_width()) == \
            (fb.get_instream_width(), fb.get_outstream_width()), b.name
    assert [n.op_type for n in ours.graph.node if base_op(n.op_type) == "MVAU"] == \
        ["MVAU_groupnet_rtl"] * 16
    # the default build is untouched
    assert not _ours(finn)


def test_the_build_keeps_folding_and_estimates_and_generates_the_rtl(gbuild, tiny_build):
    import json
    ref = tiny_build("test_groupnet_cnv")           # the same model with FINN's layers
    a = json.loads((ref / "report/estimates.json").read_text())
    b = json.loads((gbuild / "report/estimates.json").read_text())
    assert (ref / "folding.json").read_text() == (gbuild / "folding.json").read_text()
    assert (a["fps"], a["lut"], a["bram18"]) == (b["fps"], b["lut"], b["bram18"])
    assert _ours(ModelWrapper(str(gbuild / "dataflow.onnx")))
    assert [r["name"] for r in a["layers"]] == [r["name"] for r in b["layers"]]
    codegen = _model(gbuild, "hw_codegen")
    for node in _ours(codegen):
        inst = getCustomOp(node)
        assert all(Path(f).is_file() for f in inst.get_rtl_file_list(abspath=True)), node.name
        assert inst.get_nodeattr("ip_path") == inst.get_nodeattr("code_gen_dir_ipgen")


def test_unknown_rtl_layers_setting_is_refused(exported, tmp_path):
    with pytest.raises(BuildError, match="rtl_layers must be one of finn, groupnet"):
        run_build(BuildConfig(model=str(exported("test_groupnet_cnv")), out=str(tmp_path / "x"),
                              rtl_layers="vhdl"), progress=False)


def test_python_execution_is_unchanged(gbuild, images):
    generic = _model(gbuild, "dataflow_partition")
    ours = _specialized(gbuild, "groupnet")
    want = _outputs(generic, images[:4])
    got = _outputs(_python_graph(ours), images[:4])
    assert np.array_equal(got, want) and np.abs(want).sum() > 0


def test_rtlsim_mode_says_to_use_groupnet_sim(gbuild, images):
    model = _python_graph(_specialized(gbuild, "groupnet"))
    node = _ours(model)[0]
    getCustomOp(node).set_nodeattr("exec_mode", "rtlsim")
    with pytest.raises(GroupnetRTLError, match=rf"node {node.name} .*`groupnet sim BUILD`"):
        _outputs(model, images[:1])


def test_layers_the_rtl_cannot_do_stay_finns(gbuild):
    model = _specialized(gbuild, "finn")
    pool = next(n for n in model.graph.node if n.op_type == "Pool_hls")
    getCustomOp(pool).set_nodeattr("Function", "QuantAvgPool")
    mvau = next(n for n in model.graph.node if n.op_type == "MVAU_hls")
    getCustomOp(mvau).set_nodeattr("mem_mode", "external")
    swg = next(n for n in model.graph.node if n.op_type == "ConvolutionInputGenerator_rtl")
    getCustomOp(swg).set_nodeattr("M", 2)
    model = model.transform(UseGroupnetRTL())
    kept = {n.name for n in model.graph.node if not n.op_type.endswith(SUFFIX)}
    assert kept == {swg.name, pool.name, mvau.name}


# ------------------------------------------------------------------- generated HDL
def _generated(gbuild, tmp_path, name: str | None = None):
    """(model, node, inst, folder) per variant, HDL generated into a folder of this test."""
    model = ModelWrapper(str(gbuild / "dataflow.onnx"))
    for node in _ours(model):
        if name is not None and node.name != name:
            continue
        inst = getCustomOp(node)
        folder = tmp_path / node.name
        folder.mkdir(parents=True)
        inst.set_nodeattr("code_gen_dir_ipgen", str(folder))
        inst.generate_hdl(model, PART, 10.0)
        yield model, node, inst, folder


def _ports(wrapper: str) -> dict[str, tuple[str, int]]:
    found = re.findall(r"^\s*(input|output)\s+wire\s+(?:\[(\d+):0\]\s+)?(\w+)", wrapper, re.M)
    return {name: (kind, int(msb) + 1 if msb else 1) for kind, msb, name in found}


def test_wrapper_has_finns_ports_and_widths(gbuild, tmp_path):
    for _, node, inst, folder in _generated(gbuild, tmp_path):
        ports = _ports((folder / f"{node.name}.v").read_text())
        intf = inst.get_verilog_top_module_intf_names()
        want = {"ap_clk": ("input", 1), "ap_rst_n": ("input", 1)}
        for i, (name, padded) in enumerate(intf["s_axis"]):
            assert padded == inst.get_instream_width_padded(i) >= inst.get_instream_width(i)
            want.update({f"{name}_TDATA": ("input", padded), f"{name}_TVALID": ("input", 1),
                         f"{name}_TREADY": ("output", 1)})
        for i, (name, padded) in enumerate(intf["m_axis"]):
            assert padded == inst.get_outstream_width_padded(i) >= inst.get_outstream_width(i)
            want.update({f"{name}_TDATA": ("output", padded), f"{name}_TVALID": ("output", 1),
                         f"{name}_TREADY": ("input", 1)})
        assert ports == want, node.name
        assert len(intf["m_axis"]) == len(node.output)


def test_core_is_the_simulated_rtl_renamed_per_node(gbuild, tmp_path):
    for _, node, inst, folder in _generated(gbuild, tmp_path):
        module = inst.module
        copy_ = (folder / f"{node.name}_{module}.v").read_text()
        assert copy_ == (RTL_DIR / f"{module}.v").read_text().replace(
            f"module {module} ", f"module {node.name}_{module} ", 1)


def test_memory_files_are_the_simulations(gbuild, tmp_path):
    model = ModelWrapper(str(gbuild / "dataflow.onnx"))
    stitch(model, tmp_path / "sim", PART)
    expected = {"MVAU": {"weights.hex", "thresholds.hex"}, "Thresholding": {"thresholds.hex"}}
    for _, node, _, folder in _generated(gbuild, tmp_path / "gen"):
        mems = {p.name for p in folder.glob("*.hex")}
        assert mems == expected.get(base_op(node.op_type), set()), node.name
        for mem in mems:
            assert (folder / mem).read_bytes() == (tmp_path / "sim" / node.name / mem).read_bytes()
            assert f'"./{mem}"' in (folder / f"{node.name}.v").read_text()


def test_ipi_tcl_adds_every_generated_verilog_file(gbuild, tmp_path):
    for _, node, inst, folder in _generated(gbuild, tmp_path):
        tcl = inst.code_generation_ipi()
        added = {c.split()[2] for c in tcl if c.startswith("add_files -norecurse ")}
        assert added == {str(p) for p in folder.glob("*.v")}
        assert tcl[-1] == f"create_bd_cell -type module -reference {node.name} {node.name}"


@pytest.mark.verilator
def test_wrappers_lint_clean(gbuild, tmp_path):
    """``verilator --lint-only -Wall``: nothing to say about the generated wrapper (the
    copied modules are hw/rtl's own, checked by the simulation tests)."""
    for _, node, inst, folder in _generated(gbuild, tmp_path):
        proc = subprocess.run(["verilator", "--lint-only", "-Wall", "-Wno-fatal",
                               "--top-module", node.name,
                               *inst.get_rtl_file_list(abspath=True)],
                              capture_output=True, text=True, cwd=folder)
        assert proc.returncode == 0, proc.stderr
        assert f"{node.name}.v:" not in proc.stderr, proc.stderr


ADAPTER = """module finn_node_top (
    input wire clk, input wire rst_n,
    input wire [{iw}:0] in_tdata, input wire in_tvalid, output wire in_tready,
    output wire [{ow}:0] out_tdata, output wire out_tvalid, input wire out_tready);
    {node} dut (.ap_clk(clk), .ap_rst_n(rst_n),
        .in0_V_TDATA(in_tdata), .in0_V_TVALID(in_tvalid), .in0_V_TREADY(in_tready),
        .out0_V_TDATA(out_tdata), .out0_V_TVALID(out_tvalid), .out0_V_TREADY(out_tready){more});
endmodule
"""
# further outputs (DuplicateStreams) are always taken
MORE = ",\n        .out{i}_V_TDATA(), .out{i}_V_TVALID(), .out{i}_V_TREADY(1'b1)"


def _first(model: ModelWrapper, kind: str):
    """One node per behaviour worth simulating."""
    mvaus = [n for n in _ours(model) if base_op(n.op_type) == "MVAU"]
    picks = {"mvau-uint8-stem": mvaus[0], "mvau-xnor": mvaus[1], "mvau-no-activation":
             mvaus[-1]}
    for op in ("Thresholding", "Pool", "FMPadding", "DuplicateStreams"):
        picks[op] = next(n for n in _ours(model) if base_op(n.op_type) == op)
    swgs = [n for n in _ours(model) if base_op(n.op_type) == "ConvolutionInputGenerator"]
    picks["window-parallel"] = next(n for n in swgs if getCustomOp(n).get_nodeattr(
        "parallel_window"))
    picks["window-depthwise"] = next(n for n in swgs if getCustomOp(n).get_nodeattr(
        "depthwise"))
    picks["window"] = next(n for n in swgs if not getCustomOp(n).get_nodeattr("depthwise")
                           and not getCustomOp(n).get_nodeattr("parallel_window"))
    return picks[kind]


@pytest.mark.verilator
@pytest.mark.parametrize("kind", ["mvau-uint8-stem", "mvau-xnor", "mvau-no-activation",
                                  "Thresholding", "Pool", "FMPadding", "DuplicateStreams",
                                  "window", "window-depthwise", "window-parallel"])
def test_wrapper_simulates_like_python_execution(kind, gbuild, images, tmp_path):
    """The generated wrapper (FINN's ports), in Verilator, on the tensors the Python
    execution of the graph feeds the node for a real image: outputs identical."""
    model = ModelWrapper(str(gbuild / "dataflow.onnx"))
    node = _first(model, kind)
    ctx = execute_onnx(_python_graph(model), {model.graph.input[0].name:
                       images[0].transpose(1, 2, 0)[None].astype(np.float32)},
                       return_full_exec_context=True)
    _, node, inst, folder = next(_generated(gbuild, tmp_path, node.name))
    adapter = folder / "finn_node_top.v"
    adapter.write_text(ADAPTER.format(iw=inst.get_instream_width_padded() - 1,
                                      ow=inst.get_outstream_width_padded() - 1, node=node.name,
                                      more="".join(MORE.format(i=i)
                                                   for i in range(1, len(node.output)))))
    exe = build([*map(Path, inst.get_rtl_file_list(abspath=True)), adapter], "finn_node_top", {})
    idt, odt = inst.get_input_datatype(0), inst.get_output_datatype()
    simd = inst.get_folded_input_shape(0)[-1]
    x = ctx[node.input[0]].astype(np.int64).reshape(-1, simd)
    beats = [pack(row, idt.bitwidth()) for row in x]
    pe = inst.get_folded_output_shape()[-1]
    n_out = int(np.prod(inst.get_folded_output_shape()[:-1]))
    run = run_stream(exe, beats, n_out, p_valid=0.7, p_ready=0.6, seed=3, cwd=folder)
    assert not run.stalled
    got = np.concatenate([unpack(w, pe, odt.bitwidth(), odt.signed()) for w in run.outputs])
    want = ctx[node.output[0]].astype(np.int64).reshape(-1)
    assert np.array_equal(got, want), node.name


# -------------------------------------------------------------------- FINN's stitching
def _fresh_codegen(gbuild: Path, tmp_path: Path) -> ModelWrapper:
    """The build's HW model with code generated again by FINN's PrepareIP, here."""
    from finn.transformation.fpgadataflow.prepare_ip import PrepareIP
    prepare(tmp_path / "finn_tmp")
    model = ModelWrapper(str(gbuild / "dataflow.onnx"))
    for node in model.graph.node:
        getCustomOp(node).set_nodeattr("code_gen_dir_ipgen", "")
    return model.transform(PrepareIP(PART, 10.0))


@pytest.mark.skipif(toolchain().vivado is not None, reason="checks the path without Vivado")
def test_finn_stitching_takes_the_variants_up_to_the_vivado_call(gbuild, tmp_path):
    """FINN's CreateStitchedIP runs on the variants until it starts Vivado: its
    make_project.tcl adds our files, instantiates and connects every variant, and FINN's
    ReplaceVerilogRelPaths has made the memory-file paths absolute."""
    from finn.transformation.fpgadataflow.create_stitched_ip import CreateStitchedIP
    model = _fresh_codegen(gbuild, tmp_path)
    with pytest.raises(FileNotFoundError, match="vivado"):
        model.transform(CreateStitchedIP(PART, 10.0))
    tcl = next((tmp_path / "finn_tmp").glob("vivado_stitch_proj_*/make_project.tcl")).read_text()
    for node in _ours(model):
        inst = getCustomOp(node)
        for f in inst.get_rtl_file_list(abspath=True):
            assert f"add_files -norecurse {f}\n" in tcl
        assert f"create_bd_cell -type module -reference {node.name} {node.name}\n" in tcl
        assert f"[get_bd_intf_pins {node.name}/in0_V]" in tcl
        wrapper = Path(inst.get_rtl_file_list(abspath=True)[-1]).read_text()
        folder = inst.get_nodeattr("code_gen_dir_ipgen")
        assert '"./' not in wrapper
        for mem in Path(folder).glob("*.hex"):
            assert f'"{mem.resolve()}"' in wrapper


@pytest.mark.vivado
@pytest.mark.skipif(not toolchain().available, reason="needs Vivado + Vitis HLS on PATH: "
                                                      + toolchain().why_missing())
def test_vivado_build_contains_this_rtl(exported, tmp_path):   # untested here: no Vivado
    out = tmp_path / "v"
    status = run_build(BuildConfig(model=str(exported("test_groupnet_cnv")), out=str(out),
                                   rtl_layers="groupnet"), progress=False)
    assert status["state"] == "complete"
    assert list((out / "finn").rglob("*.bit"))
    tcl = "".join(p.read_text() for p in out.rglob("make_project.tcl"))
    assert "_mvau_stream.v" in tcl and "_duplicate_streams.v" in tcl


def test_variants_are_registered_with_finn():
    import finn.custom_op.fpgadataflow.rtl as finn_rtl
    for cls in VARIANTS.values():
        assert finn_rtl.custom_op[cls.__name__] is cls
