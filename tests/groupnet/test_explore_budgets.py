"""groupnet/explore/budgets.py: families grouped by binary-op budget, mean and spread over
seeds, the budget verdicts, the per-board front; results.jsonl read without a store."""

import json

import pytest

from groupnet.explore.budgets import (board_rows, budget_of, family_of, paragraph, summarise,
                                      verdicts)
from groupnet.explore.store import read_records

M = 3_600_000


def pt(family, seed, test, val=None, macs=M):
    return {"family": family, "seed": seed, "binary_macs": macs, "test_accuracy": test,
            "val_accuracy": test if val is None and test is not None else val}


def by_family(rows):
    return {r["family"]: r for r in rows}


def test_family_drops_the_seed_only():
    assert family_of("bnn_cnv seed=1 width=0.3536") == "bnn_cnv width=0.3536"
    assert family_of("groupnet_cnv_s_k2 agg_bits=4 seed=0") == "groupnet_cnv_s_k2 agg_bits=4"
    assert family_of("bnn_cnv_s seed=12") == "bnn_cnv_s"


@pytest.mark.parametrize("macs, budget", [(M, 1), (2 * M, 2), (int(2.03 * M), 2),
                                          (4 * M - 5000, 4), (int(1.3 * M), 1)])
def test_budget_is_the_nearest_power_of_two(macs, budget):
    assert budget_of(macs, M) == budget


def test_families_grouped_by_budget_with_mean_and_spread():
    rows = summarise([pt("a", 0, 0.80), pt("a", 1, 0.84), pt("b", 0, 0.86, macs=2 * M),
                      pt("c", 0, 0.88, macs=int(2.03 * M)), pt("c", 1, 0.90, macs=2 * M),
                      pt("d", 0, None, macs=4 * M), pt("d", 1, None, macs=4 * M)])
    f = by_family(rows)
    assert [r["family"] for r in rows] == ["a", "c", "b", "d"]     # budget, then test mean
    assert (f["a"]["budget"], f["b"]["budget"], f["c"]["budget"], f["d"]["budget"]) == (1, 2, 2, 4)
    assert f["a"]["test_mean"] == pytest.approx(0.82)
    assert f["a"]["test_spread"] == pytest.approx(0.04)
    assert f["a"]["test_range"] == [0.80, 0.84]
    assert (f["b"]["done"], f["b"]["planned"], f["b"]["test_spread"]) == (1, 1, None)
    assert (f["d"]["done"], f["d"]["planned"], f["d"]["test_mean"]) == (0, 2, None)


@pytest.mark.parametrize("b_tests, kind", [
    ((0.85, 0.87), "leads"),                   # ranges 0.88-0.90 and 0.85-0.87: apart
    ((0.86, 0.88), "within seed spread"),      # touching ranges overlap
    ((0.87, 0.891), "within seed spread"),
    ((0.87, None), "one seed"),
])
def test_top_two_ranked_only_when_their_seed_ranges_are_apart(b_tests, kind):
    points = [pt("a", 0, 0.88), pt("a", 1, 0.90), pt("z", 0, 0.70), pt("z", 1, 0.71)]
    points += [pt("b", s, t) for s, t in enumerate(b_tests)]
    (v,) = verdicts(summarise(points))
    assert (v["kind"], v["leader"], v["runner_up"]) == (kind, "a", "b")
    assert v["lead"] == pytest.approx(0.89 - sum(t for t in b_tests if t) /
                                      len([t for t in b_tests if t]))


def test_leader_on_test_validation_leader_beside():
    rows = summarise([pt("a", 0, 0.90, val=0.85), pt("b", 0, 0.88, val=0.87)])
    (v,) = verdicts(rows)
    assert (v["leader"], v["val_leader"]) == ("a", "b")
    assert "The validation mean puts `b` first" in paragraph(rows, 2)


def test_paragraph_says_partial_and_states_the_numbers():
    points = [pt("a", 0, 0.80), pt("a", 1, 0.84), pt("b", 0, 0.90, macs=2 * M),
              pt("b", 1, 0.91, macs=2 * M), pt("c", 0, 0.85, macs=2 * M),
              pt("c", 1, 0.86, macs=2 * M), pt("d", 0, None, macs=4 * M)]
    text = paragraph(summarise(points), planned=7)
    assert "Partial sweep: 6 of 7 points done" in text
    assert "only `a` trained, test mean 82.00% (2 of 2 seeds, spread 4.00 points)" in text
    assert "`b` leads `c` by 5.00 points on test (test means 90.50% vs 85.50%" in text
    assert "**4x** (14.4 M binary ops/image): nothing trained yet" in text
    done = paragraph(summarise(points[:6]), planned=6)
    assert "Partial" not in done and "All 6 points done" in done
    one = paragraph(summarise([pt("a", 0, 0.9), pt("a", 1, None), pt("b", 0, 0.8)]), 3)
    assert "1 seed: no spread yet (`a` 1 of 2, `b` 1 of 1 seeds)" in one
    assert "leads" not in one


def test_board_rows_mean_over_seeds_and_front():
    rows = summarise([pt("a", 0, 0.80), pt("a", 1, 0.82), pt("b", 0, 0.90, macs=2 * M),
                      pt("c", 0, 0.85, macs=2 * M)])
    hw = [{"family": "a", "board": "x", "status": "ok", "lut": 100, "fps_est": 10, "bram18": 2},
          {"family": "a", "board": "x", "status": "ok", "lut": 110, "fps_est": 10, "bram18": 4},
          {"family": "b", "board": "x", "status": "ok", "lut": 200, "fps_est": 10, "bram18": 5},
          {"family": "c", "board": "x", "status": "ok", "lut": 300, "fps_est": 5, "bram18": 5},
          {"family": "c", "board": "y", "status": "nofit"}]
    out = board_rows(rows, hw)
    x = by_family(out["x"])
    assert (x["a"]["lut"], x["a"]["bram18"], x["a"]["quality"]) == (105, 3, pytest.approx(0.81))
    assert (x["a"]["front"], x["b"]["front"], x["c"]["front"]) == (True, True, False)
    assert out["y"] == [{"family": "c", "budget": 2, "quality": 0.85, "seeds": 0,
                         "status": "nofit", "front": False}]


def test_read_records_keeps_the_latest_and_skips_a_torn_line(tmp_path):
    path = tmp_path / "copy.jsonl"
    path.write_text("\n".join([json.dumps({"kind": "eval", "key": "k", "lut": 1}),
                               json.dumps({"kind": "eval", "key": "k", "lut": 2}),
                               json.dumps({"kind": "sim", "key": "k"}), '{"kind": "ev']))
    recs = read_records(path)
    assert recs[("eval", "k")]["lut"] == 2 and set(recs) == {("eval", "k"), ("sim", "k")}
    assert read_records(tmp_path / "none.jsonl") == {}
    assert not (tmp_path / "none.jsonl").exists()
