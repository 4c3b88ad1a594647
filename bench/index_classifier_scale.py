"""Does VAE-AS's index classifier learn when N is large? (chapter 5's full profile: N = 50,000)

Trains one VAE on the first N binarised MNIST images (a few epochs), freezes it, computes the exact mutual
information I_q(z; x) of its encoder from the whole mixture (`exact_aggregate_posterior_terms`), then fits the index
classifier s(e|z) alone (`fit_index_classifier`) with each head (flat softmax + Adam, binary tree + SparseAdam) and
learning rate, and prints its plug-in MI (Eq. 9/13) and cross-entropy bound beside the exact MI, as a ratio.

    python bench/index_classifier_scale.py            # N = 50,000 (run it on a GPU)
    python bench/index_classifier_scale.py --n 2000   # a CPU-sized check
    python bench/index_classifier_scale.py --online   # VAE-AS (1, 1) trained with its classifier, per lr

``--online`` trains VAE-AS (1, 1) itself (flat head, two z per example, as chapter 5 does) for each classifier
learning rate, prints the classifier's loss per epoch against log N, its Eq. 9/13 MI at the end, the fraction of the
classifier's last hidden units that are dead (zero on every one of 4,096 z), and the MI after a refit that starts
from the trained classifier and after one that starts from a fresh classifier.
"""

from __future__ import annotations

import argparse
import math
import time

import torch

from lvmcls import vae as V
from lvmcls import vae_as as AS
from lvmcls.data import TensorSplit, binarized, load_dataset
from lvmcls.train import Trainer, pick_device


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--n", type=int, default=50_000)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--steps", type=int, default=3000)
    parser.add_argument("--batch", type=int, default=1024)
    parser.add_argument("--online", action="store_true")
    parser.add_argument("--lrs", type=float, nargs="+", default=[3e-3, 1e-3, 3e-4])
    parser.add_argument("--activation", default="relu", choices=sorted(AS.CLASSIFIER_ACTIVATIONS))
    args = parser.parse_args()
    if args.online:
        return online(args)
    device = pick_device(None)
    torch.manual_seed(0)
    mnist = load_dataset("mnist", device=device)
    x = binarized(mnist.train, 0).x[: args.n]
    vae = V.VAE(latent_dim=40, hidden=500, encoder_depth=2, decoder_depth=5)
    t0 = time.perf_counter()
    Trainer(max_epochs=args.epochs, batch_size=256, lr=1e-3, device=device, seed=0, progress=False).fit(
        vae, TensorSplit(x, torch.zeros(args.n, dtype=torch.long, device=device)))
    print(f"device {device}, N = {args.n} (log N = {math.log(args.n):.3f}); VAE trained "
          f"{args.epochs} epochs in {time.perf_counter() - t0:.1f} s")
    mean, log_var = V.posterior_params(vae, x)
    exact = V.exact_aggregate_posterior_terms(mean, log_var, draws=1)
    print(f"exact I_q(z; x) = {exact['mi']:.3f} nats")
    print("| head | optimiser | lr | steps | MI (Eq. 9/13) | CE bound | MI / exact | top-1 error | s |")
    print("|---|---|---|---|---|---|---|---|---|")
    index = torch.arange(args.n, device=device)
    for tree in (False, True):
        for lr in (1e-2, 3e-3, 1e-3):
            torch.manual_seed(1)
            model = AS.VAEAS(vae, args.n, hidden=500, tree=tree, classifier_depth=2).to(device)
            t0 = time.perf_counter()
            AS.fit_index_classifier(model, x, steps=args.steps, batch_size=args.batch, lr=lr, seed=0)
            terms = AS.index_classifier_terms(model, x, index, seed=0)
            seconds = time.perf_counter() - t0
            print(f"| {'tree' if tree else 'flat'} | {'SparseAdam' if tree else 'Adam'} | {lr:g} | {args.steps} | "
                  f"{terms['mi']:.3f} | {terms['mi_ce_bound']:.3f} | {terms['mi'] / exact['mi']:.3f} | "
                  f"{terms['top1_error']:.3f} | {seconds:.1f} |", flush=True)


def online(args) -> None:
    device = pick_device(None)
    mnist = load_dataset("mnist", device=device)
    x = binarized(mnist.train, 0).x[: args.n]
    index = torch.arange(args.n, device=device)
    print(f"device {device}, N = {args.n} (log N = {math.log(args.n):.3f}), VAE-AS (1, 1), {args.epochs} epochs, "
          f"classifier activation {args.activation}")
    print("| classifier lr | classifier loss per epoch | MI online | dead units | MI refit (as is) | "
          "MI refit (fresh) | exact MI | s |")
    print("|---|---|---|---|---|---|---|---|")
    for lr in args.lrs:
        torch.manual_seed(0)
        vae = V.VAE(latent_dim=40, hidden=500, encoder_depth=2, decoder_depth=5)
        model = AS.VAEAS(vae, args.n, hidden=500, tree=False, classifier_lr=lr, classifier_depth=2,
                        classifier_samples=2, classifier_activation=args.activation)
        t0 = time.perf_counter()
        history = Trainer(max_epochs=args.epochs, batch_size=256, lr=1e-3, device=device, seed=0,
                          progress=False).fit(model, TensorSplit(x, index))
        mean, log_var = V.posterior_params(vae, x)
        exact = V.exact_aggregate_posterior_terms(mean, log_var, draws=1)["mi"]
        mi_online = AS.index_classifier_terms(model, x, index, seed=0)["mi"]
        with torch.no_grad():
            z = mean[:4096] + (0.5 * log_var[:4096]).exp() * torch.randn_like(mean[:4096])
            h = model.classifier.body(z)  # dead: a unit constant over all z (zero for ReLU, ±1 for tanh)
            dead = ((h - h[:1]).abs() < 1e-6).all(0).float().mean().item()
        fresh = AS.VAEAS(vae, args.n, hidden=500, tree=False, classifier_depth=2,
                        classifier_activation=args.activation).to(device)
        refits = []
        for m, restart in ((model, False), (fresh, True)):
            AS.fit_index_classifier(m, x, steps=args.steps, batch_size=args.batch, lr=1e-2, seed=0, fresh=restart)
            refits.append(AS.index_classifier_terms(m, x, index, seed=0)["mi"])
        losses = " ".join(f"{v:.2f}" for v in history.train["classifier_loss"])
        print(f"| {lr:g} | {losses} | {mi_online:.3f} | {dead:.2f} | {refits[0]:.3f} | {refits[1]:.3f} | "
              f"{exact:.3f} | {time.perf_counter() - t0:.0f} |", flush=True)


if __name__ == "__main__":
    main()
