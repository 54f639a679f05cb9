"""Our kmodel V3 compiler: a fully-integer tflite in, a kmodel every MaixPy build loads out (plus its manifest).

    from host_tools.compiler import compile_file, compile_tflite, CompileError
    manifest = compile_file("models/digits_int8.tflite", "models", "digits", "classifier", labels)

Stages: tflite_graph (read) -> lower (ops to KPU/CPU layers, int8 arithmetic via kpu_arith) -> planner (KPU RAM
and main memory) -> emit (V3 bytes, registers via host_tools.kmodel.regs) -> check with the kmodel reader.
"""
from host_tools.compiler.errors import CompileError
from host_tools.compiler.build import compile_file, compile_tflite

__all__ = ["CompileError", "compile_file", "compile_tflite"]
