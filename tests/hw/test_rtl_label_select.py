"""label_select.v (FINN's LabelSelect, what a final TopK becomes) in Verilator: the K
largest of N integer scores per vector, largest first, ties to the lower label, exactly
as ONNX Runtime's TopK (FINN's Python execution of the layer) returns them; N/PE cycles
per vector; nothing lost under input gaps and output back-pressure."""

import numpy as np
import onnxruntime as rt
import pytest
from onnx import TensorProto, helper

from groupnet.hw.rtl.layers import RTL_DIR
from groupnet.hw.sim.verilator import build, pack, run_stream, unpack

pytestmark = pytest.mark.verilator

TOP = """module ls_top #(parameter integer N = 10, parameter integer PE = 1,
    parameter integer BITS = 8, parameter integer SIGNED = 1, parameter integer K = 1,
    parameter integer OUT_BITS = 4) (
    input wire clk, input wire rst_n,
    input wire [PE*BITS-1:0] in_tdata, input wire in_tvalid, output wire in_tready,
    output wire [OUT_BITS-1:0] out_tdata, output wire out_tvalid, input wire out_tready,
    output wire [31:0] stats [0:0]);
    label_select #(.N(N), .PE(PE), .BITS(BITS), .SIGNED(SIGNED), .K(K), .OUT_BITS(OUT_BITS))
        dut (.clk(clk), .rst_n(rst_n), .in_tdata(in_tdata), .in_tvalid(in_tvalid),
        .in_tready(in_tready), .out_tdata(out_tdata), .out_tvalid(out_tvalid),
        .out_tready(out_tready));
    assign stats[0] = 32'd0;
endmodule
"""


def onnx_topk(scores: np.ndarray, k: int) -> np.ndarray:
    """ONNX Runtime's TopK indices (what FINN's LabelSelect execution returns)."""
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, list(scores.shape))
    kk = helper.make_tensor_value_info("k", TensorProto.INT64, [1])
    v = helper.make_tensor_value_info("v", TensorProto.FLOAT, None)
    i = helper.make_tensor_value_info("i", TensorProto.INT64, None)
    graph = helper.make_graph([helper.make_node("TopK", ["x", "k"], ["v", "i"])], "t",
                              [x, kk], [v, i])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    sess = rt.InferenceSession(model.SerializeToString())
    return sess.run(None, {"x": scores.astype(np.float32), "k": np.array([k])})[1]


@pytest.mark.parametrize("n,pe,k,signed,bits", [(10, 1, 1, 1, 8), (10, 5, 3, 1, 6),
                                                (12, 4, 2, 0, 4), (6, 2, 6, 1, 3)])
def test_label_select_equals_onnx_topk(n, pe, k, signed, bits, tmp_path):
    rng = np.random.default_rng(n * pe + k)
    lo, hi = (-(1 << (bits - 1)), 1 << (bits - 1)) if signed else (0, 1 << bits)
    # few distinct values: many ties
    scores = rng.integers(lo, min(hi, lo + 5), (40, n))
    out_bits = max(1, int(np.ceil(np.log2(n))))
    (tmp_path / "ls_top.v").write_text(TOP)
    model = build([RTL_DIR / "label_select.v", tmp_path / "ls_top.v"], "ls_top",
                  {"N": n, "PE": pe, "BITS": bits, "SIGNED": signed, "K": k,
                   "OUT_BITS": out_bits}, defines={"STATS_WORDS": 1})
    beats = [pack(row[i:i + pe], bits) for row in scores for i in range(0, n, pe)]
    want = onnx_topk(scores, k)
    assert np.array_equal(want, np.argsort(-scores, axis=1, kind="stable")[:, :k])
    for p_valid, p_ready in ((1.0, 1.0), (0.6, 0.4)):
        run = run_stream(model, beats, len(scores) * k, p_valid, p_ready, seed=k)
        assert not run.stalled
        got = np.array([unpack(w, 1, out_bits, False)[0] for w in run.outputs])
        assert np.array_equal(got.reshape(len(scores), k), want)
        if p_valid == 1.0 and k <= n // pe:       # N/PE cycles per vector at full rate
            ends = np.asarray(run.out_cycles[k - 1::k])
            assert np.median(np.diff(ends)) == n // pe
