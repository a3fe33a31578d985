"""Detection: box scenes from real Fashion-MNIST items, VOC and COCO folders, the host
post-processing (decode, NMS, mAP) against references, FCOS targets, training."""

import json

import numpy as np
import pytest
import torch

from groupnet.hw.driver.groupnet_driver.detection import (box_iou, coco_map, decode,
                                                                 nms)
from groupnet.models import create_model
from groupnet.models.data import DatasetError, load_dataset
from groupnet.models.detection_data import MIN_VISIBLE, boxes_of, generate_box_scenes
from groupnet.models.detnet import _targets
from groupnet.models.train import TrainConfig, train


@pytest.fixture(scope="module")
def box_scenes():
    return load_dataset("fashion-mnist-boxes", "test")


def test_box_scenes_from_real_items(box_scenes, fmnist_test):
    images, boxes = box_scenes
    assert images.shape == (2000, 1, 96, 96) and len(boxes) == 2000
    flat = np.concatenate(list(boxes))
    assert flat.shape[1] == 5 and set(np.unique(flat[:, 4])) == set(range(10))
    assert (flat[:, :2] >= 0).all() and (flat[:, 2:4] <= 96).all()
    assert (flat[:, 2] > flat[:, 0]).all() and (flat[:, 3] > flat[:, 1]).all()
    for img, b in zip(images[:50], boxes[:50]):      # every box holds bright item pixels
        for x0, y0, x1, y1, _ in b.astype(int):
            assert img[0, y0:y1, x0:x1].max() > 40
    again = generate_box_scenes(*fmnist_test, n=2000, seed=11, progress=False)
    assert np.array_equal(again[0], images)
    assert all(np.array_equal(a, b) for a, b in zip(again[1], boxes))


def test_mostly_hidden_items_are_dropped():
    inst = np.zeros((10, 10), np.uint8)
    inst[0:4, 0:4] = 1                 # item 1: 16 of its 40 pixels visible
    inst[5:9, 5:9] = 2                 # item 2: whole
    out = boxes_of(inst, [3, 7], [40, 16])
    assert MIN_VISIBLE == 0.5 and out.tolist() == [[5, 5, 9, 9, 7]]


def _voc(root, objects):
    from PIL import Image
    for sub in ("Annotations", "JPEGImages", "ImageSets/Main"):
        (root / sub).mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.zeros((50, 100, 3), np.uint8)).save(root / "JPEGImages" / "a.jpg")
    objs = "".join(f"<object><name>{n}</name><difficult>{d}</difficult><bndbox><xmin>{b[0]}"
                   f"</xmin><ymin>{b[1]}</ymin><xmax>{b[2]}</xmax><ymax>{b[3]}</ymax>"
                   f"</bndbox></object>" for n, d, b in objects)
    (root / "Annotations" / "a.xml").write_text(f"<annotation>{objs}</annotation>")
    (root / "ImageSets" / "Main" / "val.txt").write_text("a\n")


def test_voc_detection_folder(tmp_path):
    _voc(tmp_path, [("dog", 0, (11, 1, 60, 25)), ("person", 1, (1, 1, 5, 5))])
    images, boxes = load_dataset("voc-detection", "test", tmp_path)
    assert images.shape == (1, 3, 128, 128)
    # 1-based inclusive corners -> 0-based exclusive, scaled 100x50 -> 128x128; difficult out
    np.testing.assert_allclose(boxes[0], [[10 * 1.28, 0, 60 * 1.28, 25 * 2.56, 11]], rtol=1e-6)
    _voc(tmp_path / "bad", [("unicorn", 0, (1, 1, 5, 5))])
    with pytest.raises(DatasetError, match="unknown class 'unicorn'"):
        load_dataset("voc-detection", "test", tmp_path / "bad")
    with pytest.raises(DatasetError, match="ImageSets/Main/train.txt not found"):
        load_dataset("voc-detection", "train", tmp_path)


def test_coco_folder(tmp_path):
    from PIL import Image
    (tmp_path / "annotations").mkdir()
    (tmp_path / "val2017").mkdir()
    Image.fromarray(np.zeros((64, 32, 3), np.uint8)).save(tmp_path / "val2017" / "1.jpg")
    ann = {"images": [{"id": 1, "file_name": "1.jpg", "width": 32, "height": 64}],
           "categories": [{"id": 90}, {"id": 3}],
           "annotations": [{"id": 1, "image_id": 1, "category_id": 90, "bbox": [2, 4, 8, 16],
                            "iscrowd": 0},
                           {"id": 2, "image_id": 1, "category_id": 3, "bbox": [0, 0, 1, 1],
                            "iscrowd": 1}]}
    (tmp_path / "annotations" / "instances_val2017.json").write_text(json.dumps(ann))
    images, boxes = load_dataset("coco", "test", tmp_path)
    assert images.shape == (1, 3, 128, 128)
    np.testing.assert_allclose(boxes[0], [[8, 8, 40, 40, 1]])   # id 90 -> 1 (ids sorted)
    ann["annotations"][0]["category_id"] = 5
    (tmp_path / "annotations" / "instances_val2017.json").write_text(json.dumps(ann))
    with pytest.raises(DatasetError, match="category 5"):
        load_dataset("coco", "test", tmp_path)


PARAMS = {"stride": 8, "cls_scale": 1.0, "cls_bias": [0.0] * 3, "box_scale": 1.0,
          "box_bias": 0.0, "ctr_scale": 1.0, "ctr_bias": 0.0}


def test_decode_boxes_from_known_cell_outputs():
    maps = np.full((1, 8, 4, 4), -20.0)              # 3 classes + 5; all cells "nothing"
    maps[0, 1, 2, 1] = 20.0                          # class 1 at row 2, col 1
    maps[0, 3:7, 2, 1] = np.log([1.0, 0.5, 2.0, 1.5])   # distances = 8 * these
    maps[0, 7, 2, 1] = 20.0                          # centerness ~1
    (det,) = decode(maps, PARAMS, (32, 32))
    cx, cy = 1.5 * 8, 2.5 * 8
    np.testing.assert_allclose(det["boxes"], [[cx - 8, cy - 4, cx + 16, cy + 12]], rtol=1e-5)
    assert det["classes"].tolist() == [1] and det["scores"][0] > 0.99


def test_nms_against_brute_force():
    rng = np.random.default_rng(0)
    for _ in range(20):
        xy = rng.uniform(0, 50, (30, 2))
        boxes = np.concatenate([xy, xy + rng.uniform(5, 30, (30, 2))], 1)
        scores = rng.uniform(size=30)
        keep = nms(boxes, scores, 0.5)
        # brute force: a box is kept iff no kept box with a higher score overlaps > 0.5
        kept = []
        for i in np.argsort(-scores):
            if all(box_iou(boxes[i:i + 1], boxes[j:j + 1])[0, 0] <= 0.5 for j in kept):
                kept.append(i)
        assert keep.tolist() == kept


def test_coco_map_perfect_and_empty():
    truth = [np.asarray([[10, 10, 30, 40, 0], [50, 50, 70, 60, 2]], np.float32)]
    perfect = [{"boxes": truth[0][:, :4], "scores": np.ones(2, np.float32),
                "classes": truth[0][:, 4].astype(int)}]
    assert coco_map(perfect, truth, 3, (96, 96))["map50"] == pytest.approx(1.0)
    assert coco_map(perfect, truth, 3, (96, 96))["map"] == pytest.approx(1.0)
    empty = [{"boxes": np.zeros((0, 4)), "scores": np.zeros(0), "classes": np.zeros(0, int)}]
    assert coco_map(empty, truth, 3, (96, 96))["map50"] == 0.0


def test_fcos_targets_pick_the_smallest_box():
    big = torch.tensor([[0.0, 0.0, 32.0, 32.0, 1.0], [8.0, 8.0, 24.0, 24.0, 2.0]])
    cls_t, box_t, ctr_t = _targets([big], 4, 4, 8, 3)
    grid = cls_t.reshape(4, 4)
    assert grid[1, 1] == 2 and grid[2, 2] == 2          # inside both: the smaller wins
    assert grid[0, 0] == -1                             # outside the centre radius of both
    assert box_t[0, 5].tolist() == [4.0, 4.0, 12.0, 12.0]   # cell (1,1): centre (12, 12)
    assert 0 < ctr_t[0, 5] < 1


def test_train_and_export_a_tiny_detector(tmp_path, box_scenes):
    cfg = TrainConfig("test_groupnet_detnet", dataset="fashion-mnist-boxes", epochs=1,
                      train_limit=256, test_limit=64, val_limit=64, batch_size=64)
    metrics = train(cfg, tmp_path, progress=False)
    assert 0.0 <= metrics["test_map50"] <= 1.0 and 0.0 <= metrics["test_map"] <= 1.0
    assert set(metrics["decode"]) >= {"cls_scale", "box_scale", "stride"}
    from groupnet.models.checkpoint import load_checkpoint
    from groupnet.models.export import export_qonnx, read_metadata, verify_export
    model, _ = load_checkpoint(tmp_path / "test_groupnet_detnet.pt")
    path = export_qonnx(model, tmp_path / "det.onnx")
    meta = read_metadata(path)
    assert meta["groupnet.task"] == "detection" and "cls_bias" in json.loads(
        meta["groupnet.decode"])
    assert verify_export(path, model, box_scenes[0][:4])["bit_exact"]
    with pytest.raises(ValueError, match="detection dataset"):
        create_model("bnn_detnet", dataset="fashion-mnist")


def test_detector_distillation(tmp_path, box_scenes):
    """A detector learns from a detector: the dense teacher term changes the loss, a
    teacher that is the student itself adds nothing to the hard term's gradient target,
    and a classifier teacher is one line."""
    import torch

    from groupnet.models.detnet import detection_distillation_loss, detection_loss
    from groupnet.models.train import TrainError
    tiny = dict(dataset="fashion-mnist-boxes", epochs=1, train_limit=128, test_limit=32, val_limit=32,
                batch_size=64)
    teacher = tmp_path / "t"
    train(TrainConfig("test_groupnet_detnet", **tiny), teacher, progress=False)
    ckpt = teacher / "test_groupnet_detnet.pt"
    m = train(TrainConfig("test_groupnet_detnet", teacher=str(ckpt), seed=1, **tiny),
              tmp_path / "s", progress=False)
    plain = train(TrainConfig("test_groupnet_detnet", seed=1, **tiny), tmp_path / "p",
                  progress=False)
    assert m["history"][0]["loss"] != plain["history"][0]["loss"]
    assert 0.0 <= m["test_map50"] <= 1.0

    torch.manual_seed(0)
    model = create_model("test_groupnet_detnet").eval()
    x = torch.from_numpy(box_scenes[0][:4]).float()
    boxes = [torch.from_numpy(b) for b in box_scenes[1][:4]]
    maps = model(x)
    hard = detection_loss(model, maps, boxes)
    assert torch.isclose(detection_distillation_loss(model, maps, boxes, model, maps, 0.0),
                         hard)
    assert detection_distillation_loss(model, maps, boxes, model, maps, 1.0) >= 0

    cls_teacher = tmp_path / "c"
    train(TrainConfig("test_bnn_cnv", epochs=1, train_limit=64, test_limit=32, val_limit=32),
          cls_teacher, progress=False)
    with pytest.raises(TrainError, match="--teacher"):
        train(TrainConfig("test_groupnet_detnet", teacher=str(cls_teacher / "test_bnn_cnv.pt"),
                          **tiny), tmp_path / "x", progress=False)
