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

    @property
    def train_images(self) -> int:
        return round(self.synthetic_size * FER2013_TRAIN / FER2013_TOTAL)


#: smoke: CI on a 2-core CPU, whole suite in minutes. full: the study's model
#: on a FER2013-sized epoch (28,709 training images), for a GPU.
SCALES: dict[str, dict] = {
    "smoke": dict(model="test_efficientnet", synthetic_size=1600, rounds=3, batch_size=64,
                  pose_size="64x64", pose_images=320),
    "full": dict(model="efficientnet_b0", synthetic_size=35887, rounds=3, batch_size=64,
                 pose_size="256x192", pose_images=4096),
}
#: the values --perf-scale accepts; auto: full on CUDA, smoke otherwise
SCALE_CHOICES: tuple[str, ...] = (*SCALES, "auto")


def resolve_scale(name: str, *, cuda: bool, rounds: int | None = None) -> PerfScale:
    """The scale ``name`` (``auto`` decided by ``cuda``), with ``rounds`` overriding its rounds."""
    if name not in SCALE_CHOICES:
        raise ValueError(f"--perf-scale {name!r} is not one of {', '.join(SCALE_CHOICES)}")
    if rounds is not None and rounds < 1:
        raise ValueError(f"--perf-rounds must be >= 1, got {rounds}")
    if name == "auto":
        name = "full" if cuda else "smoke"
    values = dict(SCALES[name])
    if rounds is not None:
        values["rounds"] = rounds
    return PerfScale(name=name, device="cuda" if cuda else "cpu", **values)
