"""The layout as documented: README's package map against the tree, and the size limits of modules and functions."""

from __future__ import annotations

import ast
import re
from pathlib import Path

from conftest import ROOT

PACKAGE = ROOT / "livemap"
MAX_MODULE_LINES = 400
MAX_FUNCTION_LINES = 50


def _package_map() -> dict[str, set[str]]:
    """README's package-map table: package path -> the module and folder names its row lists."""
    readme = (ROOT / "README.md").read_text()
    section = readme.split("### Package map", 1)[1].split("\n### ", 1)[0]
    rows = {}
    for line in section.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) == 3 and cells[0].startswith("`livemap/"):
            # The names in "holds" up to a parenthesis: `eta` (ETA model) lists `eta`, not the words after it.
            names = re.findall(r"`([a-z_0-9]+/?)`", re.sub(r"\([^)]*\)", "", cells[1]))
            rows[cells[0].strip("`")] = {n.rstrip("/") for n in names}
    return rows


def _tree() -> dict[str, set[str]]:
    """Each package under livemap/ -> its modules and sub-folders (sub-packages have rows of their own)."""
    tree = {}
    for init in sorted(PACKAGE.rglob("__init__.py")):
        pkg = init.parent
        names = {p.stem for p in pkg.glob("*.py") if p.name != "__init__.py"}
        names |= {d.name for d in pkg.iterdir() if d.is_dir() and not (d / "__init__.py").exists()}
        names -= {"__pycache__", "__main__"}
        tree[f"{pkg.relative_to(ROOT)}/"] = names
    return tree


def test_readme_package_map_matches_the_tree() -> None:
    documented, actual = _package_map(), _tree()
    # A sub-package without a row of its own is named in its parent's row.
    for pkg in list(actual):
        if pkg not in documented:
            parent = f"{Path(pkg).parent}/"
            assert parent in actual, f"{pkg} has no row in README's package map"
            actual.pop(pkg)
            actual[parent] |= {Path(pkg).name}
    assert documented.keys() == actual.keys()
    for pkg, names in actual.items():
        assert documented[pkg] == names, (
            f"{pkg}: README lists {sorted(documented[pkg] - names)} extra, misses {sorted(names - documented[pkg])}"
        )


def test_modules_and_functions_stay_short() -> None:
    """livemap's and the simulator's (tests are exempt: a scenario may read best in one piece)."""
    long = []
    for path in sorted([*PACKAGE.rglob("*.py"), *(ROOT / "simulator").rglob("*.py")]):
        source = path.read_text()
        lines = source.count("\n")
        if lines > MAX_MODULE_LINES:
            long.append(f"{path.relative_to(ROOT)}: {lines} lines")
        for node in ast.walk(ast.parse(source)):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                length = (node.end_lineno or node.lineno) - node.lineno + 1
                if length > MAX_FUNCTION_LINES:
                    long.append(f"{path.relative_to(ROOT)}:{node.lineno} {node.name}: {length} lines")
    assert not long, "over the limits (README, Package map): " + "; ".join(long)
