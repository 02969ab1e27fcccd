"""One line describing the machine a benchmark ran on, shared by every script in benchmarks/.

Platform, processor, logical CPUs and the cores this process may use, torch threads, the 1-minute load
average (timings taken under load are not comparable with idle ones), and the versions of the libraries that
set the pace. Extra modules (``zarr``, ``joblib``, ...) add their versions.
"""
from __future__ import annotations

import importlib
import os
import platform


def describe(*extra_modules: str) -> str:
    """The machine line printed at the top of every benchmark."""
    import numpy as np
    import torch

    affinity = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else "?"
    load = f"{os.getloadavg()[0]:.1f}" if hasattr(os, "getloadavg") else "?"
    versions = [f"python {platform.python_version()}", f"numpy {np.__version__}", f"torch {torch.__version__}"]
    versions += [f"{name} {importlib.import_module(name).__version__}" for name in extra_modules]
    return (
        f"{platform.platform()} | {platform.processor() or platform.machine()} | {os.cpu_count()} CPUs "
        f"(affinity {affinity}) | torch threads {torch.get_num_threads()} | load average (1 min) {load} | "
        + ", ".join(versions)
    )
