"""Does VAE-AS's index classifier learn when N is large? (chapter 5's full profile: N = 50,000)

Trains one VAE on the first N binarised MNIST images (a few epochs), freezes it, computes the exact mutual
information I_q(z; x) of its encoder from the whole mixture (`exact_aggregate_posterior_terms`), then fits the index
classifier s(e|z) alone (`fit_index_classifier`) with each head (flat softmax + Adam, binary tree + SparseAdam) and
learning rate, and prints its plug-in MI (Eq. 9/13) and cross-entropy bound beside the exact MI, as a ratio.

    python bench/index_classifier_scale.py            # N = 50,000 (run it on a GPU)
    python bench/index_classifier_scale.py --n 2000   # a CPU-sized check
"""

from __future__ import annotations

import argparse
import math
import time

import torch

from lvmcls import vae as V
from lvmcls.data import TensorSplit, binarized, load_dataset
from lvmcls.train import Trainer, pick_device


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--n", type=int, default=50_000)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--steps", type=int, default=3000)
    parser.add_argument("--batch", type=int, default=1024)
    args = parser.parse_args()
    device = pick_device(None)
    torch.manual_seed(0)
    mnist = load_dataset("mnist", device=device)
    x = binarized(mnist.train, 0).x[: args.n]
    vae = V.VAE(z_dim=40, hidden=500, encoder_depth=2, decoder_depth=5)
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
            model = V.VAEAS(vae, args.n, hidden=500, tree=tree, classifier_depth=2).to(device)
            t0 = time.perf_counter()
            V.fit_index_classifier(model, x, steps=args.steps, batch_size=args.batch, lr=lr, seed=0)
            terms = V.index_classifier_terms(model, x, index, seed=0)
            seconds = time.perf_counter() - t0
            print(f"| {'tree' if tree else 'flat'} | {'SparseAdam' if tree else 'Adam'} | {lr:g} | {args.steps} | "
                  f"{terms['mi']:.3f} | {terms['mi_ce_bound']:.3f} | {terms['mi'] / exact['mi']:.3f} | "
                  f"{terms['top1_error']:.3f} | {seconds:.1f} |", flush=True)


if __name__ == "__main__":
    main()
