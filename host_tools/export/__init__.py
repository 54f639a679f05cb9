"""Exports for other runtimes: a float tflite of a Keras model, and a tflite as C source for TFLite Micro."""
