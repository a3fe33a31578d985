"""Bit-exactness of the Python execution of the graph at each build stage.

The reference is the prepared QONNX model (the exported model, which ``groupnet export``
checked against PyTorch, minus the positive logit scale): its outputs are the integer
class scores. Later stages output the accelerator's raw values; ``groupnet.score_scale`` /
``groupnet.score_bias`` (recorded when streamlining strips the popcount correction) map
them back to integer scores. A model that ends in a TopK (FINN's classifiers; LabelSelect
in hardware) is checked on both the scores it selects from and the labels it returns.
The comparison is exact equality, never a tolerance.
"""

from __future__ import annotations

import numpy as np
from qonnx.core.modelwrapper import ModelWrapper


class VerifyError(AssertionError):
    pass


def execute(model: ModelWrapper, images: np.ndarray, progress: str | None = None) -> np.ndarray:
    """Run the graph image by image (batch 1, the shape it was built for); ``progress``:
    a progress bar with this description."""
    from qonnx.core.onnx_exec import execute_onnx
    from tqdm import tqdm
    iname, oname = model.graph.input[0].name, model.graph.output[0].name
    outs = [execute_onnx(model, {iname: img[None].astype(np.float32)})[oname]
            for img in tqdm(images, desc=progress, unit="img", disable=progress is None,
                            leave=False)]
    return np.concatenate([o.reshape(1, -1) for o in outs])


def without_output_transpose(model: ModelWrapper) -> ModelWrapper:
    """The graph without a final ``Transpose`` (the NHWC -> NCHW of a map output, which the
    host does): its output in the order the accelerator streams it."""
    model = ModelWrapper(model.model.__deepcopy__())
    last = model.find_producer(model.graph.output[0].name)
    if last is None or last.op_type != "Transpose":
        return model
    from onnx import helper
    new_out = helper.make_tensor_value_info(last.input[0], 1,
                                            model.get_tensor_shape(last.input[0]))
    for vi in [v for v in model.graph.value_info if v.name == last.input[0]]:
        model.graph.value_info.remove(vi)
    model.graph.output.remove(model.graph.output[0])
    model.graph.output.append(new_out)
    model.graph.node.remove(last)
    return model


SELECT_OPS = ("TopK", "LabelSelect", "LabelSelect_hls")


def _scores_before_select(model: ModelWrapper) -> tuple[ModelWrapper, str] | None:
    """For a graph ending in a TopK / LabelSelect (also inside its final dataflow
    partition): a copy to execute with the full context, and the key of the scores it
    selects from in that context; None if it does not end in one."""
    from qonnx.custom_op.registry import getCustomOp
    last = model.find_producer(model.graph.output[0].name)
    if last is None:
        return None
    if last.op_type in SELECT_OPS:
        return model, last.input[0]
    if last.op_type == "StreamingDataflowPartition":
        child = ModelWrapper(getCustomOp(last).get_nodeattr("model"))
        inner = child.find_producer(child.graph.output[0].name)
        if inner is None or inner.op_type not in SELECT_OPS:
            return None
        model = ModelWrapper(model.model.__deepcopy__())
        sdp = model.find_producer(model.graph.output[0].name)
        getCustomOp(sdp).set_nodeattr("return_full_exec_context", 1)
        return model, f"{sdp.name}_{inner.input[0]}"
    return None


def observe(model: ModelWrapper, images: np.ndarray) -> np.ndarray:
    """What the checks compare, one row per image: the integer scores (raw outputs mapped
    by the score scale/bias), and for a model ending in a TopK / LabelSelect its scores
    followed by the selected labels."""
    found = _scores_before_select(model)
    if found is None:
        return to_scores(model, execute(model, images))
    from qonnx.core.onnx_exec import execute_onnx
    graph, key = found
    iname, oname = graph.graph.input[0].name, graph.graph.output[0].name
    rows = []
    for img in images:
        ctx = execute_onnx(graph, {iname: img[None].astype(np.float32)},
                           return_full_exec_context=True)
        rows.append(np.concatenate([to_scores(model, ctx[key].reshape(1, -1))[0],
                                    ctx[oname].reshape(-1).astype(np.float64)]))
    return np.stack(rows)


def to_scores(model: ModelWrapper, raw: np.ndarray) -> np.ndarray:
    scale = float(model.get_metadata_prop("groupnet.score_scale") or 1.0)
    bias = float(model.get_metadata_prop("groupnet.score_bias") or 0.0)
    return raw.astype(np.float64) * scale + bias


def reference_scores(model: ModelWrapper, images: np.ndarray) -> np.ndarray:
    scores = observe(model, images)
    if not np.array_equal(scores, scores.round()):
        raise VerifyError("the prepared model's outputs are not integers: the classifier "
                          "must be a binary layer followed only by one positive scale")
    return scores


def check_step(model: ModelWrapper, images: np.ndarray, reference: np.ndarray) -> dict:
    scores = observe(model, images)
    bad = np.nonzero((scores != reference).any(axis=1))[0]
    return {"bit_exact": bool(len(bad) == 0), "n": int(len(images)),
            "mismatched_images": bad.tolist()[:20],
            "max_abs_diff": float(np.abs(scores - reference).max()) if len(images) else 0.0}
