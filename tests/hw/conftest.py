"""Fixtures for the hardware flow: tiny Group-Nets trained a few steps on real data and
exported (the hw flow itself only ever sees the .onnx files)."""

from __future__ import annotations

import pytest
import torch

from groupnet.models import create_model
from groupnet.models.export import export_qonnx

from ..conftest import quick_fit


@pytest.fixture(scope="session")
def exported(tmp_path_factory, fmnist_train_small):
    """name -> path of an exported tiny model (trained 6 steps on real images)."""
    cache = {}

    def get(name: str, **overrides):
        key = (name, tuple(sorted(overrides.items())))
        if key not in cache:
            torch.manual_seed(0)
            model = quick_fit(create_model(name, **overrides), *fmnist_train_small)
            folder = tmp_path_factory.mktemp("onnx")
            cache[key] = export_qonnx(model, folder / f"{name}.onnx")
        return cache[key]
    return get


@pytest.fixture(scope="session")
def images(fmnist_test):
    return fmnist_test[0][:12]


@pytest.fixture(scope="session")
def tiny_build(exported, tmp_path_factory):
    """name -> a build of the tiny model through 'estimates' (FINN env prepared)."""
    from groupnet.hw.build import BuildConfig, run_build
    from groupnet.hw.finn_env import prepare
    cache = {}

    def get(name: str = "test_groupnet_cnv"):
        if name not in cache:
            out = tmp_path_factory.mktemp("build") / name
            run_build(BuildConfig(model=str(exported(name)), out=str(out),
                                  to_step="estimates"), progress=False)
            cache[name] = out
        prepare(cache[name] / "finn_tmp")
        return cache[name]
    return get
