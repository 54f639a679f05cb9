"""Validation figures of a trained model as float Keras, int8 LiteRT and kmodel on the KPU emulator, and the
verdict on whether the kmodel is clearly better than chance (a model that is not is never presented as done).
"""
from dataclasses import dataclass

import numpy as np

ALPHA = 0.05            # a classifier must beat chance at this significance (over all looks), and by the margin
ACCURACY_MARGIN = 0.1   # ... and by at least this much accuracy
MIN_MAP50 = 0.1         # a detector's validation mAP@0.5 below this finds nothing useful


@dataclass(frozen=True)
class Verdict:
    useful: bool
    chance: float        # accuracy of always naming the most common validation class (classifier), or 0
    message: str         # one plain sentence for the user


def kmodel_outputs(km, images_u8, desc="kmodel", progress=True) -> np.ndarray:
    """The KPU emulator's first output for each (h, w, 3) uint8 image fed as the planar bytes the board hands the
    KPU; (N, ...) float."""
    from tqdm import tqdm

    from host_tools import kmodel
    outs = [kmodel.run(km, np.ascontiguousarray(im.transpose(2, 0, 1)))[0]
            for im in tqdm(images_u8, desc=desc, unit="image", disable=not progress, dynamic_ncols=True, leave=False)]
    return np.stack(outs)


def classifier_figures(model, tflite_bytes, km, x_val, y_val, progress=True) -> dict:
    """Validation accuracy of each form of the model on the same board-view images, and the kmodel's predictions."""
    from host_tools.pipeline.quantize import run_int8
    from host_tools.pipeline.train import predict
    y_val = np.asarray(y_val)
    p_float = predict(model, x_val)
    p_int8 = run_int8(tflite_bytes, x_val)
    p_kmodel = kmodel_outputs(km, x_val, "kmodel on validation", progress).reshape(len(y_val), -1)
    acc = {k: float((p.argmax(1) == y_val).mean()) for k, p in
           (("float", p_float), ("int8", p_int8), ("kmodel", p_kmodel))}
    return {"val": acc, "pred_kmodel": p_kmodel.argmax(1),
            "kmodel_int8_top1_agreement": float((p_kmodel.argmax(1) == p_int8.argmax(1)).mean())}


def chance_accuracy(y_val, n_classes) -> float:
    counts = np.bincount(np.asarray(y_val), minlength=n_classes)
    return float(max(counts.max() / max(len(y_val), 1), 1.0 / n_classes))


def classifier_verdict(accuracy: float, y_val, n_classes: int, looks: int = 1) -> Verdict:
    """Clearly above chance: at least ACCURACY_MARGIN over it, and unlikely from a guesser at chance rate. The
    weights kept are the best of several epochs measured on this same split, so the test is corrected for `looks`
    (Bonferroni): on a small split the best of 40 noisy epochs easily shows 0.68 where 0.5 is chance. `looks`
    counts the epochs' distinct answer sets on the validation photos: a model that has settled on its answers is
    one candidate however many epochs it runs, so 8 of 8 right after 120 epochs is no luck."""
    from scipy.stats import binomtest
    n = len(y_val)
    chance = chance_accuracy(y_val, n_classes)
    right = int(round(accuracy * n))
    p = binomtest(right, n, chance, alternative="greater").pvalue if n else 1.0
    alpha = ALPHA / max(1, looks)
    if accuracy > chance + ACCURACY_MARGIN and p < alpha:
        return Verdict(True, chance, "kmodel validation accuracy %.3f (%d/%d photos), chance %.3f" % (
            accuracy, right, n, chance))
    why = "" if accuracy <= chance + ACCURACY_MARGIN else (
        "; with %d validation photos and the best of %d different answer sets kept, that is within luck (p = %.2g)"
        % (n, looks, p))
    return Verdict(False, chance, "the model is no better than chance: kmodel validation accuracy %.3f (%d/%d "
                   "photos) against %.3f for always guessing the most common class%s" % (accuracy, right, n, chance,
                                                                                         why))


def detector_verdict(map50: float) -> Verdict:
    if map50 >= MIN_MAP50:
        return Verdict(True, 0.0, "kmodel validation mAP@0.5 %.3f" % map50)
    return Verdict(False, 0.0, "the detector finds nothing useful: kmodel validation mAP@0.5 %.3f (below %.1f)"
                   % (map50, MIN_MAP50))
