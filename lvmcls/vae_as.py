"""VAE-AS (paper 002): an auxiliary softmax over sample indices estimates the VAE's mutual information.

A VAE (`lvmcls.vae`) with q(z) = (1/N) Σ_n q(z|x_n). VAE-AS estimates I_q(z; x) and KL(q(z) ‖ p(z)) with a classifier
s_ω(e|z) over the N sample indices e: at its optimum s_ω(e|z) = q(x_e|z) = q(z|x_e) / (N q(z)), so

    Î = log N - E_z H(s_ω(·|z)),  the entropy over all N indices              (VAE-AS Eq. 9, 13)
    log q(z) = log q(z|x_e) - log s_ω(e|z) - log N                            (Eq. 14)

and trains L = E log p(x|z) - α Î - β MD̂ (Eq. 3). With these estimators α = β = 1 is the ELBO plus
E[H(s_ω(·|z)) + log s_ω(e|z)], the classifier's mismatch: its value vanishes for an exact classifier (and, e.g., a
uniform one, where H = log N = -log s(e|z) at every z), in general wherever E H(s) = E CE(q, s). Its gradient with
respect to the encoder does not vanish. With the classifier frozen at the exact posterior s = q_φ0(·|z), the term
T(φ) = E_{e, z~q_φ(z|x_e)}[H(s(·|z)) + log s(e|z)] has T(φ0) = 0 but

    ∇φ T(φ0) = -E_{z~q_φ0(z)} ∇φ H(q_φ(·|z))      (the z held where they are, only the posterior moving),

so L_{1,1}'s encoder gradient is the ELBO's plus ∇I + ∇B: that of the mutual information I = log N - E H(q(·|z))
(which the ELBO penalises) plus that of B = E_{z~q_φ(z)} H(s(·|z)), the frozen classifier's entropy along the moving z
(tests/test_vae.py checks ∇T = ∇I + ∇B, and ∇T itself, by quadrature on a 1-d model). With the exact posterior and its
*full* gradient (``posterior="exact_full"``) T(φ) = 0 for every φ, so L_{1,1} is the ELBO in value and in expected
gradient (Eq. 3 = ELBO; tested); the paper's algorithm, as we read it (the paper does not say which gradients flow
through the classifier), holds the classifier fixed during the encoder step (``posterior="exact"``: the exact
posterior, detached), and only that detached gradient, or the classifier's error
(``posterior="classifier"``), can make VAE-AS (1, 1) train differently from the VAE.
log N + E log s_ω(e|z) (the cross-entropy bound) is a lower bound on I. The binary-tree softmax (§3.5) makes the
cross-entropy step O(d log N) instead of O(d N); the entropy over all N indices that Eq. 9/13 puts in every training
step stays O(d N) for the tree too (bench/tree_softmax.md measures both).
"""

from __future__ import annotations

import math

import torch
from torch import nn
from torch.nn import functional as F

from .nets import dense_stack
from .vae import (
    VAE,
    exact_aggregate_posterior_terms,
    kl_to_standard_normal,
    posterior_params,
)


def fano_lower_bound(error_rate: float, n: int) -> float:
    """The Fano step in the proof of VAE-AS Theorem 3.3: for any guess ê of the index from z (x → z → ê a Markov
    chain) with error rate P_e over N samples, Fano's inequality H(x|z) ≤ H_b(P_e) + P_e log(N - 1) gives
    I(x; z) ≥ log N - H_b(P_e) - P_e log(N - 1). (The theorem itself is the estimator log N - H_b(P_e) with
    P_e the soft error of the guess ê ~ s(·|z), and Î - I ≤ P_e log N.) The book passes the top-1 error."""
    if not 0 <= error_rate <= 1 or n < 2:
        raise ValueError(f"need 0 <= error_rate <= 1 and n >= 2, got {error_rate}, {n}")
    p = error_rate
    h_b = 0.0 if p in (0.0, 1.0) else -(p * math.log(p) + (1 - p) * math.log(1 - p))
    return math.log(n) - h_b - p * math.log(n - 1)


def binary_entropy_from_logit(logit: torch.Tensor) -> torch.Tensor:
    """H_b(σ(a)) = -σ(a) log σ(a) - σ(-a) log σ(-a), in nats, stable for large |a|."""
    return -(torch.sigmoid(logit) * F.logsigmoid(logit) + torch.sigmoid(-logit) * F.logsigmoid(-logit))


class BinaryTreeSoftmax(nn.Module):
    """A hierarchical softmax over ``num_labels`` leaves of a balanced binary tree (VAE-AS §3.5).

    log s(e|h) = Σ over the nodes n on the root-to-leaf path of e of log σ(±(w_nᵀh + b_n)): O(d log N) per example
    instead of the flat softmax's O(d N), and it normalises over the N leaves by construction. The entropy of the
    whole leaf distribution (Eq. 13) needs every node: Σ_n P(reach n) H_b(P(left | n)), O(d N) per example.
    """

    def __init__(self, in_dim: int, num_labels: int):
        super().__init__()
        if num_labels < 2 or in_dim < 1:
            raise ValueError(f"need num_labels >= 2 and in_dim >= 1, got {num_labels}, {in_dim}")
        self.num_labels, self.depth = num_labels, math.ceil(math.log2(num_labels))
        # One row per internal node: its weights and, last, its bias. A sparse embedding, so that a step touches
        # only the nodes on the batch's paths (train it with SparseAdam: `Trainer` optimizer "sparse_adam").
        self.node = nn.Embedding(2 ** self.depth - 1, in_dim + 1, sparse=True)
        nn.init.zeros_(self.node.weight)
        # Leaf e sits at heap position 2^depth - 1 + e. For each leaf: its ancestors, the turn taken at each, and
        # whether the turn is a real choice: a step whose sibling subtree holds no label (N not a power of two)
        # is taken with probability 1, so the N leaves carry all the mass.
        nodes = torch.zeros(num_labels, self.depth, dtype=torch.long)
        signs = torch.zeros(num_labels, self.depth)
        choice = torch.zeros(num_labels, self.depth)
        for e in range(num_labels):
            pos = 2 ** self.depth - 1 + e
            for level in reversed(range(self.depth)):
                parent = (pos - 1) // 2
                sibling = pos + 1 if pos == 2 * parent + 1 else pos - 1
                sibling_level = level + 1
                first_leaf = (sibling - (2 ** sibling_level - 1)) * 2 ** (self.depth - sibling_level)
                nodes[e, level], signs[e, level] = parent, 1.0 if pos == 2 * parent + 1 else -1.0
                choice[e, level] = 1.0 if first_leaf < num_labels else 0.0
                pos = parent
        self.register_buffer("nodes", nodes)
        self.register_buffer("signs", signs)
        self.register_buffer("choice", choice)
        # Per internal node (heap order): is it a real choice (its right subtree holds a label)? Leaves fill from
        # the left, so a node's left subtree holds a label whenever its right one does.
        node_level = torch.tensor([int(math.log2(n + 1)) for n in range(2 ** self.depth - 1)])
        right_child = 2 * torch.arange(2 ** self.depth - 1) + 2
        right_first_leaf = (right_child - (2 ** (node_level + 1) - 1)) * 2 ** (self.depth - node_level - 1)
        self.register_buffer("real_choice", right_first_leaf < num_labels)

    def log_prob(self, h: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        """log s(labels|h): (B,)."""
        w = self.node(self.nodes[labels])  # (B, depth, in_dim + 1)
        score = torch.einsum("bd,bkd->bk", h, w[..., :-1]) + w[..., -1]
        return (F.logsigmoid(self.signs[labels] * score) * self.choice[labels]).sum(1)

    def _node_terms(self, h: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """log P(reach n) for every node of every level (leaves included, heap order) and every internal node's
        binary entropy (0 where the turn is forced): (B, 2^(depth+1) - 1) and (B, 2^depth - 1)."""
        w = self.node.weight
        score = h @ w[:, :-1].T + w[:, -1]  # (B, internal nodes), heap order
        real = self.real_choice
        log_left = torch.where(real, F.logsigmoid(score), torch.zeros_like(score))
        log_right = torch.where(real, F.logsigmoid(-score), torch.full_like(score, -math.inf))
        levels = [torch.zeros(len(h), 1, dtype=h.dtype, device=h.device)]
        for level in range(self.depth):  # level l holds nodes [2^l - 1, 2^(l+1) - 1)
            lo, hi = 2 ** level - 1, 2 ** (level + 1) - 1
            parent = levels[-1]
            levels.append(torch.stack([parent + log_left[:, lo:hi], parent + log_right[:, lo:hi]], 2).flatten(1))
        return torch.cat(levels, 1), torch.where(real, binary_entropy_from_logit(score), torch.zeros_like(score))

    def log_probs(self, h: torch.Tensor) -> torch.Tensor:
        """log s(e|h) for all N leaves: (B, N)."""
        log_reach, _ = self._node_terms(h)
        return log_reach[:, 2 ** self.depth - 1:][:, :self.num_labels]

    def log_prob_and_entropy(self, h: torch.Tensor, labels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self.log_prob(h, labels), self.entropy(h)

    def entropy(self, h: torch.Tensor) -> torch.Tensor:
        """H(s(·|h)) over the N leaves by the chain rule of entropy: Σ_n P(reach n) H_b(P(left | n)) over the
        internal nodes, O(N) per example (VAE-AS Eq. 13 for the tree): (B,)."""
        log_reach, h_b = self._node_terms(h)
        return (log_reach[:, :2 ** self.depth - 1].exp() * h_b).sum(1)


class FlatSoftmax(nn.Module):
    """An ordinary softmax over ``num_labels`` classes (VAE-AS Eq. 11), the baseline for `BinaryTreeSoftmax`."""

    def __init__(self, in_dim: int, num_labels: int):
        super().__init__()
        self.num_labels = num_labels
        self.linear = nn.Linear(in_dim, num_labels)

    def log_prob(self, h: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        return self.log_probs(h).gather(1, labels[:, None]).squeeze(1)

    def log_probs(self, h: torch.Tensor) -> torch.Tensor:
        """log s(e|h) for all N labels: (B, N)."""
        return self.linear(h).log_softmax(1)

    def entropy(self, h: torch.Tensor) -> torch.Tensor:
        """H(s(·|h)) = -Σ_e s(e|h) log s(e|h) over all N labels (VAE-AS Eq. 13): (B,)."""
        return self.log_prob_and_entropy(h, None)[1]

    def log_prob_and_entropy(self, h: torch.Tensor, labels: torch.Tensor | None) -> tuple[torch.Tensor, torch.Tensor]:
        """log s(labels|h) and H(s(·|h)) from one pass over the N logits: (B,) each (None for no labels)."""
        log_s = self.log_probs(h)
        return (None if labels is None else log_s.gather(1, labels[:, None]).squeeze(1),
                -(log_s.exp() * log_s).sum(1))


CLASSIFIER_ACTIVATIONS = {"relu": nn.ReLU, "tanh": nn.Tanh}


class IndexClassifier(nn.Module):
    """s_ω(e|z): an MLP body of ``depth`` hidden layers (VAE-AS §5.3: 2) and a (tree or flat) softmax over N sample
    indices, or over V < N labels that group the indices (VAE-AS §3.5; then it estimates I(z; label) ≤ I(z; x)).
    ``activation``: "relu" or "tanh", the paper's examples for its hidden layers' g(·) (§3.3; it does not say which
    it used)."""

    def __init__(self, latent_dim: int, num_labels: int, hidden: int = 500, tree: bool = True, depth: int = 2,
                 activation: str = "relu"):
        super().__init__()
        if depth < 1:
            raise ValueError(f"the classifier needs depth >= 1 hidden layers, got {depth}")
        if activation not in CLASSIFIER_ACTIVATIONS:
            raise ValueError(f"activation must be one of {sorted(CLASSIFIER_ACTIVATIONS)}, got {activation!r}")
        self.num_labels, self.activation = num_labels, activation
        # ends with the last hidden layer's activation
        self.body = dense_stack([latent_dim] + [hidden] * depth + [hidden], CLASSIFIER_ACTIVATIONS[activation])[:-1]
        self.head = (BinaryTreeSoftmax if tree else FlatSoftmax)(hidden, num_labels)

    def forward(self, z: torch.Tensor, labels: torch.Tensor, entropy: bool = False):
        """log s_ω(labels|z), unchecked; with ``entropy`` also H(s_ω(·|z)) over all N indices (Eq. 13)."""
        h = self.body(z)
        return self.head.log_prob_and_entropy(h, labels) if entropy else self.head.log_prob(h, labels)

    def check_labels(self, labels: torch.Tensor) -> None:
        if int(labels.max()) >= self.num_labels or int(labels.min()) < 0:
            raise ValueError(f"sample indices must lie in [0, {self.num_labels}): does N match the data?")

    def log_prob(self, z: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        """log s_ω(labels|z): (B,); checks the labels (a host sync: the training step calls ``forward``)."""
        self.check_labels(labels)
        return self(z, labels)

    def log_probs(self, z: torch.Tensor) -> torch.Tensor:
        """log s_ω(e|z) for all N indices e: (B, N)."""
        return self.head.log_probs(self.body(z))

    def entropy(self, z: torch.Tensor) -> torch.Tensor:
        """H(s_ω(·|z)) over all N indices (Eq. 13): (B,)."""
        return self.head.entropy(self.body(z))


def index_mi_plugin(entropy: torch.Tensor, n: int) -> torch.Tensor:
    """VAE-AS Eq. 9 with Eq. 13: Î = log N - E_z H(s_ω(·|z)), the classifier's entropy over all N indices standing
    for H(q(·|z)). A plug-in estimate: neither a lower nor an upper bound."""
    return math.log(n) - entropy.mean()


def index_mi_cross_entropy_bound(log_s: torch.Tensor, n: int) -> torch.Tensor:
    """log N - E[-log s_ω(e|z)], e uniform, z ~ q(z|x_e): a lower bound on I_q(z; x) for any classifier, since the
    cross-entropy E_z CE(q(·|z), s(·|z)) ≥ E_z H(q(·|z)). A diagnostic here (the paper uses Eq. 9/13)."""
    return math.log(n) + log_s.mean()


def index_marginal_divergence(kl: torch.Tensor, log_s: torch.Tensor, n: int) -> torch.Tensor:
    """VAE-AS Eq. 14: log q(z) = log q(z|x_e) - log s_ω(e|z) - log N, so
    MD̂ = E[log q(z|x_e) - log p(z)] - E[log s_ω(e|z)] - log N, with the first term in closed form (the mean KL).
    It equals E KL - (the cross-entropy bound on I), an upper bound on KL(q(z) ‖ p(z)) in expectation."""
    return kl.mean() - index_mi_cross_entropy_bound(log_s, n)


def exact_index_log_posterior(z: torch.Tensor, mean: torch.Tensor, log_var: torch.Tensor) -> torch.Tensor:
    """log q(e|z) = log q(z|x_e) - log Σ_e' q(z|x_e') for all N indices e (VAE-AS Eq. 10, exact): (B, N), from the
    posterior parameters ``mean``, ``log_var`` (N, d) of all N training points. Gradients reach z and, unless they
    are detached, the N points' parameters. One (B, d) x (d, N) product per term, no (B, N, d) tensor."""
    if z.dim() != 2 or mean.shape != log_var.shape or z.shape[1] != mean.shape[1]:
        raise ValueError(f"need z (B, d) and mean, log_var (N, d), got {tuple(z.shape)}, {tuple(mean.shape)}")
    inv_var = (-log_var).exp()
    # Σ_d (z_d - m_d)² / v_d = z² · 1/v - 2 z · m/v + Σ_d m_d² / v_d
    quad = (z * z) @ inv_var.T - 2 * z @ (mean * inv_var).T + (mean * mean * inv_var).sum(1)
    log_q = -0.5 * (quad + log_var.sum(1))  # the constant (d/2) log 2π cancels in the normalisation
    return log_q - torch.logsumexp(log_q, 1, keepdim=True)


def exact_index_terms(z: torch.Tensor, index: torch.Tensor, mean: torch.Tensor, log_var: torch.Tensor
                      ) -> tuple[torch.Tensor, torch.Tensor]:
    """The exact posterior over indices in the index classifier's place: log q(e|z) of the true index and the
    entropy H(q(·|z)) over all N indices, per example: (B,) each (`exact_index_log_posterior`)."""
    log_post = exact_index_log_posterior(z, mean, log_var)
    return log_post.gather(1, index[:, None]).squeeze(1), -(log_post.exp() * log_post).sum(1)


POSTERIORS = ("classifier", "exact", "exact_full")


class VAEAS(nn.Module):
    """A VAE trained with L = E log p(x|z) - α Î - β MD̂ (VAE-AS Eq. 3), Î by Eq. 9/13 (the entropy of an
    `IndexClassifier` over all N training indices) and MD̂ by Eq. 14.

    -L = -E log p(x|z) + α (log N - E H(s(·|z))) + β (E KL - log N - E log s(e|z)); at α = β = 1 it is the negative
    ELBO minus T = E[H(s(·|z)) + log s(e|z)], the classifier's mismatch: zero in value for s = q(·|z) (and e.g. for
    a uniform s), but with a non-zero encoder gradient even there when s is held fixed, ∇I + ∇B (module docstring).
    The encoder's gradient flows through z into Î and MD̂ (the classifier's parameters detached); the classifier is
    trained only by its own cross-entropy (Eq. 12) on ``classifier_samples`` detached draws of z per example. The
    batch must carry each example's index e in [0, N) as its label.

    ``posterior`` (the arms of chapter 5): "classifier", the paper's algorithm with the learned s_ω; "exact", the same
    algorithm with a perfect classifier, s = q_φ(·|z) computed exactly from all N training points' posteriors and
    held fixed (detached) during the encoder step; "exact_full", the exact posterior with its full gradient, which
    makes L_{1,1} Eq. 3 itself, the ELBO (a control of the code). The exact modes need the N training images: the
    `Trainer`'s `check_data` call hands them over (the split whose labels are 0 .. N - 1), or `attach_training_data`.
    They do not train the classifier.

    ``classifier_steps``: the classifier's optimiser steps per encoder step. 1: one step on the same batch, taken by
    the `Trainer`'s optimiser together with the encoder's (the classifier that the encoder term sees is the one
    before the step). k > 1: k Adam steps (the model's own, its moments kept as buffers so that checkpoints resume
    exactly) on fresh draws of z for the batch (``classifier_fresh``: for as many indices drawn afresh from all N,
    encoded by the current encoder), *before* the encoder's term is computed with the updated classifier held fixed
    (alternating: our reading of the paper, which trains s_ω(e|z) towards q(x|z) for the current encoder but does
    not say how the two updates interleave); flat head only.

    The random draws: the VAE's ε comes from the global generator (which the `Trainer` seeds), and nothing else in
    a training step draws from it: the classifier's draws come from the model's own generator, seeded per step from
    ``noise_seed`` (drawn at construction) and a step counter kept as a buffer. So every arm of a seed (the VAE
    included) sees the same ε on the same batches: common random numbers.

    ``placebo``: the control arm. Everything is computed as in VAE-AS (the classifier, its steps, refits and random
    draws are identical), but the α/β terms reach the encoder with weight 0: the VAE trains on the plain negative
    ELBO, -E log p(x|z) + KL.

    ``refit_every`` (epochs; 0: never): `on_epoch_end`, called by the `Trainer` between epochs, first measures the
    classifier as it stood through the block just trained (Î by Eq. 9/13, SC, and the exact mutual information of the
    aggregate posterior over the N training points: the quality gate, in nats), then, if ``refit_steps`` > 0, refits
    it on the current encoder for that many steps (`fit_index_classifier`, continuing from its weights).
    """

    def __init__(self, vae: VAE, num_samples: int, alpha: float = 1.0, beta: float = 1.0, hidden: int = 500,
                 tree: bool = True, classifier_lr: float = 1e-2, classifier_depth: int = 2,
                 classifier_samples: int = 1, classifier_activation: str = "relu", placebo: bool = False,
                 refit_every: int = 0, refit_steps: int = 200, refit_batch: int = 512, refit_lr: float = 3e-3,
                 posterior: str = "classifier", classifier_steps: int = 1, classifier_fresh: bool = False):
        super().__init__()
        if refit_every < 0 or refit_steps < 0 or refit_batch < 1 or not refit_lr > 0:
            raise ValueError(f"need refit_every >= 0, refit_steps >= 0, refit_batch >= 1 and refit_lr > 0, got "
                             f"{refit_every}, {refit_steps}, {refit_batch}, {refit_lr}")
        if posterior not in POSTERIORS:
            raise ValueError(f"posterior must be one of {POSTERIORS}, got {posterior!r}")
        if classifier_steps < 1 or ((classifier_steps > 1 or classifier_fresh) and tree):
            raise ValueError(f"classifier_steps must be >= 1 (and 1, not fresh, with the tree head, whose sparse "
                             f"rows the Trainer's SparseAdam steps), got {classifier_steps} with tree={tree}")
        self.placebo, self.refit_every, self.refit_steps = bool(placebo), refit_every, refit_steps
        self.refit_batch, self.refit_lr = refit_batch, refit_lr
        self.posterior, self.classifier_steps = posterior, classifier_steps
        self.classifier_fresh = bool(classifier_fresh)
        if alpha < 0 or beta < 0:
            raise ValueError(f"alpha and beta weight divergences and must be >= 0, got {alpha}, {beta}")
        if classifier_samples < 1:
            raise ValueError(f"classifier_samples (draws of z per example for the classifier) must be >= 1, "
                             f"got {classifier_samples}")
        self.vae, self.alpha, self.beta, self.num_samples = vae, alpha, beta, num_samples
        self.classifier_lr, self.classifier_samples = classifier_lr, classifier_samples
        self.classifier = IndexClassifier(vae.latent_dim, num_samples, hidden, tree, classifier_depth,
                                          classifier_activation)
        # the classifier's own random stream (common random numbers: the global one is left to the VAE's ε)
        self.noise_seed = int(torch.randint(0, 2 ** 31 - 1, (1,)).item())
        self.register_buffer("draws", torch.zeros((), dtype=torch.long))
        if self._own_classifier_steps():  # Adam's moments of the inner classifier steps, as buffers (checkpointed)
            for i, p in enumerate(self.classifier.parameters()):
                self.register_buffer(f"adam_m{i}", torch.zeros_like(p))
                self.register_buffer(f"adam_v{i}", torch.zeros_like(p))
            self.register_buffer("adam_t", torch.zeros((), dtype=torch.long))
        self._train_x = None

    def attach_training_data(self, x: torch.Tensor) -> None:
        """The N training images (in index order) that the exact posterior over indices sums over."""
        if len(x) != self.num_samples:
            raise ValueError(f"need all N = {self.num_samples} training images, got {len(x)}")
        self._train_x = x

    def _own_classifier_steps(self) -> bool:
        return self.posterior == "classifier" and (self.classifier_steps > 1 or self.classifier_fresh)

    def _generator(self, device: torch.device) -> torch.Generator:
        g = torch.Generator(device=device)
        g.manual_seed(self.noise_seed * 1_000_003 + int(self.draws))
        self.draws += 1
        return g

    def _classifier_draws(self, mean: torch.Tensor, log_var: torch.Tensor, index: torch.Tensor):
        k = self.classifier_samples
        g = self._generator(mean.device)
        eps = torch.randn(k, *mean.shape, device=mean.device, generator=g)
        return (mean + (0.5 * log_var).exp() * eps).detach().flatten(0, 1), index.repeat(k)

    def _inner_classifier_steps(self, mean: torch.Tensor, log_var: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
        """``classifier_steps`` Adam steps (β = 0.9, 0.999, ε = 1e-8, as torch's) of the classifier's cross-entropy
        on fresh draws of z for the batch; returns the last step's loss."""
        params = list(self.classifier.parameters())
        mean, log_var = mean.detach(), log_var.detach()
        b1, b2 = 0.9, 0.999
        for _ in range(self.classifier_steps):
            if self.classifier_fresh:  # as many indices, drawn afresh from all N, through the current encoder
                if self._train_x is None:
                    raise RuntimeError("fresh classifier steps need the N training images (attach_training_data)")
                g = self._generator(mean.device)
                index = torch.randint(0, self.num_samples, (len(index),), device=mean.device, generator=g)
                with torch.no_grad():
                    mean, log_var = self.vae.encode(self._train_x[index])
            z, e = self._classifier_draws(mean, log_var, index)
            with torch.enable_grad():
                loss = -self.classifier(z, e).mean()
                grads = torch.autograd.grad(loss, params)
            self.adam_t += 1
            t = int(self.adam_t)
            with torch.no_grad():
                for i, (p, g) in enumerate(zip(params, grads)):
                    m, v = getattr(self, f"adam_m{i}"), getattr(self, f"adam_v{i}")
                    m.mul_(b1).add_(g, alpha=1 - b1)
                    v.mul_(b2).addcmul_(g, g, value=1 - b2)
                    step = self.classifier_lr / (1 - b1 ** t)
                    p.addcdiv_(m, (v / (1 - b2 ** t)).sqrt().add_(1e-8), value=-step)
        return loss.detach()

    def index_terms(self, z: torch.Tensor, index: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """log s(e|z) and H(s(·|z)) per example, gradients reaching z: from the classifier (its parameters
        detached) or, in the exact modes, from the exact posterior over the N training points (its parameters
        detached in "exact", carrying their gradient in "exact_full")."""
        if self.posterior == "classifier":
            params = {k: v.detach() for k, v in self.classifier.named_parameters()}
            return torch.func.functional_call(self.classifier, params, (z, index), {"entropy": True})
        if self._train_x is None:
            raise RuntimeError("the exact posterior over indices needs the N training images: fit through the "
                               "Trainer (its check_data hands them over) or call attach_training_data(x)")
        if self.posterior == "exact":
            with torch.no_grad():
                mean, log_var = self.vae.encode(self._train_x)
        else:
            mean, log_var = self.vae.encode(self._train_x)
        return exact_index_terms(z, index, mean, log_var)

    def check_data(self, split) -> None:
        """`VAE.check_data` of the wrapped VAE: called by `Trainer.fit` once per split. The split whose labels are
        the indices 0 .. N - 1, in order, is the training set: the exact modes keep its images."""
        self.vae.check_data(split)
        y = getattr(split, "y", None)
        if y is not None and len(y) == self.num_samples and torch.equal(
                y.cpu(), torch.arange(self.num_samples)):
            self._train_x = split.x

    def training_step(self, x: torch.Tensor, index: torch.Tensor) -> dict[str, torch.Tensor]:
        if index.shape != (len(x),):
            raise ValueError(f"VAE-AS needs each example's sample index as its label, shape ({len(x)},)")
        t = self.vae.elbo_terms(x)
        learned = self.posterior == "classifier"
        inner = learned and self._own_classifier_steps() and self.training
        if inner:  # alternating: the classifier's steps first, then the encoder's term with it held fixed
            classifier_loss = self._inner_classifier_steps(t["mean"], t["log_var"], index)
        log_s, entropy = self.index_terms(t["z"], index)
        mi = index_mi_plugin(entropy, self.num_samples)
        md = index_marginal_divergence(t["kl"], log_s, self.num_samples)
        objective = -t["rec"].mean() + self.alpha * mi + self.beta * md
        if self.placebo:  # the same terms, computed and logged, reaching the VAE with weight 0
            objective = -t["rec"].mean() + t["kl"].mean() + 0.0 * objective
        if learned and not inner:
            z, e = self._classifier_draws(t["mean"], t["log_var"], index)
            classifier_loss = -self.classifier(z, e).mean()
            loss = objective + classifier_loss
        else:
            loss = objective
            if not learned:
                classifier_loss = torch.zeros((), device=x.device)
        return {"loss": loss, "objective": objective, "rec": t["rec"].mean(),
                "kl": t["kl"].mean(), "mi": mi.detach(), "md": md.detach(),
                "mi_ce_bound": index_mi_cross_entropy_bound(log_s, self.num_samples).detach(),
                "classifier_loss": classifier_loss.detach()}

    def on_epoch_end(self, epoch: int, train) -> dict[str, float] | None:
        """The `Trainer`'s hook (every ``refit_every`` epochs; never in the exact modes): measure the classifier as
        trained through the block against the exact mutual information, then refit it on the current encoder if
        ``refit_steps`` > 0. ``train`` must hold all N training samples with their indices as labels, in order.
        Returns what the history logs: ``gate_epoch``, ``gate_mi`` (Eq. 9/13), ``gate_mi_exact``, ``gate_sc`` (SC,
        nats), the lag in nats, ``gate_gap`` = Î - exact and ``gate_bound_gap`` = (log N - SC) - exact (≤ 0 up to
        Monte Carlo error: the cross-entropy bound), and ``gate_ratio`` (Î / exact; NaN below 0.05 nats)."""
        if self.posterior != "classifier" or not self.refit_every or (epoch + 1) % self.refit_every:
            return None
        terms = index_classifier_terms(self, train.x, train.y, top1_subset=1, seed=epoch)
        mean, log_var = posterior_params(self.vae, train.x)
        exact = exact_aggregate_posterior_terms(mean, log_var, draws=1, seed=epoch)["mi"]
        if self.refit_steps:
            fit_index_classifier(self, train.x, steps=self.refit_steps, batch_size=self.refit_batch,
                                 lr=self.refit_lr, seed=epoch, fresh=False)
        return {"gate_epoch": epoch + 1, "gate_mi": terms["mi"], "gate_mi_exact": exact,
                "gate_ratio": terms["mi"] / exact if exact > 0.05 else float("nan"), "gate_sc": terms["sc"],
                "gate_gap": terms["mi"] - exact, "gate_bound_gap": terms["mi_ce_bound"] - exact}

    def parameter_groups(self) -> dict:
        head = self.classifier.head
        sparse = isinstance(head, BinaryTreeSoftmax)
        own = self._own_classifier_steps() or self.posterior != "classifier"  # no Trainer steps for the classifier
        return {"vae": (list(self.vae.parameters()), {}),
                "classifier_body": ([] if own else list(self.classifier.body.parameters()),
                                    {"lr": self.classifier_lr}),
                "classifier_head": ([] if own else list(head.parameters()),
                                    {"optimizer": "sparse_adam" if sparse else "adam", "lr": self.classifier_lr})}


def reinitialise_index_classifier(classifier: IndexClassifier, seed: int = 0) -> None:
    """Draw ``classifier``'s parameters afresh (seeded; the global RNG is left as it was): PyTorch's default for
    every linear layer, zeros for a tree head's nodes, as at construction."""
    devices = sorted({p.device.index or 0 for p in classifier.parameters() if p.device.type == "cuda"})
    with torch.random.fork_rng(devices=devices), torch.no_grad():
        torch.manual_seed(seed)
        for module in classifier.modules():
            if isinstance(module, nn.Linear):
                module.reset_parameters()
            elif isinstance(module, BinaryTreeSoftmax):
                module.node.weight.zero_()


def fit_index_classifier(model: VAEAS, x: torch.Tensor, steps: int = 1000, batch_size: int = 512,
                         lr: float = 3e-3, seed: int = 0, fresh: bool = True) -> torch.Tensor:
    """Train the index classifier alone by its cross-entropy (Eq. 12) on the frozen encoder: each step draws
    ``batch_size`` indices e and z ~ q(z|x_e) afresh. The estimator's own fit, so that Î measures the final encoder
    rather than a classifier that may have lagged behind it during training. ``fresh`` (the default): start from a
    re-initialised classifier (`reinitialise_index_classifier`), since one whose hidden units all died during
    training never recovers (measured at N = 50,000: bench/index_classifier_scale.md); where the units were alive,
    continuing (``fresh=False``) did about as well there (within 0.4 nats, either way): the default buys robustness,
    not accuracy. Adam with the learning rate annealed from ``lr`` to 0 (cosine) over the steps;
    returns the per-step losses (one host sync, at the end)."""
    if steps < 1 or batch_size < 1:
        raise ValueError(f"need steps >= 1 and batch_size >= 1, got {steps}, {batch_size}")
    mean, log_var = posterior_params(model.vae, x)
    std = (0.5 * log_var).exp()
    clf = model.classifier
    if fresh:
        reinitialise_index_classifier(clf, seed)
    sparse = isinstance(clf.head, BinaryTreeSoftmax)
    opts = [torch.optim.Adam(clf.body.parameters(), lr=lr),
            (torch.optim.SparseAdam if sparse else torch.optim.Adam)(clf.head.parameters(), lr=lr)]
    schedules = [torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=steps) for opt in opts]
    g = torch.Generator(device=mean.device).manual_seed(seed)
    losses = torch.zeros(steps, device=mean.device)
    was_training = clf.training
    clf.train()
    for step in range(steps):
        e = torch.randint(0, len(mean), (batch_size,), device=mean.device, generator=g)
        z = mean[e] + std[e] * torch.randn(batch_size, mean.shape[1], device=mean.device, generator=g)
        loss = -clf(z, e).mean()
        for opt in opts:
            opt.zero_grad(set_to_none=True)
        loss.backward()
        for opt, schedule in zip(opts, schedules):
            opt.step()
            schedule.step()
        losses[step] = loss.detach()
    clf.train(was_training)
    return losses.cpu()


@torch.no_grad()
def index_classifier_terms(model: VAEAS, x: torch.Tensor, index: torch.Tensor, top1_subset: int = 2000,
                           seed: int = 0, batch_size: int = 1024) -> dict[str, float]:
    """The index classifier's estimates on the N training samples, one z ~ q(z|x_e) per sample (seeded), in eval mode:

    - ``mi``: Eq. 9/13, log N - E H(s(·|z)) with the entropy over all N indices (plug-in, not a bound);
    - ``mi_ce_bound``: log N - SC, the cross-entropy lower bound; ``sc``: the softmax cross-entropy
      E[-log s(e|z)] in nats (Table 2's SC); ``md``: Eq. 14; ``kl``: the mean closed-form KL;
    - ``top1_error``: the top-1 error, argmax over all N indices, on ``top1_subset`` random z (the whole set if
      None), and ``fano``: the Fano bound log N - H_b(P_e) - P_e log(N - 1) from it (Theorem 3.3's proof; a bound on the
      true I up to the sampling error of P_e on the subset).
    """
    n = model.num_samples
    if len(x) != n or index.shape != (n,):
        raise ValueError(f"need all N = {n} training samples and their indices, got {len(x)} and {tuple(index.shape)}")
    model.classifier.check_labels(index)
    was_training = model.training
    model.eval()
    mean, log_var = posterior_params(model.vae, x, batch_size)
    g = torch.Generator().manual_seed(seed)
    z = mean + (0.5 * log_var).exp() * torch.randn(mean.shape, generator=g).to(mean.device)
    log_s, entropy = map(torch.cat, zip(*[model.classifier(z[i:i + batch_size], index[i:i + batch_size], entropy=True)
                                          for i in range(0, n, batch_size)]))
    pick = torch.arange(n) if top1_subset is None or top1_subset >= n else \
        torch.randperm(n, generator=g)[:top1_subset]
    pick = pick.to(z.device)
    correct = torch.cat([model.classifier.log_probs(z[pick[i:i + batch_size]]).argmax(1) == index[pick[i:i + batch_size]]
                         for i in range(0, len(pick), batch_size)])
    model.train(was_training)
    kl = kl_to_standard_normal(mean, log_var).sum(1)
    top1_error = 1 - correct.float().mean().item()
    return {"mi": index_mi_plugin(entropy, n).item(), "mi_ce_bound": index_mi_cross_entropy_bound(log_s, n).item(),
            "sc": -log_s.mean().item(), "md": index_marginal_divergence(kl, log_s, n).item(), "kl": kl.mean().item(),
            "top1_error": top1_error, "top1_subset": len(pick), "fano": fano_lower_bound(top1_error, n)}
