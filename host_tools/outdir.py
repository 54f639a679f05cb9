"""Output folders: a command replaces only the files it writes and never deletes anything else.

claim() runs before anything is read or written: --out must be a folder (made if missing) that holds only what the
command writes, else the command is refused unless --force (then the other files are kept, and only ours are
replaced). A folder inside the checkout's source folders is refused the same way.
"""
import fnmatch
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SOURCE_FOLDERS = ("host_tools", "device", "tests", "bench", "docs", ".ci", ".git")

# What the model pipeline writes beside a model (compile, train, models): kmodels, manifests, Keras and tflite
# files, reports and their plots, labels files for the board (model add), and the compiler's private staging
# folder.
MODEL_FILES = ("*.kmodel", "*.json", "*.tflite", "*.keras", "*.h5", "*_report.md", "*.png", "*_labels.txt",
               ".*.compiling/**")


class OutError(ValueError):
    """An output folder the command will not write into; the message names it and what is in the way."""


def _match(rel: str, pattern: str) -> bool:
    """'/'-separated glob, one part per folder level; a last part '**' is everything below."""
    parts, pats = rel.split("/"), pattern.split("/")
    if pats[-1] == "**":
        return len(parts) >= len(pats) and all(fnmatch.fnmatchcase(a, b) for a, b in zip(parts, pats[:-1]))
    return len(parts) == len(pats) and all(fnmatch.fnmatchcase(a, b) for a, b in zip(parts, pats))


def _temp_of(rel: str) -> str:
    """The file a leftover temporary of files.write_atomic (.<name>.XXXX.tmp) was going to be, else None."""
    folder, _, name = rel.rpartition("/")
    if not (name.startswith(".") and name.endswith(".tmp") and name.count(".") >= 3):
        return None
    target = name[1:-4].rpartition(".")[0]
    return (folder + "/" if folder else "") + target


@dataclass(frozen=True)
class OutDir:
    path: Path
    owns: tuple          # globs relative to path of what the command writes

    def ours(self, rel: str) -> bool:
        temp = _temp_of(rel)
        return any(_match(rel, p) or (temp is not None and _match(temp, p)) for p in self.owns)

    def files(self) -> list:
        """Every file and link below the folder, relative, '/'-separated."""
        return sorted(p.relative_to(self.path).as_posix() for p in self.path.rglob("*") if not p.is_dir()
                      or p.is_symlink())

    def prepare(self) -> Path:
        """Make the folder and remove what an earlier run of the command left there (stale frames, an old
        board), nothing else. Call it once the inputs have been checked."""
        self.path.mkdir(parents=True, exist_ok=True)
        for rel in self.files():
            if self.ours(rel):
                (self.path / rel).unlink()
        for d in sorted((p for p in self.path.rglob("*") if p.is_dir() and not p.is_symlink()),
                        key=lambda p: -len(p.parts)):
            if not any(d.iterdir()) and self.ours(d.relative_to(self.path).as_posix() + "/x"):
                d.rmdir()
        return self.path


def in_sources(path: Path) -> bool:
    """True for the checkout itself or a folder in its source folders (device/, host_tools/, tests/, ...)."""
    p = path.resolve()
    if not (ROOT / "pyproject.toml").is_file():       # installed, not a checkout
        return False
    return p == ROOT or any(p == ROOT / s or ROOT / s in p.parents for s in SOURCE_FOLDERS)


def claim(path, owns, force=False, option="--out", command="this command") -> OutDir:
    """The output folder, checked (nothing written yet; OutDir.prepare makes it)."""
    out = OutDir(Path(path), tuple(owns))
    if out.path.exists() and not out.path.is_dir():
        raise OutError("%s %s: is a file, not a folder" % (option, out.path))
    if not force and in_sources(out.path):
        raise OutError("%s %s: is the checkout or inside its source folders (device/, host_tools/, tests/, ...); "
                       "choose a folder elsewhere (e.g. under out/), or give --force" % (option, out.path))
    if out.path.is_dir() and not force:
        foreign = [rel for rel in out.files() if not out.ours(rel)]
        if foreign:
            more = " and %d more" % (len(foreign) - 1) if len(foreign) > 1 else ""
            raise OutError("%s %s: holds %s%s, which %s does not write; choose an empty or new folder, or give "
                           "--force to write beside them (they are kept)"
                           % (option, out.path, foreign[0], more, command))
    _check_writable(out.path, option)
    return out


def _check_writable(path: Path, option):
    """Refuse now, not after minutes of work, a folder that cannot be made or written: the folder, or the nearest
    existing folder above it, must be writable (access(2) also says so of a read-only file system)."""
    import os
    probe = path.absolute()
    while not probe.exists() and probe != probe.parent:
        probe = probe.parent
    if not probe.is_dir():
        raise OutError("%s %s: %s is a file, not a folder" % (option, path, probe))
    if not os.access(probe, os.W_OK | os.X_OK):
        why = "a read-only file system" if _read_only_fs(probe) else "no permission to write"
        raise OutError("%s %s: cannot write %s (%s)" % (option, path, "there" if probe == path.absolute() else
                                                         "in " + str(probe), why))


def _read_only_fs(path: Path) -> bool:
    import os
    try:
        return bool(os.statvfs(path).f_flag & os.ST_RDONLY)
    except OSError:
        return False

