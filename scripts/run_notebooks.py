#!/usr/bin/env python
"""Execute every notebook and write its outputs into it, so that the notebooks read on a web page.

    python scripts/run_notebooks.py                      # every notebooks/*.ipynb, in place
    python scripts/run_notebooks.py notebooks/02_estimators.ipynb
    python scripts/run_notebooks.py --out /tmp/nb        # write executed copies to /tmp/nb, leave the originals
    python scripts/run_notebooks.py --clear              # the reverse: strip every output (commit clean diffs)

Each notebook runs top to bottom in a fresh kernel (nbclient; the working directory is the notebook's own, as
under ``pytest --nbmake``), with the repository root first on ``PYTHONPATH`` so that this checkout's infoplane
is the one imported, and without ``MPLBACKEND`` so that figures are embedded inline. A cell that raises stops
that notebook (nothing is written for it) and the script exits non-zero after trying the others. No timing
metadata is recorded, so re-running an unchanged notebook changes only what its outputs changed.
"""
from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def kernel_environment() -> None:
    """The kernel inherits this process's environment: this checkout first, inline figures."""
    os.environ.pop("MPLBACKEND", None)  # Agg would leave every figure out of the notebook
    path = os.environ.get("PYTHONPATH", "")
    os.environ["PYTHONPATH"] = os.pathsep.join([str(ROOT), *([path] if path else [])])
    os.environ.setdefault("PYTHONUNBUFFERED", "1")


def execute(path: Path, out: Path, timeout: int, kernel: str) -> float:
    """Run ``path`` in a fresh kernel and write the executed notebook to ``out``; return the seconds taken."""
    import nbformat
    from nbclient import NotebookClient

    nb = nbformat.read(path, as_version=4)
    client = NotebookClient(nb, timeout=timeout, kernel_name=kernel, record_timing=False,
                            resources={"metadata": {"path": str(path.parent)}})
    t0 = time.perf_counter()
    client.execute()
    seconds = time.perf_counter() - t0
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_suffix(".ipynb.tmp")
    nbformat.write(nb, tmp)
    os.replace(tmp, out)  # a failure never leaves a half-written notebook
    return seconds


def clear(path: Path) -> None:
    """Strip outputs and execution counts from ``path``, in place."""
    import nbformat

    nb = nbformat.read(path, as_version=4)
    for cell in nb.cells:
        if cell.cell_type == "code":
            cell.outputs, cell.execution_count = [], None
            cell.metadata.pop("execution", None)
    nbformat.write(nb, path)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("notebooks", nargs="*", type=Path, help="notebooks to run (default: notebooks/*.ipynb)")
    parser.add_argument("--out", type=Path, help="write executed copies here instead of in place")
    parser.add_argument("--timeout", type=int, default=1200, help="seconds per cell (default 1200)")
    parser.add_argument("--kernel", default="python3", help="Jupyter kernel name (default python3)")
    parser.add_argument("--clear", action="store_true", help="strip outputs instead of executing")
    args = parser.parse_args(argv)
    paths = [p.resolve() for p in args.notebooks] or sorted((ROOT / "notebooks").glob("*.ipynb"))
    missing = [str(p) for p in paths if not p.is_file()]
    if missing:
        parser.error(f"notebooks: no such file: {', '.join(missing)}")
    if args.clear:
        for path in paths:
            clear(path)
            print(f"cleared {path.relative_to(ROOT) if path.is_relative_to(ROOT) else path}", flush=True)
        return 0
    kernel_environment()
    failed = []
    for path in paths:
        out = path if args.out is None else args.out / path.name
        try:
            seconds = execute(path, out, args.timeout, args.kernel)
        except Exception as exc:  # report, run the others, fail at the end
            failed.append(path.name)
            print(f"FAILED {path.name}: {type(exc).__name__}: {str(exc)[-2000:]}", flush=True)
            continue
        print(f"executed {path.name} in {seconds:.1f} s -> {out}", flush=True)
    if failed:
        print(f"{len(failed)} of {len(paths)} notebooks failed: {', '.join(failed)}", flush=True)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
