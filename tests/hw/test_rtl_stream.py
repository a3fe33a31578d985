"""stream_fifo.v and stream_dwc.v in Verilator: every beat comes out in order and unchanged
(FIFO) or repacked with element 0 in the LSBs (width converter), one beat per cycle at
full rate, nothing lost under random input gaps and output back-pressure; the FIFO's
peak occupancy; the FIFO's registered-read memories (LUT RAM, block RAM) give every beat at
the cycle an ideal first-word-fall-through FIFO does."""

import numpy as np
import pytest

from groupnet.hw.rtl.layers import RTL_DIR
from groupnet.hw.sim.verilator import build, pack, run_stream, unpack

pytestmark = pytest.mark.verilator

FIFO, DWC = RTL_DIR / "stream_fifo.v", RTL_DIR / "stream_dwc.v"
# the FIFO's peak occupancy on the harness's `stats` port
FIFO_TOP = """module fifo_top #(parameter integer WIDTH = 8, parameter integer DEPTH = 2) (
    input wire clk, input wire rst_n,
    input wire [WIDTH-1:0] in_tdata, input wire in_tvalid, output wire in_tready,
    output wire [WIDTH-1:0] out_tdata, output wire out_tvalid, input wire out_tready,
    output wire [31:0] stats [0:0]);
    stream_fifo #(.WIDTH(WIDTH), .DEPTH(DEPTH)) dut (.clk(clk), .rst_n(rst_n),
        .in_tdata(in_tdata), .in_tvalid(in_tvalid), .in_tready(in_tready),
        .out_tdata(out_tdata), .out_tvalid(out_tvalid), .out_tready(out_tready),
        .peak(stats[0]));
endmodule
"""


# the reference: an ideal first-word-fall-through FIFO (asynchronous read: a beat is at the
# output the cycle after it was pushed, whatever is in front of it)
IDEAL = """module fifo_top #(parameter integer WIDTH = 8, parameter integer DEPTH = 2) (
    input wire clk, input wire rst_n,
    input wire [WIDTH-1:0] in_tdata, input wire in_tvalid, output wire in_tready,
    output wire [WIDTH-1:0] out_tdata, output wire out_tvalid, input wire out_tready,
    output wire [31:0] stats [0:0]);
    reg [WIDTH-1:0] mem [0:DEPTH-1];
    reg [31:0] count, rd, wr;
    assign in_tready = count != DEPTH;
    assign out_tvalid = count != 0;
    assign out_tdata = mem[rd];
    assign stats[0] = 0;
    wire push = in_tvalid && in_tready, pop = out_tvalid && out_tready;
    always @(posedge clk)
        if (!rst_n) begin count <= 0; rd <= 0; wr <= 0; end
        else begin
            if (push) begin mem[wr] <= in_tdata; wr <= (wr + 1) % DEPTH; end
            if (pop) rd <= (rd + 1) % DEPTH;
            count <= count + push - pop;
        end
endmodule
"""


def bits(n: int, width: int, seed: int) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 2, (n, width))


def run_fifo(tmp_path, width, depth, x, p_valid=1.0, p_ready=1.0, seed=0, ideal=False):
    top = tmp_path / "fifo_top.v"
    top.write_text(IDEAL if ideal else FIFO_TOP)
    model = build([top] if ideal else [FIFO, top], "fifo_top",
                  {"WIDTH": width, "DEPTH": depth}, defines={"STATS_WORDS": 1})
    run = run_stream(model, [pack(row, 1) for row in x], len(x), p_valid, p_ready, seed)
    assert not run.stalled
    out = np.stack([unpack(words, width, 1, False) for words in run.outputs])
    return out, run


@pytest.mark.parametrize("width,depth", [(1, 2), (36, 2), (70, 3), (8, 7), (33, 16)])
def test_fifo_in_order_at_full_rate(width, depth, tmp_path):
    x = bits(60, width, width + depth)
    out, run = run_fifo(tmp_path, width, depth, x)
    assert np.array_equal(out, x)
    assert run.cycles == len(x) + 1                  # first-word fall-through: 1 cycle
    assert run.stats == [1]                          # never more than one beat waiting


@pytest.mark.parametrize("depth", [2, 5])
def test_fifo_gaps_and_backpressure(depth, tmp_path):
    x = bits(200, 12, depth)
    out, run = run_fifo(tmp_path, 12, depth, x, p_valid=0.7, p_ready=0.3, seed=depth)
    assert np.array_equal(out, x)
    assert run.stats == [depth]                      # a slow reader fills it


@pytest.mark.parametrize("depth,p_valid,p_ready,seed", [
    (3, 1.0, 0.5, 1), (16, 1.0, 0.3, 2), (128, 0.8, 0.5, 3),        # LUT RAM: 1-cycle read
    (129, 1.0, 0.4, 4), (300, 0.9, 0.7, 6), (1025, 1.0, 0.2, 7),    # block RAM: 2 cycles
    (200, 0.6, 0.6, 8)])
def test_fifo_beats_at_the_cycles_of_an_ideal_fifo(depth, p_valid, p_ready, seed, tmp_path):
    """The memory behind registers (timing closure) costs no cycle: under the same random
    traffic every beat leaves at the cycle an ideal FIFO's would, and so do the input's
    ready cycles (the same run length)."""
    x = bits(1500, 5, seed)
    (tmp_path / "rtl").mkdir()
    (tmp_path / "ideal").mkdir()
    out, run = run_fifo(tmp_path / "rtl", 5, depth, x, p_valid, p_ready, seed)
    ref_out, ref = run_fifo(tmp_path / "ideal", 5, depth, x, p_valid, p_ready, seed, True)
    assert np.array_equal(out, x) and np.array_equal(ref_out, x)
    assert list(run.out_cycles) == list(ref.out_cycles) and run.cycles == ref.cycles
    assert run.stats[0] > min(depth - 1, 3)          # beats waited in the memory


def run_dwc(tmp_path, in_w, out_w, n_in, p_valid=1.0, p_ready=1.0, seed=0):
    x = bits(n_in, in_w, in_w * 100 + out_w)
    model = build([DWC], "stream_dwc", {"IN_W": in_w, "OUT_W": out_w})
    stream = x.reshape(-1)                           # element 0 of beat 0 first
    n_out = len(stream) // out_w
    run = run_stream(model, [pack(row, 1) for row in x], n_out, p_valid, p_ready, seed)
    assert not run.stalled
    out = np.stack([unpack(words, out_w, 1, False) for words in run.outputs])
    assert np.array_equal(out, stream.reshape(n_out, out_w))
    return run


@pytest.mark.parametrize("in_w,out_w", [(8, 32), (1, 36), (16, 144), (12, 12)])
def test_dwc_up_one_input_beat_per_cycle(in_w, out_w, tmp_path):
    run = run_dwc(tmp_path, in_w, out_w, 48 * (out_w // in_w))
    assert run.cycles == run.in_beats + (in_w != out_w)     # equal widths: a wire


@pytest.mark.parametrize("in_w,out_w", [(32, 8), (144, 36), (2, 1), (70, 7)])
def test_dwc_down_one_output_beat_per_cycle(in_w, out_w, tmp_path):
    run = run_dwc(tmp_path, in_w, out_w, 40)
    assert run.cycles == 40 * (in_w // out_w) + 1


@pytest.mark.parametrize("in_w,out_w", [(4, 36), (144, 36)])
def test_dwc_gaps_and_backpressure(in_w, out_w, tmp_path):
    run_dwc(tmp_path, in_w, out_w, 72, p_valid=0.6, p_ready=0.4, seed=3)


THRES = RTL_DIR / "thresholding_stream.v"


@pytest.mark.parametrize("p_valid,p_ready", [(1.0, 1.0), (0.6, 0.4)])
def test_thresholding_bit_exact_full_rate_and_backpressure(p_valid, p_ready, tmp_path):
    """thresholding_stream.v: ACT_VAL + #{t : x >= T[c][t]} per lane (signed 4-bit inputs,
    15 thresholds: a 4-bit requantization); one beat per cycle at full rate, 2 cycles of
    latency (compares, then the count), nothing lost under gaps and back-pressure."""
    rng = np.random.default_rng(3)
    c, pe, in_bits, n_thres, out_bits, act = 12, 3, 4, 15, 4, -8
    t = np.sort(rng.integers(-8, 9, (c, n_thres)), axis=1)
    tb, lines = in_bits + 1, []
    for nf in range(c // pe):
        word = 0
        for p in range(pe):
            for j in range(n_thres):
                word |= (int(t[nf * pe + p, j]) & ((1 << tb) - 1)) << ((p * n_thres + j) * tb)
        lines.append(f"{word:x}")
    (tmp_path / "thresholds.hex").write_text("\n".join(lines) + "\n")
    model = build([THRES], "thresholding_stream",
                  {"C": c, "PE": pe, "IN_BITS": in_bits, "IN_SIGNED": 1, "N_THRES": n_thres,
                   "OUT_BITS": out_bits, "ACT_VAL": act, "THRES_FILE": "thresholds.hex"})
    x = rng.integers(-8, 8, (40, c))
    beats = [pack(row[f * pe:(f + 1) * pe], in_bits) for row in x for f in range(c // pe)]
    run = run_stream(model, beats, len(beats), p_valid, p_ready, 5, cwd=tmp_path)
    assert not run.stalled
    out = np.concatenate([unpack(w, pe, out_bits, True) for w in run.outputs])
    assert np.array_equal(out.reshape(len(x), c), (x[:, :, None] >= t[None]).sum(axis=2) + act)
    if p_valid == p_ready == 1.0:
        assert run.cycles == len(beats) + 2


ADD, DUP = RTL_DIR / "elementwise_add.v", RTL_DIR / "duplicate_streams.v"
# the join's two inputs from one stream, each through a FIFO (lanes a: 2 deep, lanes b: 5
# deep, so a and b arrive at different cycles under gaps and back-pressure)
JOIN_TOP = """module join_top #(parameter integer PE = 3) (
    input wire clk, input wire rst_n,
    input wire [PE*6-1:0] in_tdata, input wire in_tvalid, output wire in_tready,
    output wire [PE*4-1:0] out_tdata, output wire out_tvalid, input wire out_tready);
    wire [2*PE*6-1:0] d; wire [1:0] dv, dr; wire [PE*3-1:0] ad, bd; wire av, ar, bv, br;
    duplicate_streams #(.WIDTH(PE*6), .N(2)) dup (.clk(clk), .rst_n(rst_n),
        .in_tdata(in_tdata), .in_tvalid(in_tvalid), .in_tready(in_tready),
        .out_tdata(d), .out_tvalid(dv), .out_tready(dr));
    stream_fifo #(.WIDTH(PE*3), .DEPTH(2)) fa (.clk(clk), .rst_n(rst_n),
        .in_tdata(d[0 +: PE*3]), .in_tvalid(dv[0]), .in_tready(dr[0]),
        .out_tdata(ad), .out_tvalid(av), .out_tready(ar), .peak());
    stream_fifo #(.WIDTH(PE*3), .DEPTH(5)) fb (.clk(clk), .rst_n(rst_n),
        .in_tdata(d[PE*6 + PE*3 +: PE*3]), .in_tvalid(dv[1]), .in_tready(dr[1]),
        .out_tdata(bd), .out_tvalid(bv), .out_tready(br), .peak());
    elementwise_add #(.PE(PE), .A_BITS(3), .B_BITS(3), .OUT_BITS(4)) dut (.clk(clk),
        .rst_n(rst_n), .a_tdata(ad), .a_tvalid(av), .a_tready(ar),
        .b_tdata(bd), .b_tvalid(bv), .b_tready(br),
        .out_tdata(out_tdata), .out_tvalid(out_tvalid), .out_tready(out_tready));
endmodule
"""


@pytest.mark.parametrize("p_valid,p_ready,seed", [(1.0, 1.0, 0), (0.6, 0.4, 1), (1.0, 0.5, 2),
                                                  (0.3, 1.0, 3)])
def test_join_sums_in_order_full_rate_and_backpressure(p_valid, p_ready, seed, tmp_path):
    """elementwise_add.v: signed lane sums of the two streams in order; one beat per cycle
    at full rate (the queue's registered fill costs no throughput); nothing lost or
    duplicated under gaps and back-pressure."""
    pe, n = 3, 200
    top = tmp_path / "join_top.v"
    top.write_text(JOIN_TOP)
    model = build([ADD, DUP, FIFO, top], "join_top", {"PE": pe})
    rng = np.random.default_rng(seed)
    a, b = rng.integers(-4, 4, (n, pe)), rng.integers(-4, 4, (n, pe))
    beats = [pack(np.concatenate([x, y]), 3) for x, y in zip(a, b)]
    run = run_stream(model, beats, n, p_valid, p_ready, seed)
    assert not run.stalled
    out = np.stack([unpack(w, pe, 4, True) for w in run.outputs])
    assert np.array_equal(out, a + b)
    if p_valid == p_ready == 1.0:
        assert run.cycles <= n + 8           # one beat per cycle, a few cycles of fill
