"""Deprecated alias: `infoplane.presets` moved to `infoplane.estimators.presets` in 0.2 (removed in 0.3)."""
from infoplane._core.moved import alias

alias(__name__, "infoplane.estimators.presets")
