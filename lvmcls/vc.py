"""Variational Classification (Dhuliawala, Sachan & Allen, TMLR 2023): the model family, opened beside the paper.

The paper reads a softmax classifier as the latent-variable model y → z → x:

- generative story: y ~ p_π(y) (a learned class prior), z ~ p_θ(z|y) = N(μ_y, diag σ²_y) (`GaussianClassPrior`);
  the inputs x are given (the model is discriminative in x);
- inference: an encoder q_φ(z|x), a point mass δ(z − f_φ(x)) as in the paper (or a Gaussian, its future work);
- the head p_θ(y|z) = p_θ(z|y) p_π(y) / Σ_y' p_θ(z|y') p_π(y')  (Bayes' rule, the step marked (Bayes) in the
  paper's proof of Eq. 6).

With Gaussian class priors sharing one isotropic covariance σ²I, the head is exactly a linear softmax layer:
log p_θ(z|y) + log p_π(y) = μ_yᵀz/σ² − |μ_y|²/(2σ²) + log π_y + (terms free of y), so W = μ/σ² and
b_y = −|μ_y|²/(2σ²) + log π_y (the "equi-scale exponential family" case, Eq. 6).

In this module: `GaussianClassPrior` (p_θ(z|y), p_π(y)), `ClassDensityRatio` (T_ψ, Eq. 9, for Eq. 7's KL term),
`variational_classification` (the CE / GM / VC objectives of Algorithm 1), `LatentClassifier` (encoder + prior +
ratio, the module the `Trainer` trains), `train_vc_model` (build and fit one through the cache) and the OOD scores.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from .metrics import auroc
from .nets import build_encoder, eval_batched
from .train import Trainer, fit_cached

def _check_finite(name: str, t: torch.Tensor) -> None:
    if not torch.isfinite(t).all():
        raise ValueError(f"{name} contains NaN or inf; check the encoder's outputs and the learning rate")


class GaussianClassPrior(nn.Module):
    """p_θ(z|y) = N(z; μ_y, diag σ²_y) for y = 1..K, and a learned class prior p_π(y) = softmax(π).

    - ``shared_isotropic=True`` ties every class and dimension to one variance σ²: the linear-softmax case.
    - Means start as ``randn(K, d)`` and log-variances at 0, as in the reference implementation.
    - Log-variances are clamped to [``min_log_var``, ``max_log_var``] so training cannot make them 0 or inf.
    """

    def __init__(self, num_classes: int, latent_dim: int, shared_isotropic: bool = False,
                 learn_class_prior: bool = True,
                 min_log_var: float = -6.0, max_log_var: float = 6.0):
        super().__init__()
        if num_classes < 2 or latent_dim < 1:
            raise ValueError(f"need num_classes >= 2 and latent_dim >= 1, got {num_classes}, {latent_dim}")
        if not min_log_var < max_log_var:
            raise ValueError(f"need min_log_var < max_log_var, got {min_log_var}, {max_log_var}")
        self.num_classes, self.latent_dim, self.shared_isotropic = num_classes, latent_dim, shared_isotropic
        self.min_log_var, self.max_log_var = min_log_var, max_log_var
        self.means = nn.Parameter(torch.randn(num_classes, latent_dim))
        self.raw_log_var = nn.Parameter(torch.zeros(1, 1) if shared_isotropic else torch.zeros(num_classes, latent_dim))
        self.class_logits = nn.Parameter(torch.zeros(num_classes), requires_grad=learn_class_prior)

    @property
    def log_var(self) -> torch.Tensor:
        """log σ²: (K, d), clamped."""
        return self.raw_log_var.clamp(self.min_log_var, self.max_log_var).expand(self.num_classes, self.latent_dim)

    def log_class_prior(self) -> torch.Tensor:
        """log p_π(y): (K,)."""
        return self.class_logits.log_softmax(0)

    def _check_z(self, z: torch.Tensor, checked: bool = True) -> None:
        if z.dim() != 2 or z.shape[1] != self.latent_dim:
            raise ValueError(f"z must be (N, {self.latent_dim}) to match the prior's latent dimension, "
                             f"got {tuple(z.shape)}")
        if checked:
            _check_finite("z", z)
            _check_finite("the prior's means", self.means)
            _check_finite("the prior's log-variances", self.raw_log_var)

    def _check_y(self, y: torch.Tensor, n: int, checked: bool = True) -> None:
        if y.shape != (n,):
            raise ValueError(f"y must be ({n},) class indices, got shape {tuple(y.shape)}")
        if checked and len(y) and (int(y.min()) < 0 or int(y.max()) >= self.num_classes):
            raise ValueError(f"class indices must lie in [0, {self.num_classes}); got range "
                             f"[{int(y.min())}, {int(y.max())}]: does num_classes match the data?")

    def log_prob_all(self, z: torch.Tensor, checked: bool = True) -> torch.Tensor:
        """log p_θ(z|y) for every class: (N, K).

        ``checked=False`` skips the value checks (finite z and parameters), which wait for the device; shapes
        are always checked. `LatentClassifier.training_step` skips them: `Trainer.fit` checks each split once
        (`LatentClassifier.check_data`) and the training loss once per epoch."""
        self._check_z(z, checked)
        log_var = self.log_var
        diff = z[:, None, :] - self.means[None]
        return -0.5 * ((diff.pow(2) / log_var.exp()).sum(-1) + log_var.sum(-1)
                       + self.latent_dim * math.log(2 * math.pi))

    def log_prob(self, z: torch.Tensor, y: torch.Tensor, checked: bool = True) -> torch.Tensor:
        """log p_θ(z|y) at each row's own class: (N,). ``checked``: as in `log_prob_all` (and y in range)."""
        self._check_y(y, len(z), checked)
        return self.log_prob_all(z, checked).gather(1, y[:, None]).squeeze(1)

    def logits(self, z: torch.Tensor, checked: bool = True) -> torch.Tensor:
        """log p_θ(z|y) + log p_π(y): the head's logits, so p_θ(y|z) = softmax(logits) (Bayes' rule, as in the
        proof of the paper's Eq. 6)."""
        return self.log_prob_all(z, checked) + self.log_class_prior()

    def sample(self, y: torch.Tensor, generator: torch.Generator | None = None, checked: bool = True) -> torch.Tensor:
        """z ~ p_θ(z|y) for each label in ``y``, by reparameterisation: (N, d). ``checked``: y in range."""
        self._check_y(y, len(y), checked)
        eps = torch.randn(len(y), self.latent_dim, generator=generator).to(self.means.device)
        return self.means[y] + (0.5 * self.log_var[y]).exp() * eps

    def as_linear(self) -> tuple[torch.Tensor, torch.Tensor]:
        """(W, b) of the equivalent linear softmax layer; only for ``shared_isotropic`` priors (Eq. 6)."""
        if not self.shared_isotropic:
            raise ValueError("only a shared isotropic covariance gives a linear head; use shared_isotropic=True")
        var = self.log_var[0, 0].exp()
        return self.means / var, -self.means.pow(2).sum(1) / (2 * var) + self.log_class_prior()


# The families of the discriminator T^y_ψ(z) (`ClassDensityRatio`): the paper's linear one, the exact family for
# diagonal-Gaussian class priors, and the reference code's MLP option.
RATIO_FORMS = ("linear", "quadratic", "mlp")


class ClassDensityRatio(nn.Module):
    """One binary discriminator per class, T^y_ψ(z), trained to tell q_φ(z|y) from p_θ(z|y) (the paper's Eq. 9).

    Samples of q (encoder outputs of class y) are labelled 1 and samples of p (prior draws) 0. With equal
    numbers of each, the optimal logit is T^y(z) = log q(z|y) / p(z|y) (Chapter 1: a classifier's logit is a
    log density ratio), so E_{q(z|y)} T^y(z) estimates KL(q(z|y) ‖ p(z|y)).

    ``form`` (one of `RATIO_FORMS`), the family of T^y:

    - ``"linear"``: T^y(z) = b_yᵀz + a_y, the paper's default. It sees a mismatch of means only: for Gaussian q
      and p with the same mean its best fit is constant, whatever their spreads.
    - ``"quadratic"``: T^y(z) = a_y + b_yᵀz + Σ_d c_yd z_d². The log ratio of two diagonal Gaussians is exactly
      of this form (c = (1/σ²_p − 1/σ²_q)/2, b = μ_q/σ²_q − μ_p/σ²_p), so it is the exact family when
      p_θ(z|y) is a diagonal Gaussian and q_φ(z|y) is close to one. Not in the paper.
    - ``"mlp"``: a per-class MLP with one tanh layer of ``hidden`` units (the reference code's option uses 512),
      computed as one matrix product against every class's first layer (N × K × hidden values per batch).

    Linear and quadratic start at zero (T ≡ 0); ``hidden`` is given for "mlp" only.
    """

    def __init__(self, num_classes: int, latent_dim: int, form: str = "linear", hidden: int | None = None):
        super().__init__()
        if form not in RATIO_FORMS:
            raise ValueError(f"form must be one of {RATIO_FORMS}, got {form!r}")
        if (form == "mlp") != (hidden is not None):
            raise ValueError(f"give hidden (units, >= 1) for form='mlp' and only then; got {form=}, {hidden=}")
        if num_classes < 1 or latent_dim < 1 or (hidden is not None and hidden < 1):
            raise ValueError(f"need num_classes, latent_dim >= 1 and hidden >= 1 or None; "
                             f"got {num_classes}, {latent_dim}, {hidden}")
        self.num_classes, self.latent_dim, self.form, self.hidden = num_classes, latent_dim, form, hidden
        if form == "mlp":
            self.w1 = nn.Parameter(torch.randn(num_classes, latent_dim, hidden) / math.sqrt(latent_dim))
            self.b1 = nn.Parameter(torch.zeros(num_classes, hidden))
            self.w2 = nn.Parameter(torch.randn(num_classes, hidden) / math.sqrt(hidden))
            self.b2 = nn.Parameter(torch.zeros(num_classes))
            return
        self.weight = nn.Parameter(torch.zeros(num_classes, latent_dim))
        self.bias = nn.Parameter(torch.zeros(num_classes))
        if form == "quadratic":
            self.quadratic = nn.Parameter(torch.zeros(num_classes, latent_dim))

    def forward(self, z: torch.Tensor, y: torch.Tensor, detach_params: bool = False) -> torch.Tensor:
        """T^y(z) for each row's class: (N,). ``detach_params``: gradients reach z but not ψ."""
        if z.dim() != 2 or z.shape[1] != self.latent_dim:
            raise ValueError(f"z must be (N, {self.latent_dim}), got {tuple(z.shape)}")
        if y.shape != (len(z),):
            raise ValueError(f"y must be ({len(z)},), got {tuple(y.shape)}")
        p = {k: (v.detach() if detach_params else v) for k, v in self.named_parameters()}
        if self.form == "mlp":  # one matrix product against every class's first layer, then each row's class
            n, k, hidden = len(z), self.num_classes, self.hidden
            pre = (z @ p["w1"].transpose(0, 1).reshape(self.latent_dim, k * hidden)).view(n, k, hidden)
            pre = pre.gather(1, y.view(n, 1, 1).expand(n, 1, hidden)).squeeze(1)
            h = torch.tanh(pre + p["b1"][y])
            return (h * p["w2"][y]).sum(1) + p["b2"][y]
        t = (p["weight"][y] * z).sum(1) + p["bias"][y]
        if self.form == "quadratic":
            t = t + (p["quadratic"][y] * z.pow(2)).sum(1)
        return t

    def loss(self, z_q: torch.Tensor, z_p: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """Binary cross-entropy: q samples (detached) labelled 1, p samples (detached) labelled 0 (one forward
        pass over both)."""
        n = len(y)
        if z_q.shape != z_p.shape or len(z_q) != n:
            raise ValueError(f"z_q and z_p must both be ({n}, {self.latent_dim}) for {n} labels, "
                             f"got {tuple(z_q.shape)} and {tuple(z_p.shape)}")
        logits = self(torch.cat([z_q.detach(), z_p.detach()]), torch.cat([y, y]))
        logit_q, logit_p = logits[:n], logits[n:]
        bce = nn.functional.binary_cross_entropy_with_logits
        return bce(logit_q, torch.ones_like(logit_q)) + bce(logit_p, torch.zeros_like(logit_p))

    def kl_estimate(self, z_q: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """E_{q(z|y)} T^y(z), averaged over the batch: the estimate of KL(q(z|y) ‖ p(z|y)) in Eq. 7 (T trained by
        Eq. 9)."""
        return self(z_q, y).mean()


# --------------------------------------------------------------------------------------------
# Variational Classification (Dhuliawala, Sachan & Allen, TMLR 2023), Algorithm 1

VC_OBJECTIVES = ("ce", "ce_gaussian", "gm", "vc", "vc_reference")
# λ, the weight of log p_θ(z|y), per objective: the reference code's run scripts (run_lgm.sh 0.1, run_vc.sh 0.01).
DEFAULT_LIKELIHOOD_WEIGHT = {"ce": 0.0, "ce_gaussian": 0.0, "gm": 0.1, "vc": 0.01, "vc_reference": 0.01}


def variational_classification(z: torch.Tensor, y: torch.Tensor, prior, ratio=None, objective: str = "vc",
                               beta: float = 0.01, likelihood_weight: float | None = None,
                               checked: bool = True) -> dict[str, torch.Tensor]:
    """The objectives of the VC paper's ablation for latents z ~ q_φ(z|x) of inputs with labels y.

    Per example, with p_θ(y|z) from the prior by Bayes' rule (``prior.logits``):

    - ``ce`` (MLE), the ELBO_VC of Eq. 5 with a point mass: log p_θ(y|z) + log p_π(y). With a prior of one shared
      isotropic covariance (what `LatentClassifier.build` gives "ce") the head is a plain linear softmax (Eq. 6),
      the reference code's CE baseline; the paper's §5 calls its CE "equivalent to standard softmax cross-entropy
      under the above assumptions" (which include Gaussian class priors), so this is one of two readings.
    - ``ce_gaussian``: the same loss on per-class diagonal Gaussians (a quadratic head), the other reading of §5's
      CE (its assumptions include Gaussian class priors); the reference code has no such head.
    - ``gm`` (MAP; Wan et al. 2018 without their margin): CE + λ log p_θ(z|y), every parameter receiving every term (λ = 0.1).
    - ``vc``, Eq. 7 trained as Algorithm 1: CE + λ log p_θ(z|y) − β T^y_ψ(z), with E_q T^y ≈ KL(q_φ(z|y) ‖ p_θ(z|y))
      (Eq. 7's KL term, T trained by Eq. 9; β = λ = 0.01, the reference code's weights: the paper gives none).
      The gradients follow the algorithm's lines:
        line 9   θ (the prior):    ∇θ [log p_θ(y|z) + λ log p_θ(z|y)]  (printed "β p_θ(z|y)"; we read the log and
                                   weight it by λ, the reference code's 0.01, equal to β by default)
        line 10  φ (the encoder):  ∇φ [log p_θ(y|z) − β T_ψ(z)]       (log p_θ(z|y) is taken at a detached z)
        line 11  π (class prior):  ∇π log p_π(y)                      (p_π enters p_θ(y|z) detached)
    - ``vc_reference``: the reference scripts' variant, where the encoder also receives ∇φ λ log p_θ(z|y), so the
      prior's cross-entropy pulls the latents twice (once through T, once directly).

    T enters with its parameters detached: the encoder's gradient flows through T(z), while T itself is trained
    only by its own objective (``ClassDensityRatio.loss``, line 12). Returns ``loss`` (the negated objective,
    averaged) and its terms. ``checked=False`` skips the prior's value checks (`GaussianClassPrior.log_prob_all`).
    """
    if objective not in VC_OBJECTIVES:
        raise ValueError(f"objective must be one of {VC_OBJECTIVES}, got {objective!r}")
    if beta < 0:
        raise ValueError(f"beta weights a KL divergence and must be >= 0, got {beta}")
    lam = DEFAULT_LIKELIHOOD_WEIGHT[objective] if likelihood_weight is None else likelihood_weight
    if lam < 0:
        raise ValueError(f"likelihood_weight must be >= 0, got {lam}")
    uses_ratio = objective in ("vc", "vc_reference")
    if uses_ratio and ratio is None:
        raise ValueError("the VC objective needs a ClassDensityRatio to estimate KL(q(z|y) || p(z|y))")
    if uses_ratio:
        # Algorithm 1, line 11: π learns from log p_π(y) alone (its maximum is the label frequencies), so the
        # class prior enters p_θ(y|z) (line 7) detached
        logits = prior.log_prob_all(z, checked) + prior.log_class_prior().detach()
    else:
        logits = prior.logits(z, checked)
    log_p_y_given_z = logits.log_softmax(1).gather(1, y[:, None]).squeeze(1)
    log_p_y = prior.log_class_prior()[y]
    elbo = log_p_y_given_z + log_p_y
    terms = {"log_p_y_given_z": log_p_y_given_z.mean(), "logits": logits}
    if objective in ("gm", "vc", "vc_reference"):
        # Algorithm 1, line 9 vs 10: for "vc" only θ learns from log p_θ(z|y); the encoder does not.
        log_p_z_given_y = prior.log_prob(z.detach() if objective == "vc" else z, y, checked)
        elbo = elbo + lam * log_p_z_given_y
        terms["log_p_z_given_y"] = log_p_z_given_y.mean()
    if uses_ratio:
        t = ratio(z, y, detach_params=True)
        elbo = elbo - beta * t
        terms["kl_estimate"] = t.mean()
    terms["loss"] = -elbo.mean()
    return terms


class LatentClassifier(nn.Module):
    """The softmax classifier as a latent-variable model (Variational Classification, Algorithm 1).

    Generative story: y ~ p_π(y), z ~ p_θ(z|y) (``GaussianClassPrior``); the inputs x are given.
    Inference: an encoder q_φ(z|x), either a point mass δ(z - f_φ(x)) (the default, as in the paper) or a
    Gaussian N(μ_φ(x), diag σ²_φ(x)) sampled by reparameterisation (the paper's future work). The head is
    p_θ(y|z) by Bayes' rule, so p(y|x) = E_{q(z|x)} p_θ(y|z).

    ``objective``: one of `VC_OBJECTIVES` (see `variational_classification`). For "vc" and "vc_reference" a
    ``ClassDensityRatio`` is trained alongside, one step per encoder step, on detached encoder outputs
    (label 1) and prior samples (label 0), by its own AdamW (learning rate ``ratio_lr``, default 1e-3 as the
    reference code's library default; weight decay 1e-2). ``prior_lr``: the prior's learning rate (default: the
    trainer's). Algorithm 1 gives θ, φ, π and ψ each their own learning-rate schedule (its line 1).
    """

    def __init__(self, encoder: nn.Module, prior: nn.Module, ratio: nn.Module | None = None, objective: str = "vc",
                 beta: float = 0.01, likelihood_weight: float | None = None, posterior: str = "point",
                 prior_lr: float | None = None, ratio_lr: float = 1e-3):
        super().__init__()
        if posterior not in ("point", "gaussian"):
            raise ValueError(f"posterior must be 'point' or 'gaussian', got {posterior!r}")
        if objective not in VC_OBJECTIVES:
            raise ValueError(f"objective must be one of {VC_OBJECTIVES}, got {objective!r}")
        if beta < 0:
            raise ValueError(f"beta must be >= 0, got {beta}")
        if objective in ("vc", "vc_reference") and ratio is None:
            raise ValueError(f"objective={objective!r} needs ratio=ClassDensityRatio(num_classes, latent_dim)")
        if ratio is not None and (ratio.num_classes, ratio.latent_dim) != (prior.num_classes, prior.latent_dim):
            raise ValueError(f"the density ratio is for {ratio.num_classes} classes in R^{ratio.latent_dim} "
                             f"but the prior "
                             f"for {prior.num_classes} classes in R^{prior.latent_dim}")
        self.encoder, self.prior, self.ratio = encoder, prior, ratio
        self.objective, self.beta, self.likelihood_weight = objective, beta, likelihood_weight
        if (prior_lr is not None and not prior_lr > 0) or not ratio_lr > 0:
            raise ValueError(f"prior_lr (or None) and ratio_lr must be > 0, got {prior_lr}, {ratio_lr}")
        self.posterior, self.prior_lr, self.ratio_lr = posterior, prior_lr, ratio_lr

    @classmethod
    def build(cls, objective: str, encoder: nn.Module, num_classes: int, latent_dim: int, beta: float = 0.01,
              likelihood_weight: float | None = None, ratio_form: str = "linear", ratio_hidden: int | None = None,
              **kwargs) -> "LatentClassifier":
        """Encoder + ``GaussianClassPrior`` (+ a ``ClassDensityRatio(form=ratio_form, hidden=ratio_hidden)`` for VC).

        "ce" gets a prior with one shared isotropic covariance, i.e. a linear softmax head (the reference code's CE,
        one reading of the paper's);
        every other objective gets per-class diagonal Gaussians."""
        ratio = ClassDensityRatio(num_classes, latent_dim, form=ratio_form, hidden=ratio_hidden) \
            if objective in ("vc", "vc_reference") else None
        prior = GaussianClassPrior(num_classes, latent_dim, shared_isotropic=objective == "ce")
        return cls(encoder, prior, ratio, objective=objective, beta=beta, likelihood_weight=likelihood_weight,
                   **kwargs)

    def encode(self, x: torch.Tensor, sample: bool = True) -> torch.Tensor:
        """z ~ q_φ(z|x): the point itself, or a reparameterised Gaussian draw (its mean if not ``sample``)."""
        out = self.encoder(x)
        d = self.prior.latent_dim
        if self.posterior == "point":
            if out.shape[1] != d:
                raise ValueError(f"the encoder outputs {out.shape[1]} features; the prior's latent dimension is {d}")
            return out
        if out.shape[1] != 2 * d:
            raise ValueError(f"a Gaussian posterior needs 2 x {d} encoder outputs (mean, log-variance), got {out.shape[1]}")
        mean, log_var = out[:, :d], out[:, d:].clamp(-8, 8)
        return mean + (0.5 * log_var).exp() * torch.randn_like(mean) if sample else mean

    def check_data(self, split) -> None:
        """Called by `Trainer.fit` once per split (train and val) before training: every input must be finite and
        every label a class index in [0, K). One reduction over each split replaces the per-step value checks
        (a host sync each), which `training_step` skips."""
        if split.y.is_floating_point():
            raise ValueError(f"a LatentClassifier trains on integer class labels, got {split.y.dtype}")
        _check_finite("the inputs x", split.x)
        if len(split.y):
            low, high = split.y.aminmax()
            if int(low) < 0 or int(high) >= self.prior.num_classes:
                raise ValueError(f"class labels must lie in [0, {self.prior.num_classes}); this split's range is "
                                 f"[{int(low)}, {int(high)}]: does num_classes match the data?")

    def training_step(self, x: torch.Tensor, y: torch.Tensor) -> dict[str, torch.Tensor]:
        """Algorithm 1's losses on one batch. No value checks: `Trainer.fit` and `Trainer.evaluate` call
        `check_data` on the whole split first; a direct caller with data of unknown quality must call it too."""
        z = self.encode(x)
        terms = variational_classification(z, y, self.prior, self.ratio, self.objective, self.beta,
                                           self.likelihood_weight, checked=False)
        logits = terms.pop("logits")
        out = {**terms, "objective": terms["loss"], "acc": (logits.argmax(1) == y).float().mean()}
        if self.ratio is not None:
            z_prior = self.prior.sample(y, checked=False).detach()
            out["ratio_loss"] = self.ratio.loss(z, z_prior, y)
            out["loss"] = terms["loss"] + out["ratio_loss"]  # disjoint parameters: one backward trains both
        return out

    def parameter_groups(self) -> dict:
        groups = {"encoder": (list(self.encoder.parameters()), {}),
                  "prior": (list(self.prior.parameters()), {} if self.prior_lr is None else {"lr": self.prior_lr})}
        if self.ratio is not None:
            groups["ratio"] = (list(self.ratio.parameters()),
                               {"optimizer": "adamw", "lr": self.ratio_lr, "weight_decay": 1e-2})
        return groups

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Logits of p(y|x): the Bayes-rule head at z = E_q[z|x] (differentiable in x, e.g. for FGSM)."""
        return self.prior.logits(self.encode(x, sample=False))

    @torch.no_grad()
    def log_marginal(self, x: torch.Tensor, batch_size: int = 4096) -> torch.Tensor:
        """log p_θ(z) = log Σ_y p_θ(z|y) p_π(y) at z = E_q[z|x]: a density score for OOD detection, (N,)."""
        z = self.latents(x, batch_size)
        return torch.logsumexp(self.prior.logits(z), dim=1)

    @torch.no_grad()
    def latents(self, x: torch.Tensor, batch_size: int = 4096) -> torch.Tensor:
        """E_q[z|x] for every row of x (the point itself for a point mass)."""
        return eval_batched(lambda xb: self.encode(xb, sample=False), x, batch_size, model=self)

    @torch.no_grad()
    def predict_proba(self, x: torch.Tensor, batch_size: int = 4096) -> torch.Tensor:
        """p(y|x) = p_θ(y|z) at z = E_q[z|x] (exact for a point mass): (N, K)."""
        return self.prior.logits(self.latents(x, batch_size)).softmax(1)


# --------------------------------------------------------------------------------------------
# Training and scoring a VC model

def train_vc_model(name: str, data, objective: str, encoder, num_classes: int, latent_dim: int, *,
                   epochs: int | None = None, steps: int | None = None, seed: int = 0, device="cpu",
                   beta: float = 0.01, likelihood_weight: float | None = None, ratio_form: str = "linear",
                   ratio_hidden: int | None = None, batch_size: int = 128, lr: float = 1e-3, optimizer: str = "adam",
                   schedule: str | None = None, weight_decay: float = 0.0, prior_lr: float | None = None,
                   ratio_lr: float = 1e-3, **trainer_options) -> tuple[LatentClassifier, dict]:
    """Build a `LatentClassifier` for ``objective`` and train it with the one `Trainer` (or load it).

    ``encoder``: a kind for `lvmcls.nets.build_encoder` ("mlp", "convnet", "resnet18"; input shape from ``data``)
    or a zero-argument function returning the encoder network; it is built after seeding, inside `fit_cached`.
    Give either ``epochs`` or a budget of optimiser ``steps``: the run then takes exactly ``steps`` mini-batches
    whatever the data size (the last epoch stops part-way; `Trainer.max_steps`). ``likelihood_weight``
    defaults to the reference code's weight for the objective (`DEFAULT_LIKELIHOOD_WEIGHT`). ``prior_lr``: the
    class priors' learning rate (default: the trainer's ``lr``; the reference code uses 0.1 × the encoder's rate);
    ``ratio_lr``: the discriminator's (`LatentClassifier`). Both enter the cache key through the model.
    """
    if (epochs is None) == (steps is None):
        raise ValueError("give exactly one of epochs and steps")
    if isinstance(encoder, nn.Module):
        raise TypeError("pass the encoder as a kind ('mlp', 'convnet', 'resnet18') or a function that builds it, "
                        "not a built module: the seed must fix its initial weights")
    batch_size = min(batch_size, len(data.train))
    if steps is not None:
        epochs = max(1, math.ceil(steps / math.ceil(len(data.train) / batch_size)))
        trainer_options["max_steps"] = steps
    weight = DEFAULT_LIKELIHOOD_WEIGHT[objective] if likelihood_weight is None else likelihood_weight
    make_encoder = encoder if callable(encoder) else \
        (lambda: build_encoder(encoder, latent_dim, tuple(data.train.x.shape[1:])))

    def build():
        return LatentClassifier.build(objective, make_encoder(), num_classes, latent_dim, beta=beta,
                                      likelihood_weight=weight, ratio_form=ratio_form, ratio_hidden=ratio_hidden,
                                      prior_lr=prior_lr, ratio_lr=ratio_lr)

    trainer = Trainer(max_epochs=epochs, batch_size=batch_size, lr=lr, optimizer=optimizer, schedule=schedule,
                      weight_decay=weight_decay, device=device, seed=seed, monitor="objective",
                      val_every=max(1, epochs // 10), **trainer_options)
    return fit_cached(name, build, data, trainer)


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


# --------------------------------------------------------------------------------------------
# Is VC's mechanism at work? The gate chapter 3 states before its runs

MECHANISM_GAIN = 0.10  # the spread-ratio gain over ce_gaussian that counts as "filling out the prior"


def mechanism_diagnostic(model: LatentClassifier, x: torch.Tensor, y: torch.Tensor, k: int = 5) -> dict:
    """The mechanism diagnostic of one model on inputs ``x`` with labels ``y``: the spread ratio (tr Cov(z|y) over
    the trace of the class prior's covariance, mean over classes; 1 = the latents fill their prior) and
    KL(q(z|y) ‖ p(z|y)) by the Kozachenko–Leonenko estimate (mean over classes, nats; biased in high dimension,
    so a comparison between models of the same latent size, not a KL to read alone)."""
    from .estimators import latent_kl, spread_ratio

    z = model.latents(x)
    ratios, kls = spread_ratio(z, y, model.prior), latent_kl(z, y, model.prior, k=k)
    return {"spread_ratio": sum(ratios.values()) / len(ratios), "latent_kl": sum(kls.values()) / len(kls)}


def _paired_interval(d, confidence: float) -> tuple[float, tuple[float, float]]:
    from scipy import stats

    n = len(d)
    mean = sum(d) / n
    sd = math.sqrt(sum((v - mean) ** 2 for v in d) / (n - 1))
    half = stats.t.ppf(0.5 + confidence / 2, n - 1) * sd / math.sqrt(n)
    return mean, (mean - half, mean + half)


def mechanism_gate(spread, spread_base, kl, kl_base, *, gain: float = MECHANISM_GAIN,
                   confidence: float = 0.95) -> dict:
    """Chapter 3's gate, stated before its runs: an arm shows "the paper's mechanism" against a baseline of the same
    seeds (``ce_gaussian``: the same head without the KL term) when its spread ratio is higher by at least ``gain``
    on average with the paired ``confidence`` interval above 0, AND its KL(q(z|y) ‖ p(z|y)) is lower (paired
    interval wholly below 0). Returns the paired mean differences, their intervals and ``verdict``: "engaged";
    "not engaged" when the spread-ratio interval lies wholly below ``gain`` (the stated amount is excluded) or the
    KL interval lies wholly above 0; "undecided" otherwise. Lists are per seed, in the same seed order."""
    lists = [list(map(float, v)) for v in (spread, spread_base, kl, kl_base)]
    n = len(lists[0])
    if any(len(v) != n for v in lists) or n < 2:
        raise ValueError(f"the gate needs ≥ 2 paired seeds and four lists of the same length, got "
                         f"{[len(v) for v in lists]}")
    if not all(math.isfinite(v) for vs in lists for v in vs):
        raise ValueError("the gate's values must be finite")
    if not (gain > 0 and 0 < confidence < 1):
        raise ValueError(f"need gain > 0 and 0 < confidence < 1, got {gain}, {confidence}")
    ds = [a - b for a, b in zip(lists[0], lists[1])]
    dk = [a - b for a, b in zip(lists[2], lists[3])]
    ms, (lo_s, hi_s) = _paired_interval(ds, confidence)
    mk, (lo_k, hi_k) = _paired_interval(dk, confidence)
    if ms >= gain and lo_s > 0 and hi_k < 0:
        verdict = "engaged"
    elif hi_s < gain or lo_k > 0:
        verdict = "not engaged"
    else:
        verdict = "undecided"
    return {"n": n, "gain": gain, "confidence": confidence, "spread_gain": ms, "spread_interval": [lo_s, hi_s],
            "kl_change": mk, "kl_interval": [lo_k, hi_k], "verdict": verdict}
