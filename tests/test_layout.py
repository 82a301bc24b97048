"""The layout's rules, read from the source: imports point one way through the layers, no module
imports itself back through others, and no file grows past the size a reader takes in at once.

Layers, lowest first (a module may import its own layer and the ones before it):

    reft → baselines → slurm → benchmarks.typed_yaml → benchmarks.tasks → benchmarks.experiments
    → benchmarks.report → benchmarks.sweeps → benchmarks.perf, benchmarks.lm_eval_adapter, benchmarks.lm_eval_tasks
    → benchmarks.cli

Every import counts, including the ones inside functions (a lazy import still ties two modules).
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
PACKAGES = ("reft", "baselines", "slurm", "benchmarks")
LAYERS = [
    ("reft",),
    ("baselines",),
    ("slurm",),
    ("benchmarks.typed_yaml",),
    ("benchmarks.tasks",),
    ("benchmarks.experiments",),
    ("benchmarks.report",),
    ("benchmarks.sweeps",),
    ("benchmarks.perf", "benchmarks.lm_eval_adapter", "benchmarks.lm_eval_tasks"),
    ("benchmarks.cli",),
]
MAX_LINES = 400


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(REPO).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _modules() -> dict[str, Path]:
    return {_module_name(path): path for package in PACKAGES for path in sorted((REPO / package).rglob("*.py"))}


def _imports(name: str, path: Path, known: set[str]) -> set[str]:
    """The project modules ``name`` imports (``from pkg import submodule`` counts as the submodule)."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                module = ".".join(base + ([node.module] if node.module else []))
            else:
                module = node.module or ""
            for alias in node.names:
                found.add(f"{module}.{alias.name}" if f"{module}.{alias.name}" in known else module)
    return {module for module in found if module.split(".")[0] in PACKAGES and module != name}


def _layer(module: str) -> int:
    for rank, prefixes in enumerate(LAYERS):
        if any(module == prefix or module.startswith(prefix + ".") for prefix in prefixes):
            return rank
    if module == "benchmarks":  # the package's own docstring-only __init__
        return len(LAYERS)
    raise AssertionError(f"{module} belongs to no layer: add it to LAYERS in {Path(__file__).name}")


def _graph() -> dict[str, set[str]]:
    modules = _modules()
    known = set(modules)
    return {name: {dep for dep in _imports(name, path, known) if dep in known} for name, path in modules.items()}


def test_every_import_points_down_the_layers():
    wrong = [f"{module} (layer {_layer(module)}) imports {dep} (layer {_layer(dep)})"
             for module, deps in _graph().items() if module != "benchmarks"
             for dep in sorted(deps) if _layer(dep) > _layer(module)]
    assert not wrong, "imports against the layers:\n" + "\n".join(wrong)


def _circles(graph: dict[str, set[str]]) -> list[str]:
    """Every import circle found by a depth-first walk, written ``a → b → a``."""
    state: dict[str, int] = {}  # 1: on the current path, 2: finished
    circles = []

    def visit(module: str, trail: list[str]) -> None:
        state[module] = 1
        for dep in sorted(graph.get(module, ())):
            if state.get(dep) == 1:
                circles.append(" → ".join(trail[trail.index(dep):] + [dep]))
            elif dep not in state:
                visit(dep, trail + [dep])
        state[module] = 2

    for module in sorted(graph):
        if module not in state:
            visit(module, [module])
    return circles


def test_no_import_circle():
    circles = _circles(_graph())
    assert not circles, "import circles:\n" + "\n".join(circles)


def test_the_command_is_imported_by_nothing():
    importers = [module for module, deps in _graph().items() if "benchmarks.cli" in deps]
    assert not importers


@pytest.mark.parametrize("folder", PACKAGES + ("tests", "examples"))
def test_no_file_over_the_size_limit(folder):
    long = [f"{path.relative_to(REPO)}: {n} lines" for path in sorted((REPO / folder).rglob("*.py"))
            if (n := len(path.read_text().splitlines())) > MAX_LINES]
    assert not long, f"files over {MAX_LINES} lines (split them by purpose):\n" + "\n".join(long)


def test_the_checker_sees_an_import_against_the_layers(tmp_path):
    """The rules catch what they are for: a module of a lower layer importing a higher one."""
    bad = tmp_path / "bad.py"
    bad.write_text("from benchmarks.experiments.run import run_experiment\n")
    known = set(_modules())
    deps = _imports("slurm.bad", bad, known)
    assert "benchmarks.experiments.run" in deps
    assert _layer("benchmarks.experiments.run") > _layer("slurm.bad")


def test_the_checker_sees_a_circle():
    assert _circles({"reft.model": {"reft.io"}, "reft.io": {"reft.model"}}) == ["reft.io → reft.model → reft.io"]
    assert _circles({"a": {"b"}, "b": set()}) == []
