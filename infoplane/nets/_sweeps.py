"""β sweeps of the variational information bottleneck: the rate–distortion trade-off as a tidy table.

`beta_sweep` trains one `VIBClassifier` per β (same data split, same initialisation seed) and, at recorded
epochs, measures on a fixed probe set (every input of the data set, as Shwartz-Ziv & Tishby measure on all
inputs): the rate R ≥ I(Z;X), the Monte Carlo aggregate-posterior bounds on I(Z;X), the Barber–Agakov bound on
I(Z;Y) with the model's own decoder, and test accuracy. All information in bits.
"""
from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd
import torch

from .._core.threads import torch_threads
from .._core.validation import check_choice, check_float_param, check_int_param
from ..estimators.variational import MixtureEstimator
from ..recording import record
from ._datasets import load_digits, load_szt, train_test_split
from ._models import VIBClassifier, accuracy, train

__all__ = ["beta_sweep", "QUICK_BETAS", "DEFAULT_BETAS"]

#: The 4-β grid of the quick setting.
QUICK_BETAS = (1e-3, 1e-2, 1e-1, 1.0)
#: The default grid: 1e-4 … 1, two points per decade.
DEFAULT_BETAS = (1e-4, 3e-4, 1e-3, 3e-3, 1e-2, 3e-2, 1e-1, 3e-1, 1.0)

_OWNER = "beta_sweep"


def _load(dataset: str) -> tuple[np.ndarray, np.ndarray]:
    return load_digits(return_X_y=True) if dataset == "digits" else load_szt(return_X_y=True)


def _record_epochs(epochs: int, record_every: int) -> set[int]:
    return set(range(0, epochs + 1, record_every)) | {epochs}


def _one_beta(beta: float, cfg: dict[str, Any], n_threads: int | None) -> pd.DataFrame:
    """Train at one β and return its rows (epochs recorded only)."""
    with torch_threads(n_threads):
        return _train_and_measure(beta, cfg)


def _train_and_measure(beta: float, cfg: dict[str, Any]) -> pd.DataFrame:
    X, y = _load(cfg["dataset"])
    X_tr, X_te, y_tr, y_te = train_test_split(X, y, test_size=cfg["test_size"], seed=cfg["seed"])
    probe = torch.as_tensor(X, dtype=torch.float32)
    model = VIBClassifier(
        X.shape[1], int(y.max()) + 1, z_dim=cfg["z_dim"], hidden=cfg["hidden"], beta=beta, seed=cfg["seed"]
    )
    keep = _record_epochs(cfg["epochs"], cfg["record_every"])
    rows: list[dict[str, Any]] = []

    def measure(epoch: int, m: VIBClassifier) -> None:
        if epoch not in keep:
            return
        # The encoder's Normal is recorded as a Gaussian layer (mu, log_var), as `record` does for any model;
        # one MixtureEstimator gives the rate, both mixture bounds and Barber-Agakov with the model's decoder.
        z = record(m, probe, "encoder")["encoder"]
        est = MixtureEstimator("lower", m.decoder, n_samples=cfg["n_samples"], seed=cfg["seed"] + epoch)
        res = est.estimate(z["mu"], y, log_var=z["log_var"], layer="encoder", epoch=epoch)
        conv = res.conventions
        rows.append({
            "epoch": epoch,
            "rate_bits": conv["rate_bits"],
            "mixture_lower_bits": conv["mixture_lower_bits"],
            "mixture_upper_bits": conv["mixture_upper_bits"],
            "tight_upper_bits": conv["mixture_tight_upper_bits"],
            "gap_bits": conv["gap_bits"],
            "ba_bits": res.I_TY,
            "h_y_bits": conv["H_Y_bits"],
            "test_accuracy": accuracy(m, X_te, y_te),
        })

    # The reparameterised samples draw from the global torch RNG: seed it here, restored afterwards, so a run
    # is deterministic under `seed` whichever process or order it runs in.
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(cfg["seed"])
        history = train(
            model, X_tr, y_tr, epochs=cfg["epochs"], batch_size=cfg["batch_size"], lr=cfg["lr"],
            seed=cfg["seed"], loss_fn=VIBClassifier.training_loss, callback=measure, progress=False,
        )
    out = pd.DataFrame(rows)
    if len(history):
        out = out.merge(history[["epoch", "train_loss", "train_accuracy"]], on="epoch", how="left")
    else:
        out["train_loss"] = np.nan
        out["train_accuracy"] = np.nan
    out.insert(0, "beta", beta)
    out.insert(0, "seed", cfg["seed"])
    out.insert(0, "dataset", cfg["dataset"])
    out["n_probe"] = len(X)
    out["n_samples"] = cfg["n_samples"]
    out["z_dim"] = cfg["z_dim"]
    return out


def beta_sweep(
    dataset: str = "digits",
    betas: Sequence[float] | None = None,
    *,
    epochs: int | None = None,
    z_dim: int = 8,
    hidden: Sequence[int] = (128,),
    lr: float | None = None,
    batch_size: int = 128,
    seed: int = 0,
    record_every: int | None = None,
    n_samples: int = 4,
    test_size: float = 0.2,
    quick: bool = False,
    n_jobs: int | None = None,
    torch_threads: int | None = 1,
) -> pd.DataFrame:
    """Train the VIB classifier over a grid of β and tabulate rate, I(Z;X) bounds, I_BA and accuracy (bits).

    For each β a `VIBClassifier` (encoder MLP ``hidden`` → Gaussian z of dimension ``z_dim`` → linear decoder;
    same initialisation seed for every β) is trained with Adam on an 80/20 stratified split, minimising
    cross-entropy + β · rate (`vib_loss`, nats). At epoch 0 (untrained) and every ``record_every`` epochs
    (and the last), on the probe set = every input of the data set:

    - ``rate_bits``: R = mean KL[p(z|x) ‖ N(0, I)] ≥ I(Z;X);
    - ``mixture_lower_bits``/``mixture_upper_bits``: `mixture_mi_bounds` with ``n_samples`` z per input
      (lower ≤ log2 N; the lower value is the probe-set I(Z;X)); ``gap_bits`` = R − lower = KL[p(z) ‖ N(0,I)];
      ``tight_upper_bits`` = min(R, mixture upper), the tightest upper bound on I(Z;X) of the two;
    - ``ba_bits``: `barber_agakov` with the model's own decoder (a valid lower bound on the probe-set
      I(Z;Y) for any decoder), ``h_y_bits`` its H(Y);
    - ``test_accuracy`` (decoding z = μ), and ``train_loss``/``train_accuracy`` of that epoch (NaN at 0).

    Expected shape: the rate falls monotonically as β grows; accuracy holds for small β and collapses to
    chance as the rate reaches 0 (β around 1 on digits).

    Parameters
    ----------
    dataset : {"digits", "szt"}
        scikit-learn's 8×8 digits (1,797 inputs, 10 classes) or the SZT 12-bit task (4,096 inputs, 2 classes).
    betas : sequence of float >= 0, optional
        Default `DEFAULT_BETAS` (or `QUICK_BETAS` with ``quick``).
    epochs : int, optional
        Default 60 (digits) / 150 (szt); 15 with ``quick``.
    lr : float, optional
        Adam learning rate; default 1e-3 (3e-3 with ``quick``).
    record_every : int, optional
        Default epochs // 10 (at least 1); 5 with ``quick``.
    n_samples : int
        z samples per probe input for the mixture and BA bounds (2 with ``quick``).
    quick : bool
        The CI setting: 4 βs, 15 epochs at lr 3e-3, M = 2: a digits sweep in a few seconds on 2 CPU cores.
    n_jobs : int, optional
        Train βs in parallel with joblib (each worker uses one torch thread); None runs them in turn.
    torch_threads : int or None
        torch intra-op threads while training in turn (restored afterwards). Default 1: these small MLPs
        gain nothing from more and lose much to contention on a busy machine. None leaves torch's setting.

    Returns
    -------
    DataFrame
        One row per (beta, recorded epoch), columns ``dataset, seed, beta, epoch, rate_bits,
        mixture_lower_bits, mixture_upper_bits, tight_upper_bits, gap_bits, ba_bits, h_y_bits, test_accuracy,
        train_loss, train_accuracy, n_probe, n_samples, z_dim``; ``df.attrs["conventions"]`` holds the settings.
    """
    dataset = check_choice(dataset, "dataset", _OWNER, ("digits", "szt"))
    if betas is None:
        betas = QUICK_BETAS if quick else DEFAULT_BETAS
    betas = [check_float_param(b, "betas", _OWNER, minimum=0.0) for b in betas]
    if not betas:
        raise ValueError(f"The 'betas' parameter of {_OWNER} must list at least one β. Got [] instead.")
    if epochs is None:
        epochs = 15 if quick else (60 if dataset == "digits" else 150)
    if lr is None:
        lr = 3e-3 if quick else 1e-3
    epochs = check_int_param(epochs, "epochs", _OWNER, minimum=0)
    if record_every is None:
        record_every = 5 if quick else max(1, epochs // 10)
    record_every = check_int_param(record_every, "record_every", _OWNER, minimum=1)
    if quick and n_samples == 4:
        n_samples = 2
    cfg = {
        "dataset": dataset,
        "epochs": epochs,
        "z_dim": check_int_param(z_dim, "z_dim", _OWNER, minimum=1),
        "hidden": tuple(check_int_param(h, "hidden", _OWNER, minimum=1) for h in hidden),
        "lr": check_float_param(lr, "lr", _OWNER, positive=True),
        "batch_size": check_int_param(batch_size, "batch_size", _OWNER, minimum=1),
        "seed": check_int_param(seed, "seed", _OWNER, minimum=0),
        "record_every": record_every,
        "n_samples": check_int_param(n_samples, "n_samples", _OWNER, minimum=1),
        "test_size": check_float_param(test_size, "test_size", _OWNER, positive=True),
    }
    if n_jobs is not None and n_jobs != 1 and len(betas) > 1:
        from joblib import Parallel, delayed

        parts = Parallel(n_jobs=n_jobs)(delayed(_one_beta)(b, cfg, 1) for b in betas)
    else:
        parts = [_one_beta(b, cfg, torch_threads) for b in betas]
    df = pd.concat(parts, ignore_index=True)
    df = df.sort_values(["beta", "epoch"], kind="stable").reset_index(drop=True)
    df.attrs["conventions"] = {
        **{k: (list(v) if isinstance(v, tuple) else v) for k, v in cfg.items()},
        "betas": betas,
        "model": "VIBClassifier (linear decoder)",
        "probe": "all inputs",
        "ba_decoder": "model decoder",
        "mixture": "aggregate posterior, all-j lower / leave-one-out upper (Poole et al. 2019)",
        "units": "bits",
    }
    return df
