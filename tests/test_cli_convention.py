"""The command convention (host_tools/__main__.py, host_tools/command.py) holds for every command in the table."""
import argparse

import pytest

from host_tools import command
from host_tools.__main__ import COMMANDS, main, parser


def _parsers(p, prog=""):
    """(prog, parser) for a command and each of its actions (kmodel info, fs ls, ...)."""
    yield prog or p.prog, p
    for sub in command.subparsers(p):
        yield from _parsers(sub)


def _arguments(p):
    return [a for a in p._actions if not isinstance(a, (argparse._HelpAction, argparse._SubParsersAction))]


@pytest.mark.parametrize("name", list(COMMANDS))
def test_help_of_every_command_lists_every_argument_with_its_default(name, capsys):
    for prog, p in _parsers(parser(name)):
        text = p.format_help()
        for a in _arguments(p):
            shown = a.option_strings[0] if a.option_strings else (
                a.metavar or ("{%s}" % ",".join(a.choices) if a.choices else a.dest))
            assert shown in text, "%s --help does not show %s" % (prog, shown)
            assert a.help, "%s: %s has no help line" % (prog, shown)
            if not a.option_strings or a.required or a.default in (False, argparse.SUPPRESS):
                continue
            if a.default is None:     # nothing to print: the help must say what happens when it is not given
                assert "default" in a.help, "%s: %s does not say its default" % (prog, shown)
            else:
                d = ",".join(map(str, a.default)) if isinstance(a.default, (list, tuple)) else str(a.default)
                assert "default" in a.help or "(default: %s)" % d in " ".join(text.split()), \
                    "%s: %s does not show its default %r" % (prog, shown, a.default)
    assert main([name, "--help"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("usage: python -m host_tools " + name)


def test_every_command_is_a_pair_of_add_arguments_and_run():
    for name, c in COMMANDS.items():
        add, run = c.functions()
        assert callable(add) and callable(run), name
        assert parser(name).get_default("_run") is run


def test_top_level_usage_names_every_command_and_the_exit_codes(capsys):
    assert main([]) == 0
    out = capsys.readouterr().out
    assert all(name in out for name in COMMANDS)
    assert "130 interrupted" in out and "2 usage" in out


def test_the_handler_maps_error_types_to_codes(capsys):
    from host_tools.kmodel.errors import KmodelError
    assert command.fail(KmodelError(2002, "bad version", name="x.kmodel", field="version")) == command.FAILED
    assert capsys.readouterr().err == "error: x.kmodel, field 'version': bad version [error 2002]\n"
    assert command.fail(command.UsageError("kmodel: bad")) == command.USAGE
    assert command.fail(KeyboardInterrupt()) == command.INTERRUPTED
    assert command.fail(FileNotFoundError(2, "No such file or directory", "a/b.tflite")) == command.FAILED
    assert capsys.readouterr().err.splitlines()[-1] == "error: a/b.tflite: no such file or directory"
    assert command.fail(KeyError("boom")) == command.FAILED          # unforeseen: still one line, with the hint
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "KeyError" in err and "--debug" in err and "Traceback" not in err
    assert command.fail(ValueError("line one\nline two")) == command.FAILED
    assert capsys.readouterr().err == "error: line one; line two\n"


def test_debug_shows_the_traceback(capsys, tmp_path):
    bad = tmp_path / "x.kmodel"
    bad.write_bytes(b"not a kmodel at all, just some bytes")
    assert main(["kmodel", "info", str(bad)]) == 1
    assert "Traceback" not in capsys.readouterr().err
    assert main(["kmodel", "info", str(bad), "--debug"]) == 1
    err = capsys.readouterr().err
    assert "Traceback" in err and err.splitlines()[-1].startswith("error: ") and "x.kmodel" in err.splitlines()[-1]
