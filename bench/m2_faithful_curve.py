"""Faithful M2's curve (issue 31, point 2): M2 *as defined*, trained for 300 epochs on MNIST with 100 labels, its
validation and test accuracy after every epoch, resumable per epoch; chapter 7 shows the curve and decides the
registry's check ``m2/acc100`` on it.

    python bench/m2_faithful_curve.py [--epochs 300] [--draw 0] [--commit]      # the file sums its epochs' seconds
    python bench/m2_faithful_curve.py --epochs 1 --unlabelled-limit 2000 --out-dir /tmp/curve   # a smoke test

**The setting** (the closest to Kingma et al.'s and Pyro's M2 that `lvmcls.ssvae.M2` goes): one class-balanced label
draw of 100 MNIST training images (`SemiSupervisedSplit.draw`, seed ``--draw``), all 49,900 other training images
unlabelled; Pyro's networks (z 50, one hidden layer of 500 softplus units in the encoder, the decoder and the
classifier); Kingma's classification weight α' = 0.1 (50 per labelled example); Adam 4.2e-4 (Pyro's example), batch
200 with 20 labelled rows cycled through the 100 labels (lvmcls's batching, not Pyro's: see chapter 7), no KL
warm-up, y summed out exactly. After every epoch the classifier is scored on the 10,000 validation and the 10,000
test images. The supervised-only baseline (the same classifier network, cross-entropy on the 100 labels alone,
early-stopped on validation, as chapter 7 trains it) is scored once, before the curve.

**Resumable per epoch.** The training state (model, optimiser, RNG, history) is checkpointed after every epoch under
``$LVMCLS_CACHE`` (key: this script's settings, not the library's source hash, so that a run spread over sessions
resumes); the curve file ``results/long/07_semi_supervised_vae/m2_curve/curve-draw<d>.json`` is rewritten after every
epoch and, with ``--commit``, committed every ``--commit-every`` epochs and at the end. Run it when nothing else
heavy runs (2 threads).
"""

from __future__ import annotations

import argparse
import dataclasses
import hashlib
import json
import subprocess
import sys
import time
from pathlib import Path

import torch

# subnormal floats slowed this model's CPU steps late in training (bench/denormal.md): flush them to zero, before
# any parallel work, so that every intra-op thread inherits the mode (set later, it holds on the calling thread
# only; `import lvmcls` now does the same); the curve file records from which epoch each held
torch.set_flush_denormal(True)

from lvmcls import ssvae as S
from lvmcls.data import load_dataset
from lvmcls.paths import atomic_write_text, checkpoint_dir, results_dir
from lvmcls.results import cpu_model, git_commit
from lvmcls.train import Trainer, fit_cached, seed_everything, torch_threads

PYRO_NET = {"latent_dim": 50, "hidden": 500, "depth": 1, "classifier_hidden": 500}
STEM = "07_semi_supervised_vae"


def default_out_dir() -> Path:
    return results_dir() / "long" / STEM / "m2_curve"


class CurveM2(S.M2):
    """`lvmcls.ssvae.M2` that scores its classifier on the validation and test splits after every epoch (the
    Trainer's ``on_epoch_end`` hook) and hands each epoch's numbers to ``self.report``."""

    def on_epoch_end(self, epoch, train):
        val = S.evaluate_classifier(self, self.curve_splits["val"])["accuracy"]
        test = S.evaluate_classifier(self, self.curve_splits["test"])["accuracy"]
        self.report(epoch, val, test)
        return {"val_accuracy": val, "test_accuracy": test}


def _commit(path: Path, message: str) -> None:
    root = Path(__file__).resolve().parents[1]
    try:
        subprocess.run(["git", "add", "--", str(path)], cwd=root, check=True, capture_output=True, timeout=60)
        subprocess.run(["git", "commit", "-q", "-m", message, "--", str(path)], cwd=root, capture_output=True,
                       timeout=60)
    except (OSError, subprocess.SubprocessError) as err:
        print(f"warning: could not commit {path}: {err}", file=sys.stderr)


def main(argv=None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--epochs", type=int, default=300)
    p.add_argument("--draw", type=int, default=0, help="the label draw (and the trainer's seed)")
    p.add_argument("--alpha", type=float, default=0.1, help="α' (Kingma's 0.1)")
    p.add_argument("--lr", type=float, default=4.2e-4)
    p.add_argument("--batch", type=int, default=200)
    p.add_argument("--labelled-per-batch", type=int, default=20)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--unlabelled-limit", type=int, default=None, help="smoke tests only: fewer unlabelled images")
    p.add_argument("--eval-limit", type=int, default=None, help="smoke tests only: fewer validation/test images")
    p.add_argument("--out-dir", type=Path, default=None)
    p.add_argument("--commit", action="store_true", help="git-commit the curve file as it grows")
    p.add_argument("--commit-every", type=int, default=25)
    args = p.parse_args(argv)
    if args.epochs < 1 or args.threads < 1:
        p.error("--epochs and --threads must be >= 1")
    out_dir = args.out_dir or default_out_dir()
    out = out_dir / f"curve-draw{args.draw}.json"
    faithful = args.unlabelled_limit is None and args.eval_limit is None

    mnist = load_dataset("mnist")
    split = S.SemiSupervisedSplit.draw(mnist.train, 10, args.labelled_per_batch, seed=args.draw)
    if args.unlabelled_limit is not None:
        split = S.SemiSupervisedSplit(split.labelled, split.x[split.n_labelled:split.n_labelled + args.unlabelled_limit],
                                      args.labelled_per_batch)
    val, test = mnist.val, mnist.test
    if args.eval_limit is not None:
        val, test = val.subset(torch.arange(args.eval_limit)), test.subset(torch.arange(args.eval_limit))
    n_unlabelled = len(split) - split.n_labelled
    settings = {"epochs_planned": args.epochs, "draw": args.draw, "alpha_prime": args.alpha, "lr": args.lr,
                "batch": args.batch, "labelled_per_batch": args.labelled_per_batch, "labels": split.n_labelled,
                "unlabelled": n_unlabelled, "net": PYRO_NET, "warmup": False, "eval_images": [len(val), len(test)],
                "faithful": faithful, "threads": args.threads}
    key = hashlib.sha256(json.dumps({**settings, "data": mnist.source}, sort_keys=True,
                                    default=str).encode()).hexdigest()[:16]

    with torch_threads(args.threads):
        # the supervised-only baseline, as chapter 7 trains it
        sup_trainer = Trainer(max_epochs=150, batch_size=25, lr=1e-3, seed=args.draw, monitor="error", val_every=5,
                              patience=25, progress=False)
        sup, _ = fit_cached("ch7-curve-supervised",
                            lambda: S.SupervisedClassifier(784, 10, PYRO_NET["classifier_hidden"]),
                            dataclasses.replace(mnist, train=split.labelled, val=val), sup_trainer)
        sup_val = S.evaluate_classifier(sup, val)["accuracy"]
        sup_test = S.evaluate_classifier(sup, test)["accuracy"]

        curve = json.loads(out.read_text()) if out.is_file() else {}
        if curve and curve.get("key") != key:
            raise SystemExit(f"{out} holds a curve of other settings (key {curve.get('key')}, now {key}): move it "
                             "away or pass another --out-dir")
        curve.update(settings, key=key, data_source=mnist.source, supervised_val_accuracy=sup_val,
                     supervised_test_accuracy=sup_test, cpu=cpu_model(), torch=torch.__version__)
        curve.setdefault("val_accuracy", [])
        curve.setdefault("test_accuracy", [])
        curve.setdefault("epoch_seconds", [])
        curve.setdefault("flush_denormal_from_epoch", len(curve["val_accuracy"]))  # the first run: main thread only
        curve.setdefault("flush_denormal_all_threads_from_epoch", len(curve["val_accuracy"]))
        last = [time.perf_counter()]

        def report(epoch, val_acc, test_acc):
            now = time.perf_counter()
            for name, value in (("val_accuracy", val_acc), ("test_accuracy", test_acc),
                                ("epoch_seconds", round(now - last[0], 2))):
                curve[name] = curve[name][:epoch] + [value]
            last[0] = now
            curve.update(git_commit=git_commit(), written=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()))
            atomic_write_text(out, json.dumps(curve, indent=1) + "\n")
            print(f"epoch {epoch + 1}/{args.epochs}: validation {val_acc:.4f}, test {test_acc:.4f} "
                  f"({curve['epoch_seconds'][-1]:.0f} s)", flush=True)
            if args.commit and ((epoch + 1) % args.commit_every == 0 or epoch + 1 == args.epochs):
                _commit(out, f"long: faithful M2 curve, draw {args.draw}, epoch {epoch + 1}")

        seed_everything(args.draw)
        model = CurveM2(x_dim=784, num_classes=10, **PYRO_NET, labelled_fraction=split.labelled_fraction,
                        alpha=args.alpha, warmup_steps=0)
        model.curve_splits, model.report = {"val": val, "test": test}, report
        trainer = Trainer(max_epochs=args.epochs, batch_size=args.batch, lr=args.lr, seed=args.draw, progress=False)
        checkpoint = checkpoint_dir() / f"m2-curve-draw{args.draw}-{key}.resume.pt"
        checkpoint.parent.mkdir(parents=True, exist_ok=True)
        trainer.fit(model, split, None, checkpoint=checkpoint, checkpoint_every_s=0.0)
    best = max(range(len(curve["val_accuracy"])), key=curve["val_accuracy"].__getitem__)
    print(f"{out}: {len(curve['val_accuracy'])} epochs; test accuracy at the best validation epoch ({best + 1}) "
          f"{curve['test_accuracy'][best]:.4f}, last {curve['test_accuracy'][-1]:.4f}; supervised only "
          f"{sup_test:.4f}")
    return curve


if __name__ == "__main__":
    main()
