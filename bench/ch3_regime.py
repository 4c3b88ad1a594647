"""How chapter 3's `ci` calibration regime was chosen, on VALIDATION data only (run: python bench/ch3_regime.py).

Fixed before the runs: candidates = Fashion-MNIST with the book's MLP encoder (2×256, latent 32, Adam 1e-3,
batch 128), a class-balanced training subset of {5,000, 10,000} images, {10, 20} epochs; the plain linear-softmax
CE arm only (no VC arm is looked at), seed 0. Rule: among the candidates whose CE validation ECE is at least 3 %
(CE measurably over-confident, "several percent"), take the one with the most training images, then the fewest
epochs (cheapest). Prints one markdown row per candidate; the rows are kept in bench/ch3_regime.md.
"""

from __future__ import annotations

import time

import torch

from lvmcls import calibration
from lvmcls.data import balanced_subset, load_dataset
from lvmcls.models import evaluate_classifier
from lvmcls.vc import train_vc_model

torch.set_num_threads(2)
fashion = load_dataset("fashion_mnist")
print("| training images | epochs | CE val accuracy | CE val ECE (%) | CE+TS val ECE (%) | T | train loss | s |")
print("|---|---|---|---|---|---|---|---|")
for n in (5_000, 10_000):
    data = fashion.replace(train=balanced_subset(fashion.train, n // 10, seed=0))
    for epochs in (10, 20):
        t0 = time.time()
        model, record = train_vc_model(f"bench-ch3-regime-{n}-{epochs}", data, "ce", "mlp", 10, 32, epochs=epochs,
                                       seed=0)
        report, logits = evaluate_classifier(model, data.val)
        t = calibration.fit_temperature(logits, data.val.y.cpu())
        ts = evaluate_classifier(model, data.val, t)[0]
        train_acc = evaluate_classifier(model, data.train)[0]["acc"]
        print(f"| {n} | {epochs} | {report['acc']:.4f} | {100 * report['ece']:.2f} | {100 * ts['ece']:.2f} | {t:.2f} "
              f"| train acc {train_acc:.4f} | {time.time() - t0:.0f} |", flush=True)
