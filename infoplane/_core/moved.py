"""Module paths that 0.2 moved: a deprecated alias points the old name at the new home, for one release."""
from __future__ import annotations

import importlib
import sys
import warnings


def alias(old: str, new: str) -> None:
    """Make module ``old`` an alias of module ``new``, with a `DeprecationWarning` naming ``new``."""
    warnings.warn(f"{old} moved to {new} in infoplane 0.2; the old path goes in 0.3.", DeprecationWarning, stacklevel=3)
    sys.modules[old] = importlib.import_module(new)
