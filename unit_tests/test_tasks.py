"""The Task protocol and registry: one loader signature, cheap import, a pluggable third task."""

import inspect
import subprocess
import sys

import pytest

from fer import tasks
from fer.config import TrainConfig
from fer.data.loaders import LoaderOptions
from fer.errors import ConfigError
from fer.tasks import TASKS, ExpressionTask, PoseTask, Task, make_task


def test_registry_lists_both_tasks():
    assert TASKS == {"fer": ExpressionTask, "pose": PoseTask}
    for name, cls in TASKS.items():
        assert cls.name == name
        assert set(cls.auto_model) >= {"cpu", "cuda"}
        assert set(cls.auto_synthetic_size) >= {"cpu", "cuda"}
        assert set(cls.loaders) <= {"dataloader", "device"} and cls.loaders


def test_task_facts():
    assert ExpressionTask.accuracy_name == "acc" and PoseTask.accuracy_name == "PCK@0.2"
    assert ExpressionTask.auto_model == {"cuda": "efficientnet_b0", "cpu": "test_efficientnet"}
    assert PoseTask.auto_model == {"cuda": "hrnet_w18_small", "cpu": "hrnet_w18_small"}
    assert ExpressionTask.auto_synthetic_size == {"cuda": 35887, "cpu": 12000}
    assert PoseTask.auto_synthetic_size == {"cuda": 4096, "cpu": 256}
    assert ExpressionTask.loaders == ("dataloader", "device") and PoseTask.loaders == ("device",)


def test_both_tasks_implement_the_protocol_with_one_loader_signature():
    for cls in TASKS.values():
        assert isinstance(cls(TrainConfig(task=cls.name)), Task)
    signatures = {inspect.signature(cls.make_loader) for cls in TASKS.values()}
    assert len(signatures) == 1
    (signature,) = signatures
    assert list(signature.parameters) == ["self", "data", "train", "batch_size", "options"]


def test_import_reads_task_names_without_torch():
    code = ("import sys, fer.tasks; assert 'torch' not in sys.modules, 'torch imported'; "
            "print(','.join(fer.tasks.TASKS))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "fer,pose"


@pytest.mark.parametrize("changes,match", [
    ({"num_workers": 2}, "--num-workers 2"),
    ({"num_workers": 2, "loader": "dataloader"}, "--num-workers 2"),
    ({"pose_size": "100x64"}, "--pose-size 100x64"),
    ({"image_size": 64}, "--image-size 64"),
])
def test_pose_check_config_names_the_flag(changes, match):
    config = TrainConfig(task="fer")  # valid; the pose check is called on it directly
    for name, value in changes.items():
        setattr(config, name, value)
    with pytest.raises(ConfigError, match=match):
        PoseTask.check_config(config)
    ExpressionTask.check_config(config)  # the same values are fine for expressions


def test_pose_loader_refuses_workers_instead_of_dropping_them():
    from fer.data.pose import make_synthetic_poses

    data = make_synthetic_poses(8, input_size=(32, 32), seed=0)
    task = PoseTask(TrainConfig(task="pose", pose_size="32x32"))
    options = LoaderOptions(kind="dataloader", num_workers=2)
    with pytest.raises(ConfigError, match="--num-workers"):
        task.make_loader(data, train=True, batch_size=4, options=options)
    loader = task.make_loader(data, train=True, batch_size=4, options=LoaderOptions(kind="device"))
    assert len(loader) == 2


def test_make_task_dispatches_through_the_registry(monkeypatch):
    class Marker:
        def __init__(self, config):
            self.config = config

    config = TrainConfig()
    monkeypatch.setitem(tasks.TASKS, "fer", Marker)
    assert isinstance(make_task(config), Marker)
    config.task = "nonesuch"
    with pytest.raises(ConfigError, match="--task 'nonesuch'"):
        make_task(config)


# ------------------------------------------------------ a third workload --

class _Vectors:
    """Two Gaussian blobs in 8 dimensions; 48 train rows, 16 val."""

    def __init__(self, n=64, seed=0, splits=None, source="blobs"):
        import torch

        g = torch.Generator().manual_seed(seed)
        self.y = torch.arange(n) % 2
        self.x = torch.randn(n, 8, generator=g) + 2.0 * self.y[:, None]
        self.splits = splits if splits is not None else torch.tensor([0] * 48 + [1] * 16)[:n]
        self.source = source

    def split(self, name):
        out = _Vectors.__new__(_Vectors)
        mask = self.splits == ("train", "val", "test").index(name)
        out.x, out.y, out.splits = self.x[mask], self.y[mask], self.splits[mask]
        out.source = f"{self.source}[{name}]"
        return out

    def __len__(self):
        return len(self.x)


class _Batches:
    def __init__(self, data, batch_size, options):
        self.data, self.batch_size = data, batch_size
        self.num_images = len(data)

    def set_epoch(self, epoch):
        pass

    def __len__(self):
        return -(-len(self.data) // self.batch_size)

    def __iter__(self):
        for i in range(0, len(self.data), self.batch_size):
            yield self.data.x[i:i + self.batch_size], self.data.y[i:i + self.batch_size]


class BlobTask:
    """The smallest workload: what a third task implements, and nothing else."""

    name = "blobs"
    accuracy_name = "acc"
    auto_model = {"cuda": "linear", "cpu": "linear"}
    auto_synthetic_size = {"cuda": 64, "cpu": 64}
    loaders = ("device",)

    def __init__(self, config):
        import torch

        self.criterion = torch.nn.CrossEntropyLoss()

    @classmethod
    def check_config(cls, config):
        return None

    def load_data(self, config, plan):
        return _Vectors(n=plan.synthetic_size, seed=config.seed)

    def check_data(self, train, data):
        return None

    def make_loader(self, data, *, train, batch_size, options):
        return _Batches(data, batch_size, options) if len(data) else None

    def build_model(self, name, data, config):
        import torch

        return torch.nn.Linear(8, 2)

    def loss(self, outputs, targets):
        return self.criterion(outputs, targets)

    def hits(self, outputs, targets):
        return (outputs.argmax(1) == targets).sum(), len(targets)


def test_a_third_task_plugs_in_with_one_registry_line(monkeypatch):
    from fer.engine import build_trainer

    assert isinstance(BlobTask(None), Task)
    monkeypatch.setitem(tasks.TASKS, "blobs", BlobTask)  # the one registry line
    config = TrainConfig(task="blobs", epochs=1, batch_size=16, device="cpu", model="linear",
                         learning_rate=0.1, optimizer="sgd")
    trainer = build_trainer(config)
    assert isinstance(trainer.task, BlobTask)
    (record,) = trainer.fit()
    assert record.images == 48 and record.steps == 3
    assert record.val_acc is not None and 0.0 <= record.val_acc <= 1.0
