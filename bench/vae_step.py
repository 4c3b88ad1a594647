"""The VAE's training step before and after issue 11 (a range check of the inputs every step, four (N, d)
temporaries for the KL) against the current `VAE.training_step` (first batch checked only, fused KL), in one run.

Both time the same model shape on the same binarised MNIST batches, held on the device, through `Trainer.step`:

    python bench/vae_step.py [--device cuda] [--decoder-depth 5] [--hidden 500] [--batch-size 256] [--steps 200]
"""

from __future__ import annotations

import argparse

import torch
from timing import seconds_per_step

from lvmcls import vae as V
from lvmcls.data import binarized, load_dataset
from lvmcls.train import Trainer, pick_device


class VAEStepBefore(V.VAE):
    """`VAE` with the step as it was: `check_unit_interval` on every batch (three reductions and, on a GPU, a host
    sync) and the KL as the sum of `kl_to_standard_normal`'s per-dimension tensor."""

    def elbo_terms(self, x):
        V.check_unit_interval(x)
        mean, log_var = self.encode(x)
        z = self.reparameterise(mean, log_var)
        rec = self.log_likelihood(x, z)
        kl = V.kl_to_standard_normal(mean, log_var).sum(1)
        return {"rec": rec, "kl": kl, "z": z, "mean": mean, "log_var": log_var}


def time_steps(cls, args, batches, device) -> float:
    torch.manual_seed(0)
    model = cls(x_dim=784, latent_dim=40, hidden=args.hidden, encoder_depth=2, decoder_depth=args.decoder_depth).to(device)
    trainer = Trainer(batch_size=args.batch_size, device=device, progress=False)
    optimizers, _ = trainer.configure_optimizer(model)
    return seconds_per_step(lambda i: trainer.step(model, *batches[i], optimizers), args.steps, device, warmup=10)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default=None)
    parser.add_argument("--decoder-depth", type=int, default=5)
    parser.add_argument("--hidden", type=int, default=500)
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--steps", type=int, default=200)
    args = parser.parse_args()
    device = pick_device(args.device)
    mnist = load_dataset("mnist", device=device)
    train = binarized(mnist.train, 0)
    generator = torch.Generator().manual_seed(0)
    batches = [b for _, b in zip(range(args.steps + 10), train.batches(args.batch_size, shuffle=True,
                                                                         generator=generator, drop_last=True))]
    before = time_steps(VAEStepBefore, args, batches, device)
    after = time_steps(V.VAE, args, batches, device)
    before_again = time_steps(VAEStepBefore, args, batches, device)  # load drifts: time the old step twice
    before = (before + before_again) / 2
    print(f"device: {device}, threads {torch.get_num_threads()}, encoder 2 / decoder {args.decoder_depth} layers of "
          f"{args.hidden}, batch {args.batch_size}")
    print(f"before: {1000 * before:7.2f} ms/step   after: {1000 * after:7.2f} ms/step   ratio before/after: "
          f"{before / after:.2f}")


if __name__ == "__main__":
    main()
