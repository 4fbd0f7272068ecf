"""The house rules, checked on the source: imports point down the layers of docs/architecture.md, no
module reaches into another's private names, and nothing probes for what a protocol declares."""

import ast
import io
import re
import tokenize
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


ACCEPTANCE = sorted([*(ROOT / "tests").glob("test_*.py"), *(ROOT / "tutorials").glob("*.py")])
#: comparisons of closeness whose rtol / atol / rel / abs / decimal keyword sets a tolerance
CLOSE_CALLS = {"approx", "isclose", "allclose", "assert_allclose", "assert_almost_equal", "assert_array_almost_equal"}
TOLERANCE_KEYWORDS = {"rtol", "atol", "rel", "abs", "decimal"}
BOUND_NAME = re.compile(r"^(r|a)?tol(erance)?$|^(bound|margin)$|_(tol|tolerance|bound|margin)$", re.IGNORECASE)
ROUNDOFF = 1e-6
PRAGMA = re.compile(r"#\s*(noqa|type:|pragma|fmt:)")


def scale_literals(node: ast.AST, arithmetic: bool = False) -> list:
    """The numbers in node that set a scale: float literals above round-off (|v| > 1e-6), and integer literals
    other than 0 and 1 inside arithmetic (the k of ``k * se``, the 6 of ``h**2 / 6``)."""
    found = []
    if isinstance(node, ast.Constant) and type(node.value) in (int, float):
        if abs(node.value) > ROUNDOFF if isinstance(node.value, float) else arithmetic and node.value not in (0, 1):
            found.append(node.value)
    for child in ast.iter_child_nodes(node):
        found += scale_literals(child, arithmetic or isinstance(node, ast.BinOp))
    return found


COUNTS = {"len", "sum", "count_nonzero", "size", "sizes", "shape", "ndim", "st_size", "iterations", "n_walkers",
          "n_samples", "n_steps", "n_epochs", "n_calls", "nfev", "fine_steps", "frames"}


def counts(node: ast.AST) -> bool:
    """Whether node is a count or size (``len(x)``, ``mask.sum()``, ``x.size``, ``path.stat().st_size``)."""
    return any(isinstance(sub, ast.Name) and sub.id in COUNTS or isinstance(sub, ast.Attribute) and sub.attr in COUNTS
               for sub in ast.walk(node))


def ordering_scale(node: ast.Compare) -> bool:
    """Whether an ordering comparison sets a scale: a literal scale in it, or a bare integer other than 0 and 1
    compared with something that is not a count (``|ψ − 155| <= 25`` is a bound; ``len(x) >= 3`` is not)."""
    if scale_literals(node):
        return True
    operands = [node.left, *node.comparators]
    bare = [o for o in operands if isinstance(o, ast.Constant) and type(o.value) is int and o.value not in (0, 1)]
    return bool(bare) and not any(counts(o) for o in operands if o not in bare)


def call_name(node: ast.Call) -> str:
    return node.func.attr if isinstance(node.func, ast.Attribute) else getattr(node.func, "id", "")


def is_bound(stmt: ast.stmt) -> bool:
    """An assertion (``assert``, or a call of an ``assert*`` function) that orders against a scale
    (``x < 0.1``, ``err <= 3 * se``) or compares by closeness with a tolerance above round-off
    (``pytest.approx(v, rel=0.05)``, ``assert_allclose(a, b, atol=4 * se)``, ``np.isclose(..., rtol=...)``);
    or the assignment of a scale to a bound's name (``tol``, ``rtol``, ``atol``, ``bound``, ``margin``, ``*_tol``)."""
    if isinstance(stmt, ast.Assign):
        named = any(isinstance(target, ast.Name) and BOUND_NAME.search(target.id) for target in stmt.targets)
        return named and bool(scale_literals(stmt.value))
    asserting = isinstance(stmt, ast.Assert) or (
        isinstance(stmt, ast.Expr) and isinstance(stmt.value, ast.Call) and call_name(stmt.value).startswith("assert"))
    if not asserting:
        return False
    for node in ast.walk(stmt):
        if isinstance(node, ast.Compare) and any(isinstance(op, (ast.Lt, ast.LtE, ast.Gt, ast.GtE)) for op in node.ops):
            if ordering_scale(node):
                return True
        if isinstance(node, ast.Call) and call_name(node) in CLOSE_CALLS:
            tolerances = [k for k in node.keywords if k.arg in TOLERANCE_KEYWORDS]
            if any(k.arg == "decimal" or not [v for v in ast.walk(k.value) if isinstance(v, ast.Constant)]
                   or scale_literals(k.value, arithmetic=True) for k in tolerances):
                return True
    return False


def underived_bounds(path: Path) -> list[str]:
    """``file:line`` of each acceptance bound in path with no derivation next to it (see test_bounds_derived)."""
    source = path.read_text()
    lines = source.splitlines()
    comments = {token.start[0] for token in tokenize.generate_tokens(io.StringIO(source).readline)
                if token.type == tokenize.COMMENT and not PRAGMA.match(token.string)}

    def commented(first: int, last: int) -> bool:
        return any(line in comments for line in range(first, last + 1))

    def derived(stmt: ast.stmt, previous: ast.stmt | None, docstring: str) -> bool:
        if commented(stmt.lineno, stmt.end_lineno):  # on the statement
            return True
        above = stmt.lineno - 1
        if above in comments and lines[above - 1].lstrip().startswith("#"):  # a comment block directly above
            return True
        if previous is not None and previous.end_lineno == above:  # the statement directly above (where the
            before = previous.lineno - 1  # bound is usually computed), commented on its lines or just above them
            if commented(previous.lineno, above) or before in comments and lines[before - 1].lstrip()[:1] == "#":
                return True
        numbers = scale_literals(stmt)
        return bool(numbers) and all(re.search(rf"(?<![\w.]){re.escape(repr(v))}(?![\w.])", docstring)
                                     or re.search(rf"(?<![\w.]){re.escape(str(v))}(?![\w.])", docstring)
                                     for v in numbers)  # the test's docstring names every number of the bound

    found = []

    def visit(body: list[ast.stmt], docstring: str) -> None:
        previous = None
        for stmt in body:
            if isinstance(stmt, (ast.FunctionDef, ast.AsyncFunctionDef)):
                visit(stmt.body, ast.get_docstring(stmt) or docstring)
            elif isinstance(stmt, ast.ClassDef):
                visit(stmt.body, "")
            else:
                if is_bound(stmt) and not derived(stmt, previous, docstring):
                    found.append(f"{path.relative_to(ROOT)}:{stmt.lineno}: {lines[stmt.lineno - 1].strip()[:100]}")
                for block in ("body", "orelse", "finalbody"):
                    visit(getattr(stmt, block, []), docstring)
                for handler in getattr(stmt, "handlers", []):
                    visit(handler.body, docstring)
            previous = stmt

    visit(ast.parse(source).body, "")
    return found


@pytest.mark.parametrize("path", ACCEPTANCE, ids=[path.name for path in ACCEPTANCE])
def test_bounds_derived(path):
    """Every acceptance bound in the tests and tutorials carries its derivation (issue 26).

    A *bound* is an assertion — ``assert``, or a call of an ``assert*`` function — that orders a value against a
    scale, or compares by closeness with a tolerance: ``x < 0.1``, ``err <= 3 * se + 1e-4``, ``0.9 <= slope``,
    ``pytest.approx(v, rel=0.05)``, ``assert_allclose(a, b, atol=4 * se)``, ``np.isclose(..., rtol=...)``; and
    the assignment of a scale to a bound's name (``tol``, ``rtol``, ``atol``, ``bound``, ``margin``, ``*_tol``).
    A *scale* is a float literal above round-off (|v| > 1e-6), an integer literal other than 0 and 1 inside
    arithmetic (the k of ``k * se``), or a bare integer other than 0 and 1 compared with anything but a count
    (``|ψ − 155| <= 25``). Not bounds, so exempt: exact invariants (``==``, shapes, ``assert_array_equal``,
    signs ``> 0``), counts and sizes against a bare integer (``len(x) >= 3``, ``mask.sum() >= 8``, a file's
    ``st_size``: :data:`COUNTS`), and tolerances at round-off (every number ≤ 1e-6, or the default of ``approx``
    / ``assert_allclose``).

    Its *derivation* is a ``#`` comment on one of its lines or in the comment block directly above it; or, where
    the statement directly above computes the bound (``se = ...`` then the assert), on that statement's lines
    or in the comment block directly above that; or the test's docstring naming every number of the bound.
    What the comment must say (reviewed by people, not by this test): k × the standard
    error and where the standard error comes from (a formula, the n, the variance), plus the stated bias bound
    (discretization O(dt), finite ε, finite sample); or, for an invariant or round-off, that it is one."""
    found = underived_bounds(path)
    assert not found, f"{len(found)} bounds without a derivation:\n" + "\n".join(found)
