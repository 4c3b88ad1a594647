"""lvmcls: latent-variable models for classification, the library behind the book.

Small modules, plain values for configuration, one `Trainer`:

- `lvmcls.data`        MNIST / Fashion-MNIST / CIFAR-10 as device-resident tensors, with offline fallbacks
- `lvmcls.synthetic`   Gaussian class-conditional data whose Bayes posterior is known in closed form
- `lvmcls.nets`        encoders and heads (MLP)
- `lvmcls.objectives`  losses, each named after the equation it implements
- `lvmcls.models`      modules that pair a network with an objective (`training_step`)
- `lvmcls.train`       the one `Trainer`, seeding, and the "load if present, else train" checkpoint cache
- `lvmcls.metrics`     accuracy, ECE, reliability curves, posterior error
- `lvmcls.plots`       the book's figures
- `lvmcls.results`     `results/<stem>.json` and the scorecard table
- `lvmcls.notebook`    chapter set-up: profile, seed, device
"""

__version__ = "0.1.0"
