"""The house rules, checked on the source: imports point down the layers of docs/architecture.md, no
module reaches into another's private names, and nothing probes for what a protocol declares."""

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = {"eqfree": ROOT / "eqfree", "eqfree.systems": ROOT / "systems", "eqfree.closures": ROOT / "closures"}

#: layer of each top-level part of eqfree (docs/architecture.md); a module imports only its own part or lower layers
LAYERS = {
    "errors": 0, "version": 0,
    "validation": 1, "seeding": 1, "periodic": 1, "progress": 1, "_pymbar": 1,
    "statistics": 2, "timeseries": 2, "parallel": 2, "base": 2, "scaling": 2, "io": 2,
    "operators": 3, "metrics": 3,
    "evolve": 4, "restrict": 4, "reweight": 4,
    "systems": 5,
    "lift": 6,
    "coarse": 7, "closures": 7,
    "testing": 8,
    "cli": 9,
    "__init__": 10, "__main__": 10,
}
#: attributes a protocol declares (System, Lift, Evolve, Restrict): never probed with getattr/hasattr
DECLARED = {"beta", "dim", "coords", "x0", "dt", "slow", "params", "valid_range", "names", "lift", "restrict",
            "evolve", "recipe"}


def modules():
    for package, folder in PACKAGES.items():
        for path in sorted(folder.rglob("*.py")):
            parts = path.relative_to(folder).with_suffix("").parts
            name = ".".join((package, *parts)).removesuffix(".__init__")
            yield name, path, path.name == "__init__.py"


def part_of(module: str) -> str:
    """'eqfree.lift.umbrella' -> 'lift'; 'eqfree' -> '__init__'."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "__init__"


def imported(name: str, is_package: bool, tree: ast.AST):
    """(line, module) for every import; ``from eqfree import x`` counts as importing part x where x is one,
    and as importing the package's ``__init__`` (the top layer) otherwise."""
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            yield from ((node.lineno, alias.name) for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = name.split(".")[: len(name.split(".")) - node.level + (1 if is_package else 0)]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module
            for alias in node.names:
                inner = f"{target}.{alias.name}"
                yield node.lineno, inner if target != "eqfree" or part_of(inner) in LAYERS else target


SOURCES = [(name, path, is_package, ast.parse(path.read_text())) for name, path, is_package in modules()]


@pytest.mark.parametrize("name, path, is_package, tree", SOURCES, ids=[s[0] for s in SOURCES])
def test_imports_point_down(name, path, is_package, tree):
    own = part_of(name)
    assert own in LAYERS, f"{name}: add its part {own!r} to the layer table"
    upward = []
    for line, target in imported(name, is_package, tree):
        if target.split(".")[0] in ("systems", "closures"):
            upward.append(f"{path.relative_to(ROOT)}:{line} imports {target}, a name that is not installed")
        if target.split(".")[0] != "eqfree":
            continue
        other = part_of(target) if part_of(target) in LAYERS else "__init__"
        if other != own and LAYERS[other] >= LAYERS[own]:
            upward.append(f"{path.relative_to(ROOT)}:{line} imports {target}")
    assert not upward, "\n".join(upward)


@pytest.mark.parametrize("name, path, is_package, tree", SOURCES, ids=[s[0] for s in SOURCES])
def test_no_private_reaches_or_probes(name, path, is_package, tree):
    found = []
    for node in ast.walk(tree):
        where = f"{path.relative_to(ROOT)}:{getattr(node, 'lineno', 0)}"
        if isinstance(node, ast.Attribute) and node.attr.startswith("_") and not node.attr.startswith("__"):
            if not (isinstance(node.value, ast.Name) and node.value.id in ("self", "cls")):
                found.append(f"{where} reaches {ast.unparse(node)}")
        elif isinstance(node, ast.ImportFrom):
            found += [f"{where} imports private {a.name}" for a in node.names
                      if a.name.startswith("_") and not a.name.startswith("__")]
        elif (isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in ("getattr", "hasattr")
              and len(node.args) >= 2 and isinstance(node.args[1], ast.Constant) and node.args[1].value in DECLARED):
            found.append(f"{where} probes {ast.unparse(node)}")
    assert not found, "\n".join(found)


def test_one_namespace(tmp_path):
    """systems/ and closures/ install inside eqfree: away from the source tree, `import systems` fails."""
    import subprocess
    import sys

    def run(code):
        return subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True)

    assert run("import eqfree.systems, eqfree.closures").returncode == 0
    for name in ("systems", "closures"):
        assert "No module named" in run(f"import {name}").stderr
