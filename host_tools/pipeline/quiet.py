"""Quiet output: TensorFlow's, the tflite converter's and LiteRT's log lines kept off the user's terminal.

Much of it comes from C++ (absl, oneDNN, MLIR, XNNPACK) straight to file descriptors 1 and 2, so hiding it means
pointing those descriptors elsewhere while TensorFlow is imported, a model is converted or an interpreter is made;
`--verbose` (set_verbose) shows everything. Our own messages and progress bars are never written inside `hushed()`.
"""
import contextlib
import io
import logging
import os
import sys
import warnings

_verbose = False


def set_verbose(verbose: bool):
    """Before TensorFlow is imported: how much of its logging reaches the terminal."""
    global _verbose
    _verbose = bool(verbose)
    if not _verbose:
        os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
        os.environ.setdefault("GRPC_VERBOSITY", "ERROR")
        for mod in ("tensorflow", "keras", "absl", "h5py"):
            warnings.filterwarnings("ignore", module=mod)
            logging.getLogger(mod).setLevel(logging.ERROR)


@contextlib.contextmanager
def hushed():
    """Everything written to stdout and stderr inside goes nowhere (unless verbose)."""
    if _verbose:
        yield
        return
    for f in (sys.stdout, sys.stderr):
        with contextlib.suppress(Exception):
            f.flush()
    saved = {}
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        for fd in (1, 2):
            try:
                saved[fd] = os.dup(fd)
                os.dup2(devnull, fd)
            except OSError:          # no such descriptor (an embedding host): nothing to hide there
                pass
        with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()), \
                warnings.catch_warnings():
            warnings.simplefilter("ignore")
            yield
    finally:
        for fd, copy in saved.items():
            os.dup2(copy, fd)
            os.close(copy)
        os.close(devnull)


def import_tensorflow():
    """Import TensorFlow and Keras now, with their start-up lines hidden (unless verbose)."""
    with hushed():
        import keras  # noqa: F401
        import tensorflow  # noqa: F401
        if not _verbose:
            tensorflow.get_logger().setLevel(logging.ERROR)
            with contextlib.suppress(ImportError):
                import absl.logging
                absl.logging.set_verbosity(absl.logging.ERROR)
