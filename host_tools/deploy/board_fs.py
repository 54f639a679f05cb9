"""The board's files as uPyLoader shows them: list, read, write, new, remove, folders, run, reset.

Paths are the board's (/flash/main.py, /sd/x.py); a bare name means /flash/<name>. /flash is SPIFFS: flat, no
folders (vfs_spiffs.c refuses mkdir); /sd is FAT. Every failure is an FsError with one line naming the path
("no such file /flash/x.py"), never the board's raw traceback. Writes go through a temporary name and a verified
rename (sync.put_file).
"""
import ast

from host_tools.deploy import sync
from host_tools.deploy.link import DeviceError, Link

READ_PER_EXEC = 8192
ROOTS = ("/flash", "/sd")
NO_FOLDERS = ("/flash is SPIFFS, which has no folders: keep files flat there (/flash/NAME), or use the SD card "
              "(/sd/...)")


class FsError(ValueError):
    """A file operation the board refused or cannot do; the message names the path."""


def board_path(p: str) -> str:
    if not p.startswith("/"):
        p = "/flash/" + p
    p = p.rstrip("/") or "/"
    if not (p in ROOTS or p.startswith("/flash/") or p.startswith("/sd/")):
        raise FsError("%s: the board has /flash and /sd only" % p)
    return p


def _errno(e: DeviceError):
    """The errno of an OSError the board raised ('OSError: [Errno 2] ENOENT' or 'OSError: 2'), else None."""
    last = e.traceback.strip().splitlines()[-1] if e.traceback.strip() else ""
    if not last.startswith("OSError"):
        return None
    digits = "".join(c if c.isdigit() else " " for c in last).split()
    return int(digits[0]) if digits else None


ENOENT, EEXIST, ENOTDIR, EISDIR, EINVAL, ENOTEMPTY, EACCES = 2, 17, 20, 21, 22, 39, 13


def _exec(link: Link, code: str, path: str, what: dict, timeout=30) -> bytes:
    """Run code; a board OSError becomes one line from `what` ({errno: text}, '%s' = path)."""
    try:
        return link.exec(code, timeout=timeout)
    except DeviceError as e:
        n = _errno(e)
        if n in what:
            raise FsError(what[n] % path) from None
        last = e.traceback.strip().splitlines()[-1] if e.traceback.strip() else "error"
        raise FsError("%s: the board says %s" % (path, last)) from None


def _kind(link: Link, path: str):
    """'file', 'dir' or None (absent), in one round trip."""
    code = "import uos\ntry:\n print(repr(uos.stat(%r)[0] & 0x4000 and 'dir' or 'file'))\nexcept OSError:\n print('None')" \
        % path
    return ast.literal_eval(link.exec(code).decode().strip())


def listing(link: Link, path: str) -> list:
    """[(name, size, is_dir)] of a folder on the board, in one round trip."""
    code = """import uos
_r=[]
for _n in uos.listdir(%r):
 _s=uos.stat(%r+'/'+_n)
 _r.append((_n,_s[6],_s[0]&0x4000!=0))
print(repr(_r))
""" % (path, path)
    out = _exec(link, code, path, {ENOENT: "no such folder %s", ENOTDIR: "%s is a file, not a folder"})
    return ast.literal_eval(out.decode().strip())


def read_file(link: Link, path: str) -> bytes:
    if path in ROOTS:
        raise FsError("%s is a file system, not a file (fs ls %s lists it)" % (path, path))
    size = ast.literal_eval(_exec(link, "import uos\nprint(repr(uos.stat(%r)))" % path, path,
                                  {ENOENT: "no such file %s"}).decode().strip())
    if size[0] & 0x4000:
        raise FsError("%s is a folder, not a file (fs ls %s lists it)" % (path, path))
    data = b""
    link.exec("_f=open(%r,'rb')" % path)
    try:
        while len(data) < size[6]:
            chunk = link.eval("_f.read(%d)" % READ_PER_EXEC)
            if not chunk:
                break
            data += chunk
    finally:
        link.exec("_f.close()")
    return data


def write_file(link: Link, path: str, data: bytes) -> int:
    """Through path.part, verified on the board, renamed; returns round trips."""
    if path in ROOTS:
        raise FsError("%s is a file system, not a file: give a file name (%s/NAME)" % (path, path))
    parent = path.rsplit("/", 1)[0]
    if parent.startswith("/flash/"):
        raise FsError("%s: %s" % (path, NO_FOLDERS))
    root = "/" + path.split("/")[1]
    free = ast.literal_eval(_exec(link, "import uos\n_v=uos.statvfs(%r)\nprint(_v[0]*_v[4])" % root, root,
                                  {}).decode().strip())
    if len(data) > free:     # staged beside the old file before the rename: all of it needs room
        raise FsError("%s: %s has %d bytes free, the file is %d; nothing was written" % (path, root, free, len(data)))
    try:
        return sync.put_file(link, path, data)
    except DeviceError as e:
        if _errno(e) == ENOENT:
            raise FsError("no such folder %s (for %s)" % (parent, path)) from None
        raise FsError("%s: the board could not write it (%s)" % (path, e)) from None


def new_file(link: Link, path: str, data: bytes = b"") -> int:
    if _kind(link, path) is not None:
        raise FsError("%s already exists (fs edit %s changes it)" % (path, path))
    return write_file(link, path, data)


def remove(link: Link, path: str) -> None:
    if path in ROOTS:
        raise FsError("%s is a file system, not a file: remove the files in it one by one (fs ls %s)" % (path, path))
    kind = _kind(link, path)
    if kind is None:
        raise FsError("no such file %s" % path)
    if kind == "dir":
        raise FsError("%s is a folder: fs rmdir %s removes it when it is empty" % (path, path))
    _exec(link, "import uos\nuos.remove(%r)" % path, path, {ENOENT: "no such file %s", EACCES: "%s: not allowed"})


def mkdir(link: Link, path: str) -> None:
    if path == "/flash" or path.startswith("/flash/"):
        raise FsError("cannot make %s: %s" % (path, NO_FOLDERS))
    if path in ROOTS:
        raise FsError("%s already exists (the card's root)" % path)
    _exec(link, "import uos\nuos.mkdir(%r)" % path, path,
          {EEXIST: "%s already exists", ENOENT: "no such folder for %s (make its parent first)"})


def rmdir(link: Link, path: str) -> None:
    if path == "/flash" or path.startswith("/flash/"):
        raise FsError("cannot remove folder %s: %s" % (path, NO_FOLDERS))
    if path in ROOTS:
        raise FsError("%s is the card's root, not a folder that can be removed" % path)
    kind = _kind(link, path)
    if kind is None:
        raise FsError("no such folder %s" % path)
    if kind == "file":
        raise FsError("%s is a file: fs rm %s removes it" % (path, path))
    _exec(link, "import uos\nuos.rmdir(%r)" % path, path,
          {ENOTEMPTY: "%s is not empty (remove its files first)", EACCES: "%s is not empty (remove its files first)",
           ENOENT: "no such folder %s"})


def run_file(link: Link, path: str, timeout: float, on_output) -> None:
    """Run a board file as `mpremote run` or uPyLoader's Execute do, its output streamed to on_output(bytes) as
    it comes. A script error keeps what it printed and becomes one FsError line naming the file and line; after
    `timeout` s the script is stopped with Ctrl-C (link.ExecTimeout) and the board is ready for the next
    command."""
    if _kind(link, path) != "file":
        raise FsError("no such file %s" % path)
    err = link.exec_follow("exec(open(%r).read(),{'__name__':'__main__'})" % path, timeout, on_output)
    if err:
        raise FsError(script_error(path, err))


def script_error(path: str, traceback: str) -> str:
    """'path, line N: ValueError: text' from the board's traceback of an exec'd file."""
    lines = [x.strip() for x in traceback.strip().splitlines() if x.strip()]
    line = None
    for x in lines:
        if x.startswith('File "<string>", line '):      # the script's own frames, innermost last
            line = x.split("line ", 1)[1].split(",")[0]
    where = path if line is None else "%s, line %s" % (path, line)
    return "%s: %s" % (where, lines[-1] if lines else "error")


def reset(link: Link, hard: bool) -> None:
    """soft: Ctrl-D, boot.py and main.py run again on the same heap; hard: machine.reset(), as at power-up."""
    link.close(reset="hard" if hard else "soft")
