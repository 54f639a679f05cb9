"""The page's editor (CodeMirror 5, Python mode) and terminal (xterm.js + its fit addon), from the npm registry at
build time: `python -m host_tools.studio.assets` (run by `make venv`, `make studio` and `make test`) installs the
versions web/package-lock.json pins with `npm ci` into build/studio-npm/ and copies the built files the page loads
into static/vendor/. Both folders are ignored by git; the server serves static/vendor/ and nothing is fetched from
a CDN at run time.
"""
import json
import shutil
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
WEB = HERE / "web"                                  # package.json + package-lock.json (committed)
VENDOR = HERE / "static" / "vendor"                 # what the page loads (built here, ignored by git)
NPM_DIR = HERE.parents[1] / "build" / "studio-npm"  # node_modules (ignored by git)
STAMP = VENDOR / "versions.json"                    # written last: the copy is complete
NPM_MISSING = ("npm is not installed: the studio's editor and terminal come from the npm registry at build time "
               "(as root: apt-get install -y nodejs npm; .ci/run does)")
# file in static/vendor/ -> the package's built file
FILES = {
    "codemirror.js": "codemirror/lib/codemirror.js",
    "codemirror.css": "codemirror/lib/codemirror.css",
    "python.js": "codemirror/mode/python/python.js",
    "xterm.js": "@xterm/xterm/lib/xterm.js",
    "xterm.css": "@xterm/xterm/css/xterm.css",
    "addon-fit.js": "@xterm/addon-fit/lib/addon-fit.js",
}


class AssetError(RuntimeError):
    pass


def missing() -> str:
    """'' when the page's vendor files are all there and match the lock file; else what to run."""
    if not STAMP.is_file() or any(not (VENDOR / f).is_file() for f in FILES):
        return ("the studio's editor and terminal are not built (%s): run `make studio-assets` (or `python -m "
                "host_tools.studio.assets`; it needs npm)" % VENDOR)
    return ""


def locked_versions() -> dict:
    lock = json.loads((WEB / "package-lock.json").read_text())
    return {k.split("node_modules/", 1)[1]: v["version"] for k, v in lock["packages"].items() if k}


def build(npm=None) -> dict:
    """npm ci (the lock file's exact versions), then the copy; returns {package: version}. AssetError when npm is
    missing or fails (its last line of output named)."""
    npm = npm or shutil.which("npm")
    if not npm:
        raise AssetError(NPM_MISSING)
    NPM_DIR.mkdir(parents=True, exist_ok=True)
    for name in ("package.json", "package-lock.json"):
        shutil.copyfile(WEB / name, NPM_DIR / name)
    r = subprocess.run([npm, "ci", "--ignore-scripts", "--no-audit", "--no-fund", "--loglevel=error"],
                       cwd=NPM_DIR, capture_output=True, text=True)
    if r.returncode != 0:
        last = (r.stderr.strip() or r.stdout.strip() or "exit %d" % r.returncode).splitlines()[-1]
        raise AssetError("npm ci in %s failed: %s" % (NPM_DIR, last))
    if STAMP.exists():
        STAMP.unlink()              # a copy cut short leaves no stamp: missing() then says so
    VENDOR.mkdir(parents=True, exist_ok=True)
    for dest, src in FILES.items():
        shutil.copyfile(NPM_DIR / "node_modules" / src, VENDOR / dest)
    versions = locked_versions()
    STAMP.write_text(json.dumps(versions, indent=1) + "\n")
    return versions


def main() -> int:
    try:
        versions = build()
    except AssetError as e:
        print("error: %s" % e, file=sys.stderr)
        return 1
    print("studio assets: %s -> %s" % (", ".join("%s@%s" % kv for kv in sorted(versions.items())), VENDOR))
    return 0


if __name__ == "__main__":
    sys.exit(main())
