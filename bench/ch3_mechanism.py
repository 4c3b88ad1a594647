"""Does any VC setting inside the paper's and the reference code's ranges engage VC's mechanism? Chosen on
VALIDATION latents by the mechanism diagnostic, never by an ECE (run: python bench/ch3_mechanism.py).

VC's claim is that its KL term pulls the class-conditional latents q(z|y) toward the class priors p(z|y), so that
they fill them out. The diagnostic, per model on the validation split: the spread ratio (tr Cov(z|y) over the trace
of the prior's covariance, mean over classes; 1 = the latents fill their prior) and KL(q(z|y) ‖ p(z|y)) by the
Kozachenko–Leonenko estimate (`lvmcls.estimators.latent_kl`, mean over classes), each against `ce_gaussian` (the
same Gaussian head trained by CE alone, which has no KL term) of the same seed.

Fixed before the runs: the chapter's `ci` regime (Fashion-MNIST, 10,000 training images, 10 epochs, the MLP
encoder, latent 32, Adam 1e-3, batch 128), seed 0 (a screen: the chapter's gate, with its paired seeds, decides).
The grid, the ranges the paper and the reference code give: β ∈ {0.01 (the reference scripts), 0.1, 1 (the
paper's analysis, §3, "letting β = 1")} × the discriminator's form ∈ {linear (the paper's and the reference
code's default), mlp with 512 tanh units (the reference code's option)} at its learning rate 1e-3 (the reference
code's AdamW default), and 1e-2 at β = 1 for both forms (the strongest pull; a shared 2-core CPU allowed no full
product). The likelihood weight stays the reference code's 0.01. Gate (the chapter states the same gate, with
paired seed intervals): a setting engages the mechanism when its spread ratio exceeds ce_gaussian's by at least
0.10 AND its kNN KL is below ce_gaussian's. Outcome: a setting that passes becomes a new VC arm of chapter 3, registered before its data; the
chapter's VC keeps the reference weights, fixed before its runs. The last line names the eligible setting (validation
accuracy within 2 points of ce_gaussian's) with the largest spread-ratio gain, and whether it passes.
Prints one markdown row per setting; the rows are kept in bench/ch3_mechanism.md.
"""

from __future__ import annotations

import json
import statistics
import sys
import time

import torch

from lvmcls import estimators
from lvmcls.data import balanced_subset, load_dataset
from lvmcls.models import evaluate_classifier
from lvmcls.vc import train_vc_model

torch.set_num_threads(2)
SEEDS = (0,)
GAIN = 0.10
ACC_TOLERANCE = 0.02
fashion = load_dataset("fashion_mnist")
data = fashion.replace(train=balanced_subset(fashion.train, 1000, seed=0))


def diagnose(model):
    z = model.latents(data.val.x)
    y = data.val.y
    ratio = statistics.fmean(estimators.spread_ratio(z, y, model.prior).values())
    kl = statistics.fmean(estimators.latent_kl(z, y, model.prior).values())
    acc = evaluate_classifier(model, data.val)[0]["acc"]
    return {"spread": ratio, "kl": kl, "acc": acc}


def train(objective, s, **kw):
    model, _ = train_vc_model(f"bench-ch3-mech-{objective}-s{s}", data, objective, "mlp", 10, 32, epochs=10, seed=s,
                              **kw)
    return diagnose(model)


t0 = time.time()
base = {s: train("ce_gaussian", s) for s in SEEDS}
# the strongest pull first (β = 1, the discriminator that can see spread), so that a CPU shared with other jobs
# answers the question early; the reference weights (β = 0.01, linear, 1e-3) last: the chapter's own gate measures
# them with its paired seeds
GRID = [(1.0, "mlp", 1e-3), (1.0, "linear", 1e-3), (1.0, "mlp", 1e-2), (0.1, "mlp", 1e-3), (0.1, "linear", 1e-3),
        (1.0, "linear", 1e-2), (0.01, "mlp", 1e-3), (0.01, "linear", 1e-3)]
settings = [dict(beta=b, ratio_form=f, ratio_hidden=(512 if f == "mlp" else None), ratio_lr=lr) for b, f, lr in GRID]
rows = []
print("| objective | β | T's form | T's lr | val acc (%) | spread ratio | gain over ce_gaussian | kNN KL | "
      "KL − ce_gaussian's | gate |")
print("|---|---|---|---|---|---|---|---|---|---|")
b_acc = statistics.fmean(v["acc"] for v in base.values())
print(f"| ce_gaussian | — | — | — | {100 * b_acc:.2f} | "
      f"{statistics.fmean(v['spread'] for v in base.values()):.3f} | — | "
      f"{statistics.fmean(v['kl'] for v in base.values()):.1f} | — | — |", flush=True)
for objective in ("vc", "vc_reference"):
    for kw in settings if objective == "vc" else settings[:1]:
        out = {s: train(objective, s, **kw) for s in SEEDS}
        gains = [out[s]["spread"] - base[s]["spread"] for s in SEEDS]
        dkl = [out[s]["kl"] - base[s]["kl"] for s in SEEDS]
        acc = statistics.fmean(v["acc"] for v in out.values())
        gate = all(g >= GAIN for g in gains) and all(d < 0 for d in dkl)
        rows.append(dict(objective=objective, **kw, acc=acc, gain=statistics.fmean(gains), dkl=statistics.fmean(dkl),
                         gate=gate, eligible=acc >= b_acc - ACC_TOLERANCE))
        print(f"| {objective} | {kw['beta']} | {kw['ratio_form']} | {kw['ratio_lr']:g} | {100 * acc:.2f} | "
              f"{statistics.fmean(v['spread'] for v in out.values()):.3f} | {statistics.fmean(gains):+.3f} | "
              f"{statistics.fmean(v['kl'] for v in out.values()):.1f} | {statistics.fmean(dkl):+.1f} | "
              f"{'passes' if gate else 'fails'} |", flush=True)
eligible = [r for r in rows if r["eligible"] and r["objective"] == "vc"]
best = max(eligible, key=lambda r: r["gain"]) if eligible else None
print()
if best and best["gate"]:
    print(f"Passes the gate (a candidate for a new, registered VC arm): {json.dumps(best)}")
else:
    print(f"No setting passes the gate; the largest gain among eligible settings: {json.dumps(best)}.")
print(f"{time.time() - t0:.0f} s (2 torch threads; the CPU shared with other jobs)", file=sys.stderr)
