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
