"""Step time of VAE-AS's binary-tree softmax against a flat softmax over N sample indices (VAE-AS §3.5), at several N.

Two steps are timed for each head, on batches of 128:
- the whole VAE-AS (1, 1) training step (`VAEAS.training_step`: the VAE, Eq. 9/13's entropy over all N indices,
  Eq. 14, and the classifier's cross-entropy on 2 draws of z), forward, backward and the optimisers, with the
  paper's 500-unit layers and depths 2 / 5 / 2 and 40 latent dimensions: the step the `full` profile takes;
- the classifier's cross-entropy step alone (Eq. 12; SparseAdam for the tree's node embedding, Adam for the flat
  layer): what the tree is built to speed up.

Prints the times and the ratios tree / flat (below 1: the tree is faster) and writes them, with the machine, to
``bench/tree_softmax.md`` (chapter 5 quotes that file).

    python bench/tree_softmax.py [--device cuda] [--n 1000 10000 50000] [--steps 5] [--threads 2]
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

import torch
from timing import seconds_per_step

from lvmcls.results import cpu_model
from lvmcls.train import Trainer, pick_device
from lvmcls.vae import VAE
from lvmcls.vae_as import VAEAS, IndexClassifier

BATCH, LATENT, HIDDEN = 128, 40, 500


def time_vae_as_step(tree: bool, n: int, device, steps: int) -> float:
    torch.manual_seed(0)
    model = VAEAS(VAE(latent_dim=LATENT, hidden=HIDDEN, encoder_depth=2, decoder_depth=5, init="glorot"), n,
                  hidden=HIDDEN, tree=tree, classifier_samples=2, classifier_activation="tanh").to(device)
    trainer = Trainer(device=device, progress=False)
    optimizers, _ = trainer.configure_optimizer(model)
    x = (torch.rand(steps + 3, BATCH, 784, device=device) < 0.3).float()
    e = torch.randint(0, n, (steps + 3, BATCH), device=device)
    return seconds_per_step(lambda i: trainer.step(model, x[i], e[i], optimizers), steps, device, warmup=2)


def time_classifier_step(tree: bool, n: int, device, steps: int) -> float:
    torch.manual_seed(0)
    clf = IndexClassifier(LATENT, n, hidden=HIDDEN, tree=tree, activation="tanh").to(device)
    head_opt = (torch.optim.SparseAdam if tree else torch.optim.Adam)(clf.head.parameters(), lr=1e-3)
    opts = [torch.optim.Adam(clf.body.parameters(), lr=1e-3), head_opt]
    z = torch.randn(steps + 3, BATCH, LATENT, device=device)
    e = torch.randint(0, n, (steps + 3, BATCH), device=device)

    def step(i: int) -> None:
        loss = -clf(z[i], e[i]).mean()
        for opt in opts:
            opt.zero_grad()
        loss.backward()
        for opt in opts:
            opt.step()

    return seconds_per_step(step, steps, device, warmup=2)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default=None)
    parser.add_argument("--n", type=int, nargs="+", default=[1000, 10_000, 50_000])
    parser.add_argument("--steps", type=int, default=5)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--out", default=str(Path(__file__).with_name("tree_softmax.md")))
    args = parser.parse_args()
    device = pick_device(args.device)
    torch.set_num_threads(args.threads)
    where = f"{device}" + (f", {cpu_model()}, {args.threads} threads, load average {os.getloadavg()[0]:.1f} at "
                           "the start (other jobs on the machine inflate absolute times)"
                           if device.type == "cpu" else "")
    lines = ["# Binary-tree vs flat softmax over N indices (bench/tree_softmax.py)", "",
             f"{where}; batch {BATCH}, 500-unit layers, mean of {args.steps} steps after 2 warm-up steps", "",
             ("| N | VAE-AS step, flat (ms) | VAE-AS step, tree (ms) | ratio tree / flat | CE step, flat (ms) "
              "| CE step, tree (ms) | ratio tree / flat |"), "|---|---|---|---|---|---|---|"]
    for n in args.n:
        step = [time_vae_as_step(t, n, device, args.steps) for t in (False, True)]
        ce = [time_classifier_step(t, n, device, args.steps) for t in (False, True)]
        lines.append(f"| {n} | {1000 * step[0]:.1f} | {1000 * step[1]:.1f} | {step[1] / step[0]:.2f} "
                     f"| {1000 * ce[0]:.1f} | {1000 * ce[1]:.1f} | {ce[1] / ce[0]:.2f} |")
        print(lines[-1], flush=True)
    text = "\n".join(lines) + "\n"
    Path(args.out).write_text(text)
    print(text)


if __name__ == "__main__":
    main()
