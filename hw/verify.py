"""Bit-exactness of the Python execution of the graph at each build stage.

The reference is the prepared QONNX model (the exported model, which ``groupnet export``
checked against PyTorch, minus the positive logit scale): its outputs are the integer
class scores. Later stages output the accelerator's raw values; ``groupnet.score_scale`` /
``groupnet.score_bias`` (recorded when streamlining strips the popcount correction) map
them back to integer scores. The comparison is exact equality, never a tolerance.
"""

from __future__ import annotations

import numpy as np
from qonnx.core.modelwrapper import ModelWrapper


class VerifyError(AssertionError):
    pass


def execute(model: ModelWrapper, images: np.ndarray) -> np.ndarray:
    """Run the graph image by image (batch 1, the shape it was built for)."""
    from qonnx.core.onnx_exec import execute_onnx
    iname, oname = model.graph.input[0].name, model.graph.output[0].name
    outs = [execute_onnx(model, {iname: img[None].astype(np.float32)})[oname]
            for img in images]
    return np.concatenate([o.reshape(1, -1) for o in outs])


def to_scores(model: ModelWrapper, raw: np.ndarray) -> np.ndarray:
    scale = float(model.get_metadata_prop("groupnet.score_scale") or 1.0)
    bias = float(model.get_metadata_prop("groupnet.score_bias") or 0.0)
    return raw.astype(np.float64) * scale + bias


def reference_scores(model: ModelWrapper, images: np.ndarray) -> np.ndarray:
    scores = execute(model, images).astype(np.float64)
    if not np.array_equal(scores, scores.round()):
        raise VerifyError("the prepared model's outputs are not integers: the classifier "
                          "must be a binary layer followed only by one positive scale")
    return scores


def check_step(model: ModelWrapper, images: np.ndarray, reference: np.ndarray) -> dict:
    scores = to_scores(model, execute(model, images))
    bad = np.nonzero((scores != reference).any(axis=1))[0]
    return {"bit_exact": bool(len(bad) == 0), "n": int(len(images)),
            "mismatched_images": bad.tolist()[:20],
            "max_abs_diff": float(np.abs(scores - reference).max()) if len(images) else 0.0}
