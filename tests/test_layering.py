"""Packages import one way (docs/ARCHITECTURE.md): no module imports from a package above its own, at module level
or inside a function."""
import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1] / "host_tools"
# Lower tiers first. A module may import its own package and anything in a lower tier, nothing in its own tier
# or above. The shared leaves (files, digits, command, outdir, framing, manifest) import only k210 and the leaves
# before them.
TIERS = (
    ("k210",),
    ("files", "digits", "command", "outdir"),
    ("framing",),
    ("manifest",),
    ("kmodel",),
    ("compiler", "sim"),
    ("deploy",),
    ("pipeline",),
    ("export",),
    ("__main__", "__init__"),
)
TIER = {name: i for i, names in enumerate(TIERS) for name in names}


def _package(module: str) -> str:
    """host_tools.kmodel.reader -> kmodel; host_tools.manifest -> manifest."""
    return module.split(".")[1]


def _imports(path: Path, root: Path, tree: ast.AST):
    """(line, module) for every host_tools module the file imports: import / from-import statements anywhere
    (relative ones resolved) and importlib.import_module / __import__ calls with a literal name."""
    pkg_parts = ["host_tools"] + list(path.relative_to(root).parts[:-1])     # the package the file is in
    for node in ast.walk(tree):
        names = []
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = pkg_parts[:len(pkg_parts) - node.level + 1]
                base = ".".join(parts + ([base] if base else []))
            # `from host_tools import manifest` names the module in the imported names
            names = [base + "." + a.name for a in node.names] if base == "host_tools" else [base]
        elif isinstance(node, ast.Call) and node.args and isinstance(node.args[0], ast.Constant) \
                and isinstance(node.args[0].value, str):
            f = node.func
            fname = f.attr if isinstance(f, ast.Attribute) else getattr(f, "id", "")
            if fname in ("import_module", "__import__"):
                names = [node.args[0].value]
        for n in names:
            if n.startswith("host_tools."):
                yield node.lineno, n


def upward_imports(root: Path = ROOT):
    out = []
    for path in sorted(root.rglob("*.py")):
        own = path.relative_to(root).parts[0].removesuffix(".py")
        tree = ast.parse(path.read_text(), str(path))
        for line, module in _imports(path, root, tree):
            target = _package(module)
            if target == own:
                continue
            if own not in TIER or target not in TIER or TIER[target] >= TIER[own]:
                out.append("%s:%d imports %s (%s is tier %s, %s tier %s)" % (
                    path.relative_to(root.parent), line, module, own, TIER.get(own), target, TIER.get(target)))
    return out


def test_every_package_has_a_tier():
    found = {p.name.removesuffix(".py") for p in ROOT.iterdir() if p.suffix == ".py" or (p / "__init__.py").is_file()}
    assert found - set(TIER) == set(), "place the new package in TIERS (and docs/ARCHITECTURE.md)"


def test_no_module_imports_from_a_package_above_its_own():
    assert upward_imports() == []


def test_the_check_sees_function_level_and_relative_imports(tmp_path):
    pkg = tmp_path / "host_tools"
    (pkg / "kmodel").mkdir(parents=True)
    (pkg / "kmodel" / "__init__.py").write_text("")
    (pkg / "kmodel" / "a.py").write_text("def f():\n    from host_tools.sim import board\n")
    (pkg / "kmodel" / "b.py").write_text("from ..compiler import lower\n")
    (pkg / "kmodel" / "c.py").write_text("import importlib\nimportlib.import_module('host_tools.pipeline.cli')\n")
    (pkg / "kmodel" / "d.py").write_text("from host_tools import deploy\nfrom host_tools.k210 import kpu\n")
    found = upward_imports(pkg)
    assert [f.split(" imports ")[1].split(" ")[0] for f in found] == [
        "host_tools.sim", "host_tools.compiler", "host_tools.pipeline.cli", "host_tools.deploy"], found
