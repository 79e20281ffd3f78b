"""HRNet pose: sizes, heatmaps, loss, PCK, synthetic figures, COCO reader, loader, a short run."""

import json

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from fer.cli import main
from fer.config import TrainConfig
from fer.data.loaders import LoaderOptions
from fer.data.pose import (
    NUM_KEYPOINTS,
    STRIDE,
    decode_heatmaps,
    encode_heatmaps,
    make_pose_loader,
    make_synthetic_poses,
    parse_pose_size,
    read_coco_keypoints,
)
from fer.engine import build_trainer
from fer.errors import ConfigError, FERDataError
from fer.losses import JointsMSELoss, pck_hits


@settings(max_examples=50, deadline=None)
@given(h=st.integers(1, 40), w=st.integers(1, 40))
def test_parse_pose_size_accepts_multiples_of_32(h, w):
    assert parse_pose_size(f"{32 * h}x{32 * w}") == (32 * h, 32 * w)
    assert parse_pose_size(f"{32 * h}X{32 * w}") == (32 * h, 32 * w)


@pytest.mark.parametrize("text,match", [
    ("256", "use HEIGHTxWIDTH"), ("axb", "use HEIGHTxWIDTH"), ("256x192x3", "use HEIGHTxWIDTH"),
    ("100x64", "multiples of 32"), ("0x0", "multiples of 32"), ("-32x64", "multiples of 32"),
])
def test_parse_pose_size_errors_name_the_flag(text, match):
    with pytest.raises(ConfigError, match=match) as info:
        parse_pose_size(text)
    assert "--pose-size" in str(info.value)


@settings(max_examples=50, deadline=None)
@given(xy=st.lists(st.tuples(st.floats(4, 187), st.floats(4, 251)), min_size=NUM_KEYPOINTS,
                   max_size=NUM_KEYPOINTS))
def test_heatmaps_round_trip_within_a_heatmap_pixel(xy):
    kp = torch.tensor([[x, y, 2.0] for x, y in xy]).unsqueeze(0)
    heatmaps, weight = encode_heatmaps(kp, (64, 48))
    assert heatmaps.shape == (1, NUM_KEYPOINTS, 64, 48) and weight.all()
    decoded = decode_heatmaps(heatmaps)
    assert ((decoded - kp[..., :2]).abs() <= STRIDE).all()  # one heatmap pixel = STRIDE px


def _batch():
    kp = torch.tensor(make_synthetic_poses(4, input_size=(64, 64), seed=3).keypoints)
    kp[:, 3, 2] = 0  # an unlabelled joint
    return kp


def test_loss_ignores_unlabelled_joints():
    kp = _batch()
    target, _ = encode_heatmaps(kp, (16, 16))
    loss = JointsMSELoss()
    changed = target.clone()
    changed[:, 3] += 5.0  # garbage on the unlabelled joint
    assert loss(changed, kp) == pytest.approx(loss(target, kp).item(), abs=1e-9)
    changed = target.clone()
    changed[:, 4] += 5.0  # garbage on a labelled one
    assert loss(changed, kp) > loss(target, kp) + 1e-3


def test_pck_perfect_and_shifted():
    kp = _batch()
    target, _ = encode_heatmaps(kp, (16, 16))
    hits, labelled = pck_hits(target, kp)
    assert hits == labelled == int((kp[..., 2] > 0).sum())
    far = torch.roll(target, shifts=8, dims=-1)
    assert pck_hits(far, kp)[0] < labelled


def test_synthetic_poses():
    data = make_synthetic_poses(40, input_size=(64, 64), seed=1)
    assert data.images.shape == (40, 3, 64, 64) and data.images.dtype == np.uint8
    assert data.keypoints.shape == (40, NUM_KEYPOINTS, 3)
    assert set(np.unique(data.keypoints[..., 2])) <= {0.0, 1.0, 2.0}
    assert (data.keypoints[..., 2] == 1).any()  # some joints occluded
    assert data.split_sizes() == {"train": 32, "val": 4, "test": 4}
    again = make_synthetic_poses(40, input_size=(64, 64), seed=1)
    np.testing.assert_array_equal(data.images, again.images)


def test_loader_batches_normalised_images_and_keypoints():
    data = make_synthetic_poses(40, input_size=(64, 64), seed=1).split("train")  # 32
    it = make_pose_loader(data, train=True, batch_size=8, options=LoaderOptions(kind="device"))
    batches = list(it)
    assert len(batches) == len(it) == 4 and it.num_images == 32
    x, kp = batches[0]
    assert x.shape == (8, 3, 64, 64) and x.dtype == torch.float32
    assert kp.shape == (8, NUM_KEYPOINTS, 3)
    assert -3 < float(x.mean()) < 3  # ImageNet-normalised, not 0..255
    ordered = make_pose_loader(data, train=False, batch_size=32,
                               options=LoaderOptions(kind="device"))
    np.testing.assert_array_equal(next(iter(ordered))[1].numpy(), data.keypoints)


@pytest.mark.parametrize("options,match", [
    (LoaderOptions(kind="dataloader"), "--loader dataloader"),
    (LoaderOptions(kind="dataloader", num_workers=2), "--num-workers 2"),
    (LoaderOptions(kind="device", image_size=64), "--image-size 64"),
])
def test_loader_refuses_options_it_cannot_honour(options, match):
    data = make_synthetic_poses(8, input_size=(32, 32), seed=0)
    with pytest.raises(ConfigError, match=match):
        make_pose_loader(data, train=True, batch_size=4, options=options)


@pytest.mark.slow
def test_short_cpu_run_improves_pck():
    config = TrainConfig(task="pose", pose_size="64x64", synthetic_size=400, epochs=3,
                         batch_size=16, device="cpu", learning_rate=3e-3)
    records = build_trainer(config).fit()
    assert records[-1].val_acc > records[0].val_acc
    assert records[-1].loss < records[0].loss


# ----------------------------------------------------------------- COCO --

def _coco(tmp_path, annotation_changes=None):
    from PIL import Image

    (tmp_path / "img").mkdir()
    Image.new("RGB", (200, 100), (10, 20, 30)).save(tmp_path / "img" / "a.jpg")
    kps = [0.0] * (3 * NUM_KEYPOINTS)
    kps[0:3] = [100.0, 50.0, 2]  # nose at the box centre
    kps[3:6] = [80.0, 30.0, 1]
    ann = {"id": 7, "image_id": 1, "bbox": [60.0, 10.0, 80.0, 80.0], "keypoints": kps,
           "num_keypoints": 2, "iscrowd": 0}
    ann.update(annotation_changes or {})
    coco = {"images": [{"id": 1, "file_name": "a.jpg"}],
            "annotations": [ann, dict(ann, id=8, iscrowd=1)]}
    path = tmp_path / "person_keypoints_val.json"
    path.write_text(json.dumps(coco))
    return path


def test_coco_reader_crops_to_the_input_aspect(tmp_path):
    data = read_coco_keypoints(_coco(tmp_path), tmp_path / "img", input_size=(64, 32))
    assert data.images.shape == (1, 3, 64, 32)  # the crowd annotation is skipped
    nose = data.keypoints[0, 0]
    assert nose[0] == pytest.approx(16, abs=0.5) and nose[1] == pytest.approx(32, abs=0.5)
    assert data.keypoints[0, 1, 2] == 1 and data.keypoints[0, 5, 2] == 0


@pytest.mark.parametrize("change,match", [
    ({"keypoints": [1, 2, 3]}, "must hold 51 numbers"),
    ({"bbox": [0, 0, -5, 10]}, "'bbox' must be"),
    ({"image_id": 99}, "image_id 99"),
])
def test_coco_reader_errors(tmp_path, change, match):
    with pytest.raises(FERDataError, match=match):
        read_coco_keypoints(_coco(tmp_path, change), tmp_path / "img", input_size=(64, 32))


def test_coco_missing_image(tmp_path):
    path = _coco(tmp_path)
    (tmp_path / "img" / "a.jpg").unlink()
    with pytest.raises(FERDataError, match="a.jpg: image of annotation 7 not found"):
        read_coco_keypoints(path, tmp_path / "img", input_size=(64, 32))


# ------------------------------------------------------------------ CLI --

@pytest.mark.slow
def test_cli_train_and_profile_pose(tmp_path, capsys):
    tiny = ["--task", "pose", "--pose-size", "64x64", "--synthetic-size", "120",
            "--batch-size", "16", "--device", "cpu"]
    assert main(["train", *tiny, "--epochs", "1"]) == 0
    assert "final validation PCK@0.2" in capsys.readouterr().out
    assert main(["profile", *tiny, "--steps", "2", "--wait", "0", "--warmup", "1",
                 "--out", str(tmp_path / "p")]) == 0
    assert "convolution" in capsys.readouterr().out


def test_cli_pose_errors(capsys):
    assert main(["train", "--task", "pose", "--pose-size", "100x64"]) == 2
    assert "multiples of 32" in capsys.readouterr().err
    assert main(["train", "--task", "pose", "--data", "x.json", "--pose-size", "64x64",
                 "--device", "cpu"]) == 2
    assert "--coco-images" in capsys.readouterr().err
