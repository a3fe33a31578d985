"""Faster drop-ins for two pieces of qonnx's graph bookkeeping, used during a build only.

qonnx runs a clean-up after every transformation (about 900 times in a K=4 CNV build);
its ``SortGraph`` looks up each node's producers with a scan over all nodes (quadratic in
the graph size), and ``util.get_by_name`` and ``ModelWrapper.get_initializer`` build
lists of every name per lookup. Together they were
about half of the compile time (cProfile of ``groupnet build``, see docs/build.md).

The replacements compute exactly the same results (same node order, same items, the same
exception for duplicate names); ``tests/hw/test_fast_qonnx.py`` checks them against
qonnx's own on real build graphs and that a whole build gives byte-identical graphs.
:func:`fast_bookkeeping` installs them for the duration of a block and restores qonnx's.
"""

from __future__ import annotations

import contextlib

from qonnx.transformation.base import Transformation


def get_by_name(container, name: str, name_field: str = "name"):
    """qonnx.util.basic.get_by_name, in one pass without temporary lists."""
    found = None
    for item in container:
        if getattr(item, name_field) == name:
            if found is not None:
                raise Exception("Found multiple get_by_name matches, undefined behavior")
            found = item
    return found


class SortGraph(Transformation):
    """qonnx's SortGraph (topological order via toposort_flatten over the same dependency
    sets, the same treatment of nodes without producers) with one producer map instead
    of a scan of the graph per input."""

    def apply(self, model):
        from toposort import toposort_flatten
        graph = model.graph
        if len(graph.node) == 1:
            return (model, False)
        node_list = list(graph.node)
        producer: dict[str, int] = {}
        for idx, n in enumerate(node_list):
            for out in n.output:
                producer.setdefault(out, idx)      # find_producer: the first node wins
        sources = {t.name for t in graph.initializer} | {t.name for t in graph.input}
        deps: dict[int, set[int]] = {}
        for idx, n in enumerate(node_list):
            preds = [producer[t] for t in n.input if t in producer]
            if not preds:
                if any(name in sources for name in n.input):
                    deps[idx] = set()
                continue                            # floating nodes are dropped, as in qonnx
            deps[idx] = set(preds)
        order = toposort_flatten(deps)
        for n in node_list:
            graph.node.remove(n)
        for new_idx, old_idx in enumerate(order):
            graph.node.insert(new_idx, node_list[old_idx])
        return (model, False)


def get_initializer(self, tensor_name: str, return_dtype: bool = False):
    """ModelWrapper.get_initializer (the first initializer of that name), one pass."""
    from onnx import numpy_helper
    for init in self._model_proto.graph.initializer:
        if init.name == tensor_name:
            value = numpy_helper.to_array(init)
            return (value, init.data_type) if return_dtype else value
    return (None, None) if return_dtype else None


@contextlib.contextmanager
def fast_bookkeeping():
    """Use the drop-ins inside the block (qonnx's own are restored afterwards)."""
    import qonnx.core.modelwrapper as mw
    import qonnx.util.basic as basic
    saved = (basic.get_by_name, mw.SortGraph, mw.ModelWrapper.get_initializer)
    basic.get_by_name, mw.SortGraph = get_by_name, SortGraph
    mw.ModelWrapper.get_initializer = get_initializer
    try:
        yield
    finally:
        basic.get_by_name, mw.SortGraph, mw.ModelWrapper.get_initializer = saved
