"""Calibration methods measured: validation accuracy (float Keras / int8 LiteRT / kmodel on the KPU emulator) of
each method on named data, the figures the default (host_tools/pipeline/calibration.py DEFAULT) was chosen from.

  1. the shipped digits demo (models/digits.keras, small MobileNet with ReLU6) on its held-out digits, calibrated as
     `make models` calibrates it;
  2. the TinyML slides' cifar-mobilenet (plain ReLU: unbounded activations) trained --epochs (default 4) on the
     same digits rendered at 32x32, calibrated on 200 of its training images.

    .venv/bin/python bench/calibration.py [--epochs 4] [--percentile 99.99]
"""
import argparse
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402


def digits_demo(percentile):
    import keras
    from host_tools.pipeline import calibration_report, demo_digits, quantize, train
    model = keras.models.load_model(ROOT / "models" / "digits.keras", compile=False)
    x_tr, _, x_val, y_val = demo_digits.dataset()
    calib = quantize.representative(train.to_input(x_tr), 200, demo_digits.SEED)
    return calibration_report.compare(model, calib, x_val, y_val, percentile), len(y_val)


def cifar_net_on_digits(epochs, percentile):
    import keras
    from host_tools.pipeline import arch, calibration_report, demo_digits, quantize, train
    x_tr, y_tr, x_val, y_val = demo_digits.dataset(size=32)
    keras.utils.set_random_seed(0)
    model = arch.cifar_mobilenet(32, 10)
    model.compile(keras.optimizers.Adam(1e-3), "sparse_categorical_crossentropy", metrics=["accuracy"])
    model.fit(train.to_input(x_tr), y_tr, batch_size=64, epochs=epochs, verbose=0)
    train.BatchNormSettler(model)(x_tr)
    calib = quantize.representative(train.to_input(x_tr), 200, 0)
    return calibration_report.compare(model, calib, x_val, y_val, percentile), len(y_val)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--epochs", type=int, default=4)
    ap.add_argument("--percentile", type=float, default=99.99)
    args = ap.parse_args()
    from host_tools.pipeline import calibration_report, quiet
    quiet.import_tensorflow()
    for title, fn in (("digits demo (small MobileNet, ReLU6, 64x64)", lambda: digits_demo(args.percentile)),
                      ("cifar-mobilenet (ReLU) on digits 32x32, %d epochs" % args.epochs,
                       lambda: cifar_net_on_digits(args.epochs, args.percentile))):
        t = time.monotonic()
        rows, n = fn()
        print("\n## %s (%.0f s)\n" % (title, time.monotonic() - t))
        print(calibration_report.table(rows, n, args.percentile))
        sys.stdout.flush()


if __name__ == "__main__":
    main()
