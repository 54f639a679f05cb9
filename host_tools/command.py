"""The command convention of `python -m host_tools <command>`: parsers, exit codes and the one error handler.

Exit codes (README "Exit codes"):
  0   done (also when the reader of our output went away: `... | head`)
  1   refused or failed: bad input, a model the K210 cannot run, a board that does not answer, ...
  2   usage: an unknown command or option, a missing or malformed argument
  3   `train` / `models`: the model was trained but is not clearly better than chance (no kmodel deployed)
  130 interrupted (Ctrl-C)
Every failure is one line on stderr, `error: <message>`, naming the file, field, option or layer; the traceback
only with --debug.
"""
import argparse
import os
import select
import stat
import sys
import traceback

OK, FAILED, USAGE, NOT_USEFUL, INTERRUPTED = 0, 1, 2, 3, 130

# What each error type means, by name: a type whose module was never imported cannot have been raised, so the
# handler resolves these through sys.modules and `kmodel info` never imports TensorFlow to fail. Types not
# named here (a KeyError, struct.error, ...) are bugs or unforeseen input: still one line, with a --debug hint.
EXIT_CODES = {
    "host_tools.command.UsageError": USAGE,
    "host_tools.command.Failed": FAILED,
    "host_tools.outdir.OutError": FAILED,
    "host_tools.manifest.ManifestError": FAILED,
    "host_tools.k210.flash.PlanError": FAILED,
    "host_tools.kmodel.errors.KmodelError": FAILED,
    "host_tools.compiler.errors.CompileError": FAILED,
    "host_tools.deploy.link.LinkError": FAILED,
    "host_tools.deploy.link.DeviceError": FAILED,
    "host_tools.deploy.ports.PortError": FAILED,
    "host_tools.deploy.sync.SyncError": FAILED,
    "host_tools.deploy.flasher.FlashError": FAILED,
    "host_tools.deploy.mpy.MpyError": FAILED,
    "host_tools.export.tflm.ExportError": FAILED,
    "host_tools.pipeline.arch.ArchError": FAILED,
    "host_tools.pipeline.datasets.DatasetError": FAILED,
    "host_tools.pipeline.defaults.ConfigError": FAILED,
    "host_tools.pipeline.detector.DetectorError": FAILED,
    "host_tools.pipeline.pretrained.WeightsError": FAILED,
    "host_tools.pipeline.quantize.QuantizeError": FAILED,
    "host_tools.pipeline.calibration.CalibrationError": USAGE,
    "host_tools.pipeline.userflow.FlowError": FAILED,
    "serial.serialutil.SerialException": FAILED,
    "mpremote.transport.TransportError": FAILED,
    "builtins.ValueError": FAILED,      # our own plain ValueErrors name the culprit
    "builtins.OSError": FAILED,         # printed as "<file>: <reason>"
}
DEBUG_HINT = "rerun with --debug for the traceback"


class UsageError(Exception):
    """The command line is wrong (exit 2); the message names the option."""


class Failed(Exception):
    """The command refused or failed (exit 1) for a reason the message gives, naming file, field or layer."""


class Parser(argparse.ArgumentParser):
    """argparse with the convention: defaults in --help, a usage mistake is one `error:` line (exit 2)."""

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("formatter_class", HelpFormatter)
        super().__init__(*args, **kwargs)

    def error(self, message):
        raise UsageError("%s: %s (see --help)" % (self.prog.replace("python -m host_tools ", ""), message))


class HelpFormatter(argparse.RawDescriptionHelpFormatter):
    """Each argument's line ends with its default, unless the help already says what the default is."""

    def _get_help_string(self, action):
        text = action.help or ""
        d = action.default
        if "default" in text or d in (None, False, argparse.SUPPRESS) or not action.option_strings:
            return text
        shown = ",".join(map(str, d)) if isinstance(d, (list, tuple)) else str(d)
        return (text + " " if text else "") + "(default: %s)" % shown.replace("%", "%%")


def subparsers(parser) -> list:
    """The parsers of a command's actions (`kmodel info`, `fs ls`, ...)."""
    return [p for a in parser._actions if isinstance(a, argparse._SubParsersAction) for p in a.choices.values()]


def add_debug(parser):
    """--debug on the command and on each of its actions, so it works wherever it is typed."""
    parser.add_argument("--debug", action="store_true", default=argparse.SUPPRESS,
                        help="on a failure, show the Python traceback")
    for p in subparsers(parser):
        add_debug(p)


def known(exc) -> int:
    """The exit code of a named error type, or None for an unforeseen exception."""
    for name, code in EXIT_CODES.items():
        module, _, cls = name.rpartition(".")
        t = getattr(sys.modules.get(module), cls, None)
        if isinstance(t, type) and isinstance(exc, t):
            return code
    return None


def message(exc) -> str:
    """One line naming the culprit."""
    if isinstance(exc, OSError) and exc.filename is not None and exc.strerror:
        text = "%s: %s" % (exc.filename, exc.strerror[:1].lower() + exc.strerror[1:])
        if exc.filename2 is not None:
            text += " (%s)" % exc.filename2
    else:
        text = str(exc) or type(exc).__name__
    return "; ".join(line.strip() for line in text.splitlines() if line.strip())


def stdout_broken() -> bool:
    """True when our stdout's reader has gone (`... | head`): then the rest of the output goes nowhere.
    The failed write may have emptied the buffer, so a flush that succeeds proves nothing: a pipe whose
    reader left is seen by polling it (POLLERR on the write end)."""
    try:
        sys.stdout.flush()
    except (BrokenPipeError, ValueError):
        return True
    try:
        fd = sys.stdout.fileno()
        if not stat.S_ISFIFO(os.fstat(fd).st_mode):
            return False
        p = select.poll()
        p.register(fd, 0)
        return any(ev & select.POLLERR for _, ev in p.poll(0))
    except (OSError, ValueError):
        return False


def silence_stdout():
    """Point stdout at /dev/null so the interpreter's final flush cannot raise again."""
    try:
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
    except (OSError, ValueError):
        pass


def fail(exc, debug=False) -> int:
    """The one handler: print what went wrong on one line (a traceback only with --debug), return the exit code."""
    if isinstance(exc, SystemExit):           # --help, --version: argparse's own exit
        return exc.code if isinstance(exc.code, int) else (OK if exc.code is None else FAILED)
    if isinstance(exc, BrokenPipeError) and stdout_broken():
        silence_stdout()
        return OK
    if debug:
        traceback.print_exception(exc)
    if isinstance(exc, KeyboardInterrupt):
        _say("error: interrupted (Ctrl-C); files are written whole or not at all")
        return INTERRUPTED
    code = known(exc)
    if code is None:
        _say("error: %s: %s (an unforeseen error; %s)" % (type(exc).__name__, message(exc), DEBUG_HINT))
        return FAILED
    _say("error: %s" % message(exc))
    return code


def _say(line):
    try:
        sys.stdout.flush()
    except (BrokenPipeError, ValueError):
        silence_stdout()
    _end_progress_bars()
    print(line, file=sys.stderr, flush=True)


def _end_progress_bars():
    """Close the progress bars a failure or Ctrl-C left open (Keras calls no callback then), so that the error
    starts its own line instead of trailing the bar's."""
    tqdm = sys.modules.get("tqdm")
    for bar in list(getattr(getattr(tqdm, "tqdm", None), "_instances", ())):
        try:
            bar.close()
        except Exception:      # a bar whose stream is gone: nothing to end
            pass
