"""A reproduction of Pyro's published M2 example beside lvmcls's M2: same model configuration, same data, same
epochs, different batching (below), one run.

    pip install pyro-ppl        # the bench only: pyro is NOT a dependency of lvmcls
    python bench/pyro_m2_side_by_side.py --epochs 3 [--threads 2] [--out bench/pyro_m2_side_by_side.md]

**Where the Pyro side comes from.** `PyroSSVAE`, `clipped_softmax` / `clipped_sigmoid` and `pyro_epoch` reproduce
Pyro's public example `examples/vae/ss_vae_M2.py` (repository pyro-ppl/pyro, and its helpers
`examples/vae/utils/custom_mlp.py`): the model and guide, the auxiliary classification loss of Kingma et al.
(`model_classify`, scaled by the multiplier, its own SVI step on each labelled batch), `TraceEnum_ELBO` with y
enumerated in parallel, and the batching of `run_inference_for_epoch` (batch i of an epoch is labelled when
i % int(50000 / sup_num) == 1, so with 100 labels and batch 100 one labelled step per epoch against 499 unlabelled
ones). Its settings are the tutorial's: z 50, one hidden layer of 500 softplus units per network, Adam 4.2e-4
(β₁ 0.9), multiplier 46, exact enumeration, auxiliary loss on. Batch 100, not 200: the example asserts that the
number of labels is a multiple of the batch size, so 100 labels with batch 200 does not run. This code lives only
here, never in the library.

**The lvmcls side.** `lvmcls.ssvae.M2` with the same sizes (z 50, one hidden layer of 500 softplus units in the
encoder, the decoder and the classifier), Adam 4.2e-4, batch 100, no KL warm-up, y summed out exactly, and a
classification weight of 46 per labelled example (α' = 46 · N_l / N = 0.092 in lvmcls's convention, see
`lvmcls.ssvae`), trained by the same loop as `lvmcls.train.Trainer` (Adam, no clipping) written out here so that
the accuracy can be read after every epoch. The two sides alternate epoch by epoch (Pyro's epoch 1, lvmcls's
epoch 1, Pyro's epoch 2, ...), and the time per epoch is the median over the epochs, so that a change of load on a
shared machine hits both alike. The batching differs by design: lvmcls puts ``--labelled-per-batch``
labelled rows in every batch (cycled), Pyro one labelled batch per epoch; both estimate the same objective per
epoch (every labelled example's bound once, every unlabelled one once, the classification term × 46), but the
optimisation is not the same: with 10 labelled rows per batch of 100, lvmcls takes a gradient step on each of the
100 labels about 55 times per epoch (555 steps × 10 / 100), Pyro's example once, which alone can make lvmcls learn
faster in the first epochs. The side-by-side is therefore not a comparison at equal optimisation settings.

**The data**, identical for both: `lvmcls.data.load_dataset("mnist")` (grey levels in [0, 1]; 50,000 training
images, the last 10,000 of the official training set as validation, the 10,000 test images), a class-balanced draw
of ``--sup`` labels (`lvmcls.data.labelled_unlabelled`, seed ``--seed``), the other 49,900 training images
unlabelled. Each epoch both models are scored on the validation and the test images (the Pyro example's
"validation accuracy" and "test accuracy"); the reported pair is the test accuracy at the best validation epoch and
at the last epoch. Time per epoch is the training loop only (evaluation excluded), measured in this one process.

The printed Markdown is also written to ``--out``; chapter 7 reads the numbers from the JSON block in that file.
"""

from __future__ import annotations

import argparse
import json
import math
import platform
import statistics
import time
from pathlib import Path

import torch
from torch import nn

from lvmcls import ssvae as S
from lvmcls.data import labelled_unlabelled, load_dataset

PUBLISHED = {"pyro_tutorial_acc_100": 0.9319, "pyro_tutorial_ci95": 0.0060, "kingma_acc_100": 0.8803}


# --------------------------------------------------------------------------------------------
# Pyro's example (reproduced from pyro-ppl/pyro examples/vae/ss_vae_M2.py and utils/custom_mlp.py)


def clipped_softmax(eps):
    class ClippedSoftmax(nn.Module):
        def forward(self, v):
            return torch.softmax(v, -1).clamp(eps, 1 - eps)

    return ClippedSoftmax()


def clipped_sigmoid(eps):
    class ClippedSigmoid(nn.Module):
        def forward(self, v):
            return torch.sigmoid(v).clamp(eps, 1 - eps)

    return ClippedSigmoid()


class PyroSSVAE(nn.Module):
    """The example's SSVAE: encoder_y (x → 500 softplus → softmax), encoder_z ([x, y] → 500 softplus → loc, exp
    scale), decoder ([z, y] → 500 softplus → sigmoid); the model and the guide as in the example."""

    def __init__(self, z_dim=50, hidden=500, eps=1e-7, aux_loss_multiplier=46.0):
        super().__init__()
        self.z_dim, self.aux_loss_multiplier = z_dim, aux_loss_multiplier
        self.encoder_y = nn.Sequential(nn.Linear(784, hidden), nn.Softplus(), nn.Linear(hidden, 10),
                                       clipped_softmax(eps))
        self.encoder_z_hidden = nn.Sequential(nn.Linear(784 + 10, hidden), nn.Softplus())
        self.encoder_z_loc, self.encoder_z_scale = nn.Linear(hidden, z_dim), nn.Linear(hidden, z_dim)
        self.decoder = nn.Sequential(nn.Linear(z_dim + 10, hidden), nn.Softplus(), nn.Linear(hidden, 784),
                                     clipped_sigmoid(eps))

    @staticmethod
    def _cat(a, b):  # the example's ConcatModule with allow_broadcast (parallel enumeration)
        shape = torch.broadcast_shapes(a.shape[:-1], b.shape[:-1])
        return torch.cat([a.expand(shape + a.shape[-1:]), b.expand(shape + b.shape[-1:])], -1)

    def model(self, xs, ys=None):
        import pyro
        import pyro.distributions as dist

        pyro.module("ss_vae", self)
        batch_size = xs.size(0)
        with pyro.plate("data"):
            prior_loc = xs.new_zeros([batch_size, self.z_dim])
            prior_scale = xs.new_ones([batch_size, self.z_dim])
            zs = pyro.sample("z", dist.Normal(prior_loc, prior_scale).to_event(1))
            alpha_prior = xs.new_ones([batch_size, 10]) / 10.0
            ys = pyro.sample("y", dist.OneHotCategorical(alpha_prior), obs=ys)
            loc = self.decoder(self._cat(zs, ys))
            pyro.sample("x", dist.Bernoulli(loc, validate_args=False).to_event(1), obs=xs)

    def guide(self, xs, ys=None):
        import pyro
        import pyro.distributions as dist

        with pyro.plate("data"):
            if ys is None:
                alpha = self.encoder_y(xs)
                ys = pyro.sample("y", dist.OneHotCategorical(alpha))
            h = self.encoder_z_hidden(self._cat(xs, ys))
            pyro.sample("z", dist.Normal(self.encoder_z_loc(h), torch.exp(self.encoder_z_scale(h))).to_event(1))

    def model_classify(self, xs, ys=None):
        import pyro
        import pyro.distributions as dist

        pyro.module("ss_vae", self)
        with pyro.plate("data"):
            if ys is not None:
                alpha = self.encoder_y(xs)
                with pyro.poutine.scale(scale=self.aux_loss_multiplier):
                    pyro.sample("y_aux", dist.OneHotCategorical(alpha), obs=ys)

    def guide_classify(self, xs, ys=None):
        pass

    def classify(self, x):
        return self.encoder_y(x).argmax(-1)


def pyro_epoch(losses, sup, unsup, batch_size, generator, sup_num, train_size=50_000):
    """One epoch of the example's `run_inference_for_epoch`: shuffled loaders, batch i supervised when
    i % int(train_size / sup_num) == 1 (until the labelled batches are used up)."""
    x_l, y_l = sup
    sup_order = torch.randperm(len(x_l), generator=generator)
    unsup_order = torch.randperm(len(unsup), generator=generator)
    sup_batches = [sup_order[i:i + batch_size] for i in range(0, len(x_l), batch_size)]
    unsup_batches = [unsup_order[i:i + batch_size] for i in range(0, len(unsup), batch_size)]
    periodic = int(train_size / (1.0 * sup_num))
    ctr_sup, ctr_unsup = 0, 0
    for i in range(len(sup_batches) + len(unsup_batches)):
        if i % periodic == 1 and ctr_sup < len(sup_batches):
            idx = sup_batches[ctr_sup]
            ctr_sup += 1
            xs, ys = x_l[idx], nn.functional.one_hot(y_l[idx], 10).float()
            for loss in losses:
                loss.step(xs, ys)
        else:
            xs = unsup[unsup_batches[ctr_unsup]]
            ctr_unsup += 1
            losses[0].step(xs)


# --------------------------------------------------------------------------------------------


def accuracy(predict, split, batch=1000):
    with torch.no_grad():
        hits = sum((predict(split.x[i:i + batch].flatten(1)) == split.y[i:i + batch]).sum().item()
                   for i in range(0, len(split), batch))
    return hits / len(split)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--epochs", type=int, default=3)
    p.add_argument("--sup", type=int, default=100, help="labels in total (class-balanced)")
    p.add_argument("--batch", type=int, default=100)
    p.add_argument("--lr", type=float, default=4.2e-4)
    p.add_argument("--multiplier", type=float, default=46.0, help="classification weight per labelled example")
    p.add_argument("--labelled-per-batch", type=int, default=10, help="lvmcls side only")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--unlabelled-limit", type=int, default=None, help="for tests: fewer unlabelled images")
    p.add_argument("--eval-limit", type=int, default=None, help="for tests: fewer validation/test images")
    p.add_argument("--out", type=Path, default=None)
    args = p.parse_args(argv)

    import pyro
    from pyro.infer import SVI, Trace_ELBO, TraceEnum_ELBO, config_enumerate
    from pyro.optim import Adam

    torch.set_num_threads(args.threads)
    mnist = load_dataset("mnist")
    labelled, unlabelled = labelled_unlabelled(mnist.train, args.sup // 10, seed=args.seed)
    unlab_x = unlabelled.x
    if args.unlabelled_limit:
        unlab_x = unlab_x[:args.unlabelled_limit]
    val, test = mnist.val, mnist.test
    if args.eval_limit:
        val, test = val.subset(torch.arange(args.eval_limit)), test.subset(torch.arange(args.eval_limit))
    n_train = len(labelled) + len(unlab_x)
    curves = {"pyro": {"val": [], "test": [], "seconds": []}, "lvmcls": {"val": [], "test": [], "seconds": []}}

    # Pyro's example
    pyro.set_rng_seed(args.seed)
    pyro.clear_param_store()
    ss_vae = PyroSSVAE(aux_loss_multiplier=args.multiplier)
    optimizer = Adam({"lr": args.lr, "betas": (0.9, 0.999)})
    guide = config_enumerate(ss_vae.guide, "parallel", expand=True)
    losses = [SVI(ss_vae.model, guide, optimizer, loss=TraceEnum_ELBO(max_plate_nesting=1)),
              SVI(ss_vae.model_classify, ss_vae.guide_classify, optimizer, loss=Trace_ELBO())]
    g_pyro = torch.Generator().manual_seed(args.seed)

    # lvmcls's M2, the same configuration
    torch.manual_seed(args.seed)
    split = S.SemiSupervisedSplit(labelled, unlab_x, args.labelled_per_batch)
    alpha = args.multiplier * split.labelled_fraction
    m2 = S.M2(x_dim=784, num_classes=10, latent_dim=50, hidden=500, depth=1, classifier_hidden=500,
              labelled_fraction=split.labelled_fraction, alpha=alpha, warmup_steps=0)
    opt = torch.optim.Adam(m2.parameters(), lr=args.lr, betas=(0.9, 0.999))
    g_lvmcls = torch.Generator().manual_seed(args.seed)

    def lvmcls_epoch():
        m2.train()
        for x, y in split.batches(args.batch, shuffle=True, generator=g_lvmcls):
            opt.zero_grad(set_to_none=True)
            m2.training_step(x, y)["loss"].backward()
            opt.step()

    def m2_predict(x):
        m2.eval()
        return m2.classify(x).argmax(1)

    # the two alternate epoch by epoch, so that a change of load on a shared machine hits both alike
    sides = {
        "pyro": (lambda: pyro_epoch(losses, (labelled.x.flatten(1), labelled.y), unlab_x.flatten(1), args.batch,
                                    g_pyro, args.sup, train_size=n_train), ss_vae.classify),
        "lvmcls": (lvmcls_epoch, m2_predict),
    }
    for epoch in range(args.epochs):
        for name, (train_epoch, predict) in sides.items():
            t0 = time.perf_counter()
            train_epoch()
            curves[name]["seconds"].append(time.perf_counter() - t0)
            curves[name]["val"].append(accuracy(predict, val))
            curves[name]["test"].append(accuracy(predict, test))
            print(name, epoch + 1, curves[name]["val"][-1], curves[name]["test"][-1],
                  f"{curves[name]['seconds'][-1]:.1f} s", flush=True)

    summary = {}
    for name, c in curves.items():
        best = max(range(len(c["val"])), key=lambda i: c["val"][i])
        summary[name] = {"test_at_best_val": c["test"][best], "best_val_epoch": best + 1, "test_last": c["test"][-1],
                         "seconds_per_epoch": statistics.median(c["seconds"])}
    result = {
        "epochs": args.epochs, "labels": args.sup, "batch": args.batch, "lr": args.lr,
        "multiplier": args.multiplier, "alpha_prime_lvmcls": alpha, "labelled_per_batch_lvmcls": args.labelled_per_batch,
        "unlabelled": len(unlab_x), "val_images": len(val), "test_images": len(test), "seed": args.seed,
        "threads": args.threads, "cpu": platform.processor() or platform.machine(), "torch": torch.__version__,
        "pyro": pyro.__version__, "curves": curves, "summary": summary,
        "time_ratio_pyro_over_lvmcls": summary["pyro"]["seconds_per_epoch"] / summary["lvmcls"]["seconds_per_epoch"],
        "published": PUBLISHED,
    }
    rows = ["| epoch | Pyro example: val | Pyro example: test | lvmcls M2: val | lvmcls M2: test |", "|---|---|---|---|---|"]
    for e in range(args.epochs):
        rows.append(f"| {e + 1} | {curves['pyro']['val'][e]:.4f} | {curves['pyro']['test'][e]:.4f} | "
                    f"{curves['lvmcls']['val'][e]:.4f} | {curves['lvmcls']['test'][e]:.4f} |")
    text = "\n".join([
        "# Pyro's M2 example beside lvmcls's M2 (`bench/pyro_m2_side_by_side.py`)", "",
        f"MNIST, {args.sup} labels (class-balanced draw, seed {args.seed}), {len(unlab_x):,} unlabelled images, "
        f"{args.epochs} epochs each, batch {args.batch}, Adam {args.lr:g}, z 50, one hidden layer of 500 softplus "
        f"units, classification weight {args.multiplier:g} per labelled example (lvmcls α' = {alpha:.4g}), "
        f"{args.threads} CPU threads, torch {torch.__version__}, pyro-ppl {pyro.__version__}.", "",
        *rows, "",
        f"Test accuracy at the best validation epoch: Pyro example {summary['pyro']['test_at_best_val']:.4f}, "
        f"lvmcls {summary['lvmcls']['test_at_best_val']:.4f}; at the last epoch "
        f"{summary['pyro']['test_last']:.4f} and {summary['lvmcls']['test_last']:.4f}. Published: Pyro's tutorial "
        f"{PUBLISHED['pyro_tutorial_acc_100']:.4f} ± {PUBLISHED['pyro_tutorial_ci95']:.4f}, Kingma et al. "
        f"{PUBLISHED['kingma_acc_100']:.4f}.", "",
        f"Training time per epoch (median over the epochs, the two sides alternating epoch by epoch): Pyro "
        f"{summary['pyro']['seconds_per_epoch']:.1f} s, lvmcls {summary['lvmcls']['seconds_per_epoch']:.1f} s "
        f"(ratio Pyro / lvmcls {result['time_ratio_pyro_over_lvmcls']:.2f}); a shared machine inflates both, the "
        "ratio less.", "",
        "```json", json.dumps(result, indent=1), "```", ""])
    print(text)
    if args.out is not None:
        args.out.write_text(text)
    return result


def read_result(path: str | Path) -> dict:
    """The JSON block of a Markdown file written by this script (what chapter 7 quotes)."""
    text = Path(path).read_text()
    return json.loads(text.split("```json", 1)[1].split("```", 1)[0])


if __name__ == "__main__":
    main()
