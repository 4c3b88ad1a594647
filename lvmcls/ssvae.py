"""Semi-supervised VAEs: M2 (Kingma et al. 2014) with the label summed out exactly, and the MIER regulariser
(Mutual Information and Entropy Regularisation, arXiv 2108.12734). Equation numbers are the MIER paper's.

Generative story (M2, the paper's Figure 1a): y → x ← z, the label and the style z independent a priori and both
parents of the image,

    y ~ p(y) = Cat(1/K),   z ~ p(z) = N(0, I),   x | y, z ~ Bernoulli(σ(g_θ(y, z))) pixel by pixel,

on grey levels x ∈ [0, 1] (log p(x|y, z) is minus a binary cross-entropy: for grey targets it is not a normalised
density, and it can never exceed -Σ_pixels H_b(x), the data's Bernoulli floor; see `bernoulli_floor`).
Inference model (Figure 1b): q_φ(y, z|x) = q_φ(y|x) q_φ(z|x, y), with the classifier q_φ(y|x) = Cat(softmax f_φ(x))
and q_φ(z|x, y) = N(μ_φ(x, y), diag σ²_φ(x, y)).

Bounds (the z-part of each expectation is one reparameterised sample, the KL to p(z) closed-form):

    L(x, y) = E_q(z|x,y)[log p(x|y,z) + log p(y) + log p(z) - log q(z|x,y)] ≤ log p(x, y)              (Eq. 1)
    U(x) = E_q(y,z|x) log p(x|y,z) - KL(q(y|x) ‖ p(y)) - E_q(y|x) KL(q(z|x,y) ‖ p(z))                  (Eq. 2)
         = Σ_y q(y|x) L(x, y) + H(q(y|x)) ≤ log p(x)                                                   (Eq. 3)
    J = Σ_labelled L(x, y) + Σ_unlabelled U(x) + α E_labelled log q(y|x)                               (Eq. 4)

The sum over y in U is exact: every unlabelled row is expanded over the K classes in one batched pass.
MIER replaces U by

    M(x) = U(x) + γ I(y; x) - β H(q(y|x))                                                             (Eq. 7)
    I(y; x) = H(q(y)) - E_x H(q(y|x)),   q(y) = E_x q(y|x) (here: the batch's unlabelled rows)         (Eq. 8)

and, because E_x KL(q(y|x) ‖ p(y)) = I(y; x) + KL(q(y) ‖ p(y)) ≥ I(y; x) (Eq. 6), adds back information that the
bound penalises. Expanded with Eq. 3 and Eq. 8, the batch mean of M is
E_q(y|x) L + (1 - γ - β) E_x H(q(y|x)) + γ H(q(y)): a per-example entropy term and a batch marginal-entropy term.
γ = β = 0 is exactly M2.

Convention for α: the loss of one step is an unbiased estimate of -J/N (N = all training examples) whatever the
batch holds, -[(N_l/N) mean_l L + (N_u/N) mean_u M + α' mean_l log q(y|x)], so Kingma's α = 0.1·N in J is
``alpha = 0.1`` here; per labelled example the classification term then weighs α'·N/N_l times its bound
(50 for 100 labels among 50,000 images; Pyro's example uses a multiplier of 46).
"""

from __future__ import annotations

import math
from collections.abc import Iterator

import torch
from torch import nn
from torch.nn import functional as F

from .data import TensorSplit, labelled_unlabelled
from .nets import dense_stack
from .train import tensor_fingerprint
from .vae import check_unit_interval, kl_to_standard_normal

# --------------------------------------------------------------------------------------------
# Entropy and mutual information of a classifier on a batch (Eqs. 6 and 8)


def entropy(log_probs: torch.Tensor) -> torch.Tensor:
    """H(q(y|x)) = -Σ_y q log q per row of log-probabilities (N, K): (N,). Rows with q = 0 contribute 0."""
    return -(log_probs.exp() * log_probs).nan_to_num(0.0).sum(-1)


def label_information(log_probs: torch.Tensor, log_prior: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
    """Eqs. 6 and 8 on a batch of classifier outputs log q(y|x_n), n = 1..N (empirical q(x) = 1/N):

        q(y) = (1/N) Σ_n q(y|x_n),   I(y; x) = H(q(y)) - mean_n H(q(y|x_n))                          (Eq. 8)
        mean_n KL(q(y|x_n) ‖ p(y)) = I(y; x) + KL(q(y) ‖ p(y))                                       (Eq. 6)

    ``log_prior`` is log p(y) (default uniform). Returns scalars ``mi``, ``entropy`` (mean per-example),
    ``marginal_entropy``, ``kl_marginal`` and ``mean_kl``. 0 ≤ I ≤ log K; on a batch it underestimates the
    population I (H of a batch average is biased low)."""
    if log_probs.dim() != 2 or log_probs.shape[0] < 1:
        raise ValueError(f"need log-probabilities of shape (N, K) with N >= 1, got {tuple(log_probs.shape)}")
    k = log_probs.shape[1]
    if log_prior is None:
        log_prior = torch.full((k,), -math.log(k), device=log_probs.device, dtype=log_probs.dtype)
    log_marginal = torch.logsumexp(log_probs, 0) - math.log(log_probs.shape[0])
    per_example = entropy(log_probs)
    marginal_entropy = entropy(log_marginal[None])[0]
    kl_rows = (log_probs.exp() * (log_probs - log_prior)).nan_to_num(0.0).sum(-1)
    kl_marginal = (log_marginal.exp() * (log_marginal - log_prior)).nan_to_num(0.0).sum()
    return {"mi": marginal_entropy - per_example.mean(), "entropy": per_example.mean(),
            "marginal_entropy": marginal_entropy, "kl_marginal": kl_marginal, "mean_kl": kl_rows.mean()}


def mier_regulariser(log_probs: torch.Tensor, gamma: float, beta: float) -> torch.Tensor:
    """γ I(y; x) - β mean H(q(y|x)) on a batch of unlabelled rows: what Eq. 7 adds to the batch mean of U."""
    info = label_information(log_probs)
    return gamma * info["mi"] - beta * info["entropy"]


def unlabelled_bound_eq3(class_bound: torch.Tensor, log_q: torch.Tensor) -> torch.Tensor:
    """U(x) = Σ_y q(y|x) L(x, y) + H(q(y|x)) (Eq. 3) from L(x, y) (N, K) and log q(y|x) (N, K): (N,)."""
    return (log_q.exp() * class_bound).sum(-1) + entropy(log_q)


def unlabelled_bound_eq2(log_lik: torch.Tensor, kl_z: torch.Tensor, log_q: torch.Tensor,
                         log_prior: torch.Tensor) -> torch.Tensor:
    """U(x) = E_q(y,z|x) log p(x|y,z) - KL(q(y|x) ‖ p(y)) - E_q(y|x) KL(q(z|x,y) ‖ p(z)) (Eq. 2), from per-class
    log p(x|y, z) and KL(q(z|x,y) ‖ p(z)) (N, K), log q(y|x) (N, K) and log p(y) (K,): (N,)."""
    q = log_q.exp()
    kl_y = (q * (log_q - log_prior)).nan_to_num(0.0).sum(-1)
    return (q * log_lik).sum(-1) - kl_y - (q * kl_z).sum(-1)


# --------------------------------------------------------------------------------------------
# The model


def classifier_network(x_dim: int, num_classes: int, hidden: int) -> nn.Sequential:
    """q_φ(y|x)'s logits: one hidden layer of ``hidden`` softplus units (the M2 classifier of both papers)."""
    return dense_stack([x_dim, hidden, num_classes], activation=nn.Softplus)


class M2(nn.Module):
    """M2 (Kingma et al. 2014) trained with J of Eq. 4, or J2 of Eq. 9 (MIER) when γ or β > 0.

    - classifier q(y|x): ``classifier_network`` (one hidden layer of ``classifier_hidden``);
    - encoder q(z|x, y) and decoder p(x|y, z): ``depth`` hidden layers of ``hidden`` softplus units; the first
      layer of each acts on the concatenation [x, onehot(y)] (resp. [z, onehot(y)]), computed as W_x x + W_y[:, y],
      so the K-fold expansion of an unlabelled row reuses W_x x;
    - ``labelled_fraction`` = N_l / N of the training set, ``alpha`` the classification weight (module docstring),
      ``gamma`` and ``beta`` of Eq. 7, ``warmup_steps``: the KL(q(z|x,y) ‖ p(z)) terms are weighted from 0 to 1
      linearly over that many training steps (Sønderby et al. 2016); evaluation always uses weight 1.

    ``training_step(x, y)`` takes y = -1 for unlabelled rows.
    """

    def __init__(self, x_dim: int = 784, num_classes: int = 10, latent_dim: int = 50, hidden: int = 600, depth: int = 2,
                 classifier_hidden: int = 600, labelled_fraction: float = 1.0, alpha: float = 0.1,
                 gamma: float = 0.0, beta: float = 0.0, warmup_steps: int = 0):
        super().__init__()
        if min(x_dim, latent_dim, hidden, depth, classifier_hidden) < 1 or num_classes < 2:
            raise ValueError(f"need positive sizes and num_classes >= 2, got {x_dim=}, {num_classes=}, {latent_dim=}, "
                             f"{hidden=}, {depth=}, {classifier_hidden=}")
        if gamma < 0 or beta < 0:
            raise ValueError(f"MIER needs gamma >= 0 and beta >= 0 (gamma raises I(y; x), beta lowers the entropy; "
                             f"gamma = beta = 0 is M2), got gamma={gamma}, beta={beta}")
        if not 0 < labelled_fraction <= 1:
            raise ValueError(f"labelled_fraction = N_labelled / N must lie in (0, 1], got {labelled_fraction}")
        if alpha < 0 or warmup_steps < 0:
            raise ValueError(f"need alpha >= 0 and warmup_steps >= 0, got {alpha}, {warmup_steps}")
        self.x_dim, self.num_classes, self.latent_dim = x_dim, num_classes, latent_dim
        self.hidden, self.depth, self.classifier_hidden = hidden, depth, classifier_hidden
        self.labelled_fraction, self.alpha, self.gamma, self.beta = labelled_fraction, alpha, gamma, beta
        self.warmup_steps = warmup_steps
        self.classifier = classifier_network(x_dim, num_classes, classifier_hidden)
        self.encoder_x = nn.Linear(x_dim, hidden)
        self.encoder_y = nn.Linear(num_classes, hidden, bias=False)
        self.encoder_rest = dense_stack([hidden] * depth + [2 * latent_dim], activation=nn.Softplus)
        self.decoder_z = nn.Linear(latent_dim, hidden)
        self.decoder_y = nn.Linear(num_classes, hidden, bias=False)
        self.decoder_rest = dense_stack([hidden] * depth + [x_dim], activation=nn.Softplus)
        self.register_buffer("steps_taken", torch.zeros((), dtype=torch.long))
        self.register_buffer("log_prior", torch.full((num_classes,), -math.log(num_classes)))

    # ---- the three networks

    def _flat(self, x: torch.Tensor) -> torch.Tensor:
        x = x.reshape(len(x), -1)
        if x.shape[1] != self.x_dim:
            raise ValueError(f"M2 expects {self.x_dim} pixels per input, got {x.shape[1]}")
        return x

    def classify(self, x: torch.Tensor) -> torch.Tensor:
        """log q(y|x): (N, K)."""
        return F.log_softmax(self.classifier(self._flat(x)), -1)

    def encode(self, x: torch.Tensor, y: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """(μ, log σ²) of q(z|x, y): (N, d) for labels y (N,), or (N, K, d) for every class when y is None."""
        h_x = self.encoder_x(self._flat(x))
        w_y = self.encoder_y.weight.T  # (K, hidden): W_y onehot(y) = W_y[:, y]
        h = h_x + w_y[y] if y is not None else h_x[:, None, :] + w_y[None]
        mean, log_var = self.encoder_rest(F.softplus(h)).chunk(2, dim=-1)
        return mean, log_var.clamp(-12, 8)

    def decode(self, z: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        """Bernoulli logits of p(x|y, z): z (N, d) with y (N,), or z (N, K, d) for every class when y is None."""
        w_y = self.decoder_y.weight.T
        h = self.decoder_z(z) + (w_y[y] if y is not None else w_y[None])
        return self.decoder_rest(F.softplus(h))

    @staticmethod
    def log_likelihood(x: torch.Tensor, logits: torch.Tensor) -> torch.Tensor:
        """log p(x|y, z) = -BCE(logits, x) summed over pixels; ``logits`` (N, D) or (N, K, D) against x (N, D)."""
        x = x.reshape(len(x), *([1] * (logits.dim() - 2)), -1).expand_as(logits)
        return -F.binary_cross_entropy_with_logits(logits, x, reduction="none").sum(-1)

    def kl_weight(self) -> float:
        """The KL warm-up weight of this step: min(1, steps / warmup_steps) while training, 1 in evaluation."""
        if not self.training or self.warmup_steps == 0:
            return 1.0
        return min(1.0, self.steps_taken.item() / self.warmup_steps)

    # ---- the bounds

    def labelled_bound(self, x: torch.Tensor, y: torch.Tensor, noise: torch.Tensor | None = None,
                       kl_weight: float = 1.0) -> torch.Tensor:
        """L(x, y) of Eq. 1, per example (N,): log p(x|y, z) + log p(y) - KL(q(z|x,y) ‖ p(z)), z = μ + σ ε with
        ε = ``noise`` (N, d) or fresh N(0, I)."""
        x = self._flat(x)
        mean, log_var = self.encode(x, y)
        eps = torch.randn_like(mean) if noise is None else noise
        z = mean + (0.5 * log_var).exp() * eps
        kl_z = kl_to_standard_normal(mean, log_var).sum(-1)
        return self.log_likelihood(x, self.decode(z, y)) + self.log_prior[y] - kl_weight * kl_z

    def bound_terms(self, x: torch.Tensor, noise: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
        """Every class at once, one batched pass over the (N·K) pairs (x, y): log q(y|x), log p(x|y, z), and
        KL(q(z|x,y) ‖ p(z)), each (N, K), with z = μ(x, y) + σ(x, y) ε(x, y), ε = ``noise`` (N, K, d) or fresh."""
        x = self._flat(x)
        mean, log_var = self.encode(x)  # (N, K, d)
        eps = torch.randn_like(mean) if noise is None else noise
        z = mean + (0.5 * log_var).exp() * eps
        return {"log_q": self.classify(x), "log_lik": self.log_likelihood(x, self.decode(z)),
                "kl_z": kl_to_standard_normal(mean, log_var).sum(-1)}

    def unlabelled_bound(self, x: torch.Tensor, noise: torch.Tensor | None = None, kl_weight: float = 1.0
                         ) -> tuple[torch.Tensor, torch.Tensor]:
        """U(x) of Eq. 3 with y summed out exactly, per example (N,), and log q(y|x) (N, K)."""
        t = self.bound_terms(x, noise)
        class_bound = t["log_lik"] + self.log_prior - kl_weight * t["kl_z"]  # L(x, y) for every y: (N, K)
        return unlabelled_bound_eq3(class_bound, t["log_q"]), t["log_q"]

    # ---- the objective

    def training_step(self, x: torch.Tensor, y: torch.Tensor) -> dict[str, torch.Tensor]:
        """-J/N (Eq. 4), or -J2/N (Eq. 9) when γ or β > 0, estimated on a batch of labelled (y ≥ 0) and
        unlabelled (y = -1) rows:

            loss = -[f mean_l L(x, y) + (1 - f) mean_u M(x) + α mean_l log q(y|x)],   f = N_l / N,

        with M(x) = U(x) + γ I(y; x) - β H(q(y|x)) and I, H over the batch's unlabelled rows (Eqs. 7, 8)."""
        check_unit_interval(x)
        if y.dim() != 1 or len(y) != len(x):
            raise ValueError(f"y must be 1-D with one label per input, got shape {tuple(y.shape)} for {len(x)} inputs")
        if (y < -1).any() or (y >= self.num_classes).any():
            raise ValueError(f"labels must be in 0..{self.num_classes - 1}, or -1 for unlabelled rows; got values in "
                             f"[{int(y.min())}, {int(y.max())}]")
        kl_weight = self.kl_weight()
        if self.training and torch.is_grad_enabled():
            self.steps_taken += 1
        labelled = y >= 0
        loss = x.new_zeros(())
        out: dict[str, torch.Tensor] = {}
        if labelled.any():
            x_l, y_l = x[labelled], y[labelled]
            bound_l = self.labelled_bound(x_l, y_l, kl_weight=kl_weight)
            log_q_l = self.classify(x_l)
            log_q_y = log_q_l.gather(1, y_l[:, None]).squeeze(1)
            loss = loss - self.labelled_fraction * bound_l.mean() - self.alpha * log_q_y.mean()
            out.update(bound_l=bound_l.mean().detach(), ce_l=-log_q_y.mean().detach(),
                       error=(log_q_l.argmax(1) != y_l).float().mean())
        if (~labelled).any():
            bound_u, log_q_u = self.unlabelled_bound(x[~labelled], kl_weight=kl_weight)
            info = label_information(log_q_u)
            regularised = bound_u.mean() + self.gamma * info["mi"] - self.beta * info["entropy"]
            loss = loss - (1 - self.labelled_fraction) * regularised
            out.update(bound_u=bound_u.mean().detach(), mi=info["mi"].detach(), entropy=info["entropy"].detach())
        out["loss"] = loss
        return out


class SupervisedClassifier(nn.Module):
    """The supervised-only baseline: M2's classifier network q(y|x) trained by cross-entropy on the labelled set
    alone (Pyro's baseline for M2)."""

    def __init__(self, x_dim: int = 784, num_classes: int = 10, hidden: int = 600):
        super().__init__()
        self.x_dim, self.num_classes, self.hidden = x_dim, num_classes, hidden
        self.classifier = classifier_network(x_dim, num_classes, hidden)

    def classify(self, x: torch.Tensor) -> torch.Tensor:
        return F.log_softmax(self.classifier(x.reshape(len(x), -1)), -1)

    def training_step(self, x: torch.Tensor, y: torch.Tensor) -> dict[str, torch.Tensor]:
        if not torch.isfinite(x).all():
            raise ValueError("inputs contain NaN or inf")
        if (y < 0).any() or (y >= self.num_classes).any():
            raise ValueError(f"the supervised baseline needs labels in 0..{self.num_classes - 1} (no unlabelled rows)")
        log_q = self.classify(x)
        return {"loss": F.nll_loss(log_q, y), "error": (log_q.argmax(1) != y).float().mean()}


# --------------------------------------------------------------------------------------------
# Evaluation


@torch.no_grad()
def evaluate_classifier(model: nn.Module, split: TensorSplit, batch_size: int = 1000, bound: bool = False,
                        seed: int = 0) -> dict[str, float]:
    """On a labelled split: accuracy, the mean entropy H(q(y|x)), Î(y; x) of Eq. 8 over the whole split, and with
    ``bound`` (M2 only) the mean unlabelled bound U(x) of Eq. 2 (one z per (x, y), noise seeded by ``seed``)."""
    was_training = model.training
    model.eval()
    g = torch.Generator().manual_seed(seed)
    log_q, bounds = [], []
    for x, _ in split.batches(batch_size):
        if bound:
            noise = torch.randn((len(x), model.num_classes, model.latent_dim), generator=g).to(x.device)
            u, lq = model.unlabelled_bound(x, noise)
            bounds.append(u)
        else:
            lq = model.classify(x)
        log_q.append(lq.float())
    model.train(was_training)
    log_q = torch.cat(log_q)
    info = label_information(log_q)
    out = {"accuracy": (log_q.argmax(1) == split.y).float().mean().item(), "entropy": info["entropy"].item(),
           "mi": info["mi"].item()}
    if bound:
        out["bound"] = torch.cat(bounds).mean().item()
    return out


@torch.no_grad()
def paired_accuracy_difference(model_a: nn.Module, model_b: nn.Module, split: TensorSplit,
                               batch_size: int = 1000) -> tuple[float, float]:
    """acc(a) - acc(b) on the same labelled split, and its standard error over the examples (the paired
    differences of correctness, so the shared difficulty of the examples cancels)."""
    diffs = []
    for x, y in split.batches(batch_size):
        correct_a = (model_a.classify(x).argmax(1) == y).float()
        correct_b = (model_b.classify(x).argmax(1) == y).float()
        diffs.append(correct_a - correct_b)
    d = torch.cat(diffs)
    return d.mean().item(), (d.std() / math.sqrt(len(d))).item()


def bernoulli_floor(x: torch.Tensor) -> float:
    """Σ_pixels H_b(x) averaged over images, in nats: the smallest Bernoulli cross-entropy any decoder can reach
    on grey levels, so every Bernoulli bound on these images is at most minus this."""
    x = x.reshape(len(x), -1).double()
    h = -(torch.xlogy(x, x) + torch.xlogy(1 - x, 1 - x))
    return h.sum(1).mean().item()


def greyscale(split: TensorSplit) -> TensorSplit:
    """RGB (N, 3, H, W) in [0, 1] to grey (N, 1, H, W) with ITU-R 601-2 luma, 0.299 R + 0.587 G + 0.114 B
    (PIL's "L"). The formula is our choice: the MIER paper says only that it converted the colour images (CIFAR-10,
    SVHN) to grayscale."""
    if split.x.dim() != 4 or split.x.shape[1] != 3:
        raise ValueError(f"greyscale expects RGB images (N, 3, H, W), got {tuple(split.x.shape)}")
    weights = torch.tensor([0.299, 0.587, 0.114], device=split.x.device, dtype=split.x.dtype)
    return TensorSplit(torch.einsum("nchw,c->nhw", split.x, weights)[:, None].clamp(0, 1), split.y)


# --------------------------------------------------------------------------------------------
# Semi-supervised batches


class SemiSupervisedSplit:
    """A training split of labelled rows (first) and unlabelled rows (y = -1) for the `Trainer`.

    ``batches(batch_size, shuffle, generator)`` yields (x, y) on the device: each batch holds ``labelled_per_batch``
    labelled rows and up to ``batch_size - labelled_per_batch`` unlabelled rows; an epoch visits every unlabelled
    row exactly once, while the labelled rows are cycled in balanced rounds (every run of K consecutive labelled
    rows holds one example of each class when the classes are equally represented). The ``generator`` fixes
    both orders.
    """

    def __init__(self, labelled: TensorSplit, unlabelled_x: torch.Tensor, labelled_per_batch: int):
        if labelled_per_batch < 1:
            raise ValueError(f"labelled_per_batch must be >= 1, got {labelled_per_batch}")
        if len(labelled) < 1 or len(unlabelled_x) < 1:
            raise ValueError("a semi-supervised split needs at least one labelled and one unlabelled example")
        if (labelled.y < 0).any():
            raise ValueError("labelled rows need class labels >= 0")
        self.n_labelled, self.labelled_per_batch = len(labelled), labelled_per_batch
        self.x = torch.cat([labelled.x, unlabelled_x.to(labelled.x.device)])
        self.y = torch.cat([labelled.y, torch.full((len(unlabelled_x),), -1, dtype=labelled.y.dtype,
                                                   device=labelled.y.device)])

    @classmethod
    def draw(cls, split: TensorSplit, labelled_per_class: int, labelled_per_batch: int, seed: int = 0
             ) -> SemiSupervisedSplit:
        """A class-balanced labelled set of ``labelled_per_class`` per class drawn by ``seed``
        (`lvmcls.data.labelled_unlabelled`), the rest of ``split`` unlabelled (its labels dropped)."""
        labelled, unlabelled = labelled_unlabelled(split, labelled_per_class, seed)
        return cls(labelled, unlabelled.x, labelled_per_batch)

    def __len__(self) -> int:
        return len(self.x)

    def __repr__(self) -> str:
        return (f"SemiSupervisedSplit(labelled={self.n_labelled}, unlabelled={len(self) - self.n_labelled}, "
                f"labelled_per_batch={self.labelled_per_batch})")

    def fingerprint(self) -> str:
        """For the checkpoint cache: the rows, the labels and how batches are composed."""
        return f"{tensor_fingerprint(self.x, self.y)}-l{self.n_labelled}-b{self.labelled_per_batch}"

    @property
    def labelled(self) -> TensorSplit:
        return TensorSplit(self.x[:self.n_labelled], self.y[:self.n_labelled])

    @property
    def labelled_fraction(self) -> float:
        return self.n_labelled / len(self)

    @property
    def device(self) -> torch.device:
        return self.x.device

    def to(self, device) -> SemiSupervisedSplit:
        new = object.__new__(SemiSupervisedSplit)
        new.n_labelled, new.labelled_per_batch = self.n_labelled, self.labelled_per_batch
        new.x, new.y = self.x.to(device), self.y.to(device)
        return new

    def _labelled_rounds(self, length: int, shuffle: bool, generator: torch.Generator | None) -> torch.Tensor:
        """``length`` labelled indices: rounds over the labelled set, each ordered by (rank within class, class)."""
        y = self.y[:self.n_labelled].cpu()
        rounds, n = [], 0
        while n < length:
            rank = torch.empty(self.n_labelled, dtype=torch.long)
            for c in torch.unique(y).tolist():
                members = torch.nonzero(y == c).flatten()
                order = torch.randperm(len(members), generator=generator) if shuffle else torch.arange(len(members))
                rank[members[order]] = torch.arange(len(members))
            rounds.append(torch.argsort(rank * (int(y.max()) + 1) + y))
            n += self.n_labelled
        return torch.cat(rounds)[:length]

    def batches(self, batch_size: int, shuffle: bool = False, generator: torch.Generator | None = None
                ) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        n_unlabelled_per_batch = batch_size - self.labelled_per_batch
        if n_unlabelled_per_batch < 1:
            raise ValueError(f"batch_size ({batch_size}) must exceed labelled_per_batch ({self.labelled_per_batch})")
        n_unlabelled = len(self) - self.n_labelled
        n_batches = -(-n_unlabelled // n_unlabelled_per_batch)
        unlabelled = (torch.randperm(n_unlabelled, generator=generator) if shuffle else torch.arange(n_unlabelled))
        labelled = self._labelled_rounds(n_batches * self.labelled_per_batch, shuffle, generator)
        unlabelled = (unlabelled + self.n_labelled).to(self.device)
        labelled = labelled.to(self.device)
        for b in range(n_batches):
            idx = torch.cat([labelled[b * self.labelled_per_batch:(b + 1) * self.labelled_per_batch],
                             unlabelled[b * n_unlabelled_per_batch:(b + 1) * n_unlabelled_per_batch]])
            yield self.x.index_select(0, idx), self.y.index_select(0, idx)


def unlabelled_bound_by_loop(model: M2, x: torch.Tensor, noise: torch.Tensor | None = None) -> torch.Tensor:
    """The reference for `M2.unlabelled_bound`: Σ_y q(y|x) (L(x, y) - log q(y|x)) with an explicit Python loop over
    y, one `M2.labelled_bound` call per class (ε = ``noise[:, y]``). For tests and the benchmark, not for training."""
    log_q = model.classify(x)
    total = torch.zeros(len(x), device=x.device)
    for c in range(model.num_classes):
        y = torch.full((len(x),), c, dtype=torch.long, device=x.device)
        bound = model.labelled_bound(x, y, None if noise is None else noise[:, c])
        total = total + log_q[:, c].exp() * (bound - log_q[:, c])
    return total
