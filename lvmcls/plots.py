"""The book's figures. Each function draws on a given matplotlib ``Axes`` and returns it.

`use_style` sets the one look of every figure of the book (called by `lvmcls.notebook.setup`).
"""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import torch

from .metrics import ReliabilityCurve


# The book's one figure style: seaborn's "ticks" theme on a colour-blind-safe palette, no top or right spines,
# 110 dpi (readable at the book's content width and on Colab), axis labels a step smaller than seaborn's notebook
# context so that four panels side by side stay legible.
STYLE = {
    "context": "notebook",
    "style": "ticks",
    "palette": "colorblind",
    "rc": {"figure.dpi": 110, "savefig.dpi": 110, "axes.spines.top": False, "axes.spines.right": False,
           "axes.titlesize": 11, "axes.labelsize": 10, "xtick.labelsize": 9, "ytick.labelsize": 9,
           "legend.fontsize": 8, "legend.frameon": False},
}


def use_style() -> None:
    """Apply `STYLE` (seaborn theme and matplotlib rcParams) to every figure drawn from now on."""
    import seaborn as sns

    sns.set_theme(context=STYLE["context"], style=STYLE["style"], palette=STYLE["palette"], rc=STYLE["rc"])


def _np(t) -> np.ndarray:
    return t.detach().cpu().numpy() if isinstance(t, torch.Tensor) else np.asarray(t)


def posterior_curves(ax: plt.Axes, x, truth, curves: dict, xlabel: str = "x", ylabel: str = "P(A | x)") -> plt.Axes:
    """Learned scores f(x) (one line per entry of ``curves``) against the true posterior ``truth`` on a 1-D grid."""
    x = _np(x).reshape(-1)
    ax.plot(x, _np(truth), color="black", lw=3, alpha=0.35, label="true posterior")
    for label, values in curves.items():
        ax.plot(x, _np(values), lw=1.6, label=label)
    ax.set(xlabel=xlabel, ylabel=ylabel, ylim=(-0.03, 1.03))
    ax.legend(frameon=False, fontsize=8)
    return ax


def posterior_scatter(ax: plt.Axes, truth, probs, title: str = "", max_points: int = 3000) -> plt.Axes:
    """f(c|x) against P(c|x) for every point and class: a calibrated-to-the-truth model lies on the diagonal."""
    t, p = _np(truth)[:max_points].reshape(-1), _np(probs)[:max_points].reshape(-1)
    ax.scatter(t, p, s=2, alpha=0.3)
    ax.plot([0, 1], [0, 1], color="black", lw=1, ls="--")
    ax.set(xlabel="true posterior P(c | x)", ylabel="model f(c | x)", xlim=(0, 1), ylim=(0, 1), title=title)
    ax.set_aspect("equal")
    return ax


def reliability_diagram(ax: plt.Axes, curve: ReliabilityCurve, label: str = "", color=None) -> plt.Axes:
    """Accuracy per confidence bin (bars) against the diagonal; the ECE in the legend."""
    edges = _np(curve.edges)
    width = np.diff(edges)
    filled = _np(curve.count) > 0
    ax.bar(edges[:-1][filled], _np(curve.accuracy)[filled], width=width[filled], align="edge", alpha=0.6,
           edgecolor="white", color=color, label=f"{label} (ECE {100 * curve.ece:.2f}%)")
    ax.plot([0, 1], [0, 1], color="black", lw=1, ls="--")
    ax.set(xlabel="confidence max_c f(c | x)", ylabel="accuracy", xlim=(0, 1), ylim=(0, 1))
    ax.legend(frameon=False, fontsize=8, loc="upper left")
    return ax


def class_scatter_2d(ax: plt.Axes, x, y, num_classes: int, max_points: int = 2000, title: str = "") -> plt.Axes:
    """Points in R² coloured by class."""
    x, y = _np(x)[:max_points], _np(y)[:max_points]
    for c in range(num_classes):
        sel = y == c
        ax.scatter(x[sel, 0], x[sel, 1], s=3, alpha=0.5, label=f"class {c}")
    ax.set(title=title, xlabel="$x_1$", ylabel="$x_2$")
    ax.set_aspect("equal")
    return ax


def latents_with_prior(ax: plt.Axes, z, y, prior, title: str = "", max_points: int = 5000,
                       levels=(1.0, 2.0)) -> plt.Axes:
    """2-D latents z coloured by class, with each class prior p(z|y) drawn as its 1σ and 2σ ellipses."""
    from matplotlib.patches import Ellipse

    z, y = _np(z)[:max_points], _np(y)[:max_points]
    means = _np(prior.means)
    std = np.exp(0.5 * _np(prior.log_var))
    colors = plt.get_cmap("tab10")
    for c in range(prior.num_classes):
        sel = y == c
        ax.scatter(z[sel, 0], z[sel, 1], s=2, alpha=0.35, color=colors(c % 10))
        for k in levels:
            ax.add_patch(Ellipse(means[c], 2 * k * std[c, 0], 2 * k * std[c, 1], fill=False, lw=1.4,
                                 color=colors(c % 10), alpha=0.9 if k == 1 else 0.5))
        ax.annotate(str(c), means[c], ha="center", va="center", fontsize=9, weight="bold")
    ax.set(title=title, xlabel="$z_1$", ylabel="$z_2$")
    ax.set_aspect("equal", adjustable="datalim")
    return ax


def image_grid(ax: plt.Axes, images, ncol: int = 10, title: str = "", shape=(28, 28)) -> plt.Axes:
    """Images (N, ...) reshaped to ``shape`` and tiled in rows of ``ncol``, grey on white."""
    imgs = _np(images).reshape(-1, *shape)
    n = len(imgs)
    nrow = -(-n // ncol)
    grid = np.ones((nrow * (shape[0] + 2), ncol * (shape[1] + 2)))
    for i, img in enumerate(imgs):
        r, c = divmod(i, ncol)
        grid[r * (shape[0] + 2) + 1: r * (shape[0] + 2) + 1 + shape[0],
             c * (shape[1] + 2) + 1: c * (shape[1] + 2) + 1 + shape[1]] = 1 - img
    ax.imshow(grid, cmap="gray", vmin=0, vmax=1)
    ax.set(title=title, xticks=[], yticks=[])
    return ax
