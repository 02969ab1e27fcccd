"""Noise in networks: the specs (`GaussianNoise`, `GaussianDropout`), noise after chosen layers (`add_noise`) and
sample propagation (`sample_propagation`).

The short public path of the noise API. The specs are plain data (`infoplane._core.noise_specs`) shared by
`Layer(name, noise=...)`, the `Recorder`, `NoisyEstimator` and the networks; the hooks live in `infoplane.nets`.
"""
from ._core.noise_specs import GaussianDropout, GaussianNoise, noise_from_dict
from .nets._noise import PropagatedLayer, add_noise, sample_propagation

__all__ = ["GaussianNoise", "GaussianDropout", "noise_from_dict", "add_noise", "sample_propagation", "PropagatedLayer"]
