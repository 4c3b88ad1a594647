"""The experiment plumbing that chapters share: train a CE / GM / VC model, score OOD inputs."""

from __future__ import annotations

import math
from types import SimpleNamespace

import torch
from torch import nn

from .metrics import auroc
from .models import LatentClassifier
from .train import Trainer, fit_cached

# The reference code's weights of log p(z|y) (run_lgm.sh, run_vc.sh); β = 0.01 for VC.
LIKELIHOOD_WEIGHTS = {"ce": 0.0, "gm": 0.1, "vc": 0.01}


def train_vc_model(name: str, data, objective: str, encoder: nn.Module, num_classes: int, latent_dim: int, *,
                   epochs: int | None = None, steps: int | None = None, seed: int = 0, device="cpu",
                   beta: float = 0.01, likelihood_weight: float | None = None, ratio_hidden: int | None = None,
                   batch_size: int = 128, lr: float = 1e-3, optimizer: str = "adam", schedule: str | None = None,
                   weight_decay: float = 0.0) -> tuple[LatentClassifier, dict]:
    """Build a `LatentClassifier` for ``objective`` and train it with the one `Trainer` (or load it).

    Give either ``epochs`` or a budget of optimiser ``steps`` (converted to whole epochs of ``data.train``; the
    validation split is then evaluated about ten times, not after each of many short epochs).
    ``likelihood_weight`` defaults to the reference code's weight for the objective.
    """
    if (epochs is None) == (steps is None):
        raise ValueError("give exactly one of epochs and steps")
    if steps is not None:
        epochs = max(1, math.ceil(steps * batch_size / len(data.train)))
    weight = LIKELIHOOD_WEIGHTS[objective] if likelihood_weight is None else likelihood_weight
    torch.manual_seed(seed)
    model = LatentClassifier.build(objective, encoder, num_classes, latent_dim, beta=beta, likelihood_weight=weight,
                                   ratio_hidden=ratio_hidden)
    trainer = Trainer(max_epochs=epochs, batch_size=min(batch_size, len(data.train)), lr=lr, optimizer=optimizer,
                      schedule=schedule, weight_decay=weight_decay, device=device, seed=seed, monitor="objective",
                      val_every=max(1, epochs // 10))
    return fit_cached(name, model, data, trainer, beta=beta, likelihood_weight=weight)


_KEEP = object()


def with_train(data, train, val=_KEEP) -> SimpleNamespace:
    """``data`` with its training split replaced (e.g. by a class-balanced subset); test and source kept, and
    val kept unless given (``val=None`` trains without validation, e.g. for fixed-budget low-data runs)."""
    return SimpleNamespace(train=train, val=data.val if val is _KEEP else val, test=data.test, source=data.source)


def ood_scores(model: LatentClassifier, x: torch.Tensor, score: str = "max_prob") -> torch.Tensor:
    """Per-input in-distribution scores: ``max_prob`` = max_y p(y|x), ``log_pz`` = log p_θ(z) at z = E_q[z|x]."""
    if score == "max_prob":
        return model.predict_proba(x).max(1).values
    if score == "log_pz":
        return model.log_marginal(x)
    raise ValueError(f"score must be 'max_prob' or 'log_pz', got {score!r}")


def ood_auroc(model: LatentClassifier, x_in: torch.Tensor, x_out: torch.Tensor, score: str = "max_prob") -> float:
    """AUROC for telling ``x_in`` (the model's test set) from ``x_out`` (an OOD set) by ``score``.

    The two sets must have the same image shape: lvmcls raises rather than resizing silently.
    """
    if x_in.shape[1:] != x_out.shape[1:]:
        raise ValueError(f"the OOD images have shape {tuple(x_out.shape[1:])} but the in-distribution images "
                         f"{tuple(x_in.shape[1:])}; resize them first (e.g. torch.nn.functional.interpolate, and "
                         "repeat or average channels): lvmcls does not resize silently")
    return auroc(ood_scores(model, x_in, score), ood_scores(model, x_out, score))


@torch.no_grad()
def predict_logits(model: nn.Module, x: torch.Tensor, batch_size: int = 4096) -> torch.Tensor:
    """``model(x)`` in eval mode, batched, as float logits on the CPU: (N, K)."""
    was_training = model.training
    model.eval()
    logits = torch.cat([model(x[i:i + batch_size]).float() for i in range(0, len(x), batch_size)]).cpu()
    model.train(was_training)
    return logits


def evaluate_classifier(model: nn.Module, split, temperature: float = 1.0, n_bins: int = 20):
    """Accuracy, NLL, Brier, ECE and MCE of softmax(logits / ``temperature``) on ``split``; also the logits."""
    if not temperature > 0:
        raise ValueError(f"temperature must be > 0, got {temperature}")
    logits = predict_logits(model, split.x)
    from .metrics import classification_report

    return classification_report((logits / temperature).softmax(1), split.y.cpu(), n_bins), logits
