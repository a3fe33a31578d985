"""The build's faster qonnx/FINN bookkeeping gives exactly qonnx's and FINN's results."""

import copy
import random

import pytest
from qonnx.core.modelwrapper import ModelWrapper
from qonnx.transformation.general import SortGraph as QonnxSortGraph
from qonnx.util.basic import get_by_name as qonnx_get_by_name

from groupnet.hw import fast_qonnx
from groupnet.hw.build import BuildConfig, run_build


def _graphs(build):
    return sorted((build / "intermediate_models").glob("*.onnx"))


def test_sort_graph_equals_qonnx_on_shuffled_build_graphs(tiny_build):
    for path in _graphs(tiny_build()):
        model = ModelWrapper(str(path))
        for seed in range(3):
            shuffled = copy.deepcopy(model.model)
            nodes = list(shuffled.graph.node)
            random.Random(seed).shuffle(nodes)
            del shuffled.graph.node[:]
            shuffled.graph.node.extend(nodes)
            a, _ = QonnxSortGraph().apply(ModelWrapper(copy.deepcopy(shuffled)))
            b, _ = fast_qonnx.SortGraph().apply(ModelWrapper(copy.deepcopy(shuffled)))
            assert a.model == b.model, f"{path.name}, shuffle {seed}"


def test_get_by_name_equals_qonnx(tiny_build):
    model = ModelWrapper(str(_graphs(tiny_build())[-1]))
    names = [t.name for t in model.graph.value_info] + ["no_such_tensor"]
    for name in names:
        assert fast_qonnx.get_by_name(model.graph.value_info, name) is \
            qonnx_get_by_name(model.graph.value_info, name)
    dup = copy.deepcopy(model.model.graph)
    dup.value_info.append(dup.value_info[0])
    for fn in (qonnx_get_by_name, fast_qonnx.get_by_name):
        with pytest.raises(Exception, match="multiple get_by_name matches"):
            fn(dup.value_info, dup.value_info[0].name)


def test_get_initializer_equals_qonnx(tiny_build):
    import numpy as np
    model = ModelWrapper(str(_graphs(tiny_build())[-1]))
    names = [t.name for t in model.graph.initializer] + [model.graph.input[0].name, "nope"]
    for name in names:
        for dtype in (False, True):
            a = ModelWrapper.get_initializer(model, name, dtype)
            b = fast_qonnx.get_initializer(model, name, dtype)
            if dtype:
                assert a[1] == b[1]
                a, b = a[0], b[0]
            assert (a is None and b is None) or np.array_equal(a, b)


@pytest.mark.slow
def test_a_build_gives_the_same_graphs_with_qonnx_and_finn_own_bookkeeping(exported, tmp_path,
                                                                  monkeypatch):
    import contextlib
    onnx = str(exported("test_groupnet_cnv"))
    run_build(BuildConfig(model=onnx, out=str(tmp_path / "fast"), to_step="estimates"),
              progress=False)
    monkeypatch.setattr("groupnet.hw.build.fast_bookkeeping", contextlib.nullcontext)
    monkeypatch.setattr("groupnet.hw.streamline.SKIP_UNCHANGED_BOOKKEEPING", False)
    run_build(BuildConfig(model=onnx, out=str(tmp_path / "qonnx"), to_step="estimates"),
              progress=False)
    from qonnx.transformation.general import GiveReadableTensorNames

    def canonical(path):      # FINN's passes make up random names for new tensors
        return ModelWrapper(str(path)).transform(GiveReadableTensorNames(), cleanup=False).model
    fast = _graphs(tmp_path / "fast")
    assert len(fast) == len(_graphs(tmp_path / "qonnx")) > 5
    for a in fast + [tmp_path / "fast" / "dataflow.onnx"]:
        b = tmp_path / "qonnx" / a.relative_to(tmp_path / "fast")
        assert canonical(a) == canonical(b), a.name
