"""Pyro's own M2 example, run unmodified, beside lvmcls's M2 with the example's batching and with its own.

    pip install --target /tmp/pyro-pkgs pyro-ppl==1.9.1 pyro-api opt_einsum   # the bench only, NOT an lvmcls dependency
    python bench/pyro_m2_side_by_side.py --epochs 10 --seeds 0 1 2 --pyro-path /tmp/pyro-pkgs \\
        [--example ../shared/anchors/pyro-ss-vae] [--threads 2] [--out bench/pyro_m2_side_by_side.md]

**The Pyro side is Pyro's script.** ``ss_vae_M2.py`` (repository pyro-ppl/pyro, ``examples/vae/``; a copy with its
licence is kept in ``shared/anchors/pyro-ss-vae/``, or give a checkout of your own with ``--example``) is copied to a
temporary folder (never into this repository) and run there as it is, in its own process, with the script's
defaults written out and three flags of the bench's: ``--aux-loss -alm 46 -enum parallel -sup 100 -zd 50 -hl 500
-lr 0.00042 -b1 0.9 -bs 100 --seed s`` (defaults: multiplier 46, parallel enumeration, z 50, hidden 500, Adam
4.2e-4 with β1 0.9; the bench's: the auxiliary loss on, 100 labels, and batch 100, since the script asserts that the
number of labels is a multiple of the batch; Pyro's tutorial does not state the settings behind its 93.19 %). Offline, two things are put
beside the copy, none inside the script: MNIST's four raw IDX files where its ``utils/mnist_cached.py`` looks
(``utils/.data/MNISTCached/raw``, copied from lvmcls's data cache), and a stub ``visdom`` module (the script imports
``Visdom`` at the top and uses it only with ``--visualize``). Its per-epoch log lines give the validation and test
accuracy; the time of an epoch is the interval between two of its log lines (training plus its evaluation of the
10,000 validation and 10,000 test images).

**The lvmcls sides**, on the same 100 labels (the example's own draw: after ``pyro.set_rng_seed(s)`` the script
shuffles each class's indices with numpy's global generator and keeps the first 10; `example_label_draw` does the
same, and a test checks it against the script's helper), the same 49,900 unlabelled images, the same networks
(z 50, one hidden layer of 500 softplus units), Adam 4.2e-4 (β 0.9, 0.999), y summed out exactly, no warm-up:

- ``lvmcls-example-batching``: `lvmcls.ssvae.M2`'s bounds stepped as the example's loop steps its losses: 500
  batches of 100 per epoch, batch i labelled when i % 500 == 1 (one labelled batch, 499 unlabelled), and on *every*
  batch two Adam steps, the bound's and the auxiliary loss's (46 × the labelled cross-entropy; on an unlabelled
  batch a zero gradient, which still moves the parameters through Adam's momentum, as Pyro's shared per-parameter
  Adam does): 1,000 Adam updates per epoch. Losses are sums over the batch, as Pyro's. What still differs from the
  example: the initial weights, and the KL term (closed form here, one sample in Pyro's guide).
- ``lvmcls``: lvmcls's own batching (`SemiSupervisedSplit`: 10 labelled rows in each batch of 100, cycled through the
  100 labels; 555 steps per epoch), its loss (Eq. 4 per example, α' = 46 · N_l / N = 0.092), one Adam step per batch.

Each epoch every side is scored on the validation and test images; the summary gives, per side and seed, the test
accuracy at the best validation epoch and at the last, and the seconds per epoch (training and evaluation) with
their spread over epochs and seeds; the time ratio Pyro / lvmcls per epoch is given as its median and range. The
sides of one seed run one after the other in this process's order (Pyro, then the lvmcls sides), so load changes on a
shared machine show in the spread. The printed Markdown is also written to ``--out``; chapter 7 reads the JSON block.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from lvmcls import ssvae as S
from lvmcls.data import TensorSplit, load_dataset
from lvmcls.paths import data_dir
from lvmcls.results import cpu_model

PUBLISHED = {"pyro_tutorial_acc_100": 0.9319, "pyro_tutorial_ci95": 0.0060, "kingma_acc_100": 0.8803}
SIDES = ("pyro", "lvmcls-example-batching", "lvmcls")
NET = {"latent_dim": 50, "hidden": 500, "depth": 1, "classifier_hidden": 500}
DEFAULT_EXAMPLE = Path(__file__).resolve().parents[2] / "shared" / "anchors" / "pyro-ss-vae"
VISDOM_STUB = '"""A stub: ss_vae_M2.py imports Visdom at the top and uses it only with --visualize."""\n\n\nclass Visdom:\n' \
              '    def __init__(self, *args, **kwargs):\n        raise RuntimeError("visdom is stubbed out by the bench")\n'


def example_label_draw(y_train: torch.Tensor, sup_num: int, seed: int) -> list[int]:
    """The labelled indices (into the first 50,000 training images) that ``ss_vae_M2.py --seed seed -sup sup_num``
    draws: numpy's global generator seeded with ``seed`` (``pyro.set_rng_seed``), then, class by class, a shuffle of
    that class's indices in ascending order, the first ``sup_num / 10`` kept (``get_ss_indices_per_class``)."""
    np.random.seed(seed)
    per_class = sup_num // 10
    chosen: list[int] = []
    ys = y_train.tolist()
    for j in range(10):
        idx = [i for i, c in enumerate(ys) if c == j]
        np.random.shuffle(idx)
        chosen.extend(idx[:per_class])
    return chosen


# --------------------------------------------------------------------------------------------
# Pyro's script, run as it is


def prepare_example(example: Path, workdir: Path) -> Path:
    """Copy the example folder into ``workdir`` and put beside it what it needs offline (MNIST's raw files, a visdom
    stub); the script itself is not touched. Returns the copy."""
    example = Path(example).resolve()
    if not (example / "ss_vae_M2.py").is_file():
        raise FileNotFoundError(f"{example} holds no ss_vae_M2.py: pass --example <pyro>/examples/vae")
    copy = workdir / "pyro-ss-vae"
    shutil.copytree(example, copy)
    # torchvision's MNIST looks in <root>/<class name>/raw: the script's class is MNISTCached
    raw = copy / "utils" / ".data" / "MNISTCached" / "raw"
    raw.mkdir(parents=True)
    load_dataset("mnist")  # makes sure lvmcls's cache holds the raw files
    for name in ("train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte",
                 "t10k-labels-idx1-ubyte"):
        shutil.copy(data_dir() / "MNIST" / "raw" / name, raw / name)
    stub = workdir / "stubs"
    stub.mkdir()
    (stub / "visdom.py").write_text(VISDOM_STUB)
    return copy


def run_example(copy: Path, *, seed: int, epochs: int, threads: int, pyro_path: str | None, sup: int = 100,
                batch: int = 100, timeout_s: float | None = None) -> dict:
    """Run ``ss_vae_M2.py`` in ``copy`` and read its per-epoch log lines: validation and test accuracy, and the
    seconds between lines (the first measured from the start of its first epoch's line's predecessor: the process
    start, so it includes the start-up and the data loading; it is reported but left out of the time summary)."""
    cmd = [sys.executable, "ss_vae_M2.py", "--seed", str(seed), "-n", str(epochs), "--aux-loss", "-alm", "46",
           "-enum", "parallel", "-sup", str(sup), "-zd", "50", "-hl", "500", "-lr", "0.00042", "-b1", "0.9",
           "-bs", str(batch), "-log", str(copy / f"seed{seed}.log")]
    env = dict(os.environ, OMP_NUM_THREADS=str(threads), MKL_NUM_THREADS=str(threads))
    env.pop("CI", None)  # with CI set, pyro's get_data_directory looks in ~/.data instead of beside the script
    env["PYTHONPATH"] = os.pathsep.join([str(copy.parent / "stubs"), *([pyro_path] if pyro_path else []),
                                         env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    started = last = time.perf_counter()
    val, test, seconds, lines = [], [], [], []
    with subprocess.Popen(cmd, cwd=copy, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                          bufsize=1) as proc:
        for line in proc.stdout:
            lines.append(line.rstrip())
            if " epoch: avg losses " in line and "validation accuracy" in line:
                now = time.perf_counter()
                seconds.append(now - last)
                last = now
                val.append(float(line.split("validation accuracy")[1].split()[0]))
                test.append(float(line.split("test accuracy")[1].split()[0]))
            if timeout_s is not None and time.perf_counter() - started > timeout_s:
                proc.kill()
                break
    if proc.returncode not in (0, None) or len(val) != epochs:
        raise RuntimeError(f"ss_vae_M2.py (seed {seed}) ended with code {proc.returncode} after {len(val)} of "
                           f"{epochs} epochs; its last lines:\n" + "\n".join(lines[-15:]))
    return {"val": val, "test": test, "seconds": seconds}


# --------------------------------------------------------------------------------------------
# lvmcls's M2: the example's loop, and lvmcls's own


def accuracy(model, split: TensorSplit, batch: int = 1000) -> float:
    return S.evaluate_classifier(model, split, batch_size=batch)["accuracy"]


def build_m2(labelled_fraction: float, alpha: float, seed: int) -> S.M2:
    torch.manual_seed(seed)
    return S.M2(x_dim=784, num_classes=10, **NET, labelled_fraction=labelled_fraction, alpha=alpha, warmup_steps=0)


def example_batching_epoch(model: S.M2, opt: torch.optim.Optimizer, labelled: TensorSplit, unlabelled_x: torch.Tensor,
                           batch: int, generator: torch.Generator, multiplier: float = 46.0,
                           train_size: int = 50_000) -> int:
    """One epoch of the example's ``run_inference_for_epoch`` with lvmcls's M2 bounds: shuffled labelled and
    unlabelled batches, batch i labelled when i % int(train_size / N_l) == 1 (until the labelled batches are used
    up), and on every batch the bound's Adam step, then the auxiliary loss's (multiplier × the labelled
    cross-entropy; a zero gradient on an unlabelled batch). Losses are sums over the batch. Returns the number of
    Adam steps taken."""
    sup_order = torch.randperm(len(labelled), generator=generator)
    unsup_order = torch.randperm(len(unlabelled_x), generator=generator)
    sup_batches = [sup_order[i:i + batch] for i in range(0, len(labelled), batch)]
    unsup_batches = [unsup_order[i:i + batch] for i in range(0, len(unlabelled_x), batch)]
    periodic = int(train_size / (1.0 * len(labelled)))
    ctr_sup = ctr_unsup = steps = 0
    for i in range(len(sup_batches) + len(unsup_batches)):
        is_sup = i % periodic == 1 and ctr_sup < len(sup_batches)
        if is_sup:
            idx = sup_batches[ctr_sup]
            ctr_sup += 1
            xs, ys = labelled.x[idx].flatten(1), labelled.y[idx]
            loss = -model.labelled_bound(xs, ys).sum()
        else:
            xs = unlabelled_x[unsup_batches[ctr_unsup]].flatten(1)
            ctr_unsup += 1
            loss = -model.unlabelled_bound(xs)[0].sum()
        opt.zero_grad(set_to_none=False)
        loss.backward()
        opt.step()
        # the auxiliary loss's step: Pyro's SVI leaves every gradient at zero (not None) after a step, so its
        # shared per-parameter Adam moves every parameter again, by momentum alone when the loss is empty
        opt.zero_grad(set_to_none=False)
        if is_sup:
            (-multiplier * model.classify(xs).gather(1, ys[:, None]).sum()).backward()
        opt.step()
        steps += 2
    return steps


def lvmcls_epoch(model: S.M2, opt: torch.optim.Optimizer, split, batch: int, generator: torch.Generator) -> int:
    """One epoch of lvmcls's own batching and loss (what `lvmcls.train.Trainer` does for M2)."""
    steps = 0
    for x, y in split.batches(batch, shuffle=True, generator=generator):
        opt.zero_grad(set_to_none=True)
        model.training_step(x, y)["loss"].backward()
        opt.step()
        steps += 1
    return steps


def run_lvmcls(side: str, *, seed: int, epochs: int, threads: int, labelled: TensorSplit, unlabelled_x: torch.Tensor,
               val: TensorSplit, test: TensorSplit, batch: int = 100, lr: float = 4.2e-4,
               multiplier: float = 46.0, labelled_per_batch: int = 10) -> dict:
    n_total = len(labelled) + len(unlabelled_x)
    f = len(labelled) / n_total
    model = build_m2(f, multiplier * f, seed)
    opt = torch.optim.Adam(model.parameters(), lr=lr, betas=(0.9, 0.999))
    generator = torch.Generator().manual_seed(seed)
    split = S.SemiSupervisedSplit(labelled, unlabelled_x, labelled_per_batch) if side == "lvmcls" else None
    out = {"val": [], "test": [], "seconds": [], "adam_steps_per_epoch": None}
    torch.set_num_threads(threads)
    for _ in range(epochs):
        start = time.perf_counter()
        model.train()
        if side == "lvmcls":
            steps = lvmcls_epoch(model, opt, split, batch, generator)
        else:
            steps = example_batching_epoch(model, opt, labelled, unlabelled_x, batch, generator, multiplier)
        out["val"].append(accuracy(model, val))
        out["test"].append(accuracy(model, test))
        out["seconds"].append(time.perf_counter() - start)
        out["adam_steps_per_epoch"] = steps
    return out


# --------------------------------------------------------------------------------------------


def summarise(runs: dict) -> dict:
    """Per side: per seed the test accuracy at the best validation epoch and at the last; their mean; seconds per
    epoch (median, min, max over epochs 2.. and seeds; the Pyro script's first interval includes its start-up); and
    the Pyro / lvmcls time ratio per (seed, epoch), as its median and range."""
    out = {}
    for side, by_seed in runs.items():
        best = {s: r["test"][max(range(len(r["val"])), key=r["val"].__getitem__)] for s, r in by_seed.items()}
        last = {s: r["test"][-1] for s, r in by_seed.items()}
        secs = [t for r in by_seed.values() for t in (r["seconds"][1:] or r["seconds"])]
        out[side] = {"test_at_best_val": best, "test_last": last,
                     "test_at_best_val_mean": statistics.fmean(best.values()),
                     "test_last_mean": statistics.fmean(last.values()),
                     "seconds_per_epoch": {"median": statistics.median(secs), "min": min(secs), "max": max(secs)}}
    if "pyro" in runs:
        for side in SIDES[1:]:
            if side not in runs:
                continue
            ratios = [p / q for s in runs["pyro"] if s in runs[side]
                      for p, q in list(zip(runs["pyro"][s]["seconds"], runs[side][s]["seconds"]))[1:]]
            if ratios:
                out[f"time_ratio_pyro_over_{side}"] = {"median": statistics.median(ratios), "min": min(ratios),
                                                        "max": max(ratios), "n": len(ratios)}
    return out


def render(result: dict) -> str:
    s = result["summary"]
    lines = [
        f"# Pyro's M2 example beside lvmcls's M2 ({result['epochs']} epochs × seeds {result['seeds']})", "",
        f"Written by `bench/pyro_m2_side_by_side.py` on {result['written']} ({result['cpu']}, {result['threads']} "
        f"threads, torch {result['torch']}, pyro {result.get('pyro', '?')}; load average at the start "
        f"{result['load_start']}, at the end {result['load_end']}). Pyro's side is its script `ss_vae_M2.py` run "
        "unmodified from a temporary copy; see the script's docstring for the lvmcls sides.", "",
        "| side | test at best validation epoch (per seed) | mean | last epoch (mean) | s / epoch: median [min, max] "
        "| Adam steps / epoch |", "|---|---|---|---|---|---|"]
    for side in SIDES:
        if side not in s:
            continue
        r = s[side]
        per_seed = ", ".join(f"{v:.4f}" for v in r["test_at_best_val"].values())
        t = r["seconds_per_epoch"]
        steps = result["adam_steps_per_epoch"].get(side, "–")
        lines.append(f"| {side} | {per_seed} | {r['test_at_best_val_mean']:.4f} | {r['test_last_mean']:.4f} | "
                     f"{t['median']:.1f} [{t['min']:.1f}, {t['max']:.1f}] | {steps} |")
    for key, r in s.items():
        if key.startswith("time_ratio"):
            lines.append(f"\n{key}: median {r['median']:.2f}, range [{r['min']:.2f}, {r['max']:.2f}] over {r['n']} "
                         "epochs (the first epoch left out)")
    lines += ["", "```json", json.dumps(result, indent=1), "```", ""]
    return "\n".join(lines)


def main(argv=None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--epochs", type=int, default=10)
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    p.add_argument("--sides", nargs="+", default=list(SIDES), choices=SIDES)
    p.add_argument("--example", type=Path, default=DEFAULT_EXAMPLE, help="a folder holding ss_vae_M2.py and utils/")
    p.add_argument("--pyro-path", default=None, help="a folder holding pyro-ppl 1.9.1 (added to the script's path)")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--unlabelled-limit", type=int, default=None, help="lvmcls sides only, for tests")
    p.add_argument("--eval-limit", type=int, default=None, help="lvmcls sides only, for tests")
    p.add_argument("--out", type=Path, default=None)
    args = p.parse_args(argv)
    if args.epochs < 1 or args.threads < 1:
        p.error("--epochs and --threads must be >= 1")
    mnist = load_dataset("mnist")
    runs: dict[str, dict] = {side: {} for side in args.sides}
    steps: dict[str, int] = {}
    load_start = " ".join(Path("/proc/loadavg").read_text().split()[:3]) if Path("/proc/loadavg").is_file() else "?"
    pyro_version = None
    with tempfile.TemporaryDirectory(prefix="pyro-ss-vae-") as tmp:
        copy = prepare_example(args.example, Path(tmp)) if "pyro" in args.sides else None
        for seed in args.seeds:
            idx = example_label_draw(mnist.train.y, 100, seed)
            mask = torch.zeros(len(mnist.train), dtype=torch.bool)
            mask[idx] = True
            labelled = mnist.train.subset(torch.tensor(idx))
            unlabelled_x = mnist.train.x[~mask]
            if args.unlabelled_limit:
                unlabelled_x = unlabelled_x[:args.unlabelled_limit]
            val, test = mnist.val, mnist.test
            if args.eval_limit:
                val, test = val.subset(torch.arange(args.eval_limit)), test.subset(torch.arange(args.eval_limit))
            for side in args.sides:
                print(f"seed {seed}: {side} ...", flush=True)
                if side == "pyro":
                    runs[side][seed] = run_example(copy, seed=seed, epochs=args.epochs, threads=args.threads,
                                                   pyro_path=args.pyro_path)
                    steps[side] = 2 * 500  # 500 batches of 100, two SVI steps each (the script's loop)
                else:
                    r = run_lvmcls(side, seed=seed, epochs=args.epochs, threads=args.threads, labelled=labelled,
                                   unlabelled_x=unlabelled_x, val=val, test=test)
                    steps[side] = r.pop("adam_steps_per_epoch")
                    runs[side][seed] = r
                print(f"  test {runs[side][seed]['test']}", flush=True)
    if args.pyro_path or "pyro" in args.sides:
        try:
            out = subprocess.run([sys.executable, "-c", "import pyro; print(pyro.__version__)"], capture_output=True,
                                 text=True, env=dict(os.environ, PYTHONPATH=args.pyro_path or ""), timeout=120)
            pyro_version = out.stdout.strip() or None
        except (OSError, subprocess.SubprocessError):
            pyro_version = None
    result = {"epochs": args.epochs, "seeds": args.seeds, "sides": args.sides, "threads": args.threads,
              "labels": 100, "batch": 100, "unlabelled": int(len(mnist.train) - 100 if not args.unlabelled_limit
                                                           else args.unlabelled_limit),
              "eval_limit": args.eval_limit, "cpu": cpu_model(),
              "torch": torch.__version__, "pyro": pyro_version, "load_start": load_start,
              "load_end": " ".join(Path("/proc/loadavg").read_text().split()[:3])
              if Path("/proc/loadavg").is_file() else "?",
              "written": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "published": PUBLISHED,
              "adam_steps_per_epoch": steps, "curves": {side: {str(s): r for s, r in by.items()}
                                                        for side, by in runs.items()},
              "summary": summarise(runs)}
    result["summary"] = json.loads(json.dumps(result["summary"], default=str))
    text = render(result)
    print(text)
    if args.out:
        args.out.write_text(text)
    return result


def read_result(path: str | Path) -> dict:
    """The JSON block of a Markdown file written by this script (what chapter 7 quotes)."""
    text = Path(path).read_text()
    return json.loads(text.split("```json", 1)[1].split("```", 1)[0])


if __name__ == "__main__":
    main()
