"""The cross-predictive autoencoders of latent MI (Gowri et al. 2024): training and embedding of checked arrays.

Internal: no validation (`infoplane.estimators.latent` checks its inputs first). A continuous side that is
wider than ``latent_dim`` after `reduce_columns` gets an encoder to ``latent_dim`` standardised coordinates (a
batch normalisation without affine parameters ends the encoder, so a latent cannot shrink to cheat the
cross-prediction loss) and a decoder back; a side no wider is kept as it is (its own code). Two
cross-predictors map each code to the other side's; for class labels the A→B predictor is a softmax
classifier (cross-entropy) and the B→A one a class embedding. The loss is the mean squared reconstruction
error of each encoded side plus ``cross_weight`` times the two cross-prediction losses; Adam on mini-batches of
the training rows, early stopping on the held-out rows' loss (best weights restored). Before every held-out
evaluation the batch-normalisation statistics are set to those of all training rows (one pass), so the
held-out codes are standardised exactly as the training codes are (running averages over a few mini-batches
lag the encoder and made early stopping pick epochs at random).
"""
from __future__ import annotations

import math
import time
from dataclasses import dataclass

import torch
from torch import nn

from ..._core.threads import seeded_global_rng
from .optim import adam

__all__ = ["LatentHyper", "LatentFit", "fit_latents", "split_rows"]


@dataclass(frozen=True)
class LatentHyper:
    """Training settings (validated by the caller)."""

    latent_dim: int
    hidden: int
    max_epochs: int
    patience: int
    batch_size: int
    lr: float
    cross_weight: float
    seed: int
    progress: bool


@dataclass(frozen=True)
class LatentFit:
    """The held-out latents and what training did.

    ``z_a``: (n_test, code dim) latents of A on the held-out rows; ``z_b``: B's held-out latents, B itself
    when it was kept, or None for labels. ``r2_ab`` / ``r2_ba``: fraction of the held-out variance of the
    other side's latent explained by each cross-predictor (labels: ``r2_ab`` is the held-out Barber–Agakov
    bound H(Y) − CE as a fraction of H(Y)). ``p_a`` / ``p_b``: the cross-predictions on the held-out rows, A's
    code's prediction of B's code and B's code's prediction of A's (functions of A and of B alone; None for
    labels). ``stopped_early``: the held-out loss stopped improving before
    ``max_epochs`` (False: training was cut while it still improved). ``train_codes``: (A's, B's) codes of the
    training rows (None for labels).
    """

    z_a: torch.Tensor
    z_b: torch.Tensor | None
    p_a: torch.Tensor | None
    p_b: torch.Tensor | None
    r2_ab: float
    r2_ba: float
    epochs: int
    best_epoch: int
    held_out_loss: float
    stopped_early: bool
    seconds: float
    train_codes: tuple[torch.Tensor, torch.Tensor] | None = None


# ---------------------------------------------------------------------------------------------------
# The model
# ---------------------------------------------------------------------------------------------------
def _mlp(width_in: int, hidden: int, width_out: int) -> nn.Sequential:
    return nn.Sequential(nn.Linear(width_in, hidden), nn.LeakyReLU(), nn.Linear(hidden, hidden), nn.LeakyReLU(),
                         nn.Linear(hidden, width_out))


class _Side(nn.Module):
    """Encoder (ending in a parameter-free batch norm: unit-variance latents) and decoder of one side."""

    def __init__(self, width: int, latent: int, hidden: int) -> None:
        super().__init__()
        self.enc = nn.Sequential(_mlp(width, hidden, latent), nn.BatchNorm1d(latent, affine=False, momentum=None))
        self.dec = _mlp(latent, hidden, width)


class CrossPredictiveAE(nn.Module):
    """A's autoencoder (``a_mode="encode"``) or none (``"keep"``: A is its own code), B's likewise (or
    ``"labels"``), and the two cross-predictors."""

    def __init__(self, width_a: int, width_b: int, a_mode: str, b_mode: str, hp: LatentHyper) -> None:
        super().__init__()
        lat, h = hp.latent_dim, hp.hidden
        self.b_mode = b_mode
        self.a = _Side(width_a, lat, h) if a_mode == "encode" else None
        self.b = _Side(width_b, lat, h) if b_mode == "encode" else None
        lat_a = lat if self.a is not None else width_a
        lat_b = lat if self.b is not None else width_b
        self.ab = _mlp(lat_a, h, lat_b)  # labels: width_b = number of classes (logits)
        self.ba = nn.Embedding(width_b, lat_a) if b_mode == "labels" else _mlp(lat_b, h, lat_a)
        if b_mode == "labels":  # start from the mean (0) of the unit-variance code, not N(0, 1) guesses
            nn.init.zeros_(self.ba.weight)

    def latents(self, a: torch.Tensor, b: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        z_a = self.a.enc(a) if self.a is not None else a
        z_b = self.b.enc(b) if self.b is not None else b
        return z_a, z_b

    def losses(self, a: torch.Tensor, b: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(reconstruction, cross A→B, cross B→A), each a mean over rows (and columns)."""
        z_a, z_b = self.latents(a, b)
        recon = torch.zeros((), device=a.device)
        if self.a is not None:
            recon = recon + ((self.a.dec(z_a) - a) ** 2).mean()
        if self.b is not None:
            recon = recon + ((self.b.dec(z_b) - b) ** 2).mean()
        if self.b_mode == "labels":
            ab = nn.functional.cross_entropy(self.ab(z_a), b)
        else:
            ab = ((self.ab(z_a) - z_b.detach()) ** 2).mean()
        ba = ((self.ba(z_b) - z_a.detach()) ** 2).mean()
        return recon, ab, ba

    @torch.no_grad()
    def fix_norms(self, a: torch.Tensor, b: torch.Tensor) -> None:
        """Set every batch norm's statistics to those of the rows (a, b) (one pass), then evaluation mode."""
        norms = [m for m in self.modules() if isinstance(m, nn.BatchNorm1d)]
        for m in norms:
            m.reset_running_stats()
            m.train()
        self.latents(a, b)
        self.eval()


def split_rows(n: int, labels: torch.Tensor | None, holdout: float, gen: torch.Generator) -> tuple[torch.Tensor, ...]:
    """(train, test) row indices: a random ``holdout`` fraction held out, stratified by class for labels."""
    if labels is None:
        perm = torch.randperm(n, generator=gen)
        n_test = max(1, round(n * holdout))
        return perm[n_test:], perm[:n_test]
    train, test = [], []
    for c in torch.unique(labels):
        rows = torch.nonzero(labels == c).flatten()
        rows = rows[torch.randperm(rows.numel(), generator=gen)]
        n_test = max(1, round(rows.numel() * holdout))
        test.append(rows[:n_test])
        train.append(rows[n_test:])
    return torch.cat(train), torch.cat(test)


def _batches(n: int, size: int, gen: torch.Generator):
    perm = torch.randperm(n, generator=gen)
    for start in range(0, n, size):
        chunk = perm[start:start + size]
        if chunk.numel() > 1:  # batch norm needs two rows
            yield chunk


def _r2(pred: torch.Tensor, target: torch.Tensor) -> float:
    var = target.var(dim=0, unbiased=False).sum()
    return float(1.0 - ((pred - target) ** 2).mean(dim=0).sum() / var) if float(var) > 0 else 0.0


@torch.no_grad()
def _held_out(model: CrossPredictiveAE, a: torch.Tensor, b: torch.Tensor, cross_weight: float) -> float:
    recon, ab, ba = model.losses(a, b)
    return float(recon + cross_weight * (ab + ba))


@torch.no_grad()
def _skill(model: CrossPredictiveAE, a: torch.Tensor, b: torch.Tensor, h_b: float) -> tuple[float, float]:
    z_a, z_b = model.latents(a, b)
    if model.b_mode == "labels":
        ce_bits = float(nn.functional.cross_entropy(model.ab(z_a), b)) / math.log(2.0)
        r2_ab = (h_b - ce_bits) / h_b if h_b > 0 else 0.0
    else:
        r2_ab = _r2(model.ab(z_a), z_b)
    return r2_ab, _r2(model.ba(z_b), z_a)


def fit_latents(a: torch.Tensor, b: torch.Tensor, modes: tuple[str, str], train: torch.Tensor, test: torch.Tensor,
                hp: LatentHyper, h_b: float = 0.0) -> LatentFit:
    """Train the cross-predictive autoencoders on rows ``train`` (early stopping on ``test``) and embed ``test``.

    ``a``: (N, d_a) float32 (`reduce_columns`); ``b``: (N, d_b) float32 likewise, or (N,) int64 class ids
    (``modes[1] = "labels"``; ``h_b`` their entropy in bits). ``modes``: ("encode" | "keep",
    "encode" | "keep" | "labels"), at least one "encode". Cost per epoch O(N (d_a + d_b) · hidden) multiply-adds
    (plus O(N hidden²)); at most ``max_epochs`` epochs.
    """
    from tqdm.auto import tqdm

    start = time.perf_counter()
    gen = torch.Generator().manual_seed(hp.seed)
    width_b = int(b.max()) + 1 if modes[1] == "labels" else int(b.shape[1])
    with seeded_global_rng(hp.seed):  # the global generator, one thread at a time (parallel = serial)
        model = CrossPredictiveAE(int(a.shape[1]), width_b, modes[0], modes[1], hp).to(a.device)
    opt = adam(model.parameters(), hp.lr, a.device)
    a_tr, b_tr, a_te, b_te = a[train], b[train], a[test], b[test]
    best, best_state, best_epoch, epoch = math.inf, None, 0, 0
    bar = tqdm(range(hp.max_epochs), desc="latent MI", unit="epoch", disable=not hp.progress, leave=False)
    for epoch in bar:
        model.train()
        for idx in _batches(int(train.numel()), hp.batch_size, gen):
            idx = idx.to(a.device)
            recon, ab, ba = model.losses(a_tr[idx], b_tr[idx])
            loss = recon + hp.cross_weight * (ab + ba)
            opt.zero_grad()
            loss.backward()
            opt.step()
        model.fix_norms(a_tr, b_tr)
        value = _held_out(model, a_te, b_te, hp.cross_weight)
        bar.set_postfix(held_out_loss=f"{value:.4f}")
        if value < best:
            best, best_epoch = value, epoch
            best_state = {k: v.detach().clone() for k, v in model.state_dict().items()}
        elif epoch - best_epoch >= hp.patience:
            break
    bar.close()
    stopped_early = epoch - best_epoch >= hp.patience
    if best_state is not None:
        model.load_state_dict(best_state)
    model.eval()
    r2_ab, r2_ba = _skill(model, a_te, b_te, h_b)
    with torch.no_grad():
        z_a, z_b = model.latents(a_te, b_te)
        labels = modes[1] == "labels"
        p_a, p_b = (None, None) if labels else (model.ab(z_a), model.ba(z_b))
        train_codes = None if labels else model.latents(a_tr, b_tr)
    return LatentFit(z_a=z_a.detach(), z_b=None if labels else z_b.detach(), p_a=p_a, p_b=p_b, r2_ab=r2_ab,
                     r2_ba=r2_ba, epochs=epoch + 1, best_epoch=best_epoch + 1, held_out_loss=best,
                     stopped_early=stopped_early, seconds=time.perf_counter() - start, train_codes=train_codes)
