"""FINN's own binary networks through the Vivado-free flow, as a FINN user has them.

brevitas_examples' TFC-w1a1 (an MLP: input flatten, TensorNorm tail) and CNV-w1a1 (8-bit
input quantizer, max pools), random weights with non-trivial batch-norm statistics,
exported as FINN's end-to-end tests do (Div-255 pre-processing, UINT8 input, final TopK),
built with the CLI and finn-examples' foldings, checked bit-exactly at every stage (the
scores and the selected labels), simulated in Verilator (LabelSelect in this project's
RTL), deployed and run by the driver in the board-like venv.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import numpy as np
import pytest
from onnx import TensorProto, helper
from qonnx.core.datatype import DataType
from qonnx.core.modelwrapper import ModelWrapper

from groupnet.cli import main
from groupnet.errors import UserError
from groupnet.models.finn_examples import (NETWORKS, bnn_pynq, export_finn_style,
                                           fashion_mnist_like)

ROOT = Path(__file__).resolve().parents[2]
FOLDINGS = ROOT / "builds" / "finn_examples"
BOARD_PY = ROOT / ".venv-board" / "bin" / "python"


@pytest.fixture(scope="module")
def finn_model(tmp_path_factory, fmnist_test):
    """name -> (.onnx, images.npy, labels.npy, the PyTorch model): exported FINN-style."""
    cache = {}

    def get(name: str):
        if name not in cache:
            folder = tmp_path_factory.mktemp(name)
            model = bnn_pynq(name)
            onnx = export_finn_style(model, folder / f"{name}.onnx", NETWORKS[name])
            images = fashion_mnist_like(fmnist_test[0][:12], NETWORKS[name])
            np.save(folder / "images.npy", images)
            np.save(folder / "labels.npy", fmnist_test[1][:12])
            cache[name] = onnx, folder / "images.npy", folder / "labels.npy", model
        return cache[name]
    return get


def _build(onnx: Path, out: Path, images: Path, folding: str, *extra: str) -> dict:
    rc = main(["build", str(onnx), "--out", str(out), "--images", str(images),
               "--folding", str(FOLDINGS / folding), "--quiet", *extra])
    assert rc == 0
    return json.loads((out / "report" / "verification.json").read_text())


@pytest.mark.slow
@pytest.mark.verilator
def test_tfc_w1a1_builds_simulates_and_deploys(finn_model, tmp_path, capsys):
    import torch
    onnx, images, labels, model = finn_model("tfc_1w1a")
    ver = _build(onnx, tmp_path / "b", images, "tfc_1w1a_folding.json")
    assert set(ver) == {"prepare", "streamline", "convert_to_hw", "dataflow_partition"}
    assert all(v["bit_exact"] and v["n"] == 12 for v in ver.values())
    # the reference holds the 10 integer scores and the selected label; the label is the
    # PyTorch model's argmax (TensorNorm's scale is positive: the order is kept)
    ref = np.load(tmp_path / "b" / "report" / "reference_scores.npy")
    assert ref.shape == (12, 11)
    with torch.no_grad():
        logits = model(torch.from_numpy(np.load(images)).float() / 255.0).numpy()
    assert np.array_equal(ref[:, 10], logits.argmax(1))
    dataflow = ModelWrapper(str(tmp_path / "b" / "dataflow.onnx"))
    ops = [n.op_type for n in dataflow.graph.node]
    assert ops[0].startswith("Thresholding") and ops[-1] == "LabelSelect_hls"
    parent = ModelWrapper(str(tmp_path / "b" / "parent.onnx"))
    assert [n.op_type for n in parent.graph.node] == ["Reshape", "StreamingDataflowPartition"]
    est = json.loads((tmp_path / "b" / "report" / "estimates.json").read_text())
    assert est["max_cycles"] == 64             # finn-examples' folding: MVAU_0 at 784*64/(49*16)

    capsys.readouterr()
    assert main(["sim", str(tmp_path / "b"), "--images", str(images), "-n", "8",
                 "--json"]) == 0
    sim = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert sim["bit_exact"] and sim["frames"] == 8
    assert sim["cycles_per_frame"] == sim["bound_cycles_per_frame"] == 64
    rtlsim = json.loads((tmp_path / "b" / "report" / "rtlsim_performance.json").read_text())
    assert rtlsim["N"] == 8 and rtlsim["stable_throughput[images/s]"] == sim["fps"]

    out = tmp_path / "dep"
    assert main(["deploy", str(tmp_path / "b"), "-o", str(out), "--images", str(images),
                 "--labels", str(labels), "--json"]) == 0
    spec = json.loads((out / "io_spec.json").read_text())
    assert spec["output_labels"] and spec["variant"] == "tfc_1w1a"
    assert spec["host_transpose"] is None
    # finn-examples' driver API, on the simulator backend
    from groupnet.hw.driver.groupnet_driver import Accelerator
    accel = Accelerator(out, backend="sim", batch_size=4, verbose=False)
    assert accel.idt().name == "UINT8" and accel.odt().name == spec["outputs"][0]["datatype"]
    assert accel.ishape_normal() == (4, 784) and accel.oshape_normal() == (4, 1)
    assert accel.ishape_folded() == (4, 16, 49) and accel.oshape_packed() == (4, 1, 1)
    x = np.load(images)[:4]
    accel.copy_input_data_to_device(accel.pack_input(accel.fold_input(x)))
    accel.execute_on_buffers()
    obuf = np.empty(accel.oshape_packed(), np.uint8)
    accel.copy_output_data_from_device(obuf)
    got = accel.unfold_output(accel.unpack_output(obuf))
    assert np.array_equal(got.ravel(), ref[:4, 10]) and np.array_equal(accel.predict(x), got.ravel())
    if BOARD_PY.exists():
        run = subprocess.run([str(BOARD_PY), str(out / "driver.py"), "--exec_mode",
                              "validate", "--backend", "sim"], capture_output=True, text=True,
                             timeout=600)
        assert run.returncode == 0, run.stderr
        assert "bit-exact" in run.stdout


@pytest.mark.slow
@pytest.mark.full    # FINN's models in `make test`: the TFC tests
@pytest.mark.verilator
def test_cnv_w1a1_with_finn_examples_folding(finn_model, tmp_path, capsys):
    from groupnet.hw.sim.run import simulate
    onnx, images, _, _ = finn_model("cnv_1w1a")
    # FINN's dataflow_build_config.json, as finn-examples' build.py writes one
    config = tmp_path / "dataflow_build_config.json"
    config.write_text(json.dumps({
        "output_dir": "output_cnv", "board": "Pynq-Z1", "synth_clk_period_ns": 10.0,
        "folding_config_file": str(FOLDINGS / "cnv_1w1a_folding.json"),
        "shell_flow_type": "vivado_zynq", "generate_outputs": ["estimate_reports"]}))
    assert main(["build", str(onnx), "--config", str(config), "--images", str(images),
                 "--verify", "-n", "6", "--quiet"]) == 0
    out = tmp_path / "output_cnv"
    ver = json.loads((out / "report" / "verification.json").read_text())
    assert len(ver) == 4 and all(v["bit_exact"] and v["n"] == 6 for v in ver.values())
    record = json.loads((out / "build.json").read_text())
    assert record["board"]["name"] == "pynq-z1" and record["clock_mhz"] == 100.0
    est = json.loads((out / "report" / "estimates.json").read_text())
    # FINN's analytical bound for finn-examples' CNV-w1a1 folding (MVAU_6: 256x512 / 4)
    assert est["max_cycles"] == 32768 and est["bottleneck"] == "MVAU_hls_6"
    # FINN's report names and keys
    perf = json.loads((out / "report" / "estimate_network_performance.json").read_text())
    assert perf["max_cycles"] == 32768 and perf["max_cycles_node_name"] == "MVAU_hls_6"
    cycles = json.loads((out / "report" / "estimate_layer_cycles.json").read_text())
    assert cycles["MVAU_hls_6"] == 32768 and len(cycles) == len(est["layers"])
    res = json.loads((out / "report" / "estimate_layer_resources.json").read_text())
    assert res["total"]["BRAM_18K"] == est["bram18"] and res["total"]["LUT"] == est["lut"]
    sim = simulate(out, np.load(images)[:3])
    assert sim["bit_exact"] and sim["frames"] == 3

    config.write_text(json.dumps({"output_dir": "x", "vitis_platform": "y", "hls_clk": 1}))
    capsys.readouterr()
    assert main(["build", str(onnx), "--config", str(config)]) != 0
    assert "FINN setting(s) ['hls_clk'] have no meaning" in capsys.readouterr().err


def test_float_input_is_refused_at_build_time(finn_model, tmp_path):
    from groupnet.hw.build import BuildConfig, run_build
    onnx, *_ = finn_model("tfc_1w1a")
    model = ModelWrapper(str(onnx))
    model.set_tensor_datatype(model.graph.input[0].name, DataType["FLOAT32"])
    model.save(str(tmp_path / "float.onnx"))
    with pytest.raises(UserError, match=r"model input global_in is FLOAT32: .*UINT8"):
        run_build(BuildConfig(model=str(tmp_path / "float.onnx"), out=str(tmp_path / "b"),
                              to_step="qonnx_to_finn"), progress=False)
    status = json.loads((tmp_path / "b" / "report" / "status.json").read_text())
    assert status["state"] == "failed" and status["failed_step"] == "qonnx_to_finn"


def test_wrong_images_are_one_line_before_the_build(finn_model, tmp_path, capsys):
    onnx, images, _, _ = finn_model("tfc_1w1a")
    cnv, cnv_images, _, _ = finn_model("cnv_1w1a")
    # the dataset default (Fashion-MNIST 1x28x28) does not fit CNV's 3x32x32
    assert main(["build", str(cnv), "--out", str(tmp_path / "a"), "--verify"]) != 0
    err = capsys.readouterr().err
    assert "takes 3x32x32 images" in err and "--images" in err and len(err.splitlines()) == 1
    assert main(["build", str(onnx), "--out", str(tmp_path / "b"), "--images",
                 str(cnv_images)]) != 0
    assert "images of shape 3x32x32" in capsys.readouterr().err
    assert not (tmp_path / "b").exists()          # refused before any work
    np.save(tmp_path / "f.npy", np.load(images).astype(np.float32) / 255)
    assert main(["build", str(onnx), "--out", str(tmp_path / "c"), "--images",
                 str(tmp_path / "f.npy")]) != 0
    assert "uint8" in capsys.readouterr().err


def test_non_final_topk_and_negative_tail_are_named(tmp_path):
    from groupnet.hw.build import BuildConfig, run_build
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 4])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 1])
    k = helper.make_tensor("k", TensorProto.INT64, [1], [1])
    graph = helper.make_graph(
        [helper.make_node("TopK", ["x", "k"], ["v", "i"], name="TopK_0"),
         helper.make_node("Cast", ["v"], ["y"], to=TensorProto.FLOAT, name="Cast_0")],
        "g", [x], [y], [k])
    model = ModelWrapper(helper.make_model(graph))
    model.set_tensor_datatype("x", DataType["UINT8"])
    model.save(str(tmp_path / "m.onnx"))
    with pytest.raises(UserError, match="node TopK_0 .*only a final TopK"):
        run_build(BuildConfig(model=str(tmp_path / "m.onnx"), out=str(tmp_path / "b"),
                              to_step="prepare"), progress=False)


def test_strip_output_affine_takes_tensornorm_tails():
    """Sub, Div, Mul, Add by positive scalars in front of a TopK go to the metadata, with
    y = raw * scale + bias."""
    from groupnet.hw import transforms as gt
    from qonnx.core.onnx_exec import execute_onnx
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 5])
    out = helper.make_tensor_value_info("i", TensorProto.INT64, [1, 1])
    consts = [helper.make_tensor(n, TensorProto.FLOAT, [1], [v])
              for n, v in (("m", 1.5), ("d", 4.0), ("w", 0.5), ("b", -2.0))]
    k = helper.make_tensor("k", TensorProto.INT64, [1], [1])
    nodes = [helper.make_node("Relu", ["x"], ["r"]),
             helper.make_node("Sub", ["r", "m"], ["t0"]),
             helper.make_node("Div", ["t0", "d"], ["t1"]),
             helper.make_node("Mul", ["t1", "w"], ["t2"]),
             helper.make_node("Add", ["t2", "b"], ["t3"]),
             helper.make_node("TopK", ["t3", "k"], ["v", "i"])]
    model = ModelWrapper(helper.make_model(helper.make_graph(nodes, "g", [x], [out],
                                                             consts + [k])))
    model = model.transform(gt.StripOutputAffine("k"))
    assert [n.op_type for n in model.graph.node] == ["Relu", "TopK"]
    scale = float(model.get_metadata_prop("k_scale"))
    bias = float(model.get_metadata_prop("k_bias"))
    raw = np.array([[3.0, -1.0, 7.0, 7.0, 0.0]], np.float32)
    assert scale == pytest.approx(0.125) and bias == pytest.approx(-2.0 - 1.5 * 0.125)
    assert execute_onnx(model, {"x": raw})["i"].ravel().tolist() == [2]


def test_finn_folding_names_map_to_this_builds_layers(tiny_build):
    """finn-examples' names: the other implementation (_hls <-> _rtl) and FINN's earlier
    names (MatrixVectorActivation_i) mean the i-th layer of that kind."""
    from groupnet.hw.folding import finn_alias
    model = ModelWrapper(str(tiny_build() / "dataflow.onnx"))
    mvaus = [n.name for n in model.graph.node if n.op_type.startswith("MVAU")]
    assert finn_alias(model, "MatrixVectorActivation_1") == mvaus[1]
    other = mvaus[0].replace("_hls_", "_rtl_") if "_hls_" in mvaus[0] else \
        mvaus[0].replace("_rtl_", "_hls_")
    assert finn_alias(model, other) == mvaus[0]
    assert finn_alias(model, f"MVAU_hls_{len(mvaus)}") is None
    assert finn_alias(model, "Nonsense") is None


def test_nameless_nodes_are_named_and_missing_memories_are_errors(tiny_build, tmp_path,
                                                                   monkeypatch):
    """A node without a name once read its weights from /weights.hex (all zeros, no error)."""
    from groupnet.hw.rtl.layers import LayerRTL
    from groupnet.hw.sim import stitch as st
    build = tiny_build()
    model = ModelWrapper(str(build / "dataflow.onnx"))
    mvau = next(n for n in model.graph.node if n.op_type.startswith("MVAU"))
    mvau.name = ""
    design = st.stitch(model, tmp_path / "a", "xc7z020clg400-1")
    assert "" not in design.layers and len(set(design.layers)) == len(design.layers)
    named = [n.name for n in model.graph.node if n.op_type.startswith("MVAU")][0]
    assert (tmp_path / "a" / named / "weights.hex").is_file()

    real = st.layer_rtl

    def forgetful(*args, **kwargs):
        rtl = real(*args, **kwargs)
        if "WEIGHT_FILE" in rtl.params:
            rtl = LayerRTL(rtl.module, {**rtl.params, "WEIGHT_FILE": "gone/weights.hex"},
                           rtl.in_widths, rtl.out_width)
        return rtl
    monkeypatch.setattr(st, "layer_rtl", forgetful)
    with pytest.raises(st.StitchError, match=r"WEIGHT_FILE .*gone/weights.hex was not written"):
        st.stitch(ModelWrapper(str(build / "dataflow.onnx")), tmp_path / "b", "xc7z020clg400-1")


@pytest.mark.slow
@pytest.mark.verilator
def test_tfc_w1a2_and_w2a2_simulate(finn_model, tmp_path, capsys):
    """Binary weights on 2-bit activations (integer x +-1) and 2-bit signed weights on
    2-bit activations (INT2 x UINT2): built, verified, and simulated bit-exactly at FINN's
    cycle bound."""
    for name in ("tfc_1w2a", "tfc_2w2a"):
        onnx, images, _, _ = finn_model(name)
        ver = _build(onnx, tmp_path / name, images, "tfc_1w1a_folding.json", "--verify", "-n", "4")
        assert all(v["bit_exact"] for v in ver.values())
        if name == "tfc_2w2a":
            dataflow = ModelWrapper(str(tmp_path / name / "dataflow.onnx"))
            wdts = {dataflow.get_tensor_datatype(n.input[1]).name for n in dataflow.graph.node
                    if n.op_type.startswith("MVAU")}
            assert "INT2" in wdts, wdts
        capsys.readouterr()
        rc = main(["sim", str(tmp_path / name), "--images", str(images), "-n", "4",
                   "--json"])
        res = json.loads(capsys.readouterr().out)
        assert rc == 0 and res["bit_exact"], name
        assert res["cycles_per_frame"] <= res["bound_cycles_per_frame"] * 1.01, name
