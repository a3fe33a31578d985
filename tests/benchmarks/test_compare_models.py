"""compare_models: accuracies on the check subset and the rest, pairwise disagreement and
the exact McNemar test (checked against hand-computed binomial tails)."""

import sys
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "benchmarks"))

import compare_models  # noqa: E402


def test_mcnemar_exact_is_the_two_sided_binomial_tail():
    assert compare_models.mcnemar_exact(0, 0) == 1.0
    assert compare_models.mcnemar_exact(5, 5) == 1.0
    # 0 of 5 discordant pairs for one side: 2 * (1/2)^5
    assert compare_models.mcnemar_exact(0, 5) == pytest.approx(2 / 32)
    # 1 of 7 discordant pairs: 2 * (C(7,0) + C(7,1)) / 2^7, symmetric in its arguments
    assert compare_models.mcnemar_exact(6, 1) == pytest.approx(2 * 8 / 128)
    assert compare_models.mcnemar_exact(1, 6) == compare_models.mcnemar_exact(6, 1)


def test_compare_counts_subsets_and_pairs():
    labels = np.array([0, 1, 2, 3, 0, 1, 2, 3])
    a = np.array([0, 1, 2, 3, 0, 1, 0, 0])       # 6 right: 4 of the first 4, 2 of the rest
    b = np.array([0, 1, 0, 0, 0, 1, 2, 3])       # 6 right: 2 of the first 4, 4 of the rest
    res = compare_models.compare(["a", "b"], [a, b], labels, check=4)
    ma, mb = res["models"]
    assert (ma["correct"], ma["check_accuracy"], ma["rest_accuracy"]) == (6, 1.0, 0.5)
    assert (mb["correct"], mb["check_accuracy"], mb["rest_accuracy"]) == (6, 0.5, 1.0)
    pair = res["pairs"][0]
    assert (pair["disagree"], pair["only_a"], pair["only_b"]) == (4, 2, 2)
    assert pair["p_mcnemar"] == 1.0
    md = compare_models.to_markdown(res)
    assert "| `a` | 75.00% (6) | 100.00% | 50.00% |" in md
    assert "| `a` / `b` | 4 | 2 | 2 | 1.000 |" in md
