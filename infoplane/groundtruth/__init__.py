"""Ground truth: tasks of known mutual information, and `evaluate` to judge any estimator on them, in bits.

`tasks(group="default")` lists the tasks (each with ``.name``, ``.kind``, ``.true_bits``, ``.dims`` and a seeded
``.sample(n, seed)`` returning ``(t, y)``):

- multivariate Gaussians, dense and sparse correlation, 1x1 to 50x50 (closed form);
- MI-preserving transforms of a Gaussian pair: normal CDF, half-cube, asinh, spiral (Czyż et al. 2023);
- Student-t pairs (closed form with the degrees-of-freedom correction);
- wide layers: a low-dimensional signal padded with hundreds of independent noise columns (MI unchanged);
- class labels: K Gaussian classes (K = 2, 4, 10) in 2 to 300 dimensions, I(T;Y) stored from a Monte Carlo
  with the exact posterior (standard error below 1e-3 bits, in ``.stderr_bits``);
- deterministic step networks on 1,000 discrete inputs, where I(T;X) = H(T) exactly;
- ground truth that looks like a network: a low-dimensional signal embedded injectively (linear isometry, or
  tanh of a random linear map) in 512 columns, and in 1,024 and 4,096 columns in the opt-in ``"wide"`` group
  (``tasks("wide")``, ``tasks("all")``); scikit-learn's digits after Lee & Rhee (2024): same-class pairs
  (I = H(C)), a binary symmetric channel on the parity (I = H(C)(1 − H(β))), two digits side by side; and
  symmetric dependence with E[T|Y] = E[T] (random signs; classes differing only in variance), where a
  predictor of the conditional mean, hence a latent-MI autoencoder, sees nothing.

`evaluate(estimators, tasks=None, n_samples=(1000, 4000), seeds=range(3), n_jobs=None)` returns a tidy table
of estimate vs truth. References: Czyż, Grabowski, Vogt, Beerenwinkel & Marx (2023), "Beyond Normal: On the
Evaluation of Mutual Information Estimators", NeurIPS; Lee & Rhee (2024), "A Benchmark Suite for Evaluating
Neural Mutual Information Estimators on Unstructured Datasets", NeurIPS; Arellano-Valle, Contreras-Reyes & Genton (2013).
"""
from __future__ import annotations

from ._closed_forms import class_mi_monte_carlo, gaussian_mi_bits, student_t_mi_bits
from ._evaluate import COLUMNS, default_estimators, evaluate, flag_reason
from ._tasks import TASK_GROUPS, Task, get_task, tasks

__all__ = ["Task", "tasks", "get_task", "TASK_GROUPS", "evaluate", "default_estimators", "COLUMNS", "flag_reason",
           "gaussian_mi_bits", "student_t_mi_bits", "class_mi_monte_carlo"]
