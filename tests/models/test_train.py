import json

import pytest

from groupnet.models.checkpoint import load_checkpoint
import torch

from groupnet.models.train import TrainConfig, TrainError, distillation_loss, train

TINY = dict(train_limit=1024, test_limit=500, val_limit=500, batch_size=64, lr=2e-2)


def test_train_writes_checkpoints_and_metrics(tmp_path):
    cfg = TrainConfig("test_groupnet_cnv", epochs=2, **TINY)
    metrics = train(cfg, tmp_path, progress=False)
    assert (tmp_path / "last.pt").exists() and (tmp_path / "test_groupnet_cnv.pt").exists()
    saved = json.loads((tmp_path / "metrics.json").read_text())
    assert saved["test_images"] == 500 and len(saved["history"]) == 2
    assert saved["test_accuracy"] == metrics["test_accuracy"]
    # learns something real from 2 x 1024 images: well above chance (10%)
    assert metrics["test_accuracy"] > 0.25
    model, payload = load_checkpoint(tmp_path / "test_groupnet_cnv.pt")
    assert payload["metrics"]["test_accuracy"] == metrics["test_accuracy"]


def test_seeded_runs_are_reproducible(tmp_path):
    cfg = TrainConfig("test_bnn_cnv", epochs=1, **TINY)
    a = train(cfg, tmp_path / "a", progress=False)
    b = train(cfg, tmp_path / "b", progress=False)
    assert a["history"][0]["loss"] == b["history"][0]["loss"]
    assert a["test_accuracy"] == b["test_accuracy"]


def test_resume_equals_uninterrupted(tmp_path):
    full = train(TrainConfig("test_bnn_cnv", epochs=2, **TINY), tmp_path / "full",
                 progress=False)
    # resume from a run that stopped after one epoch
    one = train(TrainConfig("test_bnn_cnv", epochs=2, **TINY), tmp_path / "cut",
                progress=False, stop_after=1)
    assert len(one["history"]) == 1 and one["stopped_early"]
    assert not (tmp_path / "cut" / "test_bnn_cnv.pt").exists()
    resumed = train(TrainConfig("test_bnn_cnv", epochs=2, **TINY), tmp_path / "cut",
                    resume=True, progress=False)
    assert [h["loss"] for h in resumed["history"]] == [h["loss"] for h in full["history"]]
    assert resumed["test_accuracy"] == full["test_accuracy"]


@pytest.mark.parametrize("stop_at", [5, 21])
def test_resume_mid_epoch_equals_uninterrupted(tmp_path, stop_at):
    """Stopped inside an epoch (step 5: while Brevitas still collects the shared
    quantizer's runtime statistics; step 21: inside epoch 2) and resumed, the run ends with
    the same weights, losses and accuracy as one that never stopped."""
    cfg = TrainConfig("test_groupnet_cnv", epochs=2, **TINY)
    full = train(cfg, tmp_path / "full", progress=False)
    cut = train(cfg, tmp_path / "cut", progress=False, stop_after_steps=stop_at)
    assert cut["stopped_early"] and cut["steps_done"] == stop_at
    resumed = train(cfg, tmp_path / "cut", resume=True, progress=False)
    assert [h["loss"] for h in resumed["history"]] == [h["loss"] for h in full["history"]]
    assert resumed["test_accuracy"] == full["test_accuracy"]
    a, _ = load_checkpoint(tmp_path / "full" / "test_groupnet_cnv.pt")
    b, _ = load_checkpoint(tmp_path / "cut" / "test_groupnet_cnv.pt")
    for (name, x), y in zip(a.state_dict().items(), b.state_dict().values()):
        assert torch.equal(x, y), name


def test_periodic_checkpoints_within_an_epoch(tmp_path):
    cfg = TrainConfig("test_bnn_cnv", epochs=1, **TINY)
    train(cfg, tmp_path, progress=False, checkpoint_seconds=0.0, stop_after_steps=3)
    state = torch.load(tmp_path / "last.pt", weights_only=False)
    assert state["epoch_position"]["step"] == 3 and state["history"] == []


def test_fast_and_brevitas_quantizers_train_the_same_model(tmp_path):
    a = train(TrainConfig("test_groupnet_cnv", epochs=1, **TINY), tmp_path / "a",
              progress=False)
    b = train(TrainConfig("test_groupnet_cnv", epochs=1, fast=False, **TINY), tmp_path / "b",
              progress=False)
    assert a["history"][0]["loss"] == b["history"][0]["loss"]
    assert a["test_accuracy"] == b["test_accuracy"]


def test_per_epoch_check_is_on_val_and_the_end_reads_val_and_test(tmp_path):
    cfg = TrainConfig("test_bnn_cnv", epochs=2, eval_subset=100, **TINY)
    m = train(cfg, tmp_path, progress=False)
    assert [h["val_images"] for h in m["history"]] == [100, 100]   # every epoch, last too
    assert not any(k.startswith("check_") for h in m["history"] for k in h)
    assert m["protocol"] == "validation" and m["check_split"] == "val"
    assert m["val_images"] == 500 and 0 < m["val_accuracy"] <= 1       # TINY's val_limit
    assert m["history"][1]["test_accuracy"] == m["test_accuracy"] and m["test_images"] == 500
    assert m["train_images"] == 1024
    _, payload = load_checkpoint(tmp_path / "test_bnn_cnv.pt")
    assert payload["metrics"]["protocol"] == "validation"
    assert payload["metrics"]["val_accuracy"] == m["val_accuracy"]


def test_old_protocol_checks_on_test_images(tmp_path):
    cfg = TrainConfig("test_bnn_cnv", epochs=2, eval_subset=100, validation=False, **TINY)
    m = train(cfg, tmp_path, progress=False)
    assert m["history"][0]["check_images"] == 100
    assert "check_accuracy" not in m["history"][1]
    assert m["history"][1]["test_accuracy"] == m["test_accuracy"] and m["test_images"] == 500
    assert m["protocol"] == "test-checked" and "val_accuracy" not in m


@pytest.mark.parametrize("swa_epochs", [0, 1])
def test_training_cannot_read_the_test_set_before_the_run_is_finished(tmp_path, monkeypatch,
                                                                      swa_epochs):
    """The loader raises on a test-set load unless the run's last epoch is done (its
    checkpoint holds every epoch); a stopped run and its resume never read it early."""
    import groupnet.models.train as train_mod
    from groupnet.models.checkpoint import read_checkpoint
    real, reads, run = train_mod.load_dataset, [], {"out": tmp_path}

    def guarded(name, split, *args, **kwargs):
        if split == "test":
            last = run["out"] / "last.pt"
            done = len(read_checkpoint(last)["history"]) if last.exists() else 0
            if done < cfg.epochs:
                raise AssertionError(f"test set read after {done} of {cfg.epochs} epochs")
            reads.append(done)
        return real(name, split, *args, **kwargs)

    monkeypatch.setattr(train_mod, "load_dataset", guarded)
    cfg = TrainConfig("test_bnn_cnv", epochs=2, swa_epochs=swa_epochs, **TINY)
    cut = train(cfg, tmp_path, progress=False, stop_after=1)
    assert cut["stopped_early"] and reads == []
    m = train(cfg, tmp_path, resume=True, progress=False)
    assert reads == [2] and m["test_images"] == 500
    # and the guard does catch an early read: the old protocol reads test at the start
    run["out"] = tmp_path / "old"
    with pytest.raises(AssertionError, match="test set read after 0"):
        train(TrainConfig("test_bnn_cnv", epochs=2, validation=False, **TINY),
              tmp_path / "old", progress=False)


def test_a_run_begun_before_the_validation_protocol_resumes_only_as_such(tmp_path):
    """A last.pt without the setting was written under the old protocol."""
    cfg = TrainConfig("test_bnn_cnv", epochs=2, validation=False, **TINY)
    train(cfg, tmp_path, progress=False, stop_after=1)
    state = torch.load(tmp_path / "last.pt", weights_only=False)
    del state["train_config"]["validation"]
    torch.save(state, tmp_path / "last.pt")
    with pytest.raises(TrainError, match="validation"):
        train(TrainConfig("test_bnn_cnv", epochs=2, **TINY), tmp_path, resume=True,
              progress=False)
    m = train(cfg, tmp_path, resume=True, progress=False)
    assert m["protocol"] == "test-checked" and len(m["history"]) == 2


@pytest.fixture(scope="module")
def fp_teacher(tmp_path_factory):
    out = tmp_path_factory.mktemp("teacher")
    train(TrainConfig("fp_cnv_s", epochs=1, **{**TINY, "lr": 3e-3}), out, progress=False)
    return out / "fp_cnv_s.pt"


def test_distillation_from_a_teacher(tmp_path, fp_teacher):
    cfg = TrainConfig("test_groupnet_cnv", epochs=1, teacher=str(fp_teacher), **TINY)
    m = train(cfg, tmp_path, progress=False)
    assert m["train_config"]["teacher"] == str(fp_teacher)
    plain = train(TrainConfig("test_groupnet_cnv", epochs=1, **TINY), tmp_path / "plain",
                  progress=False)
    assert m["history"][0]["loss"] != plain["history"][0]["loss"]   # the teacher term acts


def test_distillation_loss_terms():
    logits = torch.tensor([[2.0, 0.0, -1.0]])
    labels = torch.tensor([0])
    ce = distillation_loss(logits, labels, None, 0.7, 4.0)
    assert torch.allclose(ce, torch.nn.functional.cross_entropy(logits, labels))
    # a teacher that agrees exactly adds no KL term: only (1 - alpha) CE remains
    same = distillation_loss(logits, labels, logits.clone(), 0.7, 4.0)
    assert torch.allclose(same, 0.3 * ce)


def test_teacher_of_another_dataset_or_shape_is_refused(tmp_path, fp_teacher):
    with pytest.raises(TrainError, match="trained on fashion-mnist, not mnist"):
        train(TrainConfig("test_groupnet_cnv", dataset="mnist", epochs=1,
                          teacher=str(fp_teacher), **TINY), tmp_path / "a", progress=False)
    from groupnet.models import create_model
    from groupnet.models.checkpoint import save_checkpoint
    cifar = save_checkpoint(tmp_path / "cifar.pt", create_model("fp_cnv_s", dataset="cifar10"))
    with pytest.raises(TrainError, match="trained on cifar10, not fashion-mnist"):
        train(TrainConfig("test_groupnet_cnv", epochs=1, teacher=str(cifar), **TINY),
              tmp_path / "c", progress=False)
    with pytest.raises(TrainError, match="--teacher: .*not found"):
        train(TrainConfig("test_groupnet_cnv", epochs=1, teacher=str(tmp_path / "no.pt"),
                          **TINY), tmp_path / "b", progress=False)


def test_bad_epochs_are_refused(tmp_path):
    with pytest.raises(TrainError, match="epochs must be >= 1, got -1"):
        train(TrainConfig("test_bnn_cnv", epochs=-1, **TINY), tmp_path, progress=False)


def test_existing_run_is_not_overwritten(tmp_path):
    cfg = TrainConfig("test_bnn_cnv", epochs=1, **TINY)
    train(cfg, tmp_path, progress=False)
    with pytest.raises(TrainError, match="--resume"):
        train(cfg, tmp_path, progress=False)
    train(cfg, tmp_path, force=True, progress=False)


def test_resume_with_other_settings_is_refused(tmp_path):
    train(TrainConfig("test_bnn_cnv", epochs=1, **TINY), tmp_path, progress=False)
    with pytest.raises(TrainError, match="lr"):
        train(TrainConfig("test_bnn_cnv", epochs=1, **{**TINY, "lr": 0.1}), tmp_path,
              resume=True, progress=False)


def test_two_stage_schedule(tmp_path):
    cfg = TrainConfig("test_groupnet_cnv", epochs=2, relaxed_epochs=1, **TINY)
    metrics = train(cfg, tmp_path, progress=False)
    assert [h["relaxed"] for h in metrics["history"]] == [True, False]
    with pytest.raises(TrainError, match="relaxed_epochs"):
        train(TrainConfig("test_bnn_cnv", epochs=1, relaxed_epochs=2, **TINY),
              tmp_path / "x", progress=False)


def test_soft_gates_learn_at_their_own_rate(tmp_path):
    def thetas(scale):
        cfg = TrainConfig("test_groupnet_cnv_sg", epochs=1, gate_lr_scale=scale, **TINY)
        train(cfg, tmp_path / str(scale), progress=False)
        model, _ = load_checkpoint(tmp_path / str(scale) / "test_groupnet_cnv_sg.pt")
        return torch.stack([p.detach() for n, p in model.named_parameters()
                            if n.endswith("theta")]).abs()
    slow, fast = thetas(1.0), thetas(30.0)
    assert fast.mean() > 5 * slow.mean()


@pytest.fixture(scope="module")
def trained_groupnet(tmp_path_factory):
    out = tmp_path_factory.mktemp("init")
    train(TrainConfig("test_groupnet_cnv", epochs=1, **TINY), out, progress=False)
    return out / "test_groupnet_cnv.pt"


@pytest.mark.parametrize("compact", [False, True])
def test_fine_tuning_starts_from_the_checkpoint(tmp_path, trained_groupnet, compact):
    """--init loads the trained model exactly (a compact zoo checkpoint too: same outputs,
    and the shared quantizers do not collect statistics anew), then trains with a new
    schedule; the metrics say what it started from."""
    import numpy as np

    from groupnet.models.checkpoint import compact_checkpoint
    from groupnet.models.data import load_dataset
    from groupnet.models.registry import create_model
    from groupnet.models.checkpoint import stats_collectors as _stats_collectors
    from groupnet.models.recipe import warm_start
    src = trained_groupnet
    if compact:
        src = compact_checkpoint(trained_groupnet, tmp_path / "compact.pt")
    cfg = TrainConfig("test_groupnet_cnv", epochs=1, init=str(src), **TINY)
    model = create_model("test_groupnet_cnv")
    start = warm_start(model, cfg)
    assert start["epochs"] == 1
    ref, _ = load_checkpoint(trained_groupnet)
    x = torch.from_numpy(load_dataset("fashion-mnist", "test", limit=64)[0]).float()
    with torch.no_grad():
        assert torch.equal(model.eval()(x), ref(x))
    for mod in _stats_collectors(model).values():
        assert mod.counter > mod.collect_stats_steps      # scales kept, not re-collected
    if compact:   # latent weights: the signs times the fresh layer's mean magnitude
        w = dict(model.named_parameters())
        key = next(k for k in w if k.endswith("weight") and w[k].dim() == 4
                   and torch.unique(w[k].abs()).numel() == 1)
        assert 0 < float(w[key].abs()[0, 0, 0, 0]) < 0.5
    m = train(cfg, tmp_path / "ft", progress=False)
    assert m["init"]["checkpoint"] == str(src) and m["init"]["epochs"] == 1
    assert m["init"]["test_accuracy"] == load_checkpoint(trained_groupnet)[1]["metrics"][
        "test_accuracy"]
    assert np.isfinite(m["history"][0]["loss"]) and m["test_accuracy"] > 0.25
    _, payload = load_checkpoint(tmp_path / "ft" / "test_groupnet_cnv.pt")
    assert payload["metrics"]["init"]["epochs"] == 1


def test_fine_tuning_another_variant_or_options_is_refused(tmp_path, trained_groupnet):
    with pytest.raises(TrainError, match="--init .*trained as 'test_groupnet_cnv'.*"
                                         "this run is 'test_bnn_cnv'"):
        train(TrainConfig("test_bnn_cnv", epochs=1, init=str(trained_groupnet), **TINY),
              tmp_path / "a", progress=False)
    with pytest.raises(TrainError, match=r"--init .*\(differs in agg_bits\)"):
        train(TrainConfig("test_groupnet_cnv", epochs=1, init=str(trained_groupnet),
                          overrides={"agg_bits": 3}, **TINY), tmp_path / "b", progress=False)
    with pytest.raises(TrainError, match="--init: .*not found"):
        train(TrainConfig("test_groupnet_cnv", epochs=1, init=str(tmp_path / "no.pt"),
                          **TINY), tmp_path / "c", progress=False)


SWA = dict(TINY, swa_lr=2e-3)


def test_weight_averaging_is_the_mean_of_the_last_epochs_weights(tmp_path):
    """--swa-epochs 2 of 3: one-cycle for epoch 1, then the constant swa_lr; the model
    saved is the mean of the weights at the ends of epochs 2 and 3, and its batch-norm
    statistics are recomputed with those weights on the un-augmented training images
    (here checked on the first layer's: the mean of its per-batch input means). The soft
    gates keep their own learning-rate multiple at the constant rate."""
    from groupnet.models.data import load_dataset
    cfg = TrainConfig("test_groupnet_cnv_sg", epochs=3, swa_epochs=2, **SWA)
    two = train(cfg, tmp_path / "two", progress=False, stop_after=2)
    assert two["stopped_early"]
    w2 = torch.load(tmp_path / "two" / "last.pt", weights_only=False)
    assert w2["swa"]["n"] == 1
    assert [g["lr"] for g in w2["optimizer"]["param_groups"]] == pytest.approx(
        [2e-3, 2e-3 * cfg.gate_lr_scale])
    m = train(cfg, tmp_path / "full", progress=False)
    w3 = torch.load(tmp_path / "full" / "last.pt", weights_only=False)
    assert m["swa"]["snapshots"] == 2 and m["swa"]["bn_images"] == 1024
    assert m["swa"]["last_weights_test_accuracy"] > 0.25 and m["test_accuracy"] > 0.25
    model, _ = load_checkpoint(tmp_path / "full" / "test_groupnet_cnv_sg.pt")
    last, payload = load_checkpoint(tmp_path / "full" / "test_groupnet_cnv_sg_last.pt")
    assert payload["metrics"]["test_accuracy"] == m["swa"]["last_weights_test_accuracy"]
    assert all(torch.equal(v, w3["state_dict"][k]) for k, v in last.state_dict().items())
    params = dict(model.named_parameters())
    assert set(params) == set(w3["swa"]["mean"])
    for k, p in params.items():
        mean = (w2["state_dict"][k] + w3["state_dict"][k]) / 2
        assert torch.allclose(p, mean, atol=1e-7), k
        assert torch.equal(p, w3["swa"]["mean"][k]), k
    bn = next(mod for mod in model.modules() if isinstance(mod, torch.nn.BatchNorm2d))
    seen = []
    hook = bn.register_forward_hook(lambda mod, inp, out: seen.append(inp[0].mean((0, 2, 3))))
    x = torch.from_numpy(load_dataset("fashion-mnist", "train", limit=1024)[0]).float()
    with torch.no_grad():
        for batch in torch.tensor_split(x, 3):      # 342 + 341 + 341 images
            model(batch)
    hook.remove()
    assert torch.allclose(bn.running_mean, torch.stack(seen).mean(0), atol=1e-5)
    assert not torch.equal(bn.running_mean, w3["state_dict"][
        next(k for k in w3["state_dict"] if k.endswith("running_mean"))])


@pytest.mark.parametrize("epochs,swa_epochs,stop_at", [(3, 2, 37), (2, 2, 21)])
def test_weight_averaging_resumes_exactly(tmp_path, epochs, swa_epochs, stop_at):
    """Stopped inside an epoch after one snapshot is in the mean (16-step epochs; 2 of 2:
    no one-cycle schedule at all) and resumed: the same averaged model as a run that never
    stopped."""
    cfg = TrainConfig("test_groupnet_cnv", epochs=epochs, swa_epochs=swa_epochs, **SWA)
    full = train(cfg, tmp_path / "full", progress=False)
    cut = train(cfg, tmp_path / "cut", progress=False, stop_after_steps=stop_at)
    assert torch.load(tmp_path / "cut" / "last.pt", weights_only=False)["swa"]["n"] == 1
    assert cut["stopped_early"]
    resumed = train(cfg, tmp_path / "cut", resume=True, progress=False)
    assert resumed["test_accuracy"] == full["test_accuracy"]
    assert resumed["swa"]["last_weights_test_accuracy"] == \
        full["swa"]["last_weights_test_accuracy"]
    a, _ = load_checkpoint(tmp_path / "full" / "test_groupnet_cnv.pt")
    b, _ = load_checkpoint(tmp_path / "cut" / "test_groupnet_cnv.pt")
    for (name, x), y in zip(a.state_dict().items(), b.state_dict().values()):
        assert torch.equal(x, y), name


@pytest.mark.parametrize("bad", [dict(swa_epochs=2), dict(swa_epochs=1, swa_lr=0.0)])
def test_bad_weight_averaging_is_refused(tmp_path, bad):
    with pytest.raises(TrainError, match="swa_epochs"):
        train(TrainConfig("test_bnn_cnv", epochs=1, **{**TINY, **bad}), tmp_path,
              progress=False)


def test_weight_averaging_sets_a_shared_parameter_under_every_name():
    """A ResNet shares one quantizer between layers: the mean reaches it whichever of its
    state-dict names loads last; an odd image count never makes a batch of one."""
    import numpy as np

    from groupnet.models.registry import create_model
    from groupnet.models.recipe import swa_finish as _swa_finish, swa_update as _swa_update
    model = create_model("test_groupnet_resnet")
    names = dict(model.named_parameters(remove_duplicate=False))
    assert len(names) > len(dict(model.named_parameters()))      # shared ones exist
    swa = _swa_update(model, {"n": 0, "mean": None})
    swa["mean"] = {k: v + 1 for k, v in swa["mean"].items()}
    before = {k: p.detach().clone() for k, p in names.items()}
    images = np.random.default_rng(0).integers(0, 256, (1001, 1, 28, 28), dtype=np.uint8)
    _swa_finish(model, swa, images)
    for k, p in model.named_parameters(remove_duplicate=False):
        assert torch.allclose(p, before[k] + 1), k
