"""`export tflm`: the C array reads back byte for byte (in Python and through a C++ compiler), TFLite Micro's own
interpreter runs it in the arena the header names with the same int8 outputs as LiteRT; `export tflite --float`."""
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from host_tools.export import tflm

ROOT = Path(__file__).resolve().parents[1]
DIGITS = ROOT / "models" / "digits_int8.tflite"       # the shipped demo classifier: a real trained int8 model


def _run(args, cwd):
    return subprocess.run([sys.executable, "-m", "host_tools"] + args, cwd=cwd, capture_output=True, text=True,
                          env=dict(os.environ, PYTHONPATH=str(ROOT)), timeout=600)


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    if not DIGITS.is_file():
        pytest.skip("models/digits_int8.tflite not built (make models)")
    out = tmp_path_factory.mktemp("tflm")
    src, files = tflm.export_file(DIGITS, out)
    return src, out


def _digit_images(n=40):
    from host_tools.digits import load_digits, render_dataset
    images, labels = load_digits()
    x, y = render_dataset(images[:n], labels[:n], 64, seed=3)
    return x, y


def test_the_array_reads_back_byte_for_byte(exported):
    src, out = exported
    assert src.name == "digits_int8"
    cc = (out / "digits_int8_model.cc").read_text()
    assert "alignas(16) const unsigned char g_digits_int8_model_data[] = {" in cc
    assert tflm.read_array(cc, "digits_int8") == DIGITS.read_bytes()
    h = (out / "digits_int8_model.h").read_text()
    assert "constexpr int kDigitsInt8TensorArenaSize = %d;" % src.arena_bytes in h
    assert src.model_bytes == DIGITS.stat().st_size


STUB = """
#include <cstdio>
#include <string>
#include <vector>
typedef enum { kTfLiteOk = 0, kTfLiteError = 1 } TfLiteStatus;
namespace tflite {
template <unsigned N> struct MicroMutableOpResolver {
  std::vector<std::string> added;
  TfLiteStatus add(const char* n) { added.push_back(n); return added.size() <= N ? kTfLiteOk : kTfLiteError; }
%s
};
}
"""


@pytest.mark.skipif(shutil.which("g++") is None, reason="no C++ compiler (g++) on this machine")
def test_a_cxx_compiler_takes_the_files_and_sees_the_same_bytes_and_ops(exported, tmp_path):
    """The .cc/.h compile as C++ (against a stand-in for TFLM's resolver header that records each Add call); the
    program prints the array and the ops it registered."""
    import tflite
    src, out = exported
    ops = sorted({m for m in dir(tflite.BuiltinOperator) if not m.startswith("_")})
    methods = "\n".join('  TfLiteStatus %s() { return add("%s"); }' % (tflm.resolver_method(b), tflm.resolver_method(b))
                        for b in ops)
    inc = tmp_path / "tensorflow" / "lite" / "micro"
    inc.mkdir(parents=True)
    (inc / "micro_mutable_op_resolver.h").write_text(STUB % methods)
    (tmp_path / "main.cc").write_text("""
#include "digits_int8_model.h"
int main() {
  tflite::MicroMutableOpResolver<kDigitsInt8OpCount> r;
  if (digits_int8_register_ops(r) != kTfLiteOk) return 1;
  for (auto& n : r.added) printf("%s\\n", n.c_str());
  printf("--\\n");
  for (unsigned i = 0; i < g_digits_int8_model_data_len; i++) printf("%02x", g_digits_int8_model_data[i]);
  printf("\\n%d\\n", kDigitsInt8TensorArenaSize);
  return 0;
}
""")
    exe = tmp_path / "a.out"
    subprocess.run(["g++", "-std=c++17", "-Wall", "-Werror", "-I", str(tmp_path), "-I", str(out),
                    str(tmp_path / "main.cc"), str(out / "digits_int8_model.cc"), "-o", str(exe)], check=True)
    text = subprocess.run([str(exe)], capture_output=True, text=True, check=True).stdout
    names, _, rest = text.partition("--\n")
    hexbytes, arena = rest.split()
    assert bytes.fromhex(hexbytes) == DIGITS.read_bytes()
    assert names.split() == list(src.ops) and len(src.ops) == len(set(src.ops)) > 0
    assert int(arena) == src.arena_bytes


def test_tflite_micro_gives_litert_int8_outputs_in_the_arena_the_header_names(exported):
    from ai_edge_litert.interpreter import Interpreter, OpResolverType
    from tflite_micro.python.tflite_micro import runtime
    src, out = exported
    data = tflm.read_array((out / "digits_int8_model.cc").read_text(), "digits_int8")
    micro = runtime.Interpreter.from_bytes(data, arena_size=src.arena_bytes)
    with pytest.raises(RuntimeError):      # the measured size is the smallest that works (16-byte steps)
        runtime.Interpreter.from_bytes(data, arena_size=src.arena_bytes - tflm.ARENA_ALIGN)
    # LiteRT's own int8 kernels; its default XNNPACK delegate rounds a few values 1-7 LSB apart (18 of 1,000
    # outputs on 100 digits), so it is not the reference TFLM's kernels are held to
    lite = Interpreter(model_content=DIGITS.read_bytes(), num_threads=1,
                       experimental_op_resolver_type=OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES)
    lite.allocate_tensors()
    i, o = lite.get_input_details()[0]["index"], lite.get_output_details()[0]["index"]
    x, y = _digit_images()
    a, b = [], []
    for img in x:
        q = (img.astype(np.int16) - 128).astype(np.int8)[None]
        lite.set_tensor(i, q)
        lite.invoke()
        a.append(lite.get_tensor(o).copy())
        micro.set_input(q, 0)
        micro.invoke()
        b.append(micro.get_output(0).copy())
    a, b = np.concatenate(a), np.concatenate(b)
    assert a.dtype == b.dtype == np.int8
    np.testing.assert_array_equal(a, b)
    assert len(np.unique(a.argmax(1))) >= 5 and (a.argmax(1) == y).mean() > 0.8   # a real model on real digits


def test_the_op_list_is_the_models_operators():
    assert tflm.resolver_method("CONV_2D") == "AddConv2D"
    assert tflm.resolver_method("DEPTHWISE_CONV_2D") == "AddDepthwiseConv2D"
    assert tflm.resolver_method("FULLY_CONNECTED") == "AddFullyConnected"
    assert tflm.resolver_method("PAD_V2") == "AddPadV2"
    if DIGITS.is_file():      # the same operators the compiler's reader sees, each once, in first-use order
        from host_tools.compiler import tflite_graph
        g = tflite_graph.parse(DIGITS.read_bytes())
        first_use = list(dict.fromkeys(op.kind for op in g.ops))
        assert tflm.builtin_names(DIGITS.read_bytes()) == first_use and "CONV_2D" in first_use


@pytest.mark.slow
def test_the_command_and_its_refusals(tmp_path, exported):
    r = _run(["export", "tflm", str(DIGITS), "--out", str(tmp_path / "c")], tmp_path)
    assert r.returncode == 0, r.stderr
    assert re.search(r"model array \d+ bytes \(flash\), tensor arena \d+ bytes \(RAM\)", r.stdout)
    assert sorted(p.name for p in (tmp_path / "c").iterdir()) == ["digits_int8_model.cc", "digits_int8_model.h"]
    bad = tmp_path / "bad.tflite"
    bad.write_bytes(b"PK\x03\x04 not a flatbuffer at all")
    r = _run(["export", "tflm", str(bad), "--out", str(tmp_path / "d")], tmp_path)
    assert r.returncode == 1 and r.stderr.strip() == "error: %s: not a tflite file (no 'TFL3' identifier at byte 4)" \
        % bad, r.stderr
    assert not (tmp_path / "d").exists() or not any((tmp_path / "d").iterdir())
    r = _run(["export", "tflm", str(tmp_path / "missing.tflite")], tmp_path)
    assert r.returncode == 1 and "missing.tflite: no such file" in r.stderr
    r = _run(["export", "tflite", str(ROOT / "models" / "digits.keras")], tmp_path)
    assert r.returncode == 2 and "quantize" in r.stderr


@pytest.mark.slow
def test_export_float_tflite_matches_keras(tmp_path):
    keras_file = ROOT / "models" / "digits.keras"
    if not keras_file.is_file():
        pytest.skip("models/digits.keras not built (make models)")
    out = tmp_path / "digits_float.tflite"
    r = _run(["export", "tflite", str(keras_file), "--float", "--out", str(out)], tmp_path)
    assert r.returncode == 0, r.stderr
    import keras
    from ai_edge_litert.interpreter import Interpreter
    it = Interpreter(model_path=str(out))
    it.allocate_tensors()
    d = it.get_input_details()[0]
    assert d["dtype"] == np.float32 and it.get_output_details()[0]["dtype"] == np.float32
    x, _ = _digit_images(8)
    x = x.astype(np.float32) / 255.0
    ref = keras.models.load_model(keras_file, compile=False).predict(x, verbose=0)
    got = []
    for im in x:
        it.set_tensor(d["index"], im[None])
        it.invoke()
        got.append(it.get_tensor(it.get_output_details()[0]["index"])[0])
    np.testing.assert_allclose(np.stack(got), ref, atol=1e-5)
