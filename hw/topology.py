"""Which layer is which: groups, branches and shortcuts of a dataflow graph.

A Group-Net group shows up in the HW graph as a fork (``DuplicateStreams``) whose outputs
run through the K branches and meet again at an integer join (an ``ElementwiseAdd`` tree).
:func:`label_layers` walks the graph and gives every node a role:

- ``branch``: inside a fork -> join region, on output path ``b`` of fork ``g``;
- ``shortcut``: the path of a fork with no compute layer (residual groups);
- ``join``: the adder tree of group ``g``;
- ``fork``: the DuplicateStreams of group ``g`` (``group`` None for a fork without compute
  on any path, such as a residual input forking to the sign and the shortcut add);
- ``layer``: everything else (the stem, plain K=1 layers, the classifier).
"""

from __future__ import annotations

from dataclasses import dataclass

from qonnx.core.modelwrapper import ModelWrapper

COMPUTE = ("MVAU",)
FORK = "DuplicateStreams"
JOIN = "ElementwiseAdd"


def base_op(op_type: str) -> str:
    """``MVAU_hls`` -> ``MVAU`` (also ``MVAU_groupnet_rtl``, this project's RTL variant in
    ``finn_rtl.py``); generic names stay as they are."""
    for suffix in ("_groupnet_rtl", "_hls", "_rtl"):
        if op_type.endswith(suffix):
            return op_type[: -len(suffix)]
    return op_type


@dataclass
class Role:
    role: str                 # layer | fork | branch | shortcut | join
    group: int | None = None  # index of the fork (0-based, topological order)
    branch: int | None = None


def _consumers(model: ModelWrapper, tensor: str) -> list:
    return model.find_consumers(tensor) or []


def label_layers(model: ModelWrapper) -> dict[str, Role]:
    roles: dict[str, Role] = {n.name: Role("layer") for n in model.graph.node}
    group = 0
    for node in model.graph.node:
        if base_op(node.op_type) != FORK:
            continue
        paths = []
        for out in node.output:
            path, joins = [], []
            frontier = list(_consumers(model, out))
            while frontier:
                cur = frontier.pop(0)
                if base_op(cur.op_type) == JOIN:
                    joins.append(cur)
                    continue
                if base_op(cur.op_type) == FORK:      # nested fork: a new group starts
                    break
                path.append(cur)
                for o in cur.output:
                    frontier += _consumers(model, o)
            paths.append((path, joins))
        if not any(base_op(n.op_type) in COMPUTE for path, _ in paths for n in path):
            roles[node.name] = Role("fork")   # e.g. a residual input forking to sign + add
            continue
        g = group
        group += 1
        roles[node.name] = Role("fork", g)
        branch = 0
        for path, joins in paths:
            is_branch = any(base_op(n.op_type) in COMPUTE for n in path)
            for n in path:
                roles[n.name] = (Role("branch", g, branch) if is_branch
                                 else Role("shortcut", g))
            if is_branch:
                branch += 1
        # the adder tree: joins reachable from the branches, up to the last ElementwiseAdd
        stack = [j for _, joins in paths for j in joins]
        while stack:
            j = stack.pop()
            if roles[j.name].role == "join":
                continue
            roles[j.name] = Role("join", g)
            for o in j.output:
                stack += [c for c in _consumers(model, o) if base_op(c.op_type) == JOIN]
    return roles


def summary(model: ModelWrapper) -> dict:
    """Counts for reports and tests: groups, branches per group, MVAUs per branch."""
    roles = label_layers(model)
    groups: dict[int, dict[int, int]] = {}
    for node in model.graph.node:
        r = roles[node.name]
        if r.role == "branch" and base_op(node.op_type) in COMPUTE:
            groups.setdefault(r.group, {}).setdefault(r.branch, 0)
            groups[r.group][r.branch] += 1
    return {"groups": len(groups),
            "branches": {g: len(b) for g, b in sorted(groups.items())},
            "mvaus_per_branch": {g: sorted(set(b.values())) for g, b in sorted(groups.items())}}
