"""`python -m host_tools <command> ...`: dispatch to the package that owns the command.

Each command's module is imported only when that command runs, so `kmodel info` never pays for TensorFlow.
Every module named here exposes `main(argv: list[str]) -> int`.
"""
import importlib
import sys

# command -> (module, one-line help). Add a command here and nowhere else.
COMMANDS = {
    "kmodel": ("host_tools.kmodel.cli", "inspect (info) or execute (run) a kmodel V3 file on the KPU emulator"),
    "sim": ("host_tools.sim.cli", "run the device app on the virtual Maix Bit"),
    "models": ("host_tools.pipeline.cli", "rebuild the demo models into models/"),
    "train": ("host_tools.pipeline.cli", "train a classifier or detector"),
    "quantize": ("host_tools.pipeline.cli", "int8 tflite from a trained model"),
    "check": ("host_tools.pipeline.cli", "K210 rules and memory check of a Keras model or tflite"),
    "compile": ("host_tools.compiler.cli", "int8 tflite -> kmodel V3 + manifest"),
    "deploy": ("host_tools.deploy.cli", "plan flash, flash what changed, sync device/, reset"),
    "flash": ("host_tools.deploy.cli", "flash layout plan, .kfpkg build, kflash"),
    "sync": ("host_tools.deploy.cli", "copy device/ to the board's /flash or /sd"),
    "fs": ("host_tools.deploy.fs_cli", "uPyLoader-style file tool: ls cat get put rm run repl edit"),
    "board": ("host_tools.deploy.virtual_board", "start a virtual Maix Bit on a pty"),
}


def usage() -> str:
    lines = ["usage: python -m host_tools <command> [args...]", "", "commands:"]
    lines += ["  %-8s %s" % (name, help_) for name, (_, help_) in COMMANDS.items()]
    return "\n".join(lines)


def main(argv=None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in ("-h", "--help"):
        print(usage())
        return 0
    name = argv[0]
    if name not in COMMANDS:
        print("unknown command %r\n\n%s" % (name, usage()), file=sys.stderr)
        return 2
    module = importlib.import_module(COMMANDS[name][0])
    # The module sees its own command name first so one module can serve several commands.
    return int(module.main(argv) or 0)


if __name__ == "__main__":
    sys.exit(main())
