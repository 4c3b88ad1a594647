"""Subnormal floats on the CPU: how much they slow a step, with and without `torch.set_flush_denormal(True)` (which
`import lvmcls` sets, before any parallel work, so that every intra-op thread inherits it).

    python bench/denormal.py [--threads 2] [--m2-checkpoint PATH] [--out bench/denormal.md]

Each case runs in a fresh process (the mode is per thread and is inherited by threads created after it is set), in
three settings: flush off; flush set at the start (what `import lvmcls` does); flush set after the thread pool has
run (a late call: it reaches the calling thread only). The cases: (a) a 500-unit linear layer on inputs of 1e-39
(subnormal in float32), forward and backward; (b) with ``--m2-checkpoint``, twelve training steps of M2 from a saved
state of `bench/m2_faithful_curve.py` (Pyro's networks, batch 200; a late-epoch state is where subnormals appear) and
from a fresh M2 of the same shape, on the first 200 MNIST training images (20 labelled). Prints seconds and each ratio to "flush at start" in one run.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

CASE = r"""
import json, sys, time, torch
mode, threads, checkpoint = sys.argv[1], int(sys.argv[2]), sys.argv[3]
if mode == "start":
    torch.set_flush_denormal(True)
torch.set_num_threads(threads)
torch.ones(256, 256) @ torch.ones(256, 256)  # the thread pool runs
if mode == "late":
    torch.set_flush_denormal(True)
out = {}
layer = torch.nn.Linear(500, 500)
x = torch.full((200, 500), 1e-39, requires_grad=True)
t = time.perf_counter()
for _ in range(50):
    layer(x).sum().backward()
out["linear_on_subnormals"] = time.perf_counter() - t
if checkpoint != "-":
    sys.path.insert(0, ".")
    from lvmcls import ssvae as S  # noqa: E402  (imported after the mode is set: lvmcls would set it itself)
    torch.set_flush_denormal(mode != "off")  # undo lvmcls's import-time setting for "off" (calling thread only)
    blob = torch.load(checkpoint, weights_only=True)
    state, epochs = blob["model"], blob["history"]["epochs"]
    net = {"latent_dim": 50, "hidden": 500, "depth": 1, "classifier_hidden": 500}
    from lvmcls.data import load_dataset  # noqa: E402
    train = load_dataset("mnist").train
    x = train.x[:200].reshape(200, -1).float()
    y = torch.cat([train.y[:20], torch.full((180,), -1, dtype=train.y.dtype)])
    for name, load in (("m2_trained", True), ("m2_fresh", False)):
        torch.manual_seed(0)
        model = S.M2(x_dim=784, num_classes=10, **net, labelled_fraction=0.002, alpha=0.1, warmup_steps=0)
        if load:
            model.load_state_dict(state)
        opt = torch.optim.Adam(model.parameters(), lr=4.2e-4)
        t = time.perf_counter()
        for _ in range(12):
            loss = model.training_step(x, y)["loss"]
            opt.zero_grad()
            loss.backward()
            opt.step()
        out[name] = time.perf_counter() - t
print(json.dumps({"timings": out, "checkpoint_epochs": epochs if checkpoint != "-" else None}))
"""


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--m2-checkpoint", default="-")
    p.add_argument("--out", type=Path, default=None)
    args = p.parse_args(argv)
    root = Path(__file__).resolve().parents[1]
    runs = {}
    for mode in ("off", "start", "late"):
        done = subprocess.run([sys.executable, "-c", CASE, mode, str(args.threads), args.m2_checkpoint],
                              cwd=root, capture_output=True, text=True, check=True)
        found = json.loads(done.stdout.strip().splitlines()[-1])
        runs[mode], epochs = found["timings"], found["checkpoint_epochs"]
    load = Path("/proc/loadavg").read_text().split()[:3] if Path("/proc/loadavg").is_file() else ["?"]
    lines = [f"# Subnormal floats on the CPU (bench/denormal.py, {args.threads} threads, "
             f"{time.strftime('%Y-%m-%d')}, load average {' '.join(load)})", "",
             f"M2 checkpoint: {args.m2_checkpoint} (after {epochs} epochs)" if epochs else "No M2 checkpoint given.",
             "",
             "| case | flush off (s) | flush at start (s) | flush set late (s) | off / start | late / start |",
             "|---|---|---|---|---|---|"]
    for case in runs["start"]:
        off, start, late = runs["off"][case], runs["start"][case], runs["late"][case]
        lines.append(f"| {case} | {off:.3f} | {start:.3f} | {late:.3f} | {off / start:.2f} | {late / start:.2f} |")
    text = "\n".join(lines) + "\n"
    print(text)
    if args.out:
        args.out.write_text(text)


if __name__ == "__main__":
    main()
