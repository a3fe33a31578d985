"""mvau_stream.v in Verilator: bit-exact against numpy and FINN's MVAU nodes, cycles as
FINN expects, under input gaps and output back-pressure."""

import numpy as np
import pytest
from qonnx.core.modelwrapper import ModelWrapper
from qonnx.custom_op.registry import getCustomOp

from groupnet.hw.rtl.mvau import LATENCY, RTL, MVAUConfig, reference, write_memories
from groupnet.hw.sim.verilator import build, pack, run_stream, unpack

pytestmark = pytest.mark.verilator


def simulate(cfg: MVAUConfig, x: np.ndarray, folder, p_valid=1.0, p_ready=1.0, seed=0):
    params = write_memories(cfg, folder)
    model = build([RTL], "mvau_stream", params)
    sf, nf = cfg.mw // cfg.simd, cfg.mh // cfg.pe
    beats = [pack(row[s * cfg.simd:(s + 1) * cfg.simd], cfg.in_bits)
             for row in x for s in range(sf)]
    run = run_stream(model, beats, len(x) * nf, p_valid, p_ready, seed, cwd=folder)
    assert not run.stalled
    signed = cfg.out_signed
    out = np.stack([np.concatenate([unpack(run.outputs[i * nf + n], cfg.pe, cfg.out_bits, signed)
                                    for n in range(nf)]) for i in range(len(x))])
    return out, run


RNG = np.random.default_rng(1)
CASES = {
    # name: (MW, MH, SIMD, PE, in_bits, in_signed, xnor, n_thres, out_bits, act_val)
    "xnor-sign": (36, 16, 9, 4, 1, False, True, 1, 1, 0),
    "xnor-int2": (72, 8, 8, 2, 1, False, True, 3, 2, -2),
    "xnor-wide-simd": (144, 6, 48, 3, 1, False, True, 1, 1, 0),
    "uint8-stem": (9, 4, 9, 4, 8, False, False, 1, 1, 0),
    "int4-x-bipolar": (24, 12, 4, 6, 4, True, False, 7, 3, -4),
    "no-activation": (32, 10, 16, 5, 1, False, True, 0, 7, 0),
    # a detector's predictor: signed raw sums into a type wider than the accumulator
    # (sign-extended; once zero-extended, negative outputs were wrong on a trained net)
    "int4-raw-wide-out": (32, 15, 8, 1, 4, True, False, 0, 16, 0),
    "fully-folded": (16, 4, 1, 1, 1, False, True, 1, 1, 0),
    # multi-bit signed weights (FINN's w2a2 networks: INT2 weights), last field = W_BITS
    "uint2-x-int2": (32, 8, 8, 2, 2, False, False, 3, 2, 0, 2),
    "int4-x-int3-raw": (24, 6, 4, 3, 4, True, False, 0, 12, 0, 3),
    "uint8-stem-x-int2": (27, 4, 9, 2, 8, False, False, 1, 1, 0, 2),
    # deeper than a block RAM at its word width (4 bits: 4,096 words): banked, 2 and 3
    # banks (the last one part-filled), the bank chosen in stage 3
    "deep-2-banks": (128, 160, 4, 1, 1, False, True, 1, 1, 0),
    "deep-3-banks": (576, 64, 4, 1, 1, False, True, 1, 1, 0),
}


def random_case(mw, mh, simd, pe, in_bits, in_signed, xnor, n_thres, out_bits, act_val,
                w_bits=1):
    if xnor:
        w = RNG.integers(0, 2, (mw, mh))
    elif w_bits == 1:
        w = RNG.choice([-1, 1], (mw, mh))
    else:                                      # the full range, the most negative included
        w = RNG.integers(-(1 << (w_bits - 1)), 1 << (w_bits - 1), (mw, mh))
        w[0, 0] = -(1 << (w_bits - 1))
    cfg = MVAUConfig(w, None, pe, simd, in_bits, in_signed, xnor, out_bits, act_val, w_bits)
    lo, hi = cfg.acc_range()
    if n_thres:
        cfg.thresholds = np.sort(RNG.integers(lo // 2, hi // 2 + 2, (mh, n_thres)), axis=1)
    if xnor:
        x = RNG.integers(0, 2, (5, mw))
    elif in_signed:
        x = RNG.integers(-(1 << (in_bits - 1)), 1 << (in_bits - 1), (5, mw))
    else:
        x = RNG.integers(0, 1 << in_bits, (5, mw))
    return cfg, x


@pytest.mark.parametrize("name", list(CASES))
def test_bit_exact_and_cycles(name, tmp_path):
    cfg, x = random_case(*CASES[name])
    out, run = simulate(cfg, x, tmp_path)
    assert np.array_equal(out, reference(cfg, x))
    folds = (cfg.mw // cfg.simd) * (cfg.mh // cfg.pe)
    assert run.cycles == len(x) * folds + LATENCY  # one fold per cycle, then the pipeline


@pytest.mark.parametrize("seed", [1, 2])
def test_gaps_and_backpressure_lose_nothing(seed, tmp_path):
    cfg, x = random_case(*CASES["xnor-int2"])
    out, run = simulate(cfg, x, tmp_path, p_valid=0.4, p_ready=0.3, seed=seed)
    assert np.array_equal(out, reference(cfg, x))
    assert run.cycles > len(x) * (cfg.mw // cfg.simd) * (cfg.mh // cfg.pe)



@pytest.mark.parametrize("p_valid,p_ready,seed", [(1.0, 1.0, 0), (1.0, 0.3, 3), (0.5, 0.5, 4)])
def test_pipeline_full_rate_and_backpressure_at_one_fold_per_vector(p_valid, p_ready, seed,
                                                                     tmp_path):
    """SF = 1: every fold completes a sum, so every cycle's fold needs a free entry in the
    output FIFO behind the pipeline (its credits). At full rate: one output per cycle,
    LATENCY cycles after the first fold; under gaps and back-pressure: nothing lost."""
    rng = np.random.default_rng(seed)
    mw, mh, pe = 32, 12, 3                              # SIMD = MW: SF = 1; NF = 4
    thresholds = np.sort(rng.integers(0, mw + 2, (mh, 3)), axis=1)
    cfg = MVAUConfig(rng.integers(0, 2, (mw, mh)), thresholds, pe, mw, 1, False, True, 2, -2)
    x = rng.integers(0, 2, (30, mw))
    out, run = simulate(cfg, x, tmp_path, p_valid, p_ready, seed)
    assert np.array_equal(out, reference(cfg, x))
    if p_valid == p_ready == 1.0:
        assert run.cycles == len(x) * (mh // pe) + LATENCY
        assert (np.diff(run.out_cycles) == 1).all()


def test_deep_memories_are_banked_unless_distributed(tmp_path):
    """A weight memory deeper than one block RAM (at its word width) is written as banks
    beside weights.hex; the RTL reads them (a missing bank reads zeros: wrong outputs),
    and as one LUT memory with ram_style distributed, with the same outputs and cycles."""
    from groupnet.hw.rtl.mvau import bank_words
    cfg, x = random_case(*CASES["deep-3-banks"])
    params = write_memories(cfg, tmp_path)
    words = (cfg.mw // cfg.simd) * (cfg.mh // cfg.pe)
    assert bank_words(cfg.pe * cfg.simd) == 4096 and words == 9216
    banks = sorted(p.name for p in tmp_path.glob("weights.hex.*"))
    assert banks == ["weights.hex.00", "weights.hex.01", "weights.hex.02"]
    lines = (tmp_path / "weights.hex").read_text().split()
    assert (tmp_path / "weights.hex.01").read_text().split() == lines[4096:8192]
    assert len((tmp_path / "weights.hex.02").read_text().split()) == 4096   # zero-padded
    sf, nf = cfg.mw // cfg.simd, cfg.mh // cfg.pe
    beats = [pack(row[s * cfg.simd:(s + 1) * cfg.simd], cfg.in_bits)
             for row in x[:2] for s in range(sf)]
    runs = {style: run_stream(build([RTL], "mvau_stream", {**params, "RAM_STYLE": style}),
                              beats, 2 * nf, cwd=tmp_path) for style in ("auto", "distributed")}
    assert runs["auto"].outputs == runs["distributed"].outputs
    assert runs["auto"].cycles == runs["distributed"].cycles == 2 * words + LATENCY
    (tmp_path / "weights.hex.01").unlink()
    broken = run_stream(build([RTL], "mvau_stream", params), beats, 2 * nf, cwd=tmp_path)
    assert broken.outputs != runs["auto"].outputs


def test_build_is_cached(tmp_path):
    cfg, _ = random_case(*CASES["xnor-sign"])
    params = write_memories(cfg, tmp_path)
    build([RTL], "mvau_stream", params)
    again = build([RTL], "mvau_stream", params)
    assert again.cached and again.build_seconds == 0.0


def _mvau_config(model: ModelWrapper, node, pe: int, simd: int) -> MVAUConfig:
    from groupnet.hw.rtl.layers import _weight_bits
    inst = getCustomOp(node)
    idt, odt = inst.get_input_datatype(0), inst.get_output_datatype()
    thresholds = None
    if inst.get_nodeattr("noActivation") == 0:
        thresholds = model.get_initializer(node.input[2])
    weights = model.get_initializer(node.input[1])
    return MVAUConfig(weights, thresholds, pe, simd,
                      idt.bitwidth(), idt.signed(), bool(inst.get_nodeattr("binaryXnorMode")),
                      odt.bitwidth(), int(inst.get_nodeattr("ActVal")),
                      _weight_bits(inst, weights))


def test_every_mvau_of_a_real_groupnet_matches_finn(exported, images, tmp_path):
    """Each MVAU of a trained tiny Group-Net, as the stitched accelerator builds it (the
    dataflow graph's folding and bit widths), on the tensors FINN's Python execution
    feeds it for real test images, plus one input that matches a weight column exactly
    (the largest popcount, MW: the case FINN's accumulator sizing got wrong)."""
    from qonnx.core.onnx_exec import execute_onnx

    from groupnet.hw.build import BuildConfig, run_build
    out = tmp_path / "b"
    run_build(BuildConfig(model=str(exported("test_groupnet_cnv")), out=str(out),
                          to_step="estimates"), progress=False)
    hw = ModelWrapper(str(out / "intermediate_models" / "03_convert_to_hw.onnx"))
    folded = ModelWrapper(str(out / "dataflow.onnx"))
    fold = [n for n in folded.graph.node if n.op_type.startswith("MVAU")]
    mvaus = [n for n in hw.graph.node if n.op_type == "MVAU"]
    assert len(mvaus) == len(fold) == 16
    ctx = execute_onnx(hw, {hw.graph.input[0].name: images[:2].astype(np.float32)[:1]},
                       return_full_exec_context=True)
    for node, spec in zip(mvaus, fold):
        inst = getCustomOp(spec)
        cfg = _mvau_config(folded, spec, inst.get_nodeattr("PE"), inst.get_nodeattr("SIMD"))
        x = ctx[node.input[0]].reshape(-1, cfg.mw).astype(np.int64)
        want = ctx[node.output[0]].reshape(-1, cfg.mh).astype(np.int64)
        if cfg.xnor and cfg.thresholds is None:          # raw popcounts out
            match = cfg.weights[:, 0].astype(np.int64)[None]   # {0,1}-encoded weights
            x, want = np.concatenate([x, match]), np.concatenate([want, reference(cfg, match)])
            assert want[-1, 0] == cfg.mw
        extra = len(x) - len(ctx[node.input[0]].reshape(-1, cfg.mw))
        got, run = simulate(cfg, x, tmp_path / node.name)
        assert np.array_equal(got, want), node.name
        if not extra:
            assert run.cycles - LATENCY == inst.get_exp_cycles(), node.name  # FINN's


def test_input_is_taken_in_while_folding(tmp_path):
    """Double-buffered input: a producer at half rate does not slow an MVAU whose neuron
    folds take longer than reading a vector (FINN's HLS MVAU would stall on it)."""
    rng = np.random.default_rng(5)
    mw, mh, simd, pe = 32, 16, 16, 4           # SF = 2 beats per vector, NF = 4 folds
    cfg = MVAUConfig(rng.integers(0, 2, (mw, mh)), np.full((mh, 1), mw // 2), pe, simd,
                     1, False, True, 1)
    x = rng.integers(0, 2, (40, mw))
    out, run = simulate(cfg, x, tmp_path, p_valid=0.5, seed=7)
    assert np.array_equal(out, reference(cfg, x))
    folds = (mw // simd) * (mh // pe)
    assert run.cycles <= len(x) * folds + LATENCY + 11



def test_a_long_fold_loop_is_not_a_stall(tmp_path):
    """A heavily folded MVAU (a full-width network on a small board) can go more than the
    default 100,000 cycles without a beat in or out: with that limit the run ends as
    'stalled'; with the limit `simulate` derives from the estimates it completes,
    bit-exact."""
    from groupnet.hw.sim.run import idle_limit
    rng = np.random.default_rng(5)
    mw, mh, pe = 110_000, 16, 8                   # SF = 110,000 cycles per neuron fold
    cfg = MVAUConfig(rng.integers(0, 2, (mw, mh)), None, pe, 1, 1, False, True, 18, 0)
    x = rng.integers(0, 2, (2, mw))
    model = build([RTL], "mvau_stream", write_memories(cfg, tmp_path))
    beats = [pack(row[s:s + 1], 1) for row in x for s in range(mw)]
    per_vector = mw * (mh // pe)
    n_out = 2 * (mh // pe)
    # the second vector's last fold: all input taken, 110,000 cycles to its output
    assert run_stream(model, beats, n_out, cwd=tmp_path, max_cycles=3 * per_vector).stalled
    run = run_stream(model, beats, n_out, cwd=tmp_path, max_cycles=3 * per_vector,
                     idle_cycles=idle_limit(per_vector, None))
    assert not run.stalled
    out = np.stack([np.concatenate([unpack(run.outputs[i * 2 + n], pe, 18, True)
                                    for n in range(2)]) for i in range(2)])
    assert np.array_equal(out, reference(cfg, x))


@pytest.mark.slow
def test_the_largest_popcount_fits_the_classifier_output(exported, tmp_path):
    """A quarter-width classifier has MW = 128 inputs: an image whose 128 bits all match
    a class's weights scores 128. finn-plus sizes that accumulator from the bipolar dot
    product (INT8 here), which wraps 128 to -128; the build widens it (UINT8)."""
    from groupnet.hw.build import BuildConfig, run_build
    out = tmp_path / "b"
    run_build(BuildConfig(model=str(exported("groupnet_cnv_s_k2")), out=str(out),
                          to_step="estimates"), progress=False)
    folded = ModelWrapper(str(out / "dataflow.onnx"))
    for node in folded.graph.node:
        inst = getCustomOp(node)
        if node.op_type.startswith("MVAU") and inst.get_nodeattr("binaryXnorMode"):
            acc = inst.get_nodeattr("accDataType")
            from qonnx.core.datatype import DataType
            assert DataType[acc].max() >= inst.get_nodeattr("MW"), (node.name, acc)
    last = folded.graph.node[-1]
    inst = getCustomOp(last)
    assert inst.get_nodeattr("MW") == 128 and inst.get_nodeattr("noActivation") == 1
    assert folded.get_tensor_datatype(last.output[0]).name == "UINT8"
    cfg = _mvau_config(folded, last, inst.get_nodeattr("PE"), inst.get_nodeattr("SIMD"))
    match = cfg.weights.T.astype(np.int64)[:3]           # each row matches one class fully
    got, _ = simulate(cfg, match, tmp_path / "rtl")
    assert [got[i, i] for i in range(3)] == [128, 128, 128]
