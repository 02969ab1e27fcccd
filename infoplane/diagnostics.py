"""Deprecated alias: `infoplane.diagnostics` moved to `infoplane.analysis` in 0.2 (removed in 0.3)."""
from infoplane._core.moved import alias

alias(__name__, "infoplane.analysis")
