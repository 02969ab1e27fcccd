"""The eight module paths that 0.2 moved still import, warn once with their new home, and are the new module."""
from __future__ import annotations

import importlib
import subprocess
import sys

MOVED = {
    "infoplane.models": "infoplane.nets",
    "infoplane.datasets": "infoplane.nets",
    "infoplane.sweeps": "infoplane.nets",
    "infoplane.diagnostics": "infoplane.analysis",
    "infoplane.geometry": "infoplane.analysis",
    "infoplane.results_io": "infoplane.analysis",
    "infoplane.presets": "infoplane.estimators.presets",
}


def test_old_paths_warn_and_alias_the_new_modules():
    # A fresh interpreter: each alias replaces its sys.modules entry on first import only.
    code = (
        "import warnings, importlib, sys\n"
        f"moved = {MOVED!r}\n"
        "for old, new in moved.items():\n"
        "    with warnings.catch_warnings(record=True) as w:\n"
        "        warnings.simplefilter('always')\n"
        "        module = importlib.import_module(old)\n"
        "    assert module is importlib.import_module(new), (old, module)\n"
        "    msgs = [str(x.message) for x in w if issubclass(x.category, DeprecationWarning)]\n"
        "    assert any(new in m and '0.3' in m for m in msgs), (old, msgs)\n"
        "from infoplane.models import SZTNet, train\n"
        "import infoplane.nets as nets\n"
        "assert SZTNet is nets.SZTNet and train is nets.train\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr


def test_noise_is_a_public_path_without_warning():
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error", DeprecationWarning)
        noise = importlib.import_module("infoplane.noise")
    assert noise.add_noise is importlib.import_module("infoplane.nets").add_noise


def test_import_infoplane_imports_no_moved_alias():
    code = (
        "import sys, warnings\n"
        "warnings.simplefilter('error', DeprecationWarning)\n"
        "import infoplane, infoplane.plotting, infoplane.groundtruth, infoplane.integrations\n"
        "bad = [m for m in ('infoplane.models', 'infoplane.datasets', 'infoplane.sweeps', 'infoplane.diagnostics',"
        " 'infoplane.geometry', 'infoplane.results_io', 'infoplane.presets') if m in sys.modules]\n"
        "assert not bad, bad\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
