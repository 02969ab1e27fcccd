"""The package's layout rules (docs/notes/layout.md), checked by parsing every module's imports with `ast`.

- no module over 500 lines;
- ``_core`` imports nothing else of infoplane; estimators import none of recording, store, analysis,
  plotting; plotting imports no estimator or store; recording imports no estimator, analysis or plotting;
- a private module (a path component ``_x``) is imported only from inside the folder that holds it.

Every import counts, also those inside functions (the lazy imports that keep ``import infoplane`` light).
"""
from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "infoplane"
MAX_LINES = 500

#: Folder -> the folders of infoplane it must never import.
FORBIDDEN = {
    "_core": {"recording", "store", "estimators", "analysis", "plotting", "nets", "groundtruth", "integrations",
              "__main__"},
    "estimators": {"recording", "store", "analysis", "plotting"},
    "plotting": {"estimators", "store"},
    "recording": {"estimators", "analysis", "plotting"},
}


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _modules() -> dict[str, Path]:
    return {_module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


MODULES = _modules()


def _resolve(importer: str, is_package: bool, level: int, module: str | None) -> str:
    """The absolute module name of ``from <level dots><module> import ...`` inside ``importer``."""
    if level == 0:
        return module or ""
    base = importer.split(".")
    if not is_package:
        base = base[:-1]
    base = base[: len(base) - (level - 1)]
    return ".".join(base + ([module] if module else []))


def imports_of(path: Path) -> list[tuple[int, str]]:
    """(line, absolute module name) of every infoplane module that ``path`` imports, anywhere in the file.

    ``from pkg import name`` counts as importing ``pkg.name`` when that is a module, else ``pkg``.
    """
    name = _module_name(path)
    is_package = path.name == "__init__.py"
    out = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), filename=str(path))):
        if isinstance(node, ast.Import):
            out += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            target = _resolve(name, is_package, node.level, node.module)
            for alias in node.names:
                sub = f"{target}.{alias.name}"
                out.append((node.lineno, sub if sub in MODULES else target))
    return [(line, mod) for line, mod in out if mod == "infoplane" or mod.startswith("infoplane.")]


def _folder(module: str) -> str:
    """The top folder (or top module) of infoplane that ``module`` is in: ``infoplane.a.b`` -> ``a``."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else ""


def _private_scope(module: str) -> str | None:
    """The package a private module is private to (the one holding its first ``_x`` component), or None."""
    parts = module.split(".")
    for i, part in enumerate(parts):
        if part.startswith("_") and not part.startswith("__"):
            return ".".join(parts[:i])
    return None


def _inside(module: str, package: str) -> bool:
    return module == package or module.startswith(package + ".")


def test_the_checker_sees_function_level_and_relative_imports(tmp_path):
    # The checker itself: a relative import inside a function resolves to the absolute module.
    assert _resolve("infoplane.analysis._engine", False, 2, "store") == "infoplane.store"
    assert _resolve("infoplane.analysis", True, 1, "_engine") == "infoplane.analysis._engine"
    found = dict((m, line) for line, m in imports_of(PACKAGE / "analysis" / "_engine.py"))
    assert "infoplane.store" in found  # the lazy `from ..store import open_store` inside FromPath.load
    assert _private_scope("infoplane.estimators._kernels.knn") == "infoplane.estimators"
    assert _private_scope("infoplane._core.validation") == "infoplane"
    assert _private_scope("infoplane.estimators.knn") is None


@pytest.mark.parametrize("module", sorted(MODULES))
def test_no_module_over_500_lines(module):
    n = len(MODULES[module].read_text(encoding="utf-8").splitlines())
    assert n <= MAX_LINES, f"{module} has {n} lines (limit {MAX_LINES}): split it by job."


def test_import_direction():
    bad = []
    for module, path in MODULES.items():
        forbidden = FORBIDDEN.get(_folder(module), set())
        for line, target in imports_of(path):
            if _folder(target) in forbidden:
                bad.append(f"{path.relative_to(ROOT)}:{line} imports {target}")
    assert not bad, "imports against the layout rules:\n" + "\n".join(bad)


def test_private_modules_are_imported_only_inside_their_folder():
    bad = []
    for module, path in MODULES.items():
        for line, target in imports_of(path):
            scope = _private_scope(target)
            if scope is not None and not _inside(module, scope):
                bad.append(f"{path.relative_to(ROOT)}:{line} imports {target} (private to {scope})")
    assert not bad, "private modules imported from outside their folder:\n" + "\n".join(bad)


def test_figures_and_benchmarks_use_public_names_only():
    bad = []
    for path in [*sorted((ROOT / "figures").rglob("*.py")), *sorted((ROOT / "benchmarks").rglob("*.py"))]:
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else (
                [node.module or ""] if isinstance(node, ast.ImportFrom) and node.level == 0 else [])
            for name in names:
                if name.startswith("infoplane.") and _private_scope(name) not in (None,):
                    bad.append(f"{path.relative_to(ROOT)}:{node.lineno} imports {name}")
    assert not bad, "scripts importing private modules:\n" + "\n".join(bad)


def test_mccabe_limit_is_12():
    import tomllib

    config = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    lint = config["tool"]["ruff"]["lint"]
    assert "C901" in lint["select"] and lint["mccabe"]["max-complexity"] <= 12


def test_typed_marker_ships_with_the_package():
    assert (PACKAGE / "py.typed").is_file()
    assert "py.typed" in (ROOT / "setup.cfg").read_text(encoding="utf-8")
