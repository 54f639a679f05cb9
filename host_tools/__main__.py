"""`python -m host_tools <command> ...`: the table of commands, each a pair (add_arguments, run).

A command's module is imported only when that command runs, so `kmodel info` never pays for TensorFlow.
add_arguments(parser) fills an argparse parser (host_tools.command.Parser); run(args) does the work and returns
the exit code. Failures are raised, never printed by the command: host_tools.command.fail turns each into one
`error:` line and its exit code (see host_tools/command.py and the README's "Exit codes").
"""
import importlib
import sys
from dataclasses import dataclass

from host_tools import command


@dataclass(frozen=True)
class Command:
    module: str
    help: str
    add_arguments: str = "add_arguments"
    run: str = "run"

    def functions(self):
        m = importlib.import_module(self.module)
        return getattr(m, self.add_arguments), getattr(m, self.run)


# Add a command here and nowhere else.
COMMANDS = {
    "kmodel": Command("host_tools.kmodel.cli", "inspect (info) or execute (run) a kmodel V3 file on the KPU "
                                               "emulator"),
    "sim": Command("host_tools.sim.cli", "run the device app on the virtual Maix Bit"),
    "models": Command("host_tools.pipeline.cli", "rebuild the demo models into models/", "add_models", "run_models"),
    "train": Command("host_tools.pipeline.cli", "train a classifier or detector: folder -> kmodel + manifest",
                     "add_train", "run_train"),
    "quantize": Command("host_tools.pipeline.cli", "int8 tflite from a trained model", "add_quantize",
                        "run_quantize"),
    "check": Command("host_tools.pipeline.cli", "K210 rules and memory check of a Keras model or tflite",
                     "add_check", "run_check"),
    "compile": Command("host_tools.compiler.cli", "int8 or float tflite -> kmodel V3 + manifest"),
    "model": Command("host_tools.kmodel.model_cli", "add someone else's kmodel (nncase, maix_train, MaixPy) to a "
                                                    "models folder with its manifest"),
    "deploy": Command("host_tools.deploy.cli", "plan flash, flash what changed, sync device/, reset", "add_deploy",
                      "run_deploy"),
    "flash": Command("host_tools.deploy.cli", "flash layout plan, .kfpkg build, kflash", "add_flash", "run_flash"),
    "sync": Command("host_tools.deploy.cli", "copy device/ to the board's /flash or /sd", "add_sync", "run_sync"),
    "fs": Command("host_tools.deploy.fs_cli", "uPyLoader-style file tool: ls cat get put rm run repl edit"),
    "board": Command("host_tools.deploy.virtual_board", "start a virtual Maix Bit on a pty"),
    "studio": Command("host_tools.studio.cli", "the board in a browser page: LCD, BOOT, files, editor, REPL"),
    "export": Command("host_tools.export.cli", "a tflite as TFLite-Micro C++ source (tflm), a float tflite (tflite "
                                              "--float)"),
}


def usage() -> str:
    lines = ["usage: python -m host_tools [--debug] <command> [args...]   (<command> --help for its arguments)", "",
             "commands:"]
    lines += ["  %-8s %s" % (name, c.help) for name, c in COMMANDS.items()]
    lines += ["", "exit codes: 0 ok, 1 refused or failed, 2 usage, 3 trained but not better than chance, "
                  "130 interrupted; --debug shows the traceback of a failure"]
    return "\n".join(lines)


def parser(name) -> command.Parser:
    """The full parser of one command (its module imported)."""
    add_arguments, run = COMMANDS[name].functions()
    p = command.Parser(prog="python -m host_tools " + name, description=COMMANDS[name].help)
    add_arguments(p)
    command.add_debug(p)
    p.set_defaults(_run=run)
    return p


def dispatch(argv) -> int:
    argv = [a for a in argv if a != "--debug"] if argv[:1] == ["--debug"] else argv
    if not argv or argv[0] in ("-h", "--help"):
        print(usage())
        return command.OK
    if argv[0] not in COMMANDS:
        raise command.UsageError("unknown command %r; the commands are: %s" % (argv[0], ", ".join(COMMANDS)))
    args = parser(argv[0]).parse_args(argv[1:])
    rc = args._run(args)
    sys.stdout.flush()
    return command.OK if rc is None else int(rc)


def main(argv=None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    try:
        return dispatch(argv)
    except BaseException as e:      # the one handler: every failure is one line and an exit code
        return command.fail(e, debug="--debug" in argv)


if __name__ == "__main__":
    sys.exit(main())
