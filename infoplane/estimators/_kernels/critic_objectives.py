"""The critics' objectives and held-out statistics: pure functions of a critic's scores, all in nats.

`infoplane.estimators.critics` trains a critic f(a, b) on batches and calls these: the bound or estimate of
each objective (InfoNCE, NWJ, SMILE), the Jensen-Shannon objective SMILE trains on, the per-row terms whose
spread gives a standard error, and the held-out value of a trained critic.
"""
from __future__ import annotations

import math

import torch

from ..._core.units import LN2

__all__ = ["objective_value", "js_bound", "train_objective", "row_terms", "held_out_stats", "batches", "evaluate"]


def objective_value(scores: torch.Tensor, objective: str, tau: float) -> torch.Tensor:
    """The reported value (nats) from a (B, B) score matrix whose diagonal holds the true pairs.

    SMILE (Song & Ermon 2020, eq. 17): the Donsker-Varadhan form with clipped ratios in the log-partition,
    E_p[f] − ln mean_{i≠j} clip(e^{f(a_i, b_j)}, e^{−τ}, e^{τ}), the B(B − 1) off-diagonal pairs standing for
    the product of the marginals (as in their code, ``smile_lower_bound``).
    """
    b = scores.shape[0]
    diag = scores.diagonal()
    if objective == "infonce":
        return (diag - torch.logsumexp(scores, dim=1)).mean() + math.log(b)
    if objective == "nwj":
        return (diag + 1.0).mean() - torch.exp(scores).mean()
    off = ~torch.eye(b, dtype=torch.bool, device=scores.device)
    clipped = torch.clamp(scores[off], -tau, tau)
    return diag.mean() - (torch.logsumexp(clipped, dim=0) - math.log(b * (b - 1)))


def js_bound(scores: torch.Tensor) -> torch.Tensor:
    """The Jensen-Shannon (f-GAN) bound SMILE trains on: −E_p softplus(−f) − E_{p⊗p} softplus(f), nats.

    Its maximiser is the log density ratio ln p(a, b)/(p(a) p(b)) (Poole et al. 2019; Song & Ermon 2020,
    ``js_fgan_lower_bound``), and unlike the clipped DV objective it does not grow without limit when the
    critic's scores on the true pairs do: training on DV itself diverged (+10^5 to +10^7 bits on Gaussian
    pairs).
    """
    b = scores.shape[0]
    diag = scores.diagonal()
    off = ~torch.eye(b, dtype=torch.bool, device=scores.device)
    return -torch.nn.functional.softplus(-diag).mean() - torch.nn.functional.softplus(scores[off]).mean()


def train_objective(scores: torch.Tensor, objective: str, tau: float) -> torch.Tensor:
    """What the critic maximises (nats): the reported bound itself, except SMILE, trained on `js_bound`."""
    return js_bound(scores) if objective == "smile" else objective_value(scores, objective, tau)


def row_terms(scores: torch.Tensor, objective: str, tau: float, train: bool = False) -> torch.Tensor:
    """Per-row terms (nats) whose mean is, for one batch, the reported value `objective_value` or, with ``train``,
    the training objective `train_objective` (they differ only for SMILE), for their standard errors.

    InfoNCE and NWJ are means over rows already (NWJ's row i: f_ii + 1 − mean_j e^{f_ij}); so is SMILE's
    training objective, the JS bound (row i: −softplus(−f_ii) − mean_{j≠i} softplus(f_ij)). SMILE's
    log-partition is a U-statistic over the off-diagonal pairs; its row i enters through its first-order
    projection h_i = (r_i + c_i)/2 − Z (r_i, c_i: mean clipped ratio of row i and column i, Z their mean), so
    row i's influence on the value is f_ii − 2 h_i / Z (the delta method; its mean is the mean of f_ii).
    """
    b = scores.shape[0]
    diag = scores.diagonal()
    if objective == "infonce":
        return diag - torch.logsumexp(scores, dim=1) + math.log(b)
    if objective == "nwj":
        return diag + 1.0 - torch.exp(scores).mean(dim=1)
    off = ~torch.eye(b, dtype=torch.bool, device=scores.device)
    if train:
        soft = torch.nn.functional.softplus(scores).masked_fill(~off, 0.0)  # the off-diagonal pairs of each row
        return -torch.nn.functional.softplus(-diag) - soft.sum(dim=1) / (b - 1)
    ratios = torch.where(off, torch.exp(torch.clamp(scores, -tau, tau)), torch.zeros_like(scores))
    r, c = ratios.sum(dim=1) / (b - 1), ratios.sum(dim=0) / (b - 1)
    z = r.mean()
    return diag - 2.0 * ((r + c) / 2.0 - z) / z


def held_out_stats(critic: torch.nn.Module, a: torch.Tensor, b: torch.Tensor, objective: str, tau: float,
                    batch: int) -> tuple[float, float, float]:
    """(SE of the reported value, SE of the training objective — the same number unless SMILE —, both nats;
    SMILE's log-partition in bits, else NaN), from one pass of the critic over the held-out rows.

    The standard errors: the per-row terms of every batch (`row_terms`), each batch centred on its own mean
    (batches differ by their log B and partition), their spread / sqrt(rows). The log-partition (SMILE only):
    ln mean_{i≠j} clip(e^{f(a_i, b_j)}), the term SMILE subtracts from E_p[f], averaged over batches by rows; a
    critic at the optimum of the JS bound is the log density ratio, whose partition is 1 (ln = 0).
    """
    with torch.no_grad():
        scores = [critic(a[i], b[i]) for i in batches(a.shape[0], batch, None)]

    def se(train: bool) -> float:
        terms = torch.cat([t - t.mean() for t in (row_terms(s, objective, tau, train) for s in scores)]).double()
        return float(terms.std() / math.sqrt(terms.numel())) if terms.numel() > 1 else math.nan

    value_se = se(False)
    if objective != "smile":
        return value_se, value_se, math.nan
    log_z = 0.0
    for s in scores:
        m = s.shape[0]
        off = ~torch.eye(m, dtype=torch.bool, device=s.device)
        log_z += float(torch.logsumexp(torch.clamp(s[off], -tau, tau), 0) - math.log(m * (m - 1))) * m
    return value_se, se(True), log_z / a.shape[0] / LN2


def batches(n: int, batch: int, gen: torch.Generator | None) -> list[torch.Tensor]:
    idx = torch.randperm(n, generator=gen) if gen is not None else torch.arange(n)
    out = [idx[s : s + batch] for s in range(0, n, batch)]
    # A final batch of one row has no negatives: fold it into the previous one.
    if len(out) > 1 and out[-1].numel() < 2:
        out[-2] = torch.cat([out[-2], out.pop()])
    return out


def evaluate(critic, a, b, objective, tau, batch) -> tuple[float, float]:
    """(training objective, reported value), nats, averaged over batches of ``batch`` rows (weighted by rows)."""
    with torch.no_grad():
        parts = batches(a.shape[0], batch, None)
        scores = [(critic(a[i], b[i]), i.numel()) for i in parts]
        crit = sum(float(train_objective(sc, objective, tau)) * m for sc, m in scores) / a.shape[0]
        value = sum(float(objective_value(sc, objective, tau)) * m for sc, m in scores) / a.shape[0]
    return crit, value
