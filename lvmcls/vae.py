"""Variational autoencoders: the model, its estimators, and VAE-AS (an auxiliary softmax over sample indices).

Generative story: z ~ p(z) = N(0, I), x | z ~ Bernoulli(σ(g_θ(z))) pixel by pixel.
Inference: q_φ(z|x) = N(μ_φ(x), diag σ²_φ(x)), sampled by reparameterisation z = μ + σ ⊙ ε.

The ELBO's KL term splits over the data (Hoffman & Johnson 2016; VAE-AS appendix 7.1):

    E_x KL(q(z|x) ‖ p(z)) = I_q(z; x) + KL(q(z) ‖ p(z)),     q(z) = (1/N) Σ_n q(z|x_n),

and 0 ≤ I_q(z; x) ≤ log N (appendix 7.2). VAE-AS estimates both terms with a classifier s_ω(e|z) over the N sample
indices e: at its optimum s_ω(e|z) = q(x_e|z) = q(z|x_e) / (N q(z)), so

    Î = log N - E_z H(s_ω(·|z)),  the entropy over all N indices              (VAE-AS Eq. 9, 13)
    log q(z) = log q(z|x_e) - log s_ω(e|z) - log N                            (Eq. 14)

and trains L = E log p(x|z) - α Î - β MD̂ (Eq. 3). With these estimators α = β = 1 is the ELBO plus
E[H(s_ω(·|z)) + log s_ω(e|z)], the classifier's mismatch: it vanishes for an exact classifier (and, e.g., a uniform
one, where H = log N = -log s(e|z) at every z), in general wherever E H(s) = E CE(q, s). log N + E log s_ω(e|z) (the
cross-entropy bound) is a lower bound on I; `exact_aggregate_posterior_terms` gives I and MD for the exact mixture.
"""

from __future__ import annotations

import math

import torch
from torch import nn
from torch.nn import functional as F

from .nets import eval_batched

LOG_2PI = math.log(2 * math.pi)


def _mlp(sizes: list[int], activation=nn.ReLU) -> nn.Sequential:
    layers: list[nn.Module] = []
    for a, b in zip(sizes[:-2], sizes[1:-1]):
        layers += [nn.Linear(a, b), activation()]
    layers.append(nn.Linear(sizes[-2], sizes[-1]))
    return nn.Sequential(*layers)


def check_unit_interval(x: torch.Tensor) -> None:
    if not torch.isfinite(x).all():
        raise ValueError("inputs contain NaN or inf")
    if x.min() < 0 or x.max() > 1:
        raise ValueError(f"a Bernoulli decoder needs inputs in [0, 1], got range [{x.min():.3g}, {x.max():.3g}]: "
                         "scale them (divide 8-bit images by 255) or binarise them first")


def gaussian_log_density(z: torch.Tensor, mean: torch.Tensor, log_var: torch.Tensor) -> torch.Tensor:
    """log N(z; mean, diag exp(log_var)), summed over the last dimension."""
    return -0.5 * (((z - mean) ** 2) / log_var.exp() + log_var + LOG_2PI).sum(-1)


def kl_to_standard_normal(mean: torch.Tensor, log_var: torch.Tensor) -> torch.Tensor:
    """KL(N(mean, diag σ²) ‖ N(0, I)) per dimension, closed form: ½ (μ² + σ² - 1 - log σ²), shape (N, d)."""
    return 0.5 * (mean.pow(2) + log_var.exp() - 1 - log_var)


def kl_to_standard_normal_sum(mean: torch.Tensor, log_var: torch.Tensor) -> torch.Tensor:
    """KL(N(mean, diag σ²) ‖ N(0, I)) summed over the d dimensions, per row: ½ Σ_d (μ² + σ² - log σ²) - d/2, shape
    (N,). One fused pass over (μ, log σ²) instead of the four (N, d) temporaries of `kl_to_standard_normal`."""
    return 0.5 * torch.sum(mean * mean + log_var.exp() - log_var, dim=-1) - 0.5 * mean.shape[-1]


INITS = ("torch", "glorot")


class VAE(nn.Module):
    """Gaussian encoder and Bernoulli decoder MLPs with ``hidden`` units; ``decoder_depth`` hidden layers in the decoder
    (the knob of the VAE-AS paper's Table 1) and ``encoder_depth`` in the encoder.

    ``init``: "torch" keeps PyTorch's default linear layers (weights U(±1/√fan_in): behind each ReLU layer the signal's
    variance shrinks about 6-fold, so a 5-layer decoder's output hardly depends on z at first); "glorot" draws the
    weights Glorot-uniform with zero biases (the default of TensorFlow / Keras): much less shrinkage (with
    fan-in = fan-out the variance still halves behind each ReLU layer)."""

    def __init__(self, x_dim: int = 784, z_dim: int = 40, hidden: int = 500, encoder_depth: int = 1,
                 decoder_depth: int = 1, init: str = "torch"):
        super().__init__()
        if min(x_dim, z_dim, hidden) < 1 or min(encoder_depth, decoder_depth) < 1:
            raise ValueError(f"need positive sizes and depths >= 1, got {x_dim=}, {z_dim=}, {hidden=}, "
                             f"{encoder_depth=}, {decoder_depth=}")
        if init not in INITS:
            raise ValueError(f"init must be one of {INITS}, got {init!r}")
        self.x_dim, self.z_dim, self.init = x_dim, z_dim, init
        self.encoder = _mlp([x_dim] + [hidden] * encoder_depth + [2 * z_dim])
        self.decoder = _mlp([z_dim] + [hidden] * decoder_depth + [x_dim])
        if init == "glorot":
            for layer in self.modules():
                if isinstance(layer, nn.Linear):
                    nn.init.xavier_uniform_(layer.weight)
                    nn.init.zeros_(layer.bias)

    def encode(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(μ, log σ²) of q_φ(z|x), each (N, d)."""
        x = x.reshape(len(x), -1)
        if x.shape[1] != self.x_dim:
            raise ValueError(f"the VAE expects {self.x_dim} pixels per input, got {x.shape[1]}")
        mean, log_var = self.encoder(x).chunk(2, dim=1)
        return mean, log_var.clamp(-12, 8)

    @staticmethod
    def reparameterise(mean: torch.Tensor, log_var: torch.Tensor) -> torch.Tensor:
        return mean + (0.5 * log_var).exp() * torch.randn_like(mean)

    def log_likelihood(self, x: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        """log p_θ(x|z) for Bernoulli pixels: -BCE(logits, x) summed over pixels. ``z`` may carry leading sample
        dimensions (S, N, d); the result is (S, N) or (N,)."""
        logits = self.decoder(z)
        x = x.reshape(len(x), -1).expand_as(logits)
        return -F.binary_cross_entropy_with_logits(logits, x, reduction="none").sum(-1)

    def elbo_terms(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        """Per example: reconstruction E_q log p(x|z) (one sample), closed-form KL, and the posterior's parameters.

        The inputs are not range-checked here (a check is a host sync on a GPU, every step): the `Trainer` calls
        `check_data` once per split; check other data sets once with `check_unit_interval`."""
        mean, log_var = self.encode(x)
        z = self.reparameterise(mean, log_var)
        rec = self.log_likelihood(x, z)
        kl = kl_to_standard_normal_sum(mean, log_var)
        return {"rec": rec, "kl": kl, "z": z, "mean": mean, "log_var": log_var}

    def check_data(self, split) -> None:
        """Called by `Trainer.fit` once per split (train and val) before training: every pixel of ``split.x`` must
        be finite and in [0, 1] (`check_unit_interval`, one reduction over the whole split, no per-step sync)."""
        check_unit_interval(split.x)

    def training_step(self, x: torch.Tensor, y: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
        """The negative ELBO, -E_q log p(x|z) + KL(q(z|x) ‖ p(z)), averaged over the batch (labels ignored).

        The batch is not range-checked (no host sync per step): `Trainer.fit` checks whole splits once with
        `check_data`."""
        t = self.elbo_terms(x)
        return {"loss": (t["kl"] - t["rec"]).mean(), "rec": t["rec"].mean(), "kl": t["kl"].mean()}

    @torch.no_grad()
    def sample(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        """Decoder means σ(g(z)) for z ~ N(0, I): (n, x_dim)."""
        z = torch.randn(n, self.z_dim, generator=generator).to(next(self.parameters()).device)
        return torch.sigmoid(self.decoder(z))

    @torch.no_grad()
    def reconstruct(self, x: torch.Tensor) -> torch.Tensor:
        """σ(g(μ_φ(x))): the decoder's mean at the posterior mean."""
        return torch.sigmoid(self.decoder(self.encode(x)[0]))


# --------------------------------------------------------------------------------------------
# Estimators


def posterior_params(vae: VAE, x: torch.Tensor, batch_size: int = 4096) -> tuple[torch.Tensor, torch.Tensor]:
    """(μ, log σ²) of q_φ(z|x) for every row of ``x``, batched in eval mode: two (N, d) tensors."""
    mean, log_var = eval_batched(lambda xb: torch.cat(vae.encode(xb), dim=1), x, batch_size, model=vae).chunk(2, 1)
    return mean.contiguous(), log_var.contiguous()


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


def mean_kl(mean: torch.Tensor, log_var: torch.Tensor) -> float:
    """E_x KL(q(z|x) ‖ N(0, I)), closed form per x, averaged."""
    return kl_to_standard_normal(mean, log_var).sum(1).mean().item()


def kl_per_dimension(mean: torch.Tensor, log_var: torch.Tensor) -> torch.Tensor:
    """E_x KL per latent dimension: (d,)."""
    return kl_to_standard_normal(mean, log_var).mean(0)


def active_units(mean: torch.Tensor, threshold: float = 0.01) -> int:
    """AU = Σ_d 1{Cov_x(E_q[z_d|x]) ≥ threshold} (Burda et al. 2016)."""
    return int((mean.var(0, unbiased=True) >= threshold).sum())


def mixture_log_density(z: torch.Tensor, mean: torch.Tensor, log_var: torch.Tensor,
                        max_elements: int = 2 ** 25) -> torch.Tensor:
    """log (1/S) Σ_j N(z_i; μ_j, diag σ²_j) for each row z_i of ``z``: (M,).

    The (M, S) table of log densities comes from two matrix products, Σ_d (z - μ)²/σ² = z²·(1/σ²) - 2 z·(μ/σ²)
    + Σ_d μ²/σ², in float64 (the three terms cancel), in row chunks of at most ``max_elements`` entries."""
    z, mean, log_var = z.double(), mean.double(), log_var.double()
    precision = (-log_var).exp()
    const = -0.5 * ((mean.pow(2) * precision).sum(1) + log_var.sum(1) + mean.shape[1] * LOG_2PI)  # (S,)
    chunk = max(1, max_elements // len(mean))
    out = [torch.logsumexp(-0.5 * (z[i:i + chunk].pow(2) @ precision.T) + z[i:i + chunk] @ (mean * precision).T
                           + const, 1) for i in range(0, len(z), chunk)]
    return (torch.cat(out) - math.log(len(mean))).float()


def aggregate_posterior_terms(mean: torch.Tensor, log_var: torch.Tensor, samples: int | None = None,
                              seed: int = 0, max_elements: int = 2 ** 25, draws: int = 1) -> dict[str, float]:
    """Monte Carlo estimates of I_q(z; x) and KL(q(z) ‖ p(z)) over the aggregate posterior of S data points.

    q(z) is the mixture (1/S) Σ_j q(z|x_j) over S of the data (all of them if ``samples`` is None); ``draws``
    z_i ~ q(z|x_i) per point; log q(z_i) = logsumexp_j log q(z_i|x_j) - log S (`mixture_log_density`).
        MI = mean_i [log q(z_i|x_i) - log q(z_i)],   MD = mean_i [log q(z_i) - log p(z_i)]
    Also returns their standard errors over the draws and ``sum_se``, the standard error of MI + MD from
    std(mi_i + md_i) (the two are strongly anti-correlated, so their separate errors do not add).
    Bias for S < N: the mixture gives z_i's own component the weight 1/S instead of 1/N (and each other point, in
    expectation, (S-1)/(S(N-1)) instead of 1/N), which typically inflates q̂(z_i), so MI is typically
    underestimated; certain is only the cap MI ≤ log S, since q̂(z_i) ≥ q(z_i|x_i)/S. With S = N
    (``samples=None``) the mixture is the exact aggregate posterior of the N points and only the draws of z are random.
    """
    n = len(mean)
    if draws < 1:
        raise ValueError(f"draws (z per data point) must be >= 1, got {draws}")
    if samples is not None:
        if samples > n:
            raise ValueError(f"S = {samples} samples requested but the data hold only {n} points")
        if samples < 2:
            raise ValueError(f"S must be >= 2, got {samples}")
        idx = torch.randperm(n, generator=torch.Generator().manual_seed(seed))[:samples].to(mean.device)
        mean, log_var = mean[idx], log_var[idx]
    s = len(mean)
    g = torch.Generator().manual_seed(seed + 1)
    eps = torch.randn(draws, *mean.shape, generator=g).to(mean.device)
    z = (mean + (0.5 * log_var).exp() * eps).flatten(0, 1)
    mean_rep, log_var_rep = mean.repeat(draws, 1), log_var.repeat(draws, 1)
    log_q_own = gaussian_log_density(z, mean_rep, log_var_rep)
    log_p = gaussian_log_density(z, torch.zeros_like(z), torch.zeros_like(z))
    log_qz = mixture_log_density(z, mean, log_var, max_elements)
    mi, md = log_q_own - log_qz, log_qz - log_p
    m = len(z)
    return {"mi": mi.mean().item(), "md": md.mean().item(), "mi_se": (mi.std() / math.sqrt(m)).item(),
            "md_se": (md.std() / math.sqrt(m)).item(), "sum_se": ((mi + md).std() / math.sqrt(m)).item(),
            "samples": s, "draws": draws}


def exact_aggregate_posterior_terms(mean: torch.Tensor, log_var: torch.Tensor, draws: int = 4, seed: int = 0,
                                    max_elements: int = 2 ** 25) -> dict[str, float]:
    """I_q(z; x) and KL(q(z) ‖ p(z)) for the exact aggregate posterior of the N points given: q(z) is the whole
    mixture (1/N) Σ_j q(z|x_j), so the only error is the Monte Carlo over ``draws`` z per point (``mi_se``,
    ``md_se``, ``sum_se``). The reference that estimators of I and MD are checked against; also returns the mean
    closed-form KL (``kl``). Costs N²·draws·d terms: meant for N up to some 10⁴."""
    out = aggregate_posterior_terms(mean, log_var, None, seed, max_elements, draws)
    return {**out, "kl": mean_kl(mean, log_var)}


@torch.no_grad()
def importance_weighted_nll(vae: VAE, x: torch.Tensor, k: int = 100, batch_size: int = 256,
                            max_elements: int = 2 ** 24) -> torch.Tensor:
    """-log p(x) ≈ -log (1/k) Σ_j p(x|z_j) p(z_j) / q(z_j|x), z_j ~ q(z|x) (Burda et al. 2016), per input: (N,).

    Batched over inputs and importance samples; at most ``max_elements`` decoder outputs are held at once.
    """
    if k < 1:
        raise ValueError(f"k (importance samples) must be >= 1, got {k}")
    check_unit_interval(x)
    per_chunk = max(1, max_elements // (batch_size * vae.x_dim))
    out = []
    for i in range(0, len(x), batch_size):
        xb = x[i:i + batch_size].reshape(-1, vae.x_dim)
        mean, log_var = vae.encode(xb)
        log_w = []
        for j in range(0, k, per_chunk):
            kk = min(per_chunk, k - j)
            z = mean + (0.5 * log_var).exp() * torch.randn(kk, *mean.shape, device=mean.device)
            log_w.append(vae.log_likelihood(xb, z) + gaussian_log_density(z, torch.zeros_like(z), torch.zeros_like(z))
                         - gaussian_log_density(z, mean, log_var))
        out.append(-(torch.logsumexp(torch.cat(log_w), 0) - math.log(k)))
    return torch.cat(out)


# --------------------------------------------------------------------------------------------
# VAE-AS: an auxiliary classifier over sample indices


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

    def __init__(self, z_dim: int, num_labels: int, hidden: int = 500, tree: bool = True, depth: int = 2,
                 activation: str = "relu"):
        super().__init__()
        if depth < 1:
            raise ValueError(f"the classifier needs depth >= 1 hidden layers, got {depth}")
        if activation not in CLASSIFIER_ACTIVATIONS:
            raise ValueError(f"activation must be one of {sorted(CLASSIFIER_ACTIVATIONS)}, got {activation!r}")
        self.num_labels, self.activation = num_labels, activation
        # ends with the last hidden layer's activation
        self.body = _mlp([z_dim] + [hidden] * depth + [hidden], CLASSIFIER_ACTIVATIONS[activation])[:-1]
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


class VAEAS(nn.Module):
    """A VAE trained with L = E log p(x|z) - α Î - β MD̂ (VAE-AS Eq. 3), Î by Eq. 9/13 (the entropy of an
    `IndexClassifier` over all N training indices) and MD̂ by Eq. 14.

    -L = -E log p(x|z) + α (log N - E H(s(·|z))) + β (E KL - log N - E log s(e|z)); at α = β = 1 it is the negative
    ELBO minus E[H(s(·|z)) + log s(e|z)], the classifier's mismatch: zero for s = q(·|z), but also e.g. for a
    uniform s (H = log N = -log s(e|z)), in general wherever E H(s) = E CE(q, s). The encoder's gradient flows
    through z into Î and MD̂ (the classifier's parameters detached); the classifier is trained only by its own
    cross-entropy (Eq. 12) on ``classifier_samples`` detached draws of z per example. The batch must carry each
    example's index e in [0, N) as its label.
    """

    def __init__(self, vae: VAE, num_samples: int, alpha: float = 1.0, beta: float = 1.0, hidden: int = 500,
                 tree: bool = True, classifier_lr: float = 1e-2, classifier_depth: int = 2,
                 classifier_samples: int = 1, classifier_activation: str = "relu"):
        super().__init__()
        if alpha < 0 or beta < 0:
            raise ValueError(f"alpha and beta weight divergences and must be >= 0, got {alpha}, {beta}")
        if classifier_samples < 1:
            raise ValueError(f"classifier_samples (draws of z per example for the classifier) must be >= 1, "
                             f"got {classifier_samples}")
        self.vae, self.alpha, self.beta, self.num_samples = vae, alpha, beta, num_samples
        self.classifier_lr, self.classifier_samples = classifier_lr, classifier_samples
        self.classifier = IndexClassifier(vae.z_dim, num_samples, hidden, tree, classifier_depth,
                                          classifier_activation)

    def index_terms(self, z: torch.Tensor, index: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """log s_ω(e|z) and H(s_ω(·|z)) per example, gradients reaching z but not the classifier's parameters."""
        params = {k: v.detach() for k, v in self.classifier.named_parameters()}
        return torch.func.functional_call(self.classifier, params, (z, index), {"entropy": True})

    def check_data(self, split) -> None:
        """`VAE.check_data` of the wrapped VAE: called by `Trainer.fit` once per split."""
        self.vae.check_data(split)

    def training_step(self, x: torch.Tensor, index: torch.Tensor) -> dict[str, torch.Tensor]:
        if index.shape != (len(x),):
            raise ValueError(f"VAE-AS needs each example's sample index as its label, shape ({len(x)},)")
        t = self.vae.elbo_terms(x)
        log_s, entropy = self.index_terms(t["z"], index)
        mi = index_mi_plugin(entropy, self.num_samples)
        md = index_marginal_divergence(t["kl"], log_s, self.num_samples)
        objective = -t["rec"].mean() + self.alpha * mi + self.beta * md
        k = self.classifier_samples
        z = (t["mean"] + (0.5 * t["log_var"]).exp() * torch.randn(k, *t["mean"].shape, device=x.device)).detach()
        classifier_loss = -self.classifier(z.flatten(0, 1), index.repeat(k)).mean()
        return {"loss": objective + classifier_loss, "objective": objective, "rec": t["rec"].mean(),
                "kl": t["kl"].mean(), "mi": mi.detach(), "md": md.detach(),
                "mi_ce_bound": index_mi_cross_entropy_bound(log_s, self.num_samples).detach(),
                "classifier_loss": classifier_loss}

    def parameter_groups(self) -> dict:
        head = self.classifier.head
        sparse = isinstance(head, BinaryTreeSoftmax)
        return {"vae": (list(self.vae.parameters()), {}),
                "classifier_body": (list(self.classifier.body.parameters()), {"lr": self.classifier_lr}),
                "classifier_head": (list(head.parameters()),
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


# --------------------------------------------------------------------------------------------
# Convolutional VAE and branched VAE classifiers (BVAE, arXiv 2401.02526)


class ConvEncoder(nn.Module):
    """conv(32, 3, stride 2) → conv(64, 3, stride 2) → dense(``hidden``) → (μ, log σ²) stacked: (N, 2 z_dim).
    Takes flattened (N, side²) or (N, 1, side, side) images; ``side`` must be divisible by 4."""

    def __init__(self, z_dim: int, side: int = 28, hidden: int = 128):
        super().__init__()
        self.side = side
        self.net = nn.Sequential(nn.Conv2d(1, 32, 3, stride=2, padding=1), nn.ReLU(),
                                 nn.Conv2d(32, 64, 3, stride=2, padding=1), nn.ReLU(), nn.Flatten(),
                                 nn.Linear(64 * (side // 4) ** 2, hidden), nn.ReLU(), nn.Linear(hidden, 2 * z_dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x.reshape(len(x), 1, self.side, self.side))


class ConvDecoder(nn.Module):
    """dense(64·(side/4)²) → transposed conv(32, stride 2) → transposed conv(1, stride 2): Bernoulli logits, flattened
    to (..., side²) (the sigmoid is applied by the likelihood). ``z`` may carry leading sample dimensions."""

    def __init__(self, z_dim: int, side: int = 28):
        super().__init__()
        self.side = side
        self.dense = nn.Sequential(nn.Linear(z_dim, 64 * (side // 4) ** 2), nn.ReLU())
        self.net = nn.Sequential(nn.ConvTranspose2d(64, 32, 3, stride=2, padding=1, output_padding=1), nn.ReLU(),
                                 nn.ConvTranspose2d(32, 1, 3, stride=2, padding=1, output_padding=1))

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        lead = z.shape[:-1]
        h = self.dense(z.reshape(-1, z.shape[-1])).reshape(-1, 64, self.side // 4, self.side // 4)
        return self.net(h).reshape(*lead, self.side ** 2)


class ConvVAE(VAE):
    """The `VAE` with the BVAE paper's network shape: encoder conv → dense → (μ, log σ²), decoder dense → transposed
    conv → sigmoid. Same generative story z ~ N(0, I), x | z ~ Bernoulli(σ(g_θ(z))), same inference
    q_φ(z|x) = N(μ_φ(x), diag σ²_φ(x)) and the same negative ELBO; only g_θ, μ_φ and σ_φ are convolutional."""

    def __init__(self, z_dim: int = 10, side: int = 28, hidden: int = 128):
        nn.Module.__init__(self)
        if min(z_dim, hidden) < 1 or side < 4 or side % 4:
            raise ValueError(f"need z_dim, hidden >= 1 and a side divisible by 4, got {z_dim=}, {hidden=}, {side=}")
        self.x_dim, self.z_dim = side * side, z_dim
        self.encoder = ConvEncoder(z_dim, side, hidden)
        self.decoder = ConvDecoder(z_dim, side)


class BranchedVAE(nn.Module):
    """A VAE with a classifier branch on its sampled latent: the BVAE (arXiv 2401.02526, its objective
    L_BVAE = α L_recon + L_KL + λ L_C).

    Generative story: z ~ N(0, I); given z, independently x | z ~ Bernoulli(σ(g_θ(z))) and y | z ~ Cat(softmax(c_ψ(z)))
    (the branch c_ψ: dense → ReLU → dense → softmax, or one dense layer when ``branch_hidden`` is None).
    Inference: q_φ(z|x) = N(μ_φ(x), diag σ²_φ(x)) from the image alone, z = μ + σ ⊙ ε.
    Loss per batch (mean over examples), one reparameterised sample z:

        L = -α log p_θ(x|z) + KL(q_φ(z|x) ‖ p(z)) - λ log p_ψ(y|z)

    With α = λ = 1 it is the negative ELBO of log p(x, y) under the model z → (x, y); λ = 0 is the VAE's loss
    exactly (same seed, same number), and the branch then receives no gradient. The CE term does not involve the
    decoder: its gradient reaches the encoder φ (through z) and the branch ψ, never the decoder θ.
    """

    def __init__(self, vae: VAE, num_classes: int = 10, lam: float = 1.0, alpha: float = 1.0,
                 branch_hidden: int | None = 128):
        super().__init__()
        if not (math.isfinite(lam) and lam >= 0):
            raise ValueError(f"lam (λ, the weight of the classifier's cross-entropy) must be >= 0, got {lam}; "
                             "use lam=0 for the plain VAE")
        if not (math.isfinite(alpha) and alpha > 0):
            raise ValueError(f"alpha (α, the weight of the reconstruction term) must be > 0, got {alpha}")
        if num_classes < 2:
            raise ValueError(f"need num_classes >= 2, got {num_classes}")
        self.vae, self.num_classes, self.lam, self.alpha = vae, num_classes, float(lam), float(alpha)
        self.classifier = (nn.Linear(vae.z_dim, num_classes) if branch_hidden is None else
                           _mlp([vae.z_dim, branch_hidden, num_classes]))

    @property
    def z_dim(self) -> int:
        return self.vae.z_dim

    def _check_labels(self, x: torch.Tensor, y: torch.Tensor) -> None:
        if y is None or y.shape != (len(x),):
            raise ValueError(f"need one class label per input, shape ({len(x)},), got "
                             f"{None if y is None else tuple(y.shape)}")
        if y.is_floating_point() or bool(((y < 0) | (y >= self.num_classes)).any()):
            raise ValueError(f"labels must be integers in [0, {self.num_classes}), got range "
                             f"[{y.min().item()}, {y.max().item()}]: does num_classes match the data?")

    def reconstruction_target(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """What the decoder is asked to reproduce: the input itself (the VAE and the BVAE)."""
        return x

    def check_data(self, split) -> None:
        """`VAE.check_data` of the wrapped VAE (`terms` also checks every batch)."""
        self.vae.check_data(split)

    def terms(self, x: torch.Tensor, y: torch.Tensor) -> dict[str, torch.Tensor]:
        """Per example: rec = log p_θ(target|z), the closed-form KL, the branch's logits, and z, μ, log σ²."""
        check_unit_interval(x)
        self._check_labels(x, y)
        mean, log_var = self.vae.encode(x)
        z = self.vae.reparameterise(mean, log_var)
        rec = self.vae.log_likelihood(self.reconstruction_target(x, y), z)
        kl = kl_to_standard_normal_sum(mean, log_var)
        return {"rec": rec, "kl": kl, "logits": self.classifier(z), "z": z, "mean": mean, "log_var": log_var}

    def training_step(self, x: torch.Tensor, y: torch.Tensor) -> dict[str, torch.Tensor]:
        """L = mean(KL - α rec) + λ CE; with α = 1 the first part is computed exactly as `VAE.training_step` does."""
        t = self.terms(x, y)
        ce = F.cross_entropy(t["logits"].float(), y)
        loss = (t["kl"] - self.alpha * t["rec"]).mean() + self.lam * ce
        acc = (t["logits"].argmax(1) == y).float().mean()
        return {"loss": loss, "rec": t["rec"].mean(), "kl": t["kl"].mean(), "ce": ce, "branch_acc": acc}

    @torch.no_grad()
    def predict(self, x: torch.Tensor, batch_size: int = 4096) -> torch.Tensor:
        """The branch's class at the posterior mean, argmax_y p_ψ(y | μ_φ(x)): (N,)."""
        mean, _ = posterior_params(self.vae, x, batch_size)
        return self.classifier(mean).argmax(1)

    def sample(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        return self.vae.sample(n, generator)

    def reconstruct(self, x: torch.Tensor) -> torch.Tensor:
        return self.vae.reconstruct(x)


class FixedOutputVAE(BranchedVAE):
    """The "fixed-output VAE": the decoder reconstructs a predefined per-class target t_y (a class template, a
    Gaussian blob) instead of the input, from the latent of the input.

    Generative story: z ~ N(0, I), t | z ~ Bernoulli(σ(g_θ(z))) (and, if λ > 0, y | z ~ Cat(softmax(c_ψ(z))));
    inference q_φ(z|x) from the image x. Loss per example, with the target t_y of the example's label y:

        L = -α log p_θ(t_y|z) + KL(q_φ(z|x) ‖ p(z)) - λ log p_ψ(y|z),   z ~ q_φ(z|x),

    for α = 1, λ = 0 the negative of an ELBO on log p_θ(t_y) whose variational posterior is conditioned on x; the
    variational information bottleneck (Alemi et al. 2017) with a template likelihood for the label. ``targets`` is
    (num_classes, x_dim) or (num_classes, C, H, W) with values in [0, 1]; it is a buffer (saved, moved, not trained).
    """

    def __init__(self, vae: VAE, targets: torch.Tensor, lam: float = 0.0, alpha: float = 1.0,
                 branch_hidden: int | None = 128):
        targets = torch.as_tensor(targets, dtype=torch.float32)
        if targets.ndim < 2 or targets[0].numel() != vae.x_dim:
            raise ValueError(f"targets must hold one {vae.x_dim}-pixel image per class, shape (num_classes, "
                             f"{vae.x_dim}) or (num_classes, C, H, W), got {tuple(targets.shape)}")
        check_unit_interval(targets)
        super().__init__(vae, len(targets), lam, alpha, branch_hidden)
        self.register_buffer("targets", targets.reshape(len(targets), vae.x_dim).clone())

    def reconstruction_target(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return self.targets[y]


@torch.no_grad()
def reconstruction_bce(model: nn.Module, x: torch.Tensor, batch_size: int = 4096) -> float:
    """Mean over images of -log p_θ(x | z = μ_φ(x)), the Bernoulli cross-entropy of the input with the decoder's
    output at the posterior mean, summed over pixels (nats per image), in eval mode. ``model`` is a VAE or wraps
    one as ``.vae``; the target is always the input (for a fixed-output VAE, how far its output is from the image)."""
    vae = getattr(model, "vae", model)
    check_unit_interval(x)
    was_training = vae.training
    vae.eval()
    total = 0.0
    for i in range(0, len(x), batch_size):
        xb = x[i:i + batch_size]
        total += -vae.log_likelihood(xb, vae.encode(xb)[0]).sum().item()
    vae.train(was_training)
    return total / len(x)


@torch.no_grad()
def negative_elbo(model: nn.Module, x: torch.Tensor, samples: int = 1, seed: int = 0,
                  batch_size: int = 4096) -> float:
    """Mean over images of -ELBO(x) = -E_q log p_θ(x|z) + KL(q_φ(z|x) ‖ p(z)) in nats per image, an upper bound on
    -log p_θ(x): the KL in closed form, the expectation by ``samples`` reparameterised draws (seeded), in eval mode.
    ``model`` is a VAE or wraps one as ``.vae`` (the BVAE's label term is left out: this is the bound on the image)."""
    if samples < 1:
        raise ValueError(f"samples must be >= 1, got {samples}")
    vae = getattr(model, "vae", model)
    check_unit_interval(x)
    mean, log_var = posterior_params(vae, x, batch_size)
    g = torch.Generator().manual_seed(seed)
    total = 0.0
    for i in range(0, len(x), batch_size):
        m, lv = mean[i:i + batch_size], log_var[i:i + batch_size]
        eps = torch.randn(samples, *m.shape, generator=g).to(m.device)
        rec = vae.log_likelihood(x[i:i + batch_size], m + (0.5 * lv).exp() * eps).mean(0)
        total += (kl_to_standard_normal(m, lv).sum(1) - rec).sum().item()
    return total / len(x)
