"""The VIB β-sweep figures of `infoplane.plotting` (`plot_vib_tradeoff`, `plot_rate_gap`), from a β-sweep table
(`infoplane.nets.beta_sweep`): rate, mixture bounds and Barber–Agakov across β, in bits.
"""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
from matplotlib import colors as mcolors
from matplotlib.axes import Axes

from .._core.tables import mean_sd
from . import _utils as pu
from ._utils import (
    GID_H_X,
    GID_H_Y,
    GID_SPREAD,
    GID_TRAJECTORY,
    _ax_or_gca,
    _colormap,
    _optional_bits,
    _reference_line,
)

__all__ = ["plot_vib_tradeoff", "plot_rate_gap"]


SWEEP_LABELS = {
    "rate_bits": "rate R ≥ I(Z;X) [bits]",
    "ba_bits": "I_BA ≤ I(Z;Y) [bits]",
}


def _sweep_table(df: pd.DataFrame, columns: Sequence[str], epoch: int | None, *, owner: str) -> pd.DataFrame:
    """One row per β at the chosen epoch (default: each β's last epoch), averaged over repeated rows."""
    pu.check_table(df, ["beta", "epoch", *columns], numeric=("beta", "epoch", *columns))
    if (df["beta"] < 0).any():
        raise ValueError(f"{owner} needs beta >= 0. Got a smallest beta of {df['beta'].min():g}.")
    if epoch is None:
        rows = df[df["epoch"] == df.groupby("beta")["epoch"].transform("max")]
    else:
        rows = df[df["epoch"] == epoch]
        missing = sorted(set(df["beta"]) - set(rows["beta"]))
        if rows.empty or missing:
            raise ValueError(f"epoch {epoch!r} is missing for beta(s) {pu.listed(missing)}; the table holds "
                             f"epochs {pu.listed(sorted(pd.unique(df['epoch'])))}.")
    return mean_sd(rows, ["beta"], columns, ddof=1).sort_values("beta", kind="stable").reset_index(drop=True)


def _beta_norm(betas: np.ndarray) -> mcolors.Normalize:
    """Log colour scale of β; β = 0 (no compression pressure) is kept with a symlog scale."""
    positive = betas[betas > 0]
    vmin, vmax = float(betas.min()), float(betas.max())
    if vmin == vmax:
        return mcolors.LogNorm(vmin=vmin / 2, vmax=vmax * 2) if vmin > 0 else mcolors.Normalize(-1, 1)
    if vmin > 0:
        return mcolors.LogNorm(vmin=vmin, vmax=vmax)
    return mcolors.SymLogNorm(linthresh=float(positive.min()), vmin=vmin, vmax=vmax, base=10)


def _set_beta_xscale(ax: Axes, betas: np.ndarray) -> None:
    if (betas > 0).all():
        ax.set_xscale("log")
    else:
        ax.set_xscale("symlog", linthresh=float(betas[betas > 0].min()) if (betas > 0).any() else 1.0)


def plot_vib_tradeoff(
    df: pd.DataFrame,
    *,
    epoch: int | None = None,
    H_Y: float | None = None,
    annotate: bool = False,
    spread: bool = True,
    cmap: str | mcolors.Colormap = "plasma",
    colorbar: bool = True,
    title: str | None = None,
    ax: Axes | None = None,
) -> Axes:
    """Draw the VIB trade-off across β: the rate R against the Barber–Agakov bound I_BA.

    Each β of the sweep is one point (R, I_BA) at its final epoch, coloured by β on a log scale (colour bar
    "β"), joined in β order. R = E_x KL[p(z|x) ‖ N(0, I)] ≥ I(Z;X) and I_BA = H(Y) + E log q(y|z) ≤ I(Z;Y)
    (Alemi et al. 2017), so the curve is an outer/inner estimate of the information-bottleneck frontier.

    Parameters
    ----------
    df : DataFrame
        β-sweep table with columns ``beta``, ``epoch``, ``rate_bits``, ``ba_bits`` (bits); other columns
        (``mixture_*_bits``, ``test_accuracy``) are ignored. Several rows per (β, epoch), e.g. seeds, are
        averaged and their ± one standard deviation drawn as error bars.
    epoch : int, optional
        Epoch to draw; default each β's last epoch.
    H_Y : float, optional
        H(Y) in bits, the ceiling of I(Z;Y), drawn as a dashed line.
    annotate : bool
        Write each β next to its point.
    cmap : str or Colormap
        Colormap of β (log scale; symlog if β = 0 is present).
    ax : Axes, optional
        Axes to draw on; default ``plt.gca()``.

    Returns
    -------
    Axes
        The Axes; the joining line has ``gid="trajectory"``, the points ``gid="beta-points"``.

    References
    ----------
    Alemi, Fischer, Dillon & Murphy (2017), Deep variational information bottleneck, ICLR.
    """
    owner = "plot_vib_tradeoff"
    H_Y = _optional_bits(H_Y, "H_Y", owner)
    ax = _ax_or_gca(ax)
    table = _sweep_table(df, ["rate_bits", "ba_bits"], epoch, owner=owner)
    betas = table["beta"].to_numpy(dtype=np.float64)
    x = table["rate_bits"].to_numpy(dtype=np.float64)
    y = table["ba_bits"].to_numpy(dtype=np.float64)
    norm = _beta_norm(betas)
    cmap = _colormap(cmap)
    ax.plot(x, y, color="0.45", linewidth=0.8, zorder=1.5, label="β sweep", gid=GID_TRAJECTORY)
    points = ax.scatter(x, y, c=betas, cmap=cmap, norm=norm, s=36, edgecolors="0.2", linewidths=0.4,
                        zorder=2.5, gid="beta-points")
    if spread and table["n_runs"].max() > 1:
        bars = ax.errorbar(x, y, xerr=np.nan_to_num(table["rate_bits_std"].to_numpy()),
                           yerr=np.nan_to_num(table["ba_bits_std"].to_numpy()), fmt="none", elinewidth=0.7,
                           alpha=0.6, zorder=2.0)
        for collection in bars.lines[2]:
            collection.set_color(cmap(norm(betas)))
            collection.set_gid(GID_SPREAD)
    if annotate:
        for i, (xi, yi, b) in enumerate(zip(x, y, betas)):
            # alternate below-right / above-left: neighbouring β often crowd on the plateaus of the curve
            below = i % 2 == 0
            ax.annotate(f"β={b:.3g}", xy=(xi, yi), xytext=(5, -4) if below else (-5, 4),
                        textcoords="offset points", fontsize="x-small", color="0.2",
                        ha="left" if below else "right", va="top" if below else "bottom")
    _reference_line(ax, H_Y, "H(Y)", vertical=False, gid=GID_H_Y)
    ax.set_xlabel(SWEEP_LABELS["rate_bits"])
    ax.set_ylabel(SWEEP_LABELS["ba_bits"])
    ax.set_title(("VIB trade-off" + (" (final epoch)" if epoch is None else f" (epoch {epoch})"))
                 if title is None else title)
    if colorbar:
        ax.figure.colorbar(points, ax=ax, label="β")
    return ax


def plot_rate_gap(
    df: pd.DataFrame,
    *,
    epoch: int | None = None,
    H_X: float | None = None,
    title: str | None = None,
    ax: Axes | None = None,
) -> Axes:
    """Draw the rate R against the mixture bounds on I(Z;X) across β: the gap KL[p(z) ‖ N(0, I)].

    x is β (log scale); the rate R (an upper bound) is a line, the mixture estimates of I(Z;X) from the
    aggregate p(z) = (1/N) Σ_j p(z|x_j) are a band from the lower (all-j, InfoNCE-like) bound to the tight
    upper bound min(R, leave-one-out) (both R and the leave-one-out mixture bound I(Z;X) from above, and the
    leave-one-out one can exceed R). The vertical distance from the band to R is the gap R − I(Z;X) = KL[p(z) ‖ q(z)].

    Parameters
    ----------
    df : DataFrame
        β-sweep table with columns ``beta``, ``epoch``, ``rate_bits``, ``mixture_lower_bits``,
        ``mixture_upper_bits`` (bits). Several rows per (β, epoch) are averaged.
    epoch : int, optional
        Epoch to draw; default each β's last epoch.
    H_X : float, optional
        H(X) in bits (log2 N for N distinct probe inputs, also the ceiling of the lower mixture bound);
        drawn as a dashed line.
    ax : Axes, optional
        Axes to draw on; default ``plt.gca()``.

    Returns
    -------
    Axes
        The Axes; lines labelled ``"rate R"``, ``"mixture lower bound"``, ``"upper bound min(R, leave-one-out)"``
        (gids ``"rate"``, ``"mixture_lower"``, ``"mixture_upper"``), band gid ``"mixture_band"``.

    References
    ----------
    Alemi et al. (2017), Deep variational information bottleneck, ICLR. Poole et al. (2019), On variational
    bounds of mutual information, ICML.
    """
    owner = "plot_rate_gap"
    H_X = _optional_bits(H_X, "H_X", owner)
    ax = _ax_or_gca(ax)
    columns = ["rate_bits", "mixture_lower_bits", "mixture_upper_bits"]
    table = _sweep_table(df, columns, epoch, owner=owner)
    betas = table["beta"].to_numpy(dtype=np.float64)
    rate = table["rate_bits"].to_numpy(dtype=np.float64)
    lower = table["mixture_lower_bits"].to_numpy(dtype=np.float64)
    # Both the rate and the leave-one-out mixture are upper bounds on I(Z;X): draw the tighter, min(R, LOO).
    upper = np.minimum(rate, table["mixture_upper_bits"].to_numpy(dtype=np.float64))
    band = ax.fill_between(betas, lower, upper, color="C0", alpha=0.25, linewidth=0, label="_band")
    band.set_gid("mixture_band")
    ax.plot(betas, lower, color="C0", linewidth=1.0, linestyle="-", marker="v", markersize=3.5,
            label="mixture lower bound", gid="mixture_lower")
    ax.plot(betas, upper, color="C0", linewidth=1.0, linestyle="-", marker="^", markersize=3.5,
            label="upper bound min(R, leave-one-out)", gid="mixture_upper")
    ax.plot(betas, rate, color="C3", linewidth=1.6, marker="o", markersize=4, label="rate R", gid="rate")
    _reference_line(ax, H_X, "H(X)", vertical=False, gid=GID_H_X, text=False)  # named in the legend
    _set_beta_xscale(ax, betas)
    ax.set_xlabel("β")
    ax.set_ylabel("I(Z;X) [bits]")
    ax.set_title(("rate vs mixture I(Z;X)" + (" (final epoch)" if epoch is None else f" (epoch {epoch})"))
                 if title is None else title)
    ax.legend(fontsize="small", frameon=False)
    return ax
