"""Our kmodel V3 compiler: a fully-integer tflite in, a kmodel every MaixPy build loads out (plus its manifest).

    from host_tools.compiler import compile_file, compile_tflite, CompileError
    manifest = compile_file("models/digits_int8.tflite", "models", "digits", "classifier", labels)

A float tflite compiles too: a vector model as float CPU layers (float_lower), a model with convolutions with
calibration images (calibrate -> float_quant: its KPU tensors quantized as TFLite would; dense layers stay float).

Stages: tflite_graph (read) -> lower (ops to KPU/CPU layers, int8 arithmetic via kpu_arith) -> planner (KPU RAM
and main memory) -> emit (V3 bytes, registers via host_tools.k210.registers) -> check with the kmodel reader.

Where the kmodel's numbers differ from LiteRT's (each at most about one output step, measured in the tests):
- conv requantization rounds once, from the KPU's wider BN result, where TFLite rounds the int32 sum once too;
  a LeakyReLU (or ReLU op) folded into the conv's activation table rounds once where TFLite rounds twice;
- the KPU's 2x2 / 4x4 mean pool floors (the emulator's choice; hardware rounding is unknown), TFLite rounds;
- global average pool, CPU dense layers and softmax run in float32 where LiteRT stays in int8.
"""
from host_tools.compiler.errors import CompileError
from host_tools.compiler.build import compile_file, compile_tflite

__all__ = ["CompileError", "compile_file", "compile_tflite"]
