"""Networks with noise: noise after chosen layers (`add_noise`) and sample propagation (`sample_propagation`).

The short public path of the noise API; the code lives in `infoplane.nets`.
"""
from .nets import PropagatedLayer, add_noise, sample_propagation

__all__ = ["add_noise", "sample_propagation", "PropagatedLayer"]
