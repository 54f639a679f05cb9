"""The shipped digit classifier: scikit-learn digits rendered like camera images -> small MobileNet -> int8."""
import numpy as np

from host_tools.pipeline import arch
from host_tools.pipeline.datasets import split_indices
from host_tools.digits import load_digits, render_dataset

NAME = "digits"
INPUT_SIZE = 64
LABELS = [str(i) for i in range(10)]
SEED = 20240501
RENDERS_PER_DIGIT = 3   # each training digit drawn 3 times with a different pose/light: the augmentation
EPOCHS = 15


def dataset(seed=SEED, renders=RENDERS_PER_DIGIT, size=INPUT_SIZE):
    """(x_train, y_train, x_val, y_val) uint8 images; validation digits are never drawn for training."""
    images, labels = load_digits()
    tr, va = split_indices(labels, 0.2, seed)
    xs, ys = [], []
    for r in range(renders):
        x, y = render_dataset(images[tr], labels[tr], size, seed + 1 + r)
        xs.append(x)
        ys.append(y)
    x_val, y_val = validation_set(seed, size)
    return np.concatenate(xs), np.concatenate(ys), x_val, y_val


def validation_set(seed=SEED, size=INPUT_SIZE):
    """Only the validation images of `dataset` (same split, same renders): for checking a shipped model."""
    images, labels = load_digits()
    _, va = split_indices(labels, 0.2, seed)
    return render_dataset(images[va], labels[va], size, seed + 1000)


def build(out_dir, strategy="default", epochs=EPOCHS, seed=SEED, log=print):
    """Train, quantize, report; writes <out>/digits.keras, digits_int8.tflite, digits_report.{json,md}, PNGs."""
    from host_tools.pipeline import quantize, report, train
    x_tr, y_tr, x_val, y_val = dataset(seed)
    log("digits: %d training images (%d renders per digit), %d validation, %dx%d RGB"
        % (len(x_tr), RENDERS_PER_DIGIT, len(x_val), INPUT_SIZE, INPUT_SIZE))
    model, hist = train.train_classifier(lambda: arch.small_mobilenet(INPUT_SIZE, len(LABELS), name=NAME),
                                         x_tr, y_tr, x_val, y_val, epochs=epochs, batch_size=64, lr=3e-3,
                                         strategy=strategy, seed=seed, desc="digits")
    calib = quantize.representative(train.to_input(x_tr), 200, seed)
    tfl = quantize.to_int8_tflite(model, calib)
    rep, p_float, p_int8 = quantize.classifier_report(model, tfl, x_val, y_val)
    paths = report.save_model_files(out_dir, NAME, model, tfl)
    cm = train.confusion_matrix(y_val, p_int8.argmax(1), len(LABELS))
    train.save_curves(hist, out_dir / (NAME + "_curves.png"), "digits: small MobileNet 64x64")
    train.save_confusion(cm, LABELS, out_dir / (NAME + "_confusion.png"), "digits int8 tflite (validation)")
    rep.update({"name": NAME, "kind": "classifier", "labels": LABELS, "input": [INPUT_SIZE, INPUT_SIZE, 3],
                "epochs": epochs, "train_images": int(len(x_tr)), "seed": seed,
                "final_train_accuracy": hist["accuracy"][-1], "final_val_accuracy": hist["val_accuracy"][-1]})
    report.write_report(out_dir, NAME, rep, "Digit classifier (scikit-learn digits rendered like camera images)")
    log("digits: float val accuracy %.2f%%, int8 %.2f%%" % (100 * rep["float_accuracy"], 100 * rep["int8_accuracy"]))
    return rep, paths
