"""Segmentation: scenes from real Fashion-MNIST items, the VOC loader, BPAC nets, training
and evaluation (mIoU from torchmetrics)."""

import numpy as np
import pytest
import torch

from groupnet.models import create_model
from groupnet.models.data import DatasetError, load_dataset
from groupnet.models.scenes import MASK_THRESHOLD, compose_scene, generate_scenes, load_voc
from groupnet.models.segnet import RATES, upsample_scores
from groupnet.models.train import TrainConfig, evaluate, segmentation_scores, train


@pytest.fixture(scope="module")
def scenes_test():
    return load_dataset("fashion-mnist-scenes", "test")


def test_scenes_are_fixed_real_items_with_masks(scenes_test, fmnist_test):
    images, masks = scenes_test
    assert images.shape == (2000, 1, 64, 64) and images.dtype == np.uint8
    assert masks.shape == (2000, 64, 64) and masks.max() <= 10
    # an item pixel is a bright pixel of a real item; the background is black
    assert (images[:, 0][masks > 0] > MASK_THRESHOLD).all()
    assert (images[:, 0][masks == 0] == 0).all()
    assert len(np.unique(masks)) == 11                  # every class occurs
    # the cached split is exactly the generator's output on the real test items
    again = generate_scenes(*fmnist_test, n=2000, seed=1, progress=False)
    assert np.array_equal(again[0], images) and np.array_equal(again[1], masks)


def test_later_items_occlude_earlier_ones():
    # solid square items: the last one drawn is a whole square, earlier ones lose pixels
    items, labels = np.full((5, 28, 28), 255, np.uint8), np.arange(5)
    rng = np.random.default_rng(3)
    occluded = 0
    for _ in range(20):
        image, inst, classes, _ = compose_scene(rng, items, labels, n_items=(4, 4))
        assert len(classes) == 4
        ys, xs = np.nonzero(inst == 4)
        box = (ys.max() - ys.min() + 1) * (xs.max() - xs.min() + 1)
        assert box == len(ys) and ys.max() - ys.min() == xs.max() - xs.min()
        for i in range(1, 4):
            ys, xs = np.nonzero(inst == i)
            if len(ys) and (ys.max() - ys.min() + 1) * (xs.max() - xs.min() + 1) > len(ys):
                occluded += 1
    assert occluded > 0


def _write_voc(root, names, bad_class=False, rgb_mask=False):
    from PIL import Image
    (root / "JPEGImages").mkdir(parents=True)
    (root / "SegmentationClass").mkdir()
    (root / "ImageSets" / "Segmentation").mkdir(parents=True)
    rng = np.random.default_rng(0)
    for name in names:
        Image.fromarray(rng.integers(0, 255, (40, 60, 3), dtype=np.uint8)).save(
            root / "JPEGImages" / f"{name}.jpg")
        mask = np.zeros((40, 60), np.uint8)
        mask[10:30, 20:50] = 30 if bad_class else 15     # a person
        mask[9, 20:50] = 255                             # void boundary
        if rgb_mask:
            img = Image.fromarray(np.stack([mask] * 3, -1))
        else:                     # a palette image of class indices, as VOC ships them
            img = Image.frombytes("P", (60, 40), mask.tobytes())
            img.putpalette([v for i in range(256) for v in (i, 0, 255 - i)])
        img.save(root / "SegmentationClass" / f"{name}.png")
    (root / "ImageSets" / "Segmentation" / "train.txt").write_text("\n".join(names[:2]))
    (root / "ImageSets" / "Segmentation" / "val.txt").write_text(names[2] + "\n")


def test_voc_folder(tmp_path):
    _write_voc(tmp_path / "VOC2012", ["a", "b", "c"])
    images, masks = load_dataset("voc2012", "trainval", tmp_path)   # VOC's train.txt
    assert images.shape == (2, 3, 128, 128) and masks.shape == (2, 128, 128)
    assert set(np.unique(masks)) == {0, 15, 255}          # nearest: no blended classes
    train, _ = load_dataset("voc2012", "train", tmp_path)       # less the held-out one
    val, _ = load_dataset("voc2012", "val", tmp_path)
    assert len(train) == len(val) == 1 and not np.array_equal(train, val)
    images, masks = load_voc(tmp_path, "test", size=32)
    assert images.shape == (1, 3, 32, 32)


@pytest.mark.parametrize("case, message", [
    ("missing", "ImageSets/Segmentation/train.txt not found"),
    ("no_mask", "SegmentationClass/a.png not found"),
    ("bad_class", "hold class 30"),
    ("rgb_mask", "not a palette mask"),
])
def test_voc_errors_name_the_file(tmp_path, case, message):
    root = tmp_path / "voc"
    if case != "missing":
        _write_voc(root, ["a", "b", "c"], bad_class=case == "bad_class",
                   rgb_mask=case == "rgb_mask")
    if case == "no_mask":
        (root / "SegmentationClass" / "a.png").unlink()
    if case == "missing":
        root.mkdir()
    with pytest.raises(DatasetError, match=message):
        load_dataset("voc2012", "train", root)


def _convs(group):
    return [[m for m in b.modules() if isinstance(m, (torch.nn.Conv2d,))] for b in group.branches]


def test_bpac_branch_i_has_rate_i():
    model = create_model("groupnet_segnet_k4")
    for g, group in enumerate(model.body[2:]):
        rates = [tuple(c.dilation for c in convs) for convs in _convs(group)]
        assert rates == [((r, r),) for r in RATES[g]]
        assert [convs[0].padding for convs in _convs(group)] == [(0, 0)] * 4  # -1 pads
    uniform = create_model("groupnet_segnet_k4_uniform")
    for g, group in enumerate(uniform.body[2:]):
        assert {c[0].dilation for c in _convs(group)} == {(RATES[g][-1],) * 2}
    x = torch.rand(2, 1, 64, 64) * 255
    assert model(x).shape == (2, 11, 16, 16)


def test_bpac_rates_in_the_onnx_graph(tmp_path, scenes_test):
    import onnx

    from groupnet.models.export import export_qonnx, verify_export
    model = create_model("test_groupnet_segnet", k=4).eval()
    path = export_qonnx(model, tmp_path / "seg.onnx")
    convs = [n for n in onnx.load(str(path)).graph.node if n.op_type == "Conv"]
    got = [next(list(a.ints) for a in n.attribute if a.name == "dilations") for n in convs]
    want = [list(m.dilation) for m in model.modules()
            if isinstance(m, torch.nn.Conv2d)]          # module order = branch order
    assert got == want
    assert want[-9:-1] == [[r, r] for r in RATES[0] + RATES[1]]
    check = verify_export(path, model, scenes_test[0][:4])
    assert check["bit_exact"], check


def test_upsampling_and_scores():
    s = torch.randn(2, 3, 4, 4)
    up = upsample_scores(s, (16, 16))
    assert up.shape == (2, 3, 16, 16)
    pred = torch.tensor([[0, 1], [2, 2]])[None]
    target = torch.tensor([[0, 1], [255, 1]])[None]
    r = segmentation_scores(pred, target, 3)
    assert r["accuracy"] == pytest.approx(2 / 3)        # the void pixel is not counted
    # IoU: class 0 1/1, class 1 1/2, class 2 0/1 -> mean 0.5
    assert r["miou"] == pytest.approx(0.5)


def test_train_and_evaluate_segmentation(tmp_path, scenes_test):
    cfg = TrainConfig("test_groupnet_segnet", dataset="fashion-mnist-scenes", epochs=1,
                      train_limit=256, test_limit=64, val_limit=64, batch_size=64)
    metrics = train(cfg, tmp_path, progress=False)
    assert metrics["task"] == "segmentation"
    assert 0.0 <= metrics["test_miou"] <= 1.0 and len(metrics["test_iou_per_class"]) == 11
    from groupnet.models.checkpoint import load_checkpoint
    model, _ = load_checkpoint(tmp_path / "test_groupnet_segnet.pt")
    images, masks = scenes_test
    result = evaluate(model, images[:64], masks[:64])
    assert result["predictions"].shape == (64, 64, 64)
    assert result["accuracy"] == pytest.approx(metrics["test_accuracy"])
    assert result["miou"] == pytest.approx(metrics["test_miou"])


def test_segmentation_nets_need_a_segmentation_dataset():
    with pytest.raises(ValueError, match="segmentation dataset"):
        create_model("bnn_segnet", dataset="fashion-mnist")
