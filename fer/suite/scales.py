"""How big the perf suite's runs are: the scales, resolved once. No torch here."""

from __future__ import annotations

from dataclasses import dataclass

FER2013_TRAIN, FER2013_TOTAL = 28709, 35887


@dataclass(frozen=True)
class PerfScale:
    """One perf scale: the model, epoch size and rounds every experiment starts from."""

    name: str
    model: str
    synthetic_size: int  # images in all splits; 80% train like FER2013
    rounds: int  # timed epochs per benchmark (after one warm-up epoch)
    batch_size: int
    device: str
    pose_size: str  # HRNet pose input for the pose experiments
    pose_images: int  # synthetic stick figures (80% train)
    image_size: int = 48  # the side the expression model sees
    channels: int = 1  # 3: the face repeated into an ImageNet-shaped stem
    loader: str = "device"  # the loader experiments start from
    num_workers: int = 0
    epoch_images: int | None = None  # an epoch stops after this many images (None: all)
    #: the fastest honest step (a whole-step CUDA graph) for the experiments that are not
    #: about the step itself and can be captured (Experiment.fast_step), on CUDA only
    graph_step: bool = False
    #: seconds the first compiled step of a --compile point may take before it is skipped
    #: (trained uncompiled, the fallback recorded): a mode that compiles for minutes cannot
    #: overrun a GPU window (benchmarks/gpu_plan.py)
    compile_budget: float = 120.0

    @property
    def train_images(self) -> int:
        images = round(self.synthetic_size * FER2013_TRAIN / FER2013_TOTAL)
        return min(images, self.epoch_images) if self.epoch_images else images


#: smoke: CI on a 2-core CPU, whole suite in minutes. full: the study's model on a
#: FER2013-sized epoch (28,709 training images) at 48x48, for a GPU; the step is graphed where
#: the experiment is not about the step, since at 48x48 the eager step is launch-bound.
#: study: the study's regime, 224x224 three-channel inputs (an ImageNet-pretrained
#: EfficientNet's), resized and augmented per sample in 8 DataLoader workers so that the
#: worker count matters; epochs bounded to 6,400 images so that a GPU job stays short.
SCALES: dict[str, dict] = {
    "smoke": dict(model="test_efficientnet", synthetic_size=1600, rounds=3, batch_size=64,
                  pose_size="64x64", pose_images=320),
    "full": dict(model="efficientnet_b0", synthetic_size=35887, rounds=3, batch_size=64,
                 pose_size="256x192", pose_images=4096, graph_step=True),
    "study": dict(model="efficientnet_b0", synthetic_size=35887, rounds=3, batch_size=64,
                  pose_size="256x192", pose_images=4096, image_size=224, channels=3,
                  loader="dataloader", num_workers=8, epoch_images=6400, graph_step=True),
}
#: the values --perf-scale accepts; auto: full on CUDA, smoke otherwise
SCALE_CHOICES: tuple[str, ...] = (*SCALES, "auto")


def resolve_scale(name: str, *, cuda: bool, rounds: int | None = None,
                  eager: bool = False) -> PerfScale:
    """The scale ``name`` (``auto`` decided by ``cuda``), with ``rounds`` overriding its rounds;
    ``eager``: never graph the step (``--perf-step eager``)."""
    if name not in SCALE_CHOICES:
        raise ValueError(f"--perf-scale {name!r} is not one of {', '.join(SCALE_CHOICES)}")
    if rounds is not None and rounds < 1:
        raise ValueError(f"--perf-rounds must be >= 1, got {rounds}")
    if name == "auto":
        name = "full" if cuda else "smoke"
    values = dict(SCALES[name])
    if rounds is not None:
        values["rounds"] = rounds
    if eager or not cuda:
        values["graph_step"] = False
    return PerfScale(name=name, device="cuda" if cuda else "cpu", **values)
