"""benchmarks/budgets.py on a synthetic sweep: a spec of tiny variants at three budgets,
parked metrics for some of its points, a result store with machine paths."""

import json
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "benchmarks"))

import budgets  # noqa: E402

# test accuracy per (family, seed); None: not trained yet. 1x: test_bnn_cnv; 2x: w1a2 and
# K=2 (seed ranges overlap); 4x: w2a2 and K=4 (apart: K=4 leads by 3 points)
TESTS = {("test_bnn_cnv", 0): 0.80, ("test_bnn_cnv", 1): None,
         ("test_cnv_w1a2", 0): 0.80, ("test_cnv_w1a2", 1): 0.85,
         ("test_groupnet_cnv k=2", 0): 0.83, ("test_groupnet_cnv k=2", 1): 0.86,
         ("test_cnv_w2a2", 0): 0.85, ("test_cnv_w2a2", 1): 0.86,
         ("test_groupnet_cnv k=4", 0): 0.88, ("test_groupnet_cnv k=4", 1): 0.89}


@pytest.fixture(scope="module")
def sweep(tmp_path_factory):
    from groupnet.explore import load_spec
    from groupnet.explore.budgets import family_of

    tmp = tmp_path_factory.mktemp("budgets")
    park = tmp / "t-budgets"        # the spec's park folder, here not under the repository
    park.mkdir()
    spec = tmp / "spec.yaml"
    spec.write_text(yaml.safe_dump({
        "name": "t", "train": {"epochs": 1}, "boards": ["pynq-z2"], "park": "models/sweeps/t-budgets",
        "space": [{"variant": "test_bnn_cnv", "seed": [0, 1]},
                  {"variant": "test_cnv_w1a2", "seed": [0, 1]},
                  {"variant": "test_groupnet_cnv", "k": 2, "seed": [0, 1]},
                  {"variant": "test_cnv_w2a2", "seed": [0, 1]},
                  {"variant": "test_groupnet_cnv", "k": 4, "seed": [0, 1]}]}))
    store = []
    for i, p in enumerate(load_spec(spec).points):
        test = TESTS[family_of(p.label), p.train["seed"]]
        if test is None:
            continue
        (park / f"{p.variant}_{p.key}.metrics.json").write_text(json.dumps(
            {"val_accuracy": test - 0.01, "test_accuracy": test, "protocol": "validation",
             "train_config": {"seed": p.train["seed"]}, "train_seconds": 1.0}))
        store.append({"kind": "eval", "key": f"e{i}", "point": p.key, "board": "pynq-z2",
                      "quality": test, "status": "ok", "lut": 1000 * (i + 1),
                      "fps_est": 100.0 * (i % 3 + 1), "bram18": 4, "clock_mhz": 100.0,
                      "build": str(tmp / "runs" / p.key), "checkpoint": str(tmp / "x.pt")})
        if p.variant == "test_cnv_w2a2":      # a build of an older training of the point
            store.append({**store[-1], "key": f"old{i}", "quality": 0.5, "lut": 1})
    (tmp / "results.jsonl").write_text("\n".join(map(json.dumps, store)) + "\n")
    out = tmp / "out"
    assert budgets.main(["--spec", str(spec), "--store", str(tmp / "results.jsonl"),
                         "--park", str(park), "--out", str(out), "--name", "b"]) == 0
    return tmp, json.loads((out / "b.json").read_text()), (out / "b.md").read_text()


def test_budgets_grouped_with_mean_and_spread(sweep):
    _, data, _ = sweep
    fam = {f["family"]: f for f in data["families"]}
    assert {f: r["budget"] for f, r in fam.items()} == {
        "test_bnn_cnv": 1, "test_cnv_w1a2": 2, "test_groupnet_cnv k=2": 2, "test_cnv_w2a2": 4,
        "test_groupnet_cnv k=4": 4}
    k4 = fam["test_groupnet_cnv k=4"]
    assert (k4["test_mean"], k4["test_spread"]) == (pytest.approx(0.885), pytest.approx(0.01))
    assert k4["val_mean"] == pytest.approx(0.875)
    assert (fam["test_bnn_cnv"]["done"], fam["test_bnn_cnv"]["planned"]) == (1, 2)


def test_verdicts_and_partial_sweep(sweep):
    _, data, md = sweep
    assert (data["planned"], data["done"], data["partial"]) == (10, 9, True)
    assert [v["kind"] for v in data["verdicts"]] == ["alone", "within seed spread", "leads"]
    assert "**Partial sweep: 9 of 10 points done**" in md
    assert ("`test_groupnet_cnv k=2` and `test_cnv_w1a2` are within seed spread on test "
            "(test means 84.50% vs 82.50%") in md
    assert "`test_groupnet_cnv k=4` leads `test_cnv_w2a2` by 3.00 points on test" in md
    assert "| 1x | `test_bnn_cnv` |" in md and "| 80.00 / - | 80.00 |" in md


def test_hardware_columns_copied_without_machine_paths(sweep):
    tmp, data, md = sweep
    builds = data["builds"]
    assert len(builds) == 9 and data["hardware"].startswith("9 rows")
    assert all(b["lut"] > 1 for b in builds)                 # the older training's row: not
    assert not any(k in b for b in builds for k in ("build", "checkpoint"))
    assert {r["family"] for r in data["boards"]["pynq-z2"]} == {f for f, _ in TESTS}
    assert (tmp / "out" / "b_pynq-z2.png").stat().st_size > 1000

    def strings(x):
        if isinstance(x, dict):
            return [s for k, v in x.items() for s in strings(k) + strings(v)]
        return [s for v in x for s in strings(v)] if isinstance(x, list) else (
            [x] if isinstance(x, str) else [])
    assert not [s for s in strings(data) if s.startswith("/") or str(tmp) in s]
    assert str(tmp) not in md and "runs/" not in md and data["park"] == "models/sweeps/t-budgets"


def test_no_store_no_hardware_and_a_wrong_seed_refused(sweep, tmp_path):
    tmp, _, _ = sweep
    assert budgets.main(["--spec", str(tmp / "spec.yaml"), "--store", str(tmp_path / "no"),
                         "--park", str(tmp / "t-budgets"), "--out", str(tmp_path),
                         "--name", "b"]) == 0
    assert "No hardware columns" in (tmp_path / "b.md").read_text()
    assert json.loads((tmp_path / "b.json").read_text())["families"][0]["binary_macs"] > 0
    park = tmp_path / "park"
    park.mkdir()
    one = next((tmp / "t-budgets").glob("test_bnn_cnv_*.metrics.json"))
    (park / one.name).write_text(one.read_text().replace('"seed": 0', '"seed": 7'))
    with pytest.raises(SystemExit, match="seed 7, the spec says 0"):
        budgets.main(["--spec", str(tmp / "spec.yaml"), "--park", str(park),
                      "--out", str(tmp_path)])
