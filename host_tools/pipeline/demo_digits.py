"""The shipped digit classifier, made by the same pipeline as a user's model (userflow.classifier_run): scikit-learn
digits printed on a sheet the way `make sim`'s camera shows them (host_tools.sim.camera.digit_sheet), framed by the
manifest's rule, small MobileNet, settings chosen from the data (no mirror images: digits have a handedness)."""
import numpy as np

from host_tools.digits import load_digits
from host_tools.pipeline.camera_augment import Augment, source_size
from host_tools.pipeline.datasets import ClassifierData, board_view, split_indices

NAME = "digits"
INPUT_SIZE = 64
LABELS = [str(i) for i in range(10)]
SEED = 20240501
RENDERS_PER_DIGIT = 2   # each training digit printed twice, with a different pose, paper and light
FRAMING = "crop"
VIEWS = 512             # training digits also printed at full size and seen as the board sees them


def _sheets(images, seed, scale=1.0):
    """Each 8x8 digit printed on a camera-sized sheet at the size make sim shows it (scale < 1: the same sheet
    drawn smaller, for training sources that are smaller than the camera's frame anyway), one rng per call."""
    from host_tools.framing import CAMERA_H, CAMERA_W
    from host_tools.sim.camera import digit_glyph, digit_sheet
    glyph = int(round(digit_glyph(INPUT_SIZE, INPUT_SIZE, FRAMING) * scale))
    size = (int(round(CAMERA_W * scale)), int(round(CAMERA_H * scale)))
    rng = np.random.default_rng(seed)
    for im in images:
        yield digit_sheet(im, glyph, size, rng=rng)


def validation_set(seed=SEED):
    """(x, y): the validation digits as the board's camera hands them to the KPU (never printed for training)."""
    images, labels = load_digits()
    _, va = split_indices(labels, 0.2, seed)
    x = np.stack([board_view(s, INPUT_SIZE, INPUT_SIZE, FRAMING) for s in _sheets(images[va], seed + 1000)])
    return x, labels[va]


def dataset(seed=SEED, renders=RENDERS_PER_DIGIT, views=VIEWS) -> ClassifierData:
    """Training prints of the training digits (framed at the augmentation's source size), `views` of them as the
    board sees them (BatchNorm statistics, int8 calibration), and the validation set."""
    from host_tools.framing import CAMERA_H, crop_box, train_image
    images, labels = load_digits()
    tr, _ = split_indices(labels, 0.2, seed)
    sw, sh = source_size(INPUT_SIZE, INPUT_SIZE)
    scale = sh / crop_box(320, CAMERA_H, INPUT_SIZE, INPUT_SIZE, FRAMING)[3]
    sources, ys = [], []
    for r in range(renders):
        for i, sheet in zip(tr, _sheets(images[tr], seed + 1 + r, scale)):
            sources.append(train_image(sheet, sw, sh, FRAMING))
            ys.append(labels[i])
    x_view = np.stack([board_view(s, INPUT_SIZE, INPUT_SIZE, FRAMING)
                       for s in _sheets(images[tr[:views]], seed + 1)])
    x_val, y_val = validation_set(seed)
    return ClassifierData(names=LABELS, train_files=[], val_files=[], sources=sources, y_train=np.array(ys),
                          x_train_view=x_view, x_val=x_val, y_val=y_val)


def build(out_dir, strategy="default", seed=SEED, log=print):
    """Train, quantize, compile, measure and report into out_dir (digits.kmodel + digits.json when useful);
    returns (report dict, verdict)."""
    from pathlib import Path

    from host_tools.pipeline import defaults, userflow
    data = dataset(seed)
    cfg = defaults.default_config(len(data.y_train) + len(data.y_val), len(LABELS), augment=Augment(flip=False),
                                  framing=FRAMING, seed=seed)
    log("digits: %d training prints (%d per digit), %d validation digits, %dx%d RGB"
        % (len(data.y_train), RENDERS_PER_DIGIT, len(data.y_val), INPUT_SIZE, INPUT_SIZE))
    return userflow.classifier_run(NAME, data, cfg, Path(out_dir), log, strategy=strategy,
                                   source="scikit-learn digits printed on a sheet as make sim's camera shows them "
                                          "(host_tools/sim/camera.py digit_sheet)")
