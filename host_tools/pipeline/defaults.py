"""Classifier training settings, chosen from the data when the user gives none.

A user starts with tens of photos per class on a 2-core PC. What makes that work: a new augmented view of every
photo each epoch, enough optimizer steps whatever the dataset size (epochs scale inversely with it), warm-up then
cosine decay of the learning rate, early stopping on the validation split with the best weights kept, and
BatchNorm statistics measured on the training photos before every validation (train.py).
"""
from dataclasses import dataclass, field, replace

from host_tools.pipeline.camera_augment import Augment

ARCHS = ("small", "mobilenet", "cifar-mobilenet")
TARGET_STEPS = 800           # optimizer steps a run aims at (from scratch), whatever the dataset size
MIN_EPOCHS, MAX_EPOCHS = 20, 120
SMALL_INPUT = 64             # the small MobileNet: fast on 2 cores, enough for a few classes
CIFAR_INPUT = 32              # the TinyML slides' CIFAR-10 net (arch.cifar_mobilenet)
MOBILENET_INPUT = 224        # the seed tutorial's MobileNetV1 0.75 at 224 with ImageNet weights
MOBILENET_ALPHA = 0.75


class ConfigError(ValueError):
    """A setting outside what the pipeline supports; the message names the option."""


@dataclass(frozen=True)
class ClassifierConfig:
    arch: str = "small"
    alpha: float = MOBILENET_ALPHA      # MobileNetV1 width
    input: tuple = (SMALL_INPUT, SMALL_INPUT)   # (w, h)
    weights: str = None                 # None | "imagenet" | path of a Keras MobileNet no-top .h5
    framing: str = "crop"               # host_tools/framing.py
    val_fraction: float = 0.2
    batch: int = 16
    epochs: int = 100                   # at most; early stopping ends sooner
    patience: int = 25                  # epochs without a better validation figure before stopping
    lr: float = 2e-3
    warmup_epochs: int = 3
    head_epochs: int = 0                # transfer learning: epochs with the base frozen (then fine-tuning)
    fine_tune_lr: float = 1e-4
    augment: Augment = field(default_factory=Augment)
    seed: int = 0

    @property
    def transfer(self) -> bool:
        return self.weights is not None


def steps_per_epoch(n_train: int, batch: int) -> int:
    return max(1, -(-n_train // batch))


def default_config(n_images: int, n_classes: int, **given) -> ClassifierConfig:
    """Settings for `n_images` photos in `n_classes` classes; keyword arguments the user gave (not None) win."""
    given = {k: v for k, v in given.items() if v is not None}
    unknown = set(given) - set(ClassifierConfig.__dataclass_fields__)
    if unknown:
        raise ConfigError("unknown setting(s): %s" % ", ".join(sorted(unknown)))
    arch = given.get("arch", "mobilenet" if given.get("weights") else "small")
    if arch not in ARCHS:
        raise ConfigError("--arch must be one of %s, got %r" % (", ".join(ARCHS), arch))
    side = {"small": SMALL_INPUT, "cifar-mobilenet": CIFAR_INPUT}.get(arch, MOBILENET_INPUT)
    val_fraction = given.get("val_fraction", 0.2)
    n_train = max(1, int(round(n_images * (1 - val_fraction))))
    batch = given.get("batch", 16 if n_train < 400 else 32)
    steps = steps_per_epoch(n_train, batch)
    transfer = given.get("weights") is not None
    # a pretrained base needs far fewer steps than a net learning its features from nothing
    epochs = min(MAX_EPOCHS, max(MIN_EPOCHS, -(-(TARGET_STEPS // (3 if transfer else 1)) // steps)))
    cfg = ClassifierConfig(
        arch=arch, input=(side, side), val_fraction=val_fraction, batch=batch, epochs=epochs,
        patience=max(10, epochs // 5), lr=1e-3 if transfer else 2e-3,
        head_epochs=max(5, epochs // 4) if transfer else 0)
    cfg = replace(cfg, **given)
    check(cfg, n_classes)
    return cfg


def check(cfg: ClassifierConfig, n_classes: int):
    if cfg.arch not in ARCHS:
        raise ConfigError("--arch must be one of %s, got %r" % (", ".join(ARCHS), cfg.arch))
    if not 0 < cfg.val_fraction < 1:
        raise ConfigError("--val must be in (0, 1), got %r" % cfg.val_fraction)
    for k in ("batch", "epochs", "patience"):
        if getattr(cfg, k) < 1:
            raise ConfigError("--%s must be at least 1, got %r" % (k, getattr(cfg, k)))
    if cfg.lr <= 0 or cfg.fine_tune_lr <= 0:
        raise ConfigError("--lr must be > 0, got %r" % cfg.lr)
    if n_classes < 2:
        raise ConfigError("a classifier needs at least 2 classes, got %d" % n_classes)
