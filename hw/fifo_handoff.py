"""FIFO depths sized by simulation, handed to FINN's Vivado flow in FINN's own format.

``groupnet sim --size-fifos`` sizes one FIFO per stream edge of ``dataflow.onnx``
(``fifo_depths.json``, keyed ``<producer stream>__<consumer>`` as ``sim/stitch.py`` names
them). finn-plus's ``step_set_fifo_depths`` with ``auto_fifo_depths=False`` does not read
node attributes: it inserts width converters and a FIFO on every edge (InsertDWC,
InsertFIFO(create_shallow_fifos=True)), specialises them, renames every node
(GiveUniqueNodeNamesRecursive) and then applies ``fifo_config_file``, a JSON with per-FIFO
``fifo_depths``/``impl_style``/``ram_style`` keyed by those new names (the format of its
own ``report/fifo_sizing.json``). This module runs the same graph rewriting on a copy of
the build's graph, finds for each FINN FIFO the edge of the simulation it stands for, and
writes that file: the producer-side FIFO of an edge gets the simulated depth, the FIFO
between a width converter and its consumer (the simulation has none there) depth 2.
"""

from __future__ import annotations

import copy
import json
from pathlib import Path

from qonnx.core.modelwrapper import ModelWrapper
from qonnx.custom_op.registry import getCustomOp

from .topology import base_op

FINN_FIFO_CONFIG = "finn_fifo_config.json"
_PASS_THROUGH = ("StreamingDataWidthConverter", "StreamingFIFO")


def sim_stream(model: ModelWrapper, tensor: str) -> str:
    """The simulation's name of the stream carrying ``tensor`` (``sim/stitch.py``)."""
    if tensor == model.graph.input[0].name:
        return "top_in"
    producer = model.find_producer(tensor)
    if base_op(producer.op_type) == "DuplicateStreams":
        return f"s_{producer.name}_{list(producer.output).index(tensor)}"
    return f"s_{producer.name}"


def _finn_fifo_graph(dataflow: ModelWrapper, part: str) -> tuple[ModelWrapper, ModelWrapper]:
    """The graph as finn-plus's step_set_fifo_depths has it before applying the file,
    without and with FINN's renaming (the renaming keeps the node order)."""
    from finn.transformation.fpgadataflow.insert_dwc import InsertDWC
    from finn.transformation.fpgadataflow.insert_fifo import InsertFIFO
    from finn.transformation.fpgadataflow.specialize_layers import SpecializeLayers
    from finn.transformation.qonnx.give_unique_node_names_recursive import (
        GiveUniqueNodeNamesRecursive)
    from qonnx.transformation.general import GiveReadableTensorNames

    model = dataflow.transform(InsertDWC())
    model = model.transform(InsertFIFO(create_shallow_fifos=True))
    model = model.transform(SpecializeLayers(part))
    renamed = ModelWrapper(copy.deepcopy(model.model))
    renamed = renamed.transform(GiveUniqueNodeNamesRecursive())
    return model, renamed.transform(GiveReadableTensorNames())


def _upstream(model: ModelWrapper, tensor: str) -> tuple[str, bool]:
    """(the tensor a real layer produced, whether a width converter lies in between)."""
    through_dwc = False
    while True:
        producer = model.find_producer(tensor)
        if producer is None or not base_op(producer.op_type).startswith(_PASS_THROUGH):
            return tensor, through_dwc
        through_dwc |= base_op(producer.op_type) == "StreamingDataWidthConverter"
        tensor = producer.input[0]


def _downstream(model: ModelWrapper, tensor: str) -> str | None:
    """The real layer that finally consumes ``tensor`` (None: the graph output)."""
    while True:
        consumer = model.find_consumer(tensor)
        if consumer is None:
            return None
        if not base_op(consumer.op_type).startswith(_PASS_THROUGH):
            return consumer.name
        tensor = consumer.output[0]


def finn_fifo_config(dataflow_path: str | Path, depths: dict[str, int], part: str) -> dict:
    """FINN's fifo_config_file content for the simulated ``depths`` of this graph."""
    original = ModelWrapper(str(dataflow_path))
    model, renamed = _finn_fifo_graph(original, part)
    info = {"fifo_depths": {}, "impl_style": {}, "ram_style": {}}
    for node, final in zip(model.graph.node, renamed.graph.node):
        if node.op_type != "StreamingFIFO_rtl":
            continue
        assert final.op_type == node.op_type       # FINN's renaming keeps the order
        source, after_dwc = _upstream(model, node.input[0])
        consumer = _downstream(model, node.output[0])
        depth = 2
        if consumer is not None and not after_dwc:
            edge = f"{sim_stream(original, source)}__{consumer}"
            depth = max(2, int(depths.get(edge, 2)))
        inst = getCustomOp(final)
        info["fifo_depths"][final.name] = depth
        info["impl_style"][final.name] = inst.get_nodeattr("impl_style")
        info["ram_style"][final.name] = inst.get_nodeattr("ram_style")
    return info


def write_finn_fifo_config(build_dir: str | Path, part: str) -> Path:
    """``fifo_depths.json`` of a sized build -> ``finn_fifo_config.json`` beside it."""
    from .context import BuildPaths
    paths = BuildPaths(Path(build_dir))
    depths = json.loads(paths.fifo_depths.read_text())
    info = finn_fifo_config(paths.dataflow, depths, part)
    path = paths.root / FINN_FIFO_CONFIG
    path.write_text(json.dumps(info, indent=2) + "\n")
    return path
