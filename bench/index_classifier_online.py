"""Why does VAE-AS's index classifier, as trained with the model, lag the exact MI, and what fixes it cheaply?

Chapter 5's ci setting (N = 1,000 binarised MNIST images, 80 epochs at batch 128, encoder / decoder 2 / 5 layers of
200, z = 40, classifier 2 tanh layers of 128 with a flat softmax, classifier lr 3e-3, 2 draws of z per example,
VAE-AS (1, 1)), trained step for step as `Trainer.fit` trains it (same seeding, same optimisers from
`Trainer.configure_optimizer`, same `Trainer.step`), with variants of the classifier's training procedure:

- ``lr``: the classifier's learning rate (``classifier_lr``);
- ``samples``: draws of z per example for the classifier's step (``classifier_samples``);
- ``inner``: k - 1 extra classifier-only steps (its own cross-entropy, Eq. 12, on fresh detached z of the same
  batch, the classifier's optimisers from the trainer) after every model step;
- ``ramp``: the α/β terms ramped in over the first R steps: -L_w = -E log p(x|z) + KL + w [α Î + β MD̂ - KL],
  w = min(1, step / R): the ELBO while w = 0, the paper's objective from w = 1 on;
- ``elbo``: w = 0 throughout (a plain VAE with the classifier trained beside it, its terms never acting): does the
  α/β game itself pull the online estimate down?

Also ``fresh``: the inner steps on as many indices drawn afresh from all N (not expressible in `VAEAS`, which sees
only its batch).

For each: the classifier's Eq. 9/13 Î at the end (`index_classifier_terms`), its cross-entropy bound and the error of
its Eq. 14 MD̂ against the exact MD, the exact MI of the final encoder
(`exact_aggregate_posterior_terms`, the whole mixture over the N points, 4 draws), their gap and ratio, the test
NLL (importance weighted, k = 50, 1,000 test images) and the mean KL on the training images, and the training time;
with ``--trace`` also Î and the exact MI every 10 epochs.

    OMP_WAIT_POLICY=PASSIVE nice -n 5 env PYTHONPATH=. python bench/index_classifier_online.py --seeds 0
"""

from __future__ import annotations

import argparse
import math
import time

import torch

from lvmcls import vae as V
from lvmcls import vae_as as AS
from lvmcls.data import TensorSplit, binarized, load_dataset
from lvmcls.train import Trainer, seed_everything

N, EPOCHS, BATCH, HIDDEN, CLF_HIDDEN = 1000, 80, 128, 200, 128

VARIANTS = {
    "baseline": {},
    "lr 1e-2": {"lr": 1e-2},
    "lr 2e-2": {"lr": 2e-2},
    "lr 3e-2": {"lr": 3e-2},
    "lr 5e-2": {"lr": 5e-2},
    "samples 8": {"samples": 8},
    "samples 32": {"samples": 32},
    "inner 2": {"inner": 2},
    "inner 4": {"inner": 4},
    "inner 8": {"inner": 8},
    "inner 4, fresh indices": {"inner": 4, "fresh": True},
    "inner 8, fresh indices": {"inner": 8, "fresh": True},
    "lr 1e-2, inner 4, fresh indices": {"lr": 1e-2, "inner": 4, "fresh": True},
    "ramp 25%": {"ramp": 0.25},
    "ramp 50%": {"ramp": 0.5},
    "elbo": {"ramp": math.inf},
    "lr 1e-1": {"lr": 1e-1},
    "lr 1e-2, inner 4": {"lr": 1e-2, "inner": 4},
    "lr 3e-2, inner 2": {"lr": 3e-2, "inner": 2},
    "lr 3e-2, inner 4": {"lr": 3e-2, "inner": 4},
    "lr 3e-2, samples 8": {"lr": 3e-2, "samples": 8},
}

CORE = ["baseline", "elbo", "ramp 25%", "ramp 50%", "lr 1e-2", "lr 2e-2", "lr 3e-2", "lr 5e-2", "lr 1e-1",
        "samples 8", "inner 2", "inner 4", "inner 4, fresh indices", "lr 3e-2, inner 2"]


class RampedVAEAS(AS.VAEAS):
    """VAE-AS with the α/β terms weighted by w (set from outside per step): w = 1 is `VAEAS.training_step`."""

    weight = 1.0

    def training_step(self, x, index):
        out = super().training_step(x, index)
        if self.weight == 1.0:
            return out
        elbo_loss = (out["kl"] - out["rec"])  # means over the batch, with gradients
        objective = elbo_loss + self.weight * (out["objective"] - elbo_loss)
        return {**out, "loss": objective + out["classifier_loss"], "objective": objective}


def classifier_step(model, x, index, optimizers, x_all=None) -> None:
    """One classifier-only step: Eq. 12 on fresh detached z ~ q(z|x_e), the encoder untouched; on the batch's
    examples, or (``x_all`` given) on as many indices drawn afresh from all N."""
    if x_all is not None:
        index = torch.randint(0, len(x_all), (len(x),))
        x = x_all[index]
    with torch.no_grad():
        mean, log_var = model.vae.encode(x)
        k = model.classifier_samples
        z = mean + (0.5 * log_var).exp() * torch.randn(k, *mean.shape)
    loss = -model.classifier(z.flatten(0, 1), index.repeat(k)).mean()
    for opt in optimizers:
        opt.zero_grad(set_to_none=True)
    loss.backward()
    for opt in optimizers:
        opt.step()


def train(variant: dict, seed: int, x, index, trace: bool):
    trainer = Trainer(max_epochs=EPOCHS, batch_size=BATCH, lr=1e-3, seed=seed, progress=False)
    seed_everything(seed)  # as `fit_cached`: seed, build, then `Trainer.fit` seeds again
    model = RampedVAEAS(V.VAE(latent_dim=40, hidden=HIDDEN, encoder_depth=2, decoder_depth=5), N, 1.0, 1.0,
                        hidden=CLF_HIDDEN, tree=False, classifier_lr=variant.get("lr", 3e-3), classifier_depth=2,
                        classifier_samples=variant.get("samples", 2), classifier_activation="tanh")
    generator = seed_everything(seed)
    split = TensorSplit(x, index)
    optimizers, _ = trainer.configure_optimizer(model)
    clf_optimizers = optimizers[1:]  # groups: vae, classifier_body, classifier_head
    inner, ramp_steps = variant.get("inner", 1), variant.get("ramp", 0) * EPOCHS * math.ceil(N / BATCH)
    model.train()
    steps, rows, t0 = 0, [], time.perf_counter()
    for epoch in range(EPOCHS):
        for xb, yb in split.batches(BATCH, shuffle=True, generator=generator):
            model.weight = 1.0 if ramp_steps == 0 else min(1.0, steps / ramp_steps) if math.isfinite(ramp_steps) \
                else 0.0
            trainer.step(model, xb, yb, optimizers)
            for _ in range(inner - 1):
                classifier_step(model, xb, yb, clf_optimizers, x if variant.get("fresh") else None)
            steps += 1
        if trace and (epoch + 1) % 10 == 0:
            rows.append((epoch + 1, *estimates(model, x, index, seed)[:2]))
            model.train()
    seconds = time.perf_counter() - t0
    return model, seconds, rows


def estimates(model, x, index, seed):
    terms = AS.index_classifier_terms(model, x, index, seed=seed)
    mean, log_var = V.posterior_params(model.vae, x)
    exact = V.exact_aggregate_posterior_terms(mean, log_var, draws=4, seed=seed)
    return terms["mi"], exact["mi"], exact["kl"], terms["mi_ce_bound"], terms["md"] - exact["md"]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seeds", type=int, nargs="+", default=[0])
    parser.add_argument("--variants", nargs="+", default=CORE, choices=list(VARIANTS))
    parser.add_argument("--trace", action="store_true")
    args = parser.parse_args()
    variants = ["baseline"] + [v for v in args.variants if v != "baseline"]  # the baseline first: the ratios' base
    mnist = load_dataset("mnist", device="cpu")
    x = binarized(mnist.train, 0).x[:N]
    index = torch.arange(N)
    x_test = binarized(mnist.test, 2).x[:1000]
    print(f"N = {N} (log N = {math.log(N):.3f}, 0.1 log N = {0.1 * math.log(N):.3f}), {EPOCHS} epochs, "
          f"threads {torch.get_num_threads()}")
    print("| seed | variant | Î online | exact MI | gap | Î / exact | ratio / baseline | CE bound | MD̂ - MD | "
          "NLL test | KL train | s | time / baseline |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|---|")
    for seed in args.seeds:
        base = None
        for name in variants:
            model, seconds, rows = train(VARIANTS[name], seed, x, index, args.trace)
            online, exact, kl, ce_bound, md_error = estimates(model, x, index, seed)
            torch.manual_seed(seed)
            nll = V.importance_weighted_nll(model.vae, x_test, k=50).mean().item()
            ratio = online / exact
            if base is None:
                base = (ratio, seconds)
            print(f"| {seed} | {name} | {online:.3f} | {exact:.3f} | {online - exact:+.3f} | {ratio:.3f} | "
                  f"{ratio / base[0]:.2f} | {ce_bound:.3f} | {md_error:+.3f} | {nll:.2f} | {kl:.2f} | {seconds:.1f} | {seconds / base[1]:.2f} |",
                  flush=True)
            for epoch, o, e in rows:
                print(f"|   | epoch {epoch} | {o:.3f} | {e:.3f} | {o - e:+.3f} | {o / e:.3f} | | | | | | | |", flush=True)


if __name__ == "__main__":
    main()
