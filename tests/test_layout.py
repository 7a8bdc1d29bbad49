"""The layout the code promises: one module per notebook, numbered in dependency order, no private names shared between
modules, no long functions, and nothing generated or runtime in git."""
import ast
import json
import os
import re
import subprocess
import sys
import tomllib

import pytest
from conftest import ROOT

PKG = ROOT / "cora_gnn"
NOTEBOOKS = sorted(p for p in (ROOT / "nbs").glob("[0-9][0-9]_*.ipynb"))


def default_exp(nb) -> str:
    "The module a notebook exports to (its `#| default_exp` line)."
    for cell in json.loads(nb.read_text())["cells"]:
        if m := re.search(r"^#\|\s*default_exp\s+(\S+)", "".join(cell["source"]), re.M): return m[1]
    raise AssertionError(f"{nb.name} has no default_exp")


ORDER = {nb.stem.split("_", 1)[1]: int(nb.stem.split("_", 1)[0]) for nb in NOTEBOOKS}


def imports(module:str) -> list[tuple[str, list[str]]]:
    "(imported cora_gnn module, names taken from it) for every import of the package in `module`."
    out = []
    for node in ast.walk(ast.parse((PKG / f"{module}.py").read_text())):
        if isinstance(node, ast.ImportFrom) and node.module:
            name = node.module if node.level == 0 else f"cora_gnn.{node.module}"
            if name.startswith("cora_gnn."): out.append((name.split(".")[1], [a.name for a in node.names]))
        elif isinstance(node, ast.Import):
            out += [(a.name.split(".")[1], []) for a in node.names if a.name.startswith("cora_gnn.")]
    return out


def test_one_module_per_notebook_with_the_same_stem():
    assert NOTEBOOKS, "no library notebooks"
    for nb in NOTEBOOKS: assert default_exp(nb) == nb.stem.split("_", 1)[1], nb.name
    assert len(set(int(nb.stem[:2]) for nb in NOTEBOOKS)) == len(NOTEBOOKS), "two notebooks share a number"
    modules = {p.stem for p in PKG.glob("*.py") if not p.stem.startswith("_")}
    assert modules == set(ORDER), modules ^ set(ORDER)


@pytest.mark.parametrize("module", sorted(ORDER))
def test_no_module_imports_a_later_one_or_a_private_name(module):
    for imported, names in imports(module):
        assert imported in ORDER, (module, imported)
        assert ORDER[imported] < ORDER[module], f"{module} ({ORDER[module]:02d}) imports the later {imported} ({ORDER[imported]:02d})"
        private = [n for n in names if n.startswith("_")]
        assert not private, f"{module} imports private names {private} from {imported}"


def test_the_import_checks_can_fail(tmp_path, monkeypatch):
    "The checks above read real imports: a module importing a later one and a private name is caught."
    bad = PKG / "config.py"
    monkeypatch.setattr("test_layout.PKG", tmp_path)
    (tmp_path / "config.py").write_text(bad.read_text() + "\nfrom cora_gnn.serve import _paper_seconds\n")
    with pytest.raises(AssertionError, match="imports the later serve"):
        test_no_module_imports_a_later_one_or_a_private_name("config")


def test_functions_stay_short():
    "No function or method of the package runs over 60 lines."
    long = []
    for path in PKG.glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and node.end_lineno - node.lineno + 1 > 60:
                long.append(f"{path.name}:{node.lineno} {node.name} ({node.end_lineno - node.lineno + 1} lines)")
    assert not long, long


@pytest.mark.slow
def test_git_holds_no_generated_or_runtime_files():
    files = subprocess.run(["git", "ls-files"], cwd=ROOT, capture_output=True, text=True, check=True).stdout.splitlines()
    junk = [f for f in files if re.search(r"\.(db|sqlite3?|db-wal|db-shm|pt|html)$|(^|/)(runs|_proc|_docs|build|wandb)/", f)]
    assert not junk, junk


@pytest.mark.slow
def test_the_quick_tier_fails_a_test_that_starts_a_process(tmp_path):
    "`pytest --quick` leaves out tests marked slow and fails an unmarked one that starts a process, saying what to do."
    (tmp_path / "test_probe.py").write_text("import subprocess, pytest\n"
                                            "def test_in_process(): assert sum([1, 2]) == 3\n"
                                            "def test_starts_a_process(): subprocess.run(['true'])\n"
                                            "@pytest.mark.slow\ndef test_marked(): subprocess.run(['true'])\n")
    cmd = [sys.executable, "-m", "pytest", "-p", "conftest", "-p", "no:cacheprovider", "-q", "test_probe.py"]
    env = {**os.environ, "PYTHONPATH": str(ROOT / "tests")}
    quick = subprocess.run([*cmd, "--quick"], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    assert "1 failed, 1 passed, 1 deselected" in quick.stdout, quick.stdout[-3000:]
    assert "test_starts_a_process" in quick.stdout and "mark it @pytest.mark.slow" in quick.stdout, quick.stdout[-3000:]
    full = subprocess.run(cmd, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    assert "3 passed" in full.stdout, full.stdout[-3000:]


def test_modules_stay_under_400_lines():
    "One job per module: none of them grows past 400 lines."
    long = {p.name: n for p in PKG.glob("*.py") if not p.stem.startswith("_") and (n := len(p.read_text().splitlines())) > 400}
    assert not long, long


LINE_LENGTH = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["ruff"]["line-length"]


def long_lines(path) -> list[int]:
    "Line numbers of `path` over the line length, but for the one nbdev writes: the first line of `__all__`."
    return [i for i, line in enumerate(path.read_text().splitlines(), 1)
            if len(line) > LINE_LENGTH and not line.startswith("__all__ = [")]


def test_exported_lines_stay_within_the_line_length(tmp_path):
    "Every line the notebooks export fits ruff's line length (its E501 allows nbdev's own `__all__` line 10 more)."
    assert not {p.name: n for p in PKG.glob("*.py") if not p.stem.startswith("_") and (n := long_lines(p))}
    (tmp_path / "wide.py").write_text(f"__all__ = ['{'a' * LINE_LENGTH}']\nx = '{'b' * LINE_LENGTH}'\n")
    assert long_lines(tmp_path / "wide.py") == [2]


def test_the_sidebar_and_the_architecture_page_list_every_module():
    "A new notebook appears in the site's Library section and in the Architecture page's table, in its place."
    quarto = (ROOT / "nbs" / "_quarto.yml").read_text()
    assert re.findall(r"^\s+- (\d\d_\w+\.ipynb)$", quarto, re.M) == [nb.name for nb in NOTEBOOKS]
    table = re.findall(r"^\| (\d\d) \| `(\w+)` \|", (ROOT / "nbs" / "architecture.qmd").read_text(), re.M)
    assert table == [(nb.stem[:2], nb.stem[3:]) for nb in NOTEBOOKS]


def shown_definitions(nb) -> list[tuple[str, bool]]:
    """(name, followed) for each public def or class a notebook exports: followed when a code cell that shows or tests it
    (not an exported or hidden one) comes before the next exported cell."""
    out, pending = [], []
    for cell in json.loads(nb.read_text())["cells"]:
        src = "".join(cell["source"])
        if cell["cell_type"] != "code" or not src.strip() or re.match(r"#\|\s*(hide|default_exp)", src): continue
        if re.match(r"#\|\s*export", src):
            out += [(n, False) for n in pending]
            tree = ast.parse(re.sub(r"^#\|.*$", "", src, flags=re.M))
            names = [n.name for n in tree.body if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef))
                     and not n.name.startswith("_")]
            out += [(n, False) for n in names[:-1]]
            pending = names[-1:]
        else: out, pending = out + [(n, True) for n in pending], []
    return out + [(n, False) for n in pending]


def test_most_definitions_are_shown_where_they_are_defined():
    "fastcore's pattern: at least 60% of the public definitions are followed by a cell that shows and tests them."
    seen = [f for nb in NOTEBOOKS for _, f in shown_definitions(nb)]
    assert sum(seen) / len(seen) >= 0.6, f"{sum(seen)} of {len(seen)} definitions are followed by an example"


def test_the_share_of_shown_definitions_can_fail(tmp_path):
    nb = tmp_path / "00_x.ipynb"
    cells = [{"cell_type": "code", "source": s} for s in ("#| export\ndef a(): pass\ndef b(): pass", "b()", "#| export\nclass C: pass")]
    nb.write_text(json.dumps({"cells": cells}))
    assert shown_definitions(nb) == [("a", False), ("b", True), ("C", False)]
