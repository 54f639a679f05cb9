"""Model pipeline: K210-valid architectures, datasets, training, int8 quantization and the K210 checker.

Modules are imported on demand; `digits` and `checker` (for tflite files) do not need TensorFlow.
"""
