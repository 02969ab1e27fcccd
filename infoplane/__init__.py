"""infoplane: information-plane analysis of neural networks.

Record chosen layers of any PyTorch model on a fixed probe set at scheduled epochs, estimate I(T;X) and
I(T;Y) in bits (binning, KDE bounds, variational bounds), and draw epoch-coloured trajectories.
"""
from __future__ import annotations

__version__ = "0.1.0"

__all__ = ["__version__"]
