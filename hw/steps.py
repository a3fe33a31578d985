"""The build steps, in order. Each is ``step(model, ctx) -> model``.

FINN's own steps are used by name where they fit (``streamline``, ``convert_to_hw`` and
the Vivado steps reuse FINN's transformations and step functions); Group-Net's graph
fixes (``transforms.py``) are inserted where stock FINN fails on forks. The build runner
(``build.py``) saves the model after every step, so a build resumes from any step.
"""

from __future__ import annotations

from typing import Callable

from qonnx.core.modelwrapper import ModelWrapper
from qonnx.custom_op.registry import getCustomOp
from qonnx.transformation.fold_constants import FoldConstants
from qonnx.transformation.general import (GiveReadableTensorNames, GiveUniqueNodeNames,
                                          RemoveStaticGraphInputs)
from qonnx.transformation.infer_data_layouts import InferDataLayouts
from qonnx.transformation.infer_datatypes import InferDataTypes
from qonnx.transformation.infer_shapes import InferShapes

from . import transforms as gt
from .context import DEFAULT_STEPS, BuildContext
from .streamline import attach_topk, detach_topk, fast_streamline, streamline
from .transforms import GraphError

Step = Callable[[ModelWrapper, BuildContext], ModelWrapper]

# The host may keep the input layout change (NCHW -> NHWC, or an MLP's flatten) in front
# of the accelerator, and the output's (NHWC -> NCHW) behind it when the output is a map
# (segmentation).
HOST_INPUT_OPS = ("Transpose", "Reshape", "Flatten")
HOST_OUTPUT_OPS = ("Transpose",)


def _tidy(model: ModelWrapper) -> ModelWrapper:
    for t in (InferShapes(), FoldConstants(), GiveUniqueNodeNames(), GiveReadableTensorNames(),
              InferDataTypes(), RemoveStaticGraphInputs()):
        model = model.transform(t)
    return model


def step_prepare(model: ModelWrapper, ctx: BuildContext) -> ModelWrapper:
    """QONNX clean-up; UINT8 pixel input; positive output affine (logit scale, FINN's
    TensorNorm tail) -> metadata; a final TopK checked."""
    from qonnx.util.cleanup import cleanup_model
    model = cleanup_model(model)
    model = model.transform(gt.RemoveInputIdentityQuant())
    model = model.transform(gt.StripOutputAffine("groupnet.logit"))   # until none is left
    _check_topk(model)
    return model.transform(InferShapes()).transform(InferDataTypes())


def _check_topk(model: ModelWrapper) -> None:
    """A TopK may end a classifier (FINN's LabelSelect): the last node, on the last axis,
    the largest values, sorted."""
    for node in model.get_nodes_by_op_type("TopK"):
        a = {x.name: x for x in node.attribute}
        axis = a["axis"].i if "axis" in a else -1
        rank = len(model.get_tensor_shape(node.input[0]))
        if node.output[1] != model.graph.output[0].name:
            raise GraphError(f"node {node.name} (TopK): only a final TopK (its indices the "
                             "graph output) maps to FINN's LabelSelect")
        if axis not in (-1, rank - 1) or ("largest" in a and a["largest"].i != 1) or \
                ("sorted" in a and a["sorted"].i != 1):
            raise GraphError(f"node {node.name} (TopK): LabelSelect takes the largest "
                             "values on the last axis, sorted")


# ops a binary Group-Net may contain after QONNX -> FINN conversion
SUPPORTED_OPS = ("Conv", "MatMul", "Gemm", "BatchNormalization", "MultiThreshold", "Add",
                 "Sub", "Mul", "Div", "MaxPool", "Reshape", "Flatten", "Transpose", "Pad",
                 "Identity", "Squeeze", "Unsqueeze", "TopK")


def step_qonnx_to_finn(model: ModelWrapper, ctx: BuildContext) -> ModelWrapper:
    """QONNX Quant/BipolarQuant -> FINN MultiThreshold and bipolar datatypes."""
    from finn.transformation.qonnx.convert_qonnx_to_finn import ConvertQONNXtoFINN
    model = _tidy(model.transform(ConvertQONNXtoFINN()))
    for node in model.graph.node:
        if node.op_type not in SUPPORTED_OPS:
            raise GraphError(
                f"node {node.name} ({node.op_type}): no FINN hardware layer for "
                f"{node.op_type} in a binary network; use only {', '.join(SUPPORTED_OPS)} "
                "(convs/linears, batch norm, sign and shared integer quantizers, max pool, "
                "a final TopK)")
    inp = model.graph.input[0].name
    dt = model.get_tensor_datatype(inp)
    if not dt.is_integer() or dt.bitwidth() > 8 or dt.signed():
        raise GraphError(
            f"model input {inp} is {dt.name}: the accelerator takes 8-bit pixels; annotate "
            "the input UINT8 (FINN: model.set_tensor_datatype(input, DataType['UINT8']), with "
            "a Div-by-255 pre-processing node if the network expects [0, 1]), or export it "
            "with `groupnet export`")
    return model


def step_streamline(model: ModelWrapper, ctx: BuildContext) -> ModelWrapper:
    """FINN streamlining plus the fork-safe passes; ends in an integer-only graph.

    A final TopK is taken off while streamlining and put back after: FINN's Streamline
    would absorb the popcount correction in front of it into the TopK (the order does not
    change), and the checks after every stage compare the scores it selects from too."""
    topk = detach_topk(model)
    with fast_streamline():
        model = streamline(model)
    if topk is not None:
        model = attach_topk(model, topk)
    return model.transform(GiveReadableTensorNames())


def step_convert_to_hw(model: ModelWrapper, ctx: BuildContext) -> ModelWrapper:
    """Every node -> a FINN hardware layer (only the input and output transposes may
    stay on the host)."""
    from finn.transformation.fpgadataflow.convert_to_hw.binary_matrix_vector_activation import \
        InferBinaryMatrixVectorActivation
    from finn.transformation.fpgadataflow.convert_to_hw.conv_inp_gen import InferConvInpGen
    from finn.transformation.fpgadataflow.convert_to_hw.duplicate_streams import \
        InferDuplicateStreamsLayer
    from finn.transformation.fpgadataflow.convert_to_hw.elementwise_binary_operation import \
        InferElementwiseBinaryOperation
    from finn.transformation.fpgadataflow.convert_to_hw.fm_padding import InferFMPadding
    from finn.transformation.fpgadataflow.convert_to_hw.label_select import \
        InferLabelSelectLayer
    from finn.transformation.fpgadataflow.convert_to_hw.pool import InferPool
    from finn.transformation.fpgadataflow.convert_to_hw.quantized_matrix_vector_activation \
        import InferQuantizedMatrixVectorActivation
    from finn.transformation.fpgadataflow.convert_to_hw.thresholding import \
        InferThresholdingLayer
    from finn.transformation.move_reshape import RemoveCNVtoFCFlatten

    from finn.transformation.streamline.absorb import AbsorbConsecutiveTransposes

    # FINN's thresholding inference wraps an NCHW input threshold (e.g. CNV's 8-bit input
    # quantizer) in NCHW -> NHWC -> NCHW transposes: absorb them, as FINN's CNV flow does
    for t in (InferBinaryMatrixVectorActivation(), InferQuantizedMatrixVectorActivation(),
              InferThresholdingLayer(), AbsorbConsecutiveTransposes(),
              InferLabelSelectLayer(), InferFMPadding(),
              InferPool(), InferConvInpGen(), InferElementwiseBinaryOperation(),
              InferDuplicateStreamsLayer(), RemoveCNVtoFCFlatten()):
        model = model.transform(t)
    model = model.transform(GiveUniqueNodeNames())
    for t in (InferDataLayouts(), InferDataTypes(), InferShapes()):
        model = model.transform(t)
    _check_all_hw(model)
    return model


def _check_all_hw(model: ModelWrapper) -> None:
    nodes = list(model.graph.node)
    leading, trailing = 0, len(nodes)
    while leading < len(nodes) and nodes[leading].op_type in HOST_INPUT_OPS:
        leading += 1
    while trailing > leading and nodes[trailing - 1].op_type in HOST_OUTPUT_OPS:
        trailing -= 1
    for node in nodes[leading:trailing]:
        if not node.domain.startswith("finn.custom_op.fpgadataflow"):
            raise GraphError(
                f"node {node.name} ({node.op_type}) has no FINN hardware layer; the model "
                "must use only binary/integer convs, linears, max pools, shared-quantizer "
                "sums and signs after the input (see README 'Models')")


def step_dataflow_partition(model: ModelWrapper, ctx: BuildContext) -> ModelWrapper:
    """Split off the host part; continue with the dataflow partition (FINN's layout)."""
    from finn.transformation.fpgadataflow.create_dataflow_partition import \
        CreateDataflowPartition
    parent = model.transform(CreateDataflowPartition(
        partition_model_dir=str(ctx.paths.partitions)))
    sdp = parent.get_nodes_by_op_type("StreamingDataflowPartition")
    if len(sdp) != 1:
        raise GraphError(f"expected one dataflow partition, got {len(sdp)}: hardware layers "
                         "are interrupted by host operations")
    child = ModelWrapper(getCustomOp(sdp[0]).get_nodeattr("model"))
    for prop in model.graph.metadata_props:         # variant, score mapping, ...
        parent.set_metadata_prop(prop.key, prop.value)
        child.set_metadata_prop(prop.key, prop.value)
    parent.save(str(ctx.paths.parent))
    return child


def step_specialize_layers(model: ModelWrapper, ctx: BuildContext) -> ModelWrapper:
    """Pick HLS or RTL implementations for the board's part (FINN's defaults)."""
    from finn.transformation.fpgadataflow.specialize_layers import SpecializeLayers
    model = model.transform(SpecializeLayers(ctx.board.finn_part))
    return model.transform(GiveUniqueNodeNames()).transform(InferDataTypes())


def register_rtl_variants(model: ModelWrapper) -> None:
    """A model holding this project's RTL variants (``finn_rtl.py``) needs them
    registered with FINN before its nodes are used (e.g. when a build resumes)."""
    if any(n.op_type.endswith("_groupnet_rtl") for n in model.graph.node):
        from . import finn_rtl  # noqa: F401  (registers the variants on import)


def step_minimize_bit_width(model: ModelWrapper, ctx: BuildContext) -> ModelWrapper:
    """Narrow weights and accumulators to what the values need (FINN's passes)."""
    from finn.transformation.fpgadataflow.minimize_accumulator_width import \
        MinimizeAccumulatorWidth
    from finn.transformation.fpgadataflow.minimize_weight_bit_width import \
        MinimizeWeightBitWidth
    model = model.transform(MinimizeWeightBitWidth())
    model = model.transform(MinimizeAccumulatorWidth())
    model = model.transform(gt.WidenXnorAccumulators())      # FINN's popcount range bug
    return model.transform(InferDataTypes())


def step_folding(model: ModelWrapper, ctx: BuildContext) -> ModelWrapper:
    """Fold for --target-fps, --budget or a folding JSON; write the folding used."""
    import json

    from . import folding
    from .estimates import quick_estimate
    cfg = ctx.cfg
    if cfg.folding:
        model = folding.apply_folding_file(model, cfg.folding)
    elif cfg.target_fps:
        model = folding.fold_for_fps(model, cfg.target_fps, ctx.clock_mhz)
    else:
        model, _ = folding.fold_for_budget(model, ctx.board, cfg.budget,
                                           lambda m: quick_estimate(m, ctx.board))
    folding.validate_folding(model, "folding")
    ctx.paths.folding.write_text(json.dumps(folding.folding_config(model), indent=2) + "\n")
    if ctx.cfg.rtl_layers == "groupnet":
        # this project's RTL for the layers it implements, with the folding FINN chose for
        # its own (FINN's SetFolding selects layers by op_type and skips other variants)
        from .finn_rtl import UseGroupnetRTL
        model = model.transform(UseGroupnetRTL())
    return model


def step_estimates(model: ModelWrapper, ctx: BuildContext) -> ModelWrapper:
    """Per-layer and total estimates -> report/estimates.json (+ the HW graph)."""
    import json

    from .estimates import summarize
    report = summarize(model, ctx.board, ctx.clock_mhz)
    report["variant"] = model.get_metadata_prop("groupnet.variant")
    ctx.paths.estimates.write_text(json.dumps(report, indent=2) + "\n")
    write_finn_estimate_reports(report, ctx.paths.report)
    model.save(str(ctx.paths.dataflow))
    return model


def write_finn_estimate_reports(report: dict, folder) -> None:
    """FINN's estimate reports beside ``estimates.json``, with FINN's names and keys
    (what FINN users' scripts read): per-layer cycles and resources, network performance."""
    import json
    from pathlib import Path
    folder = Path(folder)
    layers = report["layers"]
    cycles = {r["name"]: r["cycles"] for r in layers}
    resources = {r["name"]: {"LUT": r["lut"], "BRAM_18K": r["bram18"], "URAM": r["uram"],
                             "DSP": r["dsp"]} for r in layers}
    resources["total"] = {"LUT": report["lut"], "BRAM_18K": report["bram18"],
                          "URAM": report["uram"], "DSP": report["dsp"]}
    perf = {"critical_path_cycles": report["latency_cycles"],
            "max_cycles": report["max_cycles"], "max_cycles_node_name": report["bottleneck"],
            "estimated_throughput_fps": report["fps"],
            "estimated_latency_ns": report["latency_cycles"] * 1e3 / report["clock_mhz"]}
    for name, data in (("estimate_layer_cycles.json", cycles),
                       ("estimate_layer_resources.json", resources),
                       ("estimate_network_performance.json", perf)):
        (folder / name).write_text(json.dumps(data, indent=2) + "\n")


def step_hw_codegen(model: ModelWrapper, ctx: BuildContext) -> ModelWrapper:
    """Generate HLS C++ / fill RTL templates per layer (pure Python, FINN's PrepareIP)."""
    from finn.transformation.fpgadataflow.prepare_ip import PrepareIP
    return model.transform(PrepareIP(ctx.board.finn_part, 1e3 / ctx.clock_mhz))


SIZING_FRAMES = 4    # frames the FIFO sizing simulates: the pipeline fills and runs steady


def step_size_fifos(model: ModelWrapper, ctx: BuildContext) -> ModelWrapper:
    """FIFO depths by Verilator simulation (``hw.sim.run.size_fifos``), so that the
    accelerator never deadlocks and keeps its throughput: ``fifo_depths.json``, FINN's
    ``inFIFODepths`` and ``fifo_config_file`` for its Vivado flow. On the ``--verify``
    images, else on random ones: a dataflow accelerator's timing does not depend on the
    data. ``--no-fifo-sizing`` (``size_fifos: false``) skips it."""
    import json

    import numpy as np
    from qonnx.core.modelwrapper import ModelWrapper as MW

    from .finn_env import ToolMissing
    from .sim.run import set_fifo_attrs, size_fifos
    from .sim.verilator import SimError, verilator
    if not ctx.cfg.size_fifos:
        return model
    images = ctx.images
    if images is None:
        first = MW(str(ctx.paths.input))
        shape = first.get_tensor_shape(first.graph.input[0].name)
        images = np.random.default_rng(0).integers(0, 256, (SIZING_FRAMES, *shape[1:]),
                                                   dtype=np.uint8)
    try:
        verilator()                      # the one tool check; missing: the build stops here
    except SimError as err:
        raise ToolMissing(f"FIFO sizing by simulation: {err} (or --no-fifo-sizing)") from None
    sizing = size_fifos(ctx.paths.root, images[:SIZING_FRAMES])
    report = {k: v for k, v in sizing.items() if k != "sized_run"}
    (ctx.paths.report / "fifo_sizing.json").write_text(json.dumps(report, indent=2) + "\n")
    return set_fifo_attrs(model, sizing["depths"])     # as dataflow.onnx has them now


# ----------------------------------------------------------- Vivado / Vitis HLS only
def _finn_step(name: str) -> Step:
    def step(model: ModelWrapper, ctx: BuildContext) -> ModelWrapper:
        from .finn_env import finn_builder_steps, require_toolchain
        require_toolchain(name)
        return getattr(finn_builder_steps(), f"step_{name}")(model, ctx.finn_config())
    step.__name__ = f"step_{name}"
    step.__doc__ = f"FINN's step_{name} (needs Vivado/Vitis HLS)."
    return step


STEPS: dict[str, Step] = {
    "prepare": step_prepare,
    "qonnx_to_finn": step_qonnx_to_finn,
    "streamline": step_streamline,
    "convert_to_hw": step_convert_to_hw,
    "dataflow_partition": step_dataflow_partition,
    "specialize_layers": step_specialize_layers,
    "minimize_bit_width": step_minimize_bit_width,
    "folding": step_folding,
    "estimates": step_estimates,
    "hw_codegen": step_hw_codegen,
    "size_fifos": step_size_fifos,
    # the rest needs Vivado / Vitis HLS (FINN's steps, behind hw.finn_env's tool check)
    "hw_ipgen": _finn_step("hw_ipgen"),
    "set_fifo_depths": _finn_step("set_fifo_depths"),
    "create_stitched_ip": _finn_step("create_stitched_ip"),
    "synthesize_bitfile": _finn_step("synthesize_bitfile"),
    "make_driver": _finn_step("make_driver"),
    "deployment_package": _finn_step("deployment_package"),
}
assert tuple(STEPS) == DEFAULT_STEPS, "hw/context.py's DEFAULT_STEPS lists the steps in order"
VIVADO_STEPS = ("hw_ipgen", "set_fifo_depths", "create_stitched_ip", "synthesize_bitfile",
                "make_driver", "deployment_package")
# steps after which the Python execution of the graph is checked with --verify
VERIFY_AFTER = ("prepare", "streamline", "convert_to_hw", "dataflow_partition")
