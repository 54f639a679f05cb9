"""Writing a trained model's files and its report (JSON for tools and tests, Markdown for people)."""
import json
from pathlib import Path

from host_tools.files import write_atomic


def save_model_files(out_dir, name, model, tflite_bytes):
    """<name>.keras (the source model) and <name>_int8.tflite (what the compiler reads), both written atomically."""
    import tempfile
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    import keras
    # A fresh, uncompiled copy: the shipped file holds the model, not the optimizer state (3x smaller).
    plain = keras.Model.from_config(model.get_config())
    plain.set_weights(model.get_weights())
    with tempfile.TemporaryDirectory() as tmp:
        p = Path(tmp) / (name + ".keras")
        plain.save(p)  # keras insists on writing a path itself; move the bytes over atomically
        keras_path = write_atomic(out_dir / (name + ".keras"), p.read_bytes())
    tfl_path = write_atomic(out_dir / (name + "_int8.tflite"), tflite_bytes)
    return {"keras": keras_path, "tflite": tfl_path}


def write_report(out_dir, name, rep: dict, title: str):
    out_dir = Path(out_dir)
    write_atomic(out_dir / (name + "_report.json"), json.dumps(rep, indent=1, sort_keys=True) + "\n")
    lines = ["# %s" % title, ""]
    for k in sorted(rep):
        v = rep[k]
        if isinstance(v, float):
            v = "%.4f" % v
        elif isinstance(v, (list, dict)) and len(json.dumps(v)) > 100:
            continue
        lines.append("- %s: %s" % (k, v))
    write_atomic(out_dir / (name + "_report.md"), "\n".join(lines) + "\n")


def write_train_report(out_dir, name, rep: dict) -> dict:
    """<name>_report.json (everything, for tools and tests) and <name>_report.md (for people) of a `train` run."""
    out_dir = Path(out_dir)
    js = write_atomic(out_dir / (name + "_report.json"), json.dumps(rep, indent=1, sort_keys=True) + "\n")
    metric = {"accuracy": "accuracy", "map50": "mAP@0.5"}[rep["metric"]]
    val = rep["val"]
    lines = ["# %s: %s" % (name, rep["kind"]), "",
             "Trained from `%s`. %s." % (rep["data"], rep["verdict"][0].upper() + rep["verdict"][1:]), ""]
    if not rep["useful"]:
        lines += ["**Not usable: no kmodel or manifest was written.** More photos per class, classes that look "
                  "more different, or photos closer to what the board's camera will see usually help.", ""]
    lines += ["| validation %s | float (Keras) | int8 (LiteRT) | kmodel (KPU emulator) |" % metric,
              "|---|---|---|---|",
              "| %s | %.3f | %.3f | %.3f |" % (_count(rep["photos"]["val"]), val["float"], val["int8"], val["kmodel"]),
              ""]
    if rep["kind"] == "classifier":
        lines += ["Chance (always the most common class): %.3f. Accuracy on the training photos: %.3f." % (
            rep["chance"], rep["train_accuracy"]), "",
            "| class | training photos | validation photos | kmodel validation accuracy |", "|---|---|---|---|"]
        for n in rep["labels"]:
            lines.append("| %s | %d | %d | %.3f |" % (n, rep["photos"]["train"][n], rep["photos"]["val"][n],
                                                   rep["per_class_val_accuracy"][n]))
        lines.append("")
    else:
        lines += ["Anchors (grid cells): %s; threshold %.2f, NMS %.2f." % (
            ", ".join("%g" % a for a in rep["anchors"]), rep["threshold"], rep["nms"]), ""]
    s = rep["settings"]
    lines += ["Every figure is measured on the validation photos as the board's camera hands them to the KPU "
              "(framing `%s`)." % rep["framing"], "",
              "## Settings", ""]
    unused = set()
    if s.get("arch") == "small":
        unused.add("alpha")
    if not s.get("weights"):
        unused.update(("weights", "head_epochs", "fine_tune_lr"))
    lines += ["- %s: %s" % (k, json.dumps(v)) for k, v in sorted(s.items())
              if not isinstance(v, dict) and k not in unused]
    if "epochs_run" in rep:
        lines.append("- epochs run: %d (best weights from epoch %d)" % (rep["epochs_run"], rep["best_epoch"]))
    lines += ["", "## Time (seconds, wall)", ""]
    lines += ["- %s: %.1f" % (k, v) for k, v in rep["seconds"].items()]
    lines += ["", "## Files", ""]
    lines += ["- %s: %s" % (k, v or "(not written)") for k, v in sorted(rep["files"].items())]
    md = write_atomic(out_dir / (name + "_report.md"), "\n".join(lines) + "\n")
    return {"json": js, "md": md}


def _count(photos) -> str:
    n = sum(photos.values()) if isinstance(photos, dict) else int(photos)
    return "%d photos" % n
