"""Where does chapter 5's placebo leave the VAE? (seed 19 of the main `long` design, a diagnostic)

The placebo arm computes VAE-AS's terms and adds them with weight 0, with common random numbers: on 45 of the first
46 `long` seeds its trained weights give the VAE's test NLL to the last bit; on seed 19 the two differ by 1.4 nats.
This script retrains both arms of a seed exactly as chapter 5's `long` profile does (its knobs, builders and
`Trainer`; no cache), then retrains them for fewer epochs to find the first epoch after which their weights differ,
and whether any gradient of the weight-0 terms was not finite there (0 × inf = NaN, 0 × NaN = NaN).

    env PYTHONPATH=. python bench/placebo_divergence.py 19 > bench/placebo_divergence.md
"""

from __future__ import annotations

import json
import platform
import subprocess
import sys
from pathlib import Path

import torch

from lvmcls import vae as V
from lvmcls import vae_as as AS
from lvmcls.data import TensorSplit, binarized, load_dataset
from lvmcls.train import Trainer, seed_everything

SCHEDULE = json.loads(next(line.split("=", 1)[1] for line in
                           Path("bench/index_classifier_schedule.md").read_text().splitlines()
                           if line.startswith("CHOSEN =")).replace("True", "true").replace("False", "false"))
N, EPOCHS, BATCH, HIDDEN, LATENT = 1000, 60, 128, 200, 40  # chapter 5's ci / long main design


def new_vae():
    return V.VAE(latent_dim=LATENT, hidden=HIDDEN, encoder_depth=2, decoder_depth=5, init="glorot")


def new_placebo():
    return AS.VAEAS(new_vae(), N, 1.0, 1.0, hidden=128, tree=False, classifier_lr=SCHEDULE["classifier_lr"],
                    classifier_depth=2, classifier_samples=2, classifier_activation="tanh", placebo=True,
                    refit_every=10, refit_steps=0, refit_batch=512, refit_lr=SCHEDULE["classifier_lr"],
                    posterior="classifier", classifier_steps=SCHEDULE["classifier_steps"],
                    classifier_fresh=SCHEDULE["classifier_fresh"])


def train(build, data, seed, epochs):
    seed_everything(seed)
    model = build()
    with torch.random.fork_rng():
        Trainer(max_epochs=epochs, batch_size=BATCH, lr=1e-3, seed=seed, progress=False).fit(model, data)
    return getattr(model, "vae", model).state_dict()


def same(a, b):
    return all(torch.equal(a[k], b[k]) for k in a if not k.startswith("draws"))


def main(seed: int):
    torch.set_num_threads(2)
    mnist = load_dataset("mnist")
    data = TensorSplit(binarized(mnist.train, 0).x[:N], torch.arange(N))
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True).stdout.strip()
    print(f"# Chapter 5's placebo against the VAE, seed {seed}\n\n`bench/placebo_divergence.py`, commit {commit}, "
          f"{platform.processor() or platform.machine()}, 2 threads, torch {torch.__version__}; {N} images, "
          f"batch {BATCH}, schedule {SCHEDULE}.\n")
    lo, hi = 0, EPOCHS  # weights equal after lo epochs; differ after hi (if they differ at all)
    if same(train(new_vae, data, seed, EPOCHS), train(new_placebo, data, seed, EPOCHS)):
        print(f"After {EPOCHS} epochs the placebo's VAE weights equal the VAE's, bit for bit: the committed record's "
              "difference did not reproduce in this process.")
        return
    while hi - lo > 1:
        mid = (lo + hi) // 2
        equal = same(train(new_vae, data, seed, mid), train(new_placebo, data, seed, mid))
        print(f"- after {mid} epochs: weights {'equal' if equal else 'differ'}", flush=True)
        lo, hi = (mid, hi) if equal else (lo, mid)
    print(f"\nThe weights first differ after epoch {hi} (equal after {lo}).")


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 19)
