"""Chapter 5's `ci` / main-`long` arms for the benches: the same builders, knobs and `Trainer` as the chapter (its
registered classifier schedule read from `bench/index_classifier_schedule.md`), no cache."""

from __future__ import annotations

import json
from pathlib import Path

import torch

from lvmcls import vae as V
from lvmcls import vae_as as AS
from lvmcls.data import TensorSplit, binarized, load_dataset
from lvmcls.train import Trainer, seed_everything

SCHEDULE = json.loads(next(line.split("=", 1)[1] for line in
                           (Path(__file__).parent / "index_classifier_schedule.md").read_text().splitlines()
                           if line.startswith("CHOSEN =")).replace("True", "true").replace("False", "false"))
N, EPOCHS, BATCH, HIDDEN, LATENT = 1000, 60, 128, 200, 40  # chapter 5's ci / main long design


def new_vae():
    return V.VAE(latent_dim=LATENT, hidden=HIDDEN, encoder_depth=2, decoder_depth=5, init="glorot")


def new_vae_as(placebo=False, posterior="classifier"):
    return AS.VAEAS(new_vae(), N, 1.0, 1.0, hidden=128, tree=False, classifier_lr=SCHEDULE["classifier_lr"],
                    classifier_depth=2, classifier_samples=2, classifier_activation="tanh", placebo=placebo,
                    refit_every=10, refit_steps=0, refit_batch=512, refit_lr=SCHEDULE["classifier_lr"],
                    posterior=posterior, classifier_steps=SCHEDULE["classifier_steps"],
                    classifier_fresh=SCHEDULE["classifier_fresh"])


BUILD = {"vae": new_vae, "placebo": lambda: new_vae_as(placebo=True), "vae_as": new_vae_as,
         "vae_as_exact": lambda: new_vae_as(posterior="exact")}


def data():
    """(training split with index labels, the chapter's binarised test images)."""
    mnist = load_dataset("mnist")
    return TensorSplit(binarized(mnist.train, 0).x[:N], torch.arange(N)), binarized(mnist.test, 2).x


def train(arm: str, train_split, seed: int, epochs: int = EPOCHS) -> V.VAE:
    """The arm trained as the chapter trains it (seeded before building, on a forked RNG); its VAE."""
    seed_everything(seed)
    model = BUILD[arm]()
    with torch.random.fork_rng():
        Trainer(max_epochs=epochs, batch_size=BATCH, lr=1e-3, seed=seed, progress=False).fit(model, train_split)
    return getattr(model, "vae", model)
