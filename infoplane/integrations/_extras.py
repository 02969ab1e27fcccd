"""Import an optional dependency, or say which extra installs it."""
from __future__ import annotations

import importlib
from types import ModuleType

__all__ = ["require"]


def require(module: str, extra: str, what: str) -> ModuleType:
    """``importlib.import_module(module)``, or ImportError naming ``pip install 'infoplane[<extra>]'``."""
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise ImportError(
            f"{what} needs the optional package {module.split('.')[0]!r}, which is not installed. Install "
            f"the extra: pip install 'infoplane[{extra}]'."
        ) from exc
