"""Sphinx configuration of the infoplane documentation.

Build: ``sphinx-build -W --keep-going -b html docs docs/_build/html`` (the ``docs`` extra; run by ``.ci/run``).
At build time this file generates, under ignored paths: the API reference pages (one per public package, from
its ``__all__``), the changelog's unreleased part (every ``changelog.d/*.md`` fragment) and a copy of the
notebooks (rendered with their stored outputs; never executed here).
"""
from __future__ import annotations

import importlib
import os
import shutil
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("MPLBACKEND", "Agg")

import infoplane  # noqa: E402

project = "infoplane"
author = "the infoplane developers"
copyright = "2026, the infoplane developers"  # noqa: A001
version = release = infoplane.__version__

extensions = [
    "myst_nb",  # Markdown (MyST) pages and the notebooks
    "sphinx.ext.autodoc",
    "sphinx.ext.autosummary",
    "numpydoc",
    "sphinx.ext.mathjax",
]
source_suffix = {".rst": "restructuredtext", ".md": "myst-nb", ".ipynb": "myst-nb"}
exclude_patterns = ["_build", "_generated", "**.ipynb_checkpoints", "Thumbs.db", ".DS_Store"]
templates_path = ["_templates"]

# --- MyST and notebooks ------------------------------------------------------------------------------
myst_enable_extensions = ["dollarmath", "colon_fence", "deflist"]
myst_heading_anchors = 3  # [text](page.md#a-heading) links resolve
nb_execution_mode = "off"  # render the outputs stored in the notebooks; scripts/run_notebooks.py writes them
nb_merge_streams = True

# --- API reference -----------------------------------------------------------------------------------
autosummary_generate = True
autosummary_imported_members = True
autodoc_typehints = "none"  # numpydoc's Parameters sections carry the types
autodoc_member_order = "bysource"
autodoc_default_options = {"members": True, "inherited-members": False, "show-inheritance": False}
autodoc_mock_imports = ["lightning", "transformers", "accelerate", "tensorboard", "mlflow", "wandb", "dask"]
numpydoc_show_class_members = False  # members come from the class template; no inherited torch/nn noise
numpydoc_show_inherited_class_members = False
numpydoc_class_members_toctree = False
numpydoc_xref_param_type = False
numpydoc_validation_checks: set[str] = set()
# Docstrings of the pinned libraries we subclass (torch.nn.Module) are not ours to fix.
suppress_warnings = ["autosummary.import_cycle"]

# --- HTML --------------------------------------------------------------------------------------------
html_theme = "pydata_sphinx_theme"
html_title = f"infoplane {version}"
html_static_path: list[str] = []
html_theme_options = {
    "navigation_depth": 3,
    "show_toc_level": 2,
    "navbar_align": "left",
    "secondary_sidebar_items": ["page-toc"],
    "footer_start": ["copyright"],
    "footer_end": ["sphinx-version"],
}
html_sidebars = {"changelog": [], "getting_started": []}

#: The public packages of the API reference, in the order of the pipeline.
API_PACKAGES = [
    ("infoplane.recording", "Recording: attach to a model, choose layers, schedule epochs"),
    ("infoplane.store", "Stores: memory and crash-safe zarr"),
    ("infoplane.estimators", "Estimators of I(T;X) and I(T;Y), in bits"),
    ("infoplane.estimators.functional", "Functional twins of every estimator, and the kernels"),
    ("infoplane.analysis", "Analysis: information-plane tables, summaries, diagnostics, result files"),
    ("infoplane.plotting", "Plotting tidy tables"),
    ("infoplane.nets", "Reference networks, data sets, training, β sweeps"),
    ("infoplane.noise", "Noisy networks"),
    ("infoplane.groundtruth", "Tasks of known mutual information"),
    ("infoplane.integrations", "Trainers, loggers, several processes"),
]
#: Modules of optional integrations documented beside their package (their extras are mocked above).
API_EXTRA_MODULES = [
    ("infoplane.integrations.lightning", "Lightning callback"),
    ("infoplane.integrations.huggingface", "Hugging Face callback"),
]


def _api_pages() -> None:
    """One page per public package: its docstring, then an autosummary table (and a page) per name in __all__."""
    out = HERE / "api" / "generated"
    shutil.rmtree(out, ignore_errors=True)  # generated: stubs of names no longer exported must not linger
    out.mkdir(parents=True)
    documented: dict[int, str] = {}  # id(object) -> its first (documented) full name
    for module_name, title in API_PACKAGES + API_EXTRA_MODULES:
        module = importlib.import_module(module_name)
        names = list(getattr(module, "__all__", []))
        if module_name == "infoplane.estimators":
            names = [n for n in names if n != "functional"]  # its own page
        own, elsewhere = [], []
        for n in names:  # a name exported by two packages is documented once, where it first appears
            obj = getattr(module, n)
            key = id(obj)
            if key in documented and not isinstance(obj, (int, float, str, tuple)):
                elsewhere.append(f"* ``{n}``: :py:obj:`{documented[key]}`")
            else:
                documented.setdefault(key, f"{module_name}.{n}")
                own.append(n)
        heading = f"``{module_name}``: {title}"
        lines = [heading, "=" * len(heading), "", f".. automodule:: {module_name}", "   :no-members:", ""]
        if own:
            lines += [".. currentmodule:: " + module_name, "", ".. autosummary::", "   :toctree: .", ""]
            lines += [f"   {n}" for n in own] + [""]
        if elsewhere:
            lines += ["Also exported here, documented with their first home:", ""] + elsewhere
        (out / f"{module_name}.rst").write_text("\n".join(lines) + "\n")
    _toplevel_page(out)


def _toplevel_page(out: Path) -> None:
    """The top-level names, each linked to its documented home."""
    homes = {}
    for module_name, _ in API_PACKAGES:
        module = importlib.import_module(module_name)
        for n in getattr(module, "__all__", []):
            homes.setdefault(id(getattr(module, n)), f"{module_name}.{n}")
    rows = []
    for n in infoplane.__all__:
        obj = getattr(infoplane, n)
        if n == "__version__":
            continue
        target = homes.get(id(obj))
        if target is None and n in ("estimators", "nets"):
            target = f"infoplane.{n}"
            rows.append(f"* ``infoplane.{n}``: :doc:`{target}`")
        elif target is not None:
            rows.append(f"* ``infoplane.{n}``: :py:obj:`{target}`")
    (out / "toplevel.rst").write_text("The names of ``import infoplane``\n" + "=" * 33 + "\n\n"
                                      + "Every top-level name is one of the packages' own, documented there:\n\n"
                                      + "\n".join(rows) + "\n")


def _changelog() -> None:
    """The unreleased changes: every changelog.d/*.md fragment, one section per fragment (by file name)."""
    gen = HERE / "_generated"
    gen.mkdir(exist_ok=True)
    parts = []
    for fragment in sorted((ROOT / "changelog.d").glob("*.md")):
        text = fragment.read_text().strip()
        if text:
            parts.append(_fragment(fragment.stem, text))
    (gen / "unreleased.md").write_text("\n\n".join(parts) + "\n" if parts else "Nothing yet.\n")


def _fragment(name: str, text: str) -> str:
    """One fragment as a level-1 section named after its file; its own headings shifted to start at level 2
    (the page includes the whole with an offset, so heading levels always increase one at a time)."""
    lines, fenced, levels = text.splitlines(), False, []
    for line in lines:
        fenced ^= line.lstrip().startswith("```")
        if not fenced and line.startswith("#"):
            levels.append(len(line) - len(line.lstrip("#")))
    shift = 2 - min(levels) if levels else 0
    out, fenced = [f"# {name}", ""], False
    for line in lines:
        fenced ^= line.lstrip().startswith("```")
        if not fenced and line.startswith("#"):
            level = len(line) - len(line.lstrip("#"))
            line = "#" * min(max(level + shift, 2), 6) + line[level:]
        out.append(line)
    return "\n".join(out)


def _notebooks() -> None:
    """A copy of notebooks/*.ipynb under docs/notebooks (ignored by git), rendered with their stored outputs."""
    dest = HERE / "notebooks"
    dest.mkdir(exist_ok=True)
    wanted = {p.name for p in (ROOT / "notebooks").glob("*.ipynb")}
    for stale in dest.glob("*.ipynb"):
        if stale.name not in wanted:
            stale.unlink()
    for name in sorted(wanted):
        shutil.copy2(ROOT / "notebooks" / name, dest / name)


_api_pages()
_changelog()
_notebooks()
