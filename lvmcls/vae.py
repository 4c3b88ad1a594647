"""Variational autoencoders (chapter 4): the model, its estimators and the convolutional variant.

Generative story: z ~ p(z) = N(0, I), x | z ~ Bernoulli(σ(g_θ(z))) pixel by pixel.
Inference: q_φ(z|x) = N(μ_φ(x), diag σ²_φ(x)), sampled by reparameterisation z = μ + σ ⊙ ε.

The ELBO's KL term splits over the data (Hoffman & Johnson 2016; VAE-AS appendix 7.1):

    E_x KL(q(z|x) ‖ p(z)) = I_q(z; x) + KL(q(z) ‖ p(z)),     q(z) = (1/N) Σ_n q(z|x_n),

and 0 ≤ I_q(z; x) ≤ log N (appendix 7.2). `exact_aggregate_posterior_terms` gives I and MD for the exact mixture;
`active_units` and `importance_weighted_nll` are the collapse and likelihood measures of VAE-AS's Tables 1–2. The
auxiliary-softmax estimators of I and MD (VAE-AS) live in `lvmcls.vae_as`, the branched classifiers in
`lvmcls.branched_vae`.
"""
from __future__ import annotations

import math

import torch
from torch import nn
from torch.nn import functional as F

from .nets import dense_stack, eval_batched

LOG_2PI = math.log(2 * math.pi)


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

    def __init__(self, x_dim: int = 784, latent_dim: int = 40, hidden: int = 500, encoder_depth: int = 1,
                 decoder_depth: int = 1, init: str = "torch"):
        super().__init__()
        if min(x_dim, latent_dim, hidden) < 1 or min(encoder_depth, decoder_depth) < 1:
            raise ValueError(f"need positive sizes and depths >= 1, got {x_dim=}, {latent_dim=}, {hidden=}, "
                             f"{encoder_depth=}, {decoder_depth=}")
        if init not in INITS:
            raise ValueError(f"init must be one of {INITS}, got {init!r}")
        self.x_dim, self.latent_dim, self.init = x_dim, latent_dim, init
        self.encoder = dense_stack([x_dim] + [hidden] * encoder_depth + [2 * latent_dim])
        self.decoder = dense_stack([latent_dim] + [hidden] * decoder_depth + [x_dim])
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
        z = torch.randn(n, self.latent_dim, generator=generator).to(next(self.parameters()).device)
        return torch.sigmoid(self.decoder(z))

    @torch.no_grad()
    def reconstruct(self, x: torch.Tensor) -> torch.Tensor:
        """σ(g(μ_φ(x))): the decoder's mean at the posterior mean."""
        return torch.sigmoid(self.decoder(self.encode(x)[0]))


# --------------------------------------------------------------------------------------------
# Estimators



class OwnNoiseVAE(VAE):
    """A `VAE` whose training ε comes from its own stream, not the global generator: a generator seeded per step from
    ``noise_seed`` (drawn at construction, after the weights) and a step counter kept as a buffer (checkpointed, so
    a resumed run continues the stream). Built under the same seed as a `VAE`, it starts from the same weights and
    the `Trainer` gives it the same batches, but not the same ε: beside a VAE it is the arm without common random
    numbers, which measures what they do to a paired spread (chapter 5). Outside training (``eval()``) it draws ε as
    the `VAE` does, so the two are evaluated alike."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.noise_seed = int(torch.randint(0, 2 ** 31 - 1, (1,)).item())
        self.register_buffer("noise_draws", torch.zeros((), dtype=torch.long))

    def reparameterise(self, mean: torch.Tensor, log_var: torch.Tensor) -> torch.Tensor:
        if not self.training:
            return VAE.reparameterise(mean, log_var)
        g = torch.Generator(device=mean.device)
        g.manual_seed(self.noise_seed * 1_000_003 + int(self.noise_draws))
        self.noise_draws += 1
        return mean + (0.5 * log_var).exp() * torch.randn(mean.shape, device=mean.device, generator=g)

def posterior_params(vae: VAE, x: torch.Tensor, batch_size: int = 4096) -> tuple[torch.Tensor, torch.Tensor]:
    """(μ, log σ²) of q_φ(z|x) for every row of ``x``, batched in eval mode: two (N, d) tensors."""
    mean, log_var = eval_batched(lambda xb: torch.cat(vae.encode(xb), dim=1), x, batch_size, model=vae).chunk(2, 1)
    return mean.contiguous(), log_var.contiguous()


def mean_kl(mean: torch.Tensor, log_var: torch.Tensor) -> float:
    """E_x KL(q(z|x) ‖ N(0, I)), closed form per x, averaged."""
    return kl_to_standard_normal(mean, log_var).sum(1).mean().item()


def kl_per_dimension(mean: torch.Tensor, log_var: torch.Tensor) -> torch.Tensor:
    """E_x KL per latent dimension: (d,)."""
    return kl_to_standard_normal(mean, log_var).mean(0)


def active_units(mean: torch.Tensor, threshold: float = 0.01) -> int:
    """AU = Σ_d 1{Cov_x(E_q[z_d|x]) ≥ threshold} (Burda et al. 2016)."""
    return int((mean.var(0, unbiased=True) >= threshold).sum())


def effective_dimensionality(mean: torch.Tensor) -> float:
    """A threshold-free count of the latent dimensions the encoder uses: the participation ratio (Σλ)² / Σλ² of the
    eigenvalues λ of Cov_x(E_q[z|x]) over the images whose posterior means are ``mean`` (N, d). d when the means
    spread equally in d orthogonal directions, 1 when they vary along one, 0 for a collapsed encoder."""
    if mean.dim() != 2 or len(mean) < 2:
        raise ValueError(f"need posterior means (N >= 2, d), got {tuple(mean.shape)}")
    eig = torch.linalg.eigvalsh(torch.cov(mean.double().T)).clamp(min=0)
    total = eig.sum().item()
    return 0.0 if total <= 0 else total ** 2 / (eig ** 2).sum().item()


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
# The convolutional VAE (the branched-VAE paper's network shape)



class ConvEncoder(nn.Module):
    """conv(32, 3, stride 2) → conv(64, 3, stride 2) → dense(``hidden``) → (μ, log σ²) stacked: (N, 2 latent_dim).
    Takes flattened (N, side²) or (N, 1, side, side) images; ``side`` must be divisible by 4."""

    def __init__(self, latent_dim: int, side: int = 28, hidden: int = 128):
        super().__init__()
        self.side = side
        self.net = nn.Sequential(nn.Conv2d(1, 32, 3, stride=2, padding=1), nn.ReLU(),
                                 nn.Conv2d(32, 64, 3, stride=2, padding=1), nn.ReLU(), nn.Flatten(),
                                 nn.Linear(64 * (side // 4) ** 2, hidden), nn.ReLU(), nn.Linear(hidden, 2 * latent_dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x.reshape(len(x), 1, self.side, self.side))


class ConvDecoder(nn.Module):
    """dense(64·(side/4)²) → transposed conv(32, stride 2) → transposed conv(1, stride 2): Bernoulli logits, flattened
    to (..., side²) (the sigmoid is applied by the likelihood). ``z`` may carry leading sample dimensions."""

    def __init__(self, latent_dim: int, side: int = 28):
        super().__init__()
        self.side = side
        self.dense = nn.Sequential(nn.Linear(latent_dim, 64 * (side // 4) ** 2), nn.ReLU())
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

    def __init__(self, latent_dim: int = 10, side: int = 28, hidden: int = 128):
        nn.Module.__init__(self)
        if min(latent_dim, hidden) < 1 or side < 4 or side % 4:
            raise ValueError(f"need latent_dim, hidden >= 1 and a side divisible by 4, got {latent_dim=}, {hidden=}, {side=}")
        self.x_dim, self.latent_dim = side * side, latent_dim
        self.encoder = ConvEncoder(latent_dim, side, hidden)
        self.decoder = ConvDecoder(latent_dim, side)


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


# --------------------------------------------------------------------------------------------
# Chapter 4's collapse check (VAE-AS Table 1: fewer active units with a deeper decoder)

COLLAPSE_MARGIN = 5  # units: AU(shallowest) - AU(deepest) on the mean over seeds (the paper's Table 1: 23 - 8 = 15)


def collapse_margins(au_by_depth: dict, latent_dim: int | None = None, margin: float = COLLAPSE_MARGIN) -> dict:
    """Chapter 4's check of Table 1 (fewer active units with a deeper decoder), robust to censoring.

    ``au_by_depth``: {depth: AU per seed} (a single number counts as one seed); ``latent_dim``: the count's ceiling.
    On the seed means, with ``spread`` the max - min over a depth's seeds:

    - *supported* when the extremes fall by at least ``margin``, AU(shallowest) - AU(deepest) ≥ margin, and no step
      between adjacent depths rises by more than the within-depth spread of the two (0 with one seed each);
    - *contradicted* when AU(deepest) - AU(shallowest) ≥ margin and that rise exceeds the within-depth spread;
    - *not resolved* otherwise. A depth whose seeds all sit at ``latent_dim`` (or all at 0) is **censored**: its
      true count may lie beyond what the count can show. A failed comparison is excused by censoring only in the
      direction that could hide a pass: its shallower depth censored at the ceiling (an unbounded count could be
      higher) or its deeper depth censored at 0; when every failed comparison is so excused the verdict is
      "not resolved" with ``censored_failure`` True (the page says "not resolved (censored)", never "fails"). A
      deeper depth at the ceiling, or a shallower one at 0, excuses nothing: censoring there could only widen the
      rise.

    Returns the means, spreads, the censored depths, each comparison (``extremes`` and the ``steps``) with its
    ``pass`` and ``censored`` (censoring could hide its pass), ``pass``, ``verdict`` and ``censored_failure``."""
    seeds = {int(d): [float(v) for v in (vs if isinstance(vs, (list, tuple)) else [vs])]
             for d, vs in au_by_depth.items()}
    if len(seeds) < 2 or any(not v for v in seeds.values()):
        raise ValueError(f"need active-unit counts at two or more decoder depths, got depths {sorted(seeds)}")
    if latent_dim is not None and any(not 0 <= a <= latent_dim for v in seeds.values() for a in v):
        raise ValueError(f"active-unit counts must lie in [0, {latent_dim}]")
    depths = sorted(seeds)
    means = {d: sum(v) / len(v) for d, v in seeds.items()}
    spread = {d: max(v) - min(v) for d, v in seeds.items()}
    at_zero = [d for d in depths if all(a == 0 for a in seeds[d])]
    at_ceiling = [d for d in depths if latent_dim is not None and all(a == latent_dim for a in seeds[d])]
    censored = sorted(set(at_zero) | set(at_ceiling))

    def hidden(a, b):  # could censoring hide a pass of the comparison shallow a -> deep b?
        return bool(a in at_ceiling or b in at_zero)

    shallow, deep = depths[0], depths[-1]
    fall = means[shallow] - means[deep]
    extremes = {"shallow": shallow, "deep": deep, "gap": fall, "margin": margin, "pass": bool(fall >= margin),
                "censored": hidden(shallow, deep)}
    steps = []
    for a, b in zip(depths, depths[1:]):
        rise, within = means[b] - means[a], max(spread[a], spread[b])
        steps.append({"shallow": a, "deep": b, "gap": means[a] - means[b], "within_spread": within,
                      "pass": bool(rise <= within), "censored": hidden(a, b)})
    passed = extremes["pass"] and all(st["pass"] for st in steps)
    rise, within = means[deep] - means[shallow], max(spread[shallow], spread[deep])
    contradicted = rise >= margin and rise > within
    failures = ([] if extremes["pass"] else [extremes]) + [st for st in steps if not st["pass"]]
    # excused only if censoring could hide the pass of every comparison that failed
    censored_failure = bool(not passed and not contradicted and all(f["censored"] for f in failures))
    verdict = "supported" if passed else "contradicted" if contradicted else "not resolved"
    return {"means": means, "spread": spread, "censored": censored, "extremes": extremes, "steps": steps,
            "gaps": [extremes] + steps, "pass": passed, "verdict": verdict, "censored_failure": censored_failure}
