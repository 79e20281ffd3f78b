"""The engine: records, timing split, precision, resume, divergence."""

import math

import pytest
import torch

from fer.config import TrainConfig
from fer.data import make_synthetic_faces
from fer.engine import EpochRecord, TrainingError, build_trainer, resolve_device
from fer.errors import ConfigError


@pytest.fixture(scope="module")
def small_data():
    return make_synthetic_faces(240, seed=0)  # 192 train, 24 val


def cfg(**kw):
    base = dict(model="test_efficientnet", device="cpu", epochs=2, batch_size=32,
                synthetic_size=240)
    base.update(kw)
    return TrainConfig(**base)


@pytest.mark.parametrize("loader,workers", [("device", 0), ("dataloader", 0), ("dataloader", 2)])
def test_records_are_consistent(small_data, loader, workers):
    records = build_trainer(cfg(loader=loader, num_workers=workers), data=small_data).fit()
    assert [r.epoch for r in records] == [0, 1]
    for r in records:
        assert r.images == 192 and r.steps == 6
        assert r.wall_s > 0 and 0 <= r.data_wait_s <= r.wall_s
        assert math.isclose(r.data_wait_s + r.compute_s, r.wall_s, rel_tol=1e-9)
        assert math.isclose(r.images_per_s, r.images / r.wall_s)
        assert 0 <= r.train_acc <= 1 and 0 <= r.val_acc <= 1 and math.isfinite(r.loss)
        assert r.peak_mem_bytes > 0 and r.peak_mem_kind == "process_peak_rss"
        assert r.val_loss is not None and r.eval_s > 0
        assert 0 <= r.data_wait_share <= 1


def test_dataloader_workers_show_data_wait(small_data):
    r = build_trainer(cfg(loader="dataloader", num_workers=1, epochs=1), data=small_data).train_epoch()
    assert r.data_wait_s > 0


@pytest.mark.slow
def test_training_learns(small_data):
    data = make_synthetic_faces(3000, seed=1)
    records = build_trainer(cfg(epochs=3, batch_size=32, synthetic_size=3000), data=data).fit()
    assert records[-1].loss < records[0].loss
    assert records[-1].val_acc > 0.4  # 7 classes: chance is 0.14


@pytest.mark.parametrize("precision", ["fp32", "amp_bf16", "amp_fp16"])
def test_precisions_run_on_cpu(small_data, precision):
    r = build_trainer(cfg(precision=precision, epochs=1, max_steps_per_epoch=2),
                data=small_data).train_epoch()
    assert r.steps == 2 and math.isfinite(r.loss)
    assert r.skipped_steps >= 0


def test_fp16_overflow_steps_are_counted_not_fatal(small_data):
    trainer = build_trainer(cfg(precision="amp_fp16", epochs=1, max_steps_per_epoch=3), data=small_data)
    trainer.precision.scaler = torch.amp.GradScaler("cpu", init_scale=2.0**40)
    r = trainer.train_epoch()
    assert r.skipped_steps >= 1


def test_resume_gives_the_same_weights_as_straight(small_data, tmp_path):
    straight = build_trainer(cfg(epochs=2, checkpoint_dir=str(tmp_path / "a")), data=small_data)
    straight.fit()
    first = build_trainer(cfg(epochs=2, checkpoint_dir=str(tmp_path / "b")), data=small_data)
    first.run_epoch()  # ...and the process stops here
    resumed = build_trainer(cfg(epochs=2, checkpoint_dir=str(tmp_path / "b"), resume=True), data=small_data)
    assert resumed.epoch == 1 and len(resumed.records) == 1
    resumed.fit()
    a, b = straight.raw_model.state_dict(), resumed.raw_model.state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert [r.loss for r in straight.records] == [r.loss for r in resumed.records]


def test_checkpoint_is_refused_when_it_holds_code(small_data, tmp_path):
    class Evil:
        def __reduce__(self):
            return (print, ("pwned",))

    (tmp_path / "last.pt").write_bytes(b"")
    torch.save({"format": 1, "x": Evil()}, tmp_path / "last.pt")
    with pytest.raises(ConfigError, match="refused or unreadable checkpoint"):
        build_trainer(cfg(checkpoint_dir=str(tmp_path), resume=True), data=small_data)


def test_resume_without_checkpoint(small_data, tmp_path):
    with pytest.raises(ConfigError, match="no checkpoint at"):
        build_trainer(cfg(checkpoint_dir=str(tmp_path), resume=True), data=small_data)


def test_nan_loss_stops_with_a_clear_error(small_data):
    trainer = build_trainer(cfg(epochs=1, max_steps_per_epoch=2, learning_rate=1e30,
                          optimizer="sgd"), data=small_data)
    with torch.no_grad():
        for p in trainer.raw_model.parameters():
            p.fill_(float("nan"))
    with pytest.raises(TrainingError, match="NaN/Inf in epoch 1") as info:
        trainer.train_epoch()
    assert "--precision fp32" not in str(info.value).split(";")[-1]  # it is fp32 already


def test_channels_last_and_resize(small_data):
    r = build_trainer(cfg(channels_last=True, image_size=64, epochs=1, max_steps_per_epoch=1),
                data=small_data).train_epoch()
    assert r.steps == 1


def test_record_round_trip():
    r = EpochRecord(epoch=0, images=10, steps=1, wall_s=2.0, data_wait_s=0.5, compute_s=1.5,
                    images_per_s=5.0, loss=1.0, train_acc=0.5, lr=0.1, peak_mem_bytes=1,
                    peak_mem_kind="process_peak_rss")
    d = r.to_dict()
    assert d["data_wait_share"] == 0.25
    assert EpochRecord.from_dict(d) == r


def test_resolve_device():
    assert resolve_device("cpu").type == "cpu"
    assert resolve_device("auto").type in ("cpu", "cuda")
    with pytest.raises(ConfigError, match="--device"):
        resolve_device("tpu")
    if not torch.cuda.is_available():
        with pytest.raises(ConfigError, match="no CUDA device"):
            resolve_device("cuda:0")


def test_no_training_rows(small_data):
    import numpy as np

    data = make_synthetic_faces(20, seed=0)
    data.splits = np.full(20, 2, dtype=np.int8)
    with pytest.raises(ConfigError, match="no training rows"):
        build_trainer(cfg(), data=data)


# ------------------------------------------------------- the step/epoch API --

def test_train_epoch_advances_the_epoch_and_keeps_the_record(small_data):
    trainer = build_trainer(cfg(epochs=3, max_steps_per_epoch=2), data=small_data)
    first = trainer.train_epoch()
    second = trainer.train_epoch()
    assert (first.epoch, second.epoch, trainer.epoch) == (0, 1, 2)
    assert trainer.records == [first, second]
    assert first.val_acc is None  # validation is separate: validate() fills it, once
    assert trainer.validate(first) is first and first.val_acc is not None


def test_run_steps_crosses_epochs_without_records(small_data):
    trainer = build_trainer(cfg(epochs=1), data=small_data)  # 6 steps an epoch
    seen = []
    done = trainer.run_steps(9, on_step=lambda steps, images, wait: seen.append(steps))
    assert (done.steps, done.images) == (9, 9 * 32) and seen == list(range(1, 10))
    assert done.wall_s > 0 and 0 <= done.data_wait_s <= done.wall_s
    assert trainer.records == [] and trainer.epoch == 0


def test_the_plan_is_what_the_trainer_built(small_data):
    trainer = build_trainer(cfg(optimizer="sgd", lr_scaling="linear", base_batch_size=16),
                            data=small_data)
    plan = trainer.plan
    assert (plan.model, plan.device, plan.loader) == ("test_efficientnet", "cpu", "device")
    assert plan.lr == 0.05 * 32 / 16 == trainer.optimizer.param_groups[0]["lr"]
    assert trainer.global_batch == plan.global_batch == 32


def test_precision_reports_skipped_steps():
    from fer.precision import resolve_precision

    model = torch.nn.Linear(4, 1)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    fp32 = resolve_precision("fp32", "cpu")
    assert fp32.backward_and_step(model(torch.randn(2, 4)).sum(), optimizer) is False
    fp16 = resolve_precision("amp_fp16", "cpu")
    fp16.scaler = torch.amp.GradScaler("cpu", init_scale=2.0**40)  # the scaled loss overflows: skipped
    before = [p.detach().clone() for p in model.parameters()]
    loss = model(torch.full((2, 4), 1e30)).sum()
    assert fp16.backward_and_step(loss, optimizer) is True
    assert all(torch.equal(a, b) for a, b in zip(before, model.parameters()))


# ------------------------------------------- resume cannot lose work --

@pytest.fixture(scope="module")
def saved_checkpoint(small_data, tmp_path_factory):
    """A checkpoint after 1 epoch (of 1 step), adam, default learning rate."""
    folder = tmp_path_factory.mktemp("ckpt")
    trainer = build_trainer(cfg(epochs=3, max_steps_per_epoch=1, checkpoint_dir=str(folder)),
                            data=small_data)
    trainer.run_epoch()
    return folder


@pytest.fixture
def ckpt_dir(saved_checkpoint, tmp_path):
    import shutil

    return str(shutil.copytree(saved_checkpoint, tmp_path / "ckpt"))


def resume_cfg(ckpt_dir, **kw):
    return cfg(epochs=3, max_steps_per_epoch=1, checkpoint_dir=ckpt_dir, resume=True, **kw)


def test_a_fresh_run_never_overwrites_a_checkpoint(small_data, ckpt_dir):
    with pytest.raises(ConfigError, match=r"holds a checkpoint after epoch 1 .*pass --resume "
                       r"to continue that run, or --overwrite to replace it"):
        build_trainer(cfg(epochs=3, max_steps_per_epoch=1, checkpoint_dir=ckpt_dir),
                      data=small_data)
    trainer = build_trainer(cfg(epochs=3, max_steps_per_epoch=1, checkpoint_dir=ckpt_dir,
                                overwrite=True), data=small_data)
    assert trainer.epoch == 0


def test_resume_refuses_another_optimizer_naming_it(small_data, ckpt_dir):
    with pytest.raises(ConfigError, match=r"--optimizer sgd \(checkpoint: adam\)"):
        build_trainer(resume_cfg(ckpt_dir, optimizer="sgd"), data=small_data)
    with pytest.raises(ConfigError, match=r"--seed 3 \(checkpoint: 0\), --label-smoothing "
                       r"0.1 \(checkpoint: 0.0\)|--label-smoothing 0.1 .*--seed 3"):
        build_trainer(resume_cfg(ckpt_dir, seed=3, label_smoothing=0.1), data=small_data)


def test_resume_puts_a_new_learning_rate_in_force(small_data, ckpt_dir):
    trainer = build_trainer(resume_cfg(ckpt_dir, learning_rate=0.0123), data=small_data)
    assert trainer.epoch == 1 and trainer.lr == 0.0123
    assert all(g["lr"] == pytest.approx(0.0123) for g in trainer.optimizer.param_groups)
    record = trainer.train_epoch()
    assert record.lr == pytest.approx(0.0123)
    assert trainer.scheduler.get_last_lr()[0] == pytest.approx(0.0123)


def test_resume_may_extend_epochs(small_data, ckpt_dir):
    trainer = build_trainer(cfg(epochs=5, max_steps_per_epoch=1, checkpoint_dir=ckpt_dir,
                                resume=True), data=small_data)
    assert trainer.epoch == 1 and len(trainer.records) == 1


def test_resume_with_another_class_count_is_a_clean_error(small_data, ckpt_dir):
    from fer.data import FERPLUS_CLASSES, FERData

    eight = FERData(images=small_data.images, labels=small_data.labels % 8,
                    splits=small_data.splits, class_names=FERPLUS_CLASSES, source="eight")
    with pytest.raises(ConfigError, match=r"last.pt: the checkpoint does not fit this run"):
        build_trainer(resume_cfg(ckpt_dir), data=eight)


def test_a_checkpoint_lacking_keys_is_a_clean_error(small_data, ckpt_dir):
    from pathlib import Path

    path = Path(ckpt_dir) / "last.pt"
    state = torch.load(path, weights_only=True)
    del state["optimizer"], state["scheduler"]
    torch.save(state, path)
    with pytest.raises(ConfigError, match=r"last.pt: the checkpoint lacks optimizer, scheduler"):
        build_trainer(resume_cfg(ckpt_dir), data=small_data)


def test_stale_temporaries_of_a_killed_write_are_removed(small_data, ckpt_dir):
    from pathlib import Path

    stale = Path(ckpt_dir) / ".last.pt.abc123.tmp"
    stale.write_bytes(b"torn")
    other = Path(ckpt_dir) / "notes.txt"
    other.write_text("keep")
    build_trainer(resume_cfg(ckpt_dir), data=small_data)
    assert not stale.exists() and other.exists()


def test_three_channel_inputs_train(small_data):
    trainer = build_trainer(cfg(channels=3, image_size=64, epochs=1, max_steps_per_epoch=2),
                            data=small_data)
    assert trainer.raw_model.conv_stem.in_channels == 3
    r = trainer.train_epoch()
    assert r.steps == 2 and math.isfinite(r.loss)
