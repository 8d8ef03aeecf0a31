"""The core knows nothing of the local stack, the example estate or the environment (enforced here).

Core packages (decoding, projection, contracts, apply, Kafka, Connect, reconciliation, BI access and
the typed configuration model) receive a `Settings`/`Estate` built at the edges (cli.py, defs/, the
tests); they never read environment variables, never build the configuration themselves, and never
import the development stack (pipelines.stack), the simulator (estate), the benchmarks or the edges.
Checked on the source with `ast`, so a violation names file:line.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

from tests.support.estate import bundled_estate

pytestmark = pytest.mark.unit

REPO = Path(__file__).resolve().parents[3]
CORE = ["cdc", "projection", "contract", "apply", "kafka", "connect", "reconcile", "bi",
        "config/model.py", "config/secrets.py"]
FORBIDDEN_IMPORTS = ("pipelines.stack", "estate", "pipelines.bench", "pipelines.cli", "pipelines.defs",
                     "pipelines.demo", "pipelines.ui", "pipelines.config.load", "pipelines.definitions",
                     "pipelines.resnapshot", "pipelines.scaffold", "pipelines.dagster_runs", "pipelines.dbt_cli",
                     "pipelines.deploy")


def core_files() -> list[Path]:
    files: list[Path] = []
    for part in CORE:
        p = REPO / "pipelines" / part
        files += sorted(p.rglob("*.py")) if p.is_dir() else [p]
    return files


def _imports(tree: ast.AST):
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield node.lineno, alias.name
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            yield node.lineno, node.module
            for alias in node.names:
                yield node.lineno, f"{node.module}.{alias.name}"


def _environment_reads(tree: ast.AST):
    """os.getenv(...), os.environ.get(...), os.environ[...] and Settings.load(...) — configuration
    read outside the edges. (`{**os.environ, ...}` as a child process's environment is allowed.)"""
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
            f = node.func
            if f.attr == "getenv" and isinstance(f.value, ast.Name) and f.value.id == "os":
                yield node.lineno, "os.getenv"
            if (f.attr in ("get", "setdefault", "pop") and isinstance(f.value, ast.Attribute)
                    and f.value.attr == "environ"):
                yield node.lineno, f"os.environ.{f.attr}"
            if f.attr == "load" and isinstance(f.value, ast.Name) and f.value.id == "Settings":
                yield node.lineno, "Settings.load"
        if isinstance(node, ast.Subscript) and isinstance(node.value, ast.Attribute) and node.value.attr == "environ":
            yield node.lineno, "os.environ[...]"


def test_core_files_are_found():
    assert len(core_files()) > 40


@pytest.mark.parametrize("path", core_files(), ids=lambda p: str(p.relative_to(REPO)))
def test_core_module_imports_no_devstack_and_reads_no_environment(path):
    tree = ast.parse(path.read_text(), str(path))
    rel = path.relative_to(REPO)
    bad = [f"{rel}:{line}: imports {name}" for line, name in _imports(tree)
           if any(name == f or name.startswith(f + ".") for f in FORBIDDEN_IMPORTS)]
    bad += [f"{rel}:{line}: reads configuration itself ({what})" for line, what in _environment_reads(tree)]
    assert not bad, "\n".join(bad)


def _string_constants(tree: ast.AST):
    docstrings = {id(node.value) for node in ast.walk(tree)  # module/class/function/attribute docstrings
                  if isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant)}
    for node in ast.walk(tree):
        if isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in docstrings:
            yield node.lineno, node.value


def test_core_code_names_no_service_or_contract_of_the_example_estate():
    """Names of the bundled estate's services and contracts appear in no core string literal (docstrings,
    which give examples, are allowed)."""
    estate = bundled_estate()
    names = set(estate.service_names) | {p.name for p in estate.contracts.iterdir() if p.is_dir()}
    pattern = re.compile(r"\b(" + "|".join(sorted(map(re.escape, names))) + r")(_v\d+)?\b")
    bad = []
    for path in core_files():
        for line, value in _string_constants(ast.parse(path.read_text())):
            m = pattern.search(value)
            if m:
                bad.append(f"{path.relative_to(REPO)}:{line}: {m.group(0)!r} in {value[:60]!r}")
    assert not bad, "\n".join(bad)


def test_the_checks_catch_violations():
    """The checks themselves can fail: a module with each kind of violation is flagged."""
    sample = ast.parse("import os\nfrom pipelines.stack.manager import Stack\nx = os.environ.get('A')\n"
                       "y = os.environ['B']\nz = os.getenv('C')\ns = Settings.load()\n")
    assert [n for _, n in _imports(sample) if n.startswith("pipelines.stack")]
    assert sorted(w for _, w in _environment_reads(sample)) == sorted(
        ["os.environ.get", "os.getenv", "Settings.load", "os.environ[...]"])


def test_benchmark_plotting_and_browser_tools_are_not_runtime_dependencies():
    import tomllib

    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    runtime = {d.split("==")[0].split("[")[0].lower() for d in project["dependencies"]}
    assert not runtime & {"matplotlib", "playwright", "pytest", "ruff"}
    extras = {d.split("==")[0].lower() for deps in project["optional-dependencies"].values() for d in deps}
    assert {"matplotlib", "playwright"} <= extras


def test_test_file_names_are_unique():
    """pytest imports test files by basename (rootdir-relative, no packages): two files with one name
    stop collection with 'import file mismatch'."""
    import collections

    names = collections.Counter(p.name for p in (REPO / "tests").rglob("test_*.py"))
    assert [n for n, k in names.items() if k > 1] == []
