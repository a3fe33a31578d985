"""QONNX export with metadata, and the bit-exactness check against the PyTorch model.

The exported model takes raw 8-bit pixel values (0..255 as float32, NCHW, batch 1, the
dataset's native size) and returns class scores whose argmax is the prediction. Metadata
(``metadata_props``, on the graph where qonnx/FINN look and on the model for other
ONNX tools) records the variant, K, dataset, input preprocessing and the
accuracy measured at training time, so the file is self-describing for ``hw/``.
"""

from __future__ import annotations

import json
import logging
import os
import tempfile
import warnings
from pathlib import Path

import numpy as np
import torch
from torch import nn

from groupnet.errors import UserError

from .data import dataset_info

INPUT_PREPROCESSING = "raw uint8 pixels 0..255 as float32, NCHW, no scaling or mean shift"


class ExportError(UserError, RuntimeError):
    pass


def export_qonnx(model: nn.Module, path: str | os.PathLike, metrics: dict | None = None,
                 force: bool = False) -> Path:
    """Export ``model`` (from ``create_model``/``load_checkpoint``) to a cleaned QONNX file."""
    from brevitas.export import export_qonnx as brevitas_export_qonnx
    from qonnx.core.modelwrapper import ModelWrapper
    from qonnx.util.cleanup import cleanup_model

    path = Path(path)
    if path.exists() and not force:
        raise ExportError(f"{path} exists; pass --force to overwrite it")
    path.parent.mkdir(parents=True, exist_ok=True)
    config = dict(model.config)
    info = dataset_info(config.get("dataset", "fashion-mnist"))
    model = model.cpu().eval()
    dummy = torch.zeros(1, *model.input_shape)
    # torch's exporter logs that torchvision ops are not registered: not relevant here
    # (quietened for this export only)
    noisy = logging.getLogger("torch.onnx._internal.exporter._registration")
    level = noisy.level
    noisy.setLevel(logging.ERROR)
    try:
        with tempfile.TemporaryDirectory() as tmp, warnings.catch_warnings():
            warnings.simplefilter("ignore")
            raw = Path(tmp) / "raw.onnx"
            brevitas_export_qonnx(model, input_t=dummy, export_path=str(raw), verbose=False)
            wrapped = unshare_weight_quants(cleanup_model(ModelWrapper(str(raw))))
    finally:
        noisy.setLevel(level)
    meta = {
        "groupnet.variant": config["variant"],
        "groupnet.config": json.dumps(config, sort_keys=True),
        "groupnet.k": str(model.k),
        "groupnet.precision": model.precision,
        "groupnet.dataset": info.name,
        "groupnet.classes": json.dumps(list(info.classes)),
        "groupnet.input_shape": json.dumps([1, *model.input_shape]),
        "groupnet.input_dtype": "UINT8",
        "groupnet.input_preprocessing": INPUT_PREPROCESSING,
        "groupnet.task": getattr(model, "task", "classification"),
    }
    if meta["groupnet.task"] == "detection":       # the host's decoding of the maps
        from .detnet import host_decode_params
        meta["groupnet.decode"] = json.dumps(host_decode_params(model))
    for key, value in (metrics or {}).items():
        meta[f"groupnet.metrics.{key}"] = json.dumps(value)
    for key, value in meta.items():
        wrapped.set_metadata_prop(key, value)            # graph level: qonnx/FINN read these
        entry = wrapped.model.metadata_props.add()       # model level: ONNX tools, Netron
        entry.key, entry.value = key, value
    tmp_path = path.with_name(path.name + ".tmp")
    wrapped.save(str(tmp_path))
    os.replace(tmp_path, path)
    return path


def unshare_weight_quants(model):
    """One weight quantizer per layer: the exporter merges equal weight constants, so two
    layers with the same weights (an ABC-Net base applied to N activation bases) come out
    reading one ``Quant``/``BipolarQuant`` node, which FINN's weight folding refuses ("not
    allowed to be fork nodes"). Each further consumer gets its own copy (same values)."""
    from onnx import helper
    graph = model.graph
    for node in list(graph.node):
        if node.op_type not in ("Quant", "BipolarQuant") or \
                any(model.get_initializer(i) is None for i in node.input):
            continue
        consumers = model.find_consumers(node.output[0]) or []
        for c, consumer in enumerate(consumers[1:], start=1):
            out = f"{node.output[0]}_copy{c}"
            copy = helper.make_node(node.op_type, list(node.input), [out],
                                    name=f"{node.name}_copy{c}", domain=node.domain)
            copy.attribute.extend(node.attribute)
            graph.node.insert(list(graph.node).index(node) + 1, copy)
            model.set_tensor_shape(out, model.get_tensor_shape(node.output[0]))
            model.set_tensor_datatype(out, model.get_tensor_datatype(node.output[0]))
            for j, name in enumerate(consumer.input):
                if name == node.output[0]:
                    consumer.input[j] = out
    return model


def read_metadata(path: str | os.PathLike) -> dict[str, str]:
    import onnx
    proto = onnx.load(str(path), load_external_data=False)
    meta = {p.key: p.value for p in proto.metadata_props}
    meta.update({p.key: p.value for p in proto.graph.metadata_props})
    return meta


def execute_qonnx(path: str | os.PathLike, images: np.ndarray, batch_size: int = 100,
                  ) -> np.ndarray:
    """Run the QONNX file with qonnx's reference executor on uint8 NCHW images."""
    from qonnx.core.modelwrapper import ModelWrapper
    from qonnx.core.onnx_exec import execute_onnx
    from qonnx.transformation.change_batchsize import ChangeBatchSize
    from qonnx.transformation.infer_shapes import InferShapes

    base = ModelWrapper(str(path))
    iname, oname = base.graph.input[0].name, base.graph.output[0].name
    outs = []
    wrappers: dict[int, ModelWrapper] = {}
    for start in range(0, len(images), batch_size):
        chunk = images[start:start + batch_size].astype(np.float32)
        n = len(chunk)
        if n not in wrappers:
            wrappers[n] = base.transform(ChangeBatchSize(n)).transform(InferShapes())
        outs.append(execute_onnx(wrappers[n], {iname: chunk})[oname])
    return np.concatenate(outs)


def verify_export(path: str | os.PathLike, model: nn.Module, images: np.ndarray) -> dict:
    """Bit-exactness of the QONNX file against the PyTorch model on real images.

    Returns ``bit_exact`` (every output element identical as float32), ``n``,
    ``max_abs_diff``, ``mismatched_images`` and whether the predictions agree.
    """
    model = model.cpu().eval()
    with torch.no_grad():
        ref = model(torch.from_numpy(images).float()).numpy()
    got = execute_qonnx(path, images)
    diff = np.abs(ref - got)
    n = len(images)
    bad = np.nonzero((ref.reshape(n, -1) != got.reshape(n, -1)).any(axis=1))[0]
    return {"bit_exact": bool(len(bad) == 0), "n": int(len(images)),
            "max_abs_diff": float(diff.max()) if diff.size else 0.0,
            "mismatched_images": bad.tolist()[:20],
            "predictions_equal": bool((ref.argmax(1) == got.argmax(1)).all())}
