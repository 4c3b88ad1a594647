"""GPU efficiency of the full profile's training steps: what bf16, channels-last and torch.compile buy.

For the CIFAR-10 ResNet-18 step (batch 512, SGD with Nesterov momentum, on-device random crop + flip) and the
MNIST ConvNet step (batch 128, Adam), both as the CE objective of Chapter 3's `LatentClassifier` and taken by the
book's one `Trainer.step`, one run prints images/s for

- eager fp32 (``amp=False``);
- bf16 autocast (``amp=True``, the Trainer's default on CUDA);
- bf16 + channels-last (``channels_last=True``);
- ``torch.compile`` of the encoder, bf16 + channels-last (the head and the optimiser stay eager);
- bf16 + channels-last with ``torch.backends.cudnn.benchmark = True``;

as ratios to eager fp32, with the achieved TFLOP/s (FLOPs of one forward + backward pass counted by
``torch.utils.flop_counter.FlopCounterMode``) against the GPU's dense bf16 peak. A second table gives the
milliseconds per step of the chapters' small models (VAE, VAE-AS, ConvNet VC) in fp32 and bf16, for their
budgets. Inputs are random tensors of the data's shapes (the speed of these steps does not depend on content).

    python bench/gpu_efficiency.py [--device cuda] [--steps 30] [--json out.json] [--no-compile]
"""

from __future__ import annotations

import argparse
import json
import math
import time

import torch
from timing import seconds_per_step
from torch.utils.flop_counter import FlopCounterMode

from lvmcls import vae as V
from lvmcls import vae_as as AS
from lvmcls.nets import build_encoder
from lvmcls.train import Trainer, pick_device
from lvmcls.vc import LatentClassifier

# Dense (no sparsity) bf16 tensor-core peaks from the vendors' datasheets, TFLOP/s.
BF16_PEAK_TFLOPS = {"H100 PCIe": 756.0, "H100": 989.4, "H200": 989.4, "A100": 312.0, "L4": 121.0, "T4": 65.0}


def bf16_peak(name: str) -> float | None:
    for key, peak in BF16_PEAK_TFLOPS.items():  # "H100 PCIe" before "H100"
        if all(part in name for part in key.split()):
            return peak
    return None


def batches(shape, batch_size: int, num_labels: int, device, count: int = 8, seed: int = 0):
    """``count`` random batches (x in [0, 1], labels), rotated through so that no step reuses the last one."""
    g = torch.Generator().manual_seed(seed)
    return [(torch.rand(batch_size, *shape, generator=g).to(device),
             torch.randint(0, num_labels, (batch_size,), generator=g).to(device)) for _ in range(count)]


def latent_classifier(kind: str, shape, objective: str = "ce", latent_dim: int = 32):
    torch.manual_seed(0)
    return LatentClassifier.build(objective, build_encoder(kind, latent_dim, tuple(shape)), 10, latent_dim)


def step_flops(model, trainer: Trainer, x, y) -> int:
    """FLOPs of one forward + backward pass of ``model.training_step`` (matmuls and convolutions)."""
    counter = FlopCounterMode(display=False)
    with counter:
        out = model.training_step(trainer._prepare(x, train=True), y)
        out["loss"].backward()
    model.zero_grad(set_to_none=True)
    return counter.get_total_flops()


def time_mode(build, trainer_kwargs: dict, data, device, steps: int, compile_encoder: bool = False,
              cudnn_benchmark: bool = False) -> dict:
    """Seconds per `Trainer.step` (mean over ``steps`` after warm-up) and the warm-up's own time."""
    torch.backends.cudnn.benchmark = cudnn_benchmark
    model = build().to(device).train()
    trainer = Trainer(device=device, progress=False, **trainer_kwargs)
    if trainer.channels_last:
        model.to(memory_format=torch.channels_last)
    if compile_encoder:
        model.encoder = torch.compile(model.encoder)
    optimizers, _ = trainer.configure_optimizer(model)
    warmup = 5 if compile_encoder else 3
    start = time.perf_counter()
    for i in range(warmup):
        trainer.step(model, *data[i % len(data)], optimizers)
    if device.type == "cuda":
        torch.cuda.synchronize()
    warm = time.perf_counter() - start
    sec = seconds_per_step(lambda i: trainer.step(model, *data[i % len(data)], optimizers), steps, device, warmup=0)
    torch.backends.cudnn.benchmark = False
    return {"s_per_step": sec, "warmup_s": warm}


def conv_table(name: str, kind: str, shape, batch_size: int, base: dict, device, steps: int, do_compile: bool,
               peak: float | None) -> list[dict]:
    data = batches(shape, batch_size, 10, device)
    build = lambda: latent_classifier(kind, shape)  # noqa: E731
    flops_model = build().to(device)
    flops = step_flops(flops_model, Trainer(device=device, progress=False, amp=False, **base), *data[0])
    del flops_model
    modes = [("eager fp32", dict(amp=False), False, False),
             ("bf16 autocast", dict(amp=True), False, False),
             ("bf16 + channels-last", dict(amp=True, channels_last=True), False, False)]
    if do_compile:
        modes.append(("torch.compile, bf16 + channels-last", dict(amp=True, channels_last=True), True, False))
    if device.type == "cuda":
        modes.append(("bf16 + channels-last + cudnn.benchmark", dict(amp=True, channels_last=True), False, True))
    rows = []
    for label, kw, comp, bench_flag in modes:
        r = time_mode(build, {**base, **kw, "batch_size": batch_size}, data, device, steps, comp, bench_flag)
        tflops = flops / r["s_per_step"] / 1e12
        rows.append({"step": name, "mode": label, "batch": batch_size, "images_per_s": batch_size / r["s_per_step"],
                     "ms_per_step": 1000 * r["s_per_step"], "warmup_s": r["warmup_s"], "gflop_per_step": flops / 1e9,
                     "tflops": tflops, "fraction_of_bf16_peak": None if peak is None else tflops / peak})
        print(f"  {name:16s} {label:40s} {rows[-1]['images_per_s']:9.0f} img/s  {rows[-1]['ms_per_step']:7.2f} ms  "
              f"(warm-up {r['warmup_s']:.1f} s)", flush=True)
    for r in rows:
        r["ratio_to_eager_fp32"] = r["images_per_s"] / rows[0]["images_per_s"]
    return rows


def small_models(device, steps: int) -> list[dict]:
    """ms per step, fp32 and bf16, of the chapters' small models at their batch size (128)."""
    mnist_shape = (1, 28, 28)
    n_index = 50_000
    cases = [
        ("ConvNet VC (ch. 2-3)", lambda: latent_classifier("convnet", mnist_shape, "vc"), {}, mnist_shape, 10),
        ("VAE, 1 decoder layer (ch. 4)", lambda: V.VAE(decoder_depth=1), {}, (784,), 10),
        ("VAE, 5 decoder layers (ch. 4)", lambda: V.VAE(decoder_depth=5), {}, (784,), 10),
        ("VAE-AS, N = 50,000 (ch. 5)", lambda: AS.VAEAS(V.VAE(), n_index), {}, (784,), n_index),
    ]
    rows = []
    for name, build, kw, shape, labels in cases:
        data = batches(shape, 128, labels, device)
        data = [((x > 0.5).float(), y) for x, y in data]  # binary pixels for the Bernoulli decoders
        for label, amp in (("fp32", False), ("bf16", True)):
            torch.manual_seed(0)
            r = time_mode(build, {**kw, "amp": amp, "batch_size": 128}, data, device, steps)
            rows.append({"model": name, "precision": label, "ms_per_step": 1000 * r["s_per_step"]})
            print(f"  {name:32s} {label}: {rows[-1]['ms_per_step']:6.2f} ms/step", flush=True)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default=None)
    parser.add_argument("--steps", type=int, default=30, help="timed steps of ResNet-18 (the others take 4x)")
    parser.add_argument("--json", default=None, help="also write the numbers to this file")
    parser.add_argument("--no-compile", action="store_true", help="leave out torch.compile (slow to compile on CPU)")
    parser.add_argument("--resnet-batch", type=int, default=512, help="ResNet-18 batch (smaller for a CPU check)")
    args = parser.parse_args()
    device = pick_device(args.device)
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu"
    peak = bf16_peak(name) if device.type == "cuda" else None
    print(f"device: {name}; torch {torch.__version__}; dense bf16 peak: "
          f"{'unknown' if peak is None else f'{peak:.0f} TFLOP/s'}", flush=True)
    t0 = time.perf_counter()
    rows = conv_table("CIFAR ResNet-18", "resnet18", (3, 32, 32), args.resnet_batch,
                      dict(optimizer="sgd", lr=0.1, momentum=0.9, weight_decay=5e-4, augment="crop_flip"),
                      device, args.steps, not args.no_compile, peak)
    rows += conv_table("MNIST ConvNet", "convnet", (1, 28, 28), 128, dict(optimizer="adam", lr=1e-3),
                       device, 4 * args.steps, not args.no_compile, peak)
    small = small_models(device, 4 * args.steps)
    print(f"\n{name}, torch {torch.__version__}: the CE training step of Chapter 3's LatentClassifier "
          f"(forward + backward + optimiser), random inputs of the data's shape")
    print(f"{'step':16s} {'mode':40s} {'batch':>5s} {'img/s':>9s} {'vs fp32':>8s} {'TFLOP/s':>8s} "
          f"{'of peak':>8s}")
    for r in rows:
        frac = "n/a" if r["fraction_of_bf16_peak"] is None else f"{100 * r['fraction_of_bf16_peak']:.1f}%"
        print(f"{r['step']:16s} {r['mode']:40s} {r['batch']:5d} {r['images_per_s']:9.0f} "
              f"{r['ratio_to_eager_fp32']:7.2f}x {r['tflops']:8.2f} {frac:>8s}")
    print(f"(GFLOP per step: ResNet-18 {rows[0]['gflop_per_step']:.0f}, ConvNet "
          f"{next(r for r in rows if r['step'] == 'MNIST ConvNet')['gflop_per_step']:.1f}; "
          "TFLOP/s counts the fp32 graph's matmul and convolution FLOPs in every mode)")
    print("\nsmall models, batch 128, ms per Trainer.step:")
    for r in small:
        print(f"  {r['model']:32s} {r['precision']}: {r['ms_per_step']:6.2f}")
    print(f"bench time {time.perf_counter() - t0:.0f} s")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"device": name, "torch": torch.__version__, "bf16_peak_tflops": peak, "conv": rows,
                       "small": small}, f, indent=1)


if __name__ == "__main__":
    main()
