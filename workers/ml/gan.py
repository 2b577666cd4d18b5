"""Latent WGAN-GP: a generator of sentence-VAE latents and a critic over them (ARAE, Zhao et al.
2018; WGAN-GP, Gulrajani et al. 2017).

    noise (B, noise_dim) -> Generator MLP -> z (B, latent_dim) -> the VAE's decoder -> text
    z (real: the VAE's posterior of a training sentence; fake: the generator's) -> Critic -> score

The generator learns the *aggregate posterior* of the VAE (where real sentences sit), not the
N(0, I) prior, so its samples fall where the decoder was trained instead of in the prior's holes.
The critic is a Wasserstein critic: higher = more like real latents; ``critic_score`` of a text's
posterior mean therefore doubles as a realism score for any text.

No batch norm in the critic (the gradient penalty is per sample); layer norm in the generator.
Pure PyTorch: no Django, no I/O; the training loop (n_critic critic steps per generator step,
alternating Adam optimisers, a fixed noise batch, the optional mode-seeking term) is in
``workers.train.genmodels``.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor, nn


@dataclass
class GANConfig:
    latent_dim: int = 32  # the VAE's
    noise_dim: int = 64
    hidden_dim: int = 256
    layers: int = 3  # hidden layers of each MLP
    gp_weight: float = 10.0  # lambda of the gradient penalty
    leak: float = 0.2  # LeakyReLU slope in the critic


class Generator(nn.Module):
    def __init__(self, config: GANConfig):
        super().__init__()
        c = config
        blocks: list[nn.Module] = []
        width = c.noise_dim
        for _ in range(c.layers):
            blocks += [nn.Linear(width, c.hidden_dim), nn.LayerNorm(c.hidden_dim), nn.ReLU()]
            width = c.hidden_dim
        blocks.append(nn.Linear(width, c.latent_dim))
        self.net = nn.Sequential(*blocks)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        for module in self.net:
            if isinstance(module, nn.Linear):
                nn.init.kaiming_uniform_(module.weight, nonlinearity="relu")
                nn.init.zeros_(module.bias)

    def forward(self, noise: Tensor) -> Tensor:
        return self.net(noise)


class Critic(nn.Module):
    def __init__(self, config: GANConfig):
        super().__init__()
        c = config
        blocks: list[nn.Module] = []
        width = c.latent_dim
        for _ in range(c.layers):
            blocks += [nn.Linear(width, c.hidden_dim), nn.LeakyReLU(c.leak)]
            width = c.hidden_dim
        blocks.append(nn.Linear(width, 1))
        self.net = nn.Sequential(*blocks)
        self.leak = c.leak
        self.reset_parameters()

    def reset_parameters(self) -> None:
        for module in self.net:
            if isinstance(module, nn.Linear):
                nn.init.kaiming_uniform_(module.weight, a=self.leak, nonlinearity="leaky_relu")
                nn.init.zeros_(module.bias)

    def forward(self, z: Tensor) -> Tensor:
        """(B, latent) -> (B,) Wasserstein scores."""
        return self.net(z).squeeze(-1)


class LatentGAN(nn.Module):
    """The pair, so one state dict and one config travel together in a checkpoint."""

    def __init__(self, config: GANConfig):
        super().__init__()
        self.config = config
        self.generator = Generator(config)
        self.critic = Critic(config)

    def noise(self, n: int, *, generator: torch.Generator | None = None, device: torch.device | str = "cpu") -> Tensor:
        return torch.randn(n, self.config.noise_dim, generator=generator).to(device)

    def sample(self, n: int, *, generator: torch.Generator | None = None) -> Tensor:
        """n generated latents."""
        device = next(self.parameters()).device
        return self.generator(self.noise(n, generator=generator, device=device))

    def critic_score(self, z: Tensor) -> Tensor:
        return self.critic(z)


# --- losses ---------------------------------------------------------------------------------


def gradient_penalty(critic: nn.Module, real: Tensor, fake: Tensor) -> Tensor:
    """E[(||grad_x critic(x)|| - 1)^2] on random points between real and fake latents: the soft
    1-Lipschitz constraint of WGAN-GP."""
    alpha = torch.rand(real.size(0), 1, device=real.device, dtype=real.dtype)
    mixed = (alpha * real + (1 - alpha) * fake).requires_grad_(True)
    scores = critic(mixed)
    (grads,) = torch.autograd.grad(scores.sum(), mixed, create_graph=True)
    return ((grads.norm(2, dim=1) - 1.0) ** 2).mean()


@dataclass
class CriticLoss:
    total: Tensor  # minimised by the critic: -(W distance estimate) + lambda * GP
    wasserstein: Tensor  # E[critic(real)] - E[critic(fake)]
    gradient_penalty: Tensor


def critic_loss(critic: nn.Module, real: Tensor, fake: Tensor, *, gp_weight: float) -> CriticLoss:
    """``fake`` must come detached from the generator: the critic's step must not train it."""
    wasserstein = critic(real).mean() - critic(fake).mean()
    penalty = gradient_penalty(critic, real, fake)
    return CriticLoss(total=-wasserstein + gp_weight * penalty, wasserstein=wasserstein, gradient_penalty=penalty)


def generator_loss(critic: nn.Module, fake: Tensor) -> Tensor:
    return -critic(fake).mean()


def mode_seeking_ratio(noise: Tensor, fake: Tensor) -> Tensor:
    """MSGAN's ratio (Mao et al. 2019): how far apart the generator puts the latents of two noise
    vectors, relative to how far apart the noise vectors are, over the two halves of a batch
    (mean absolute differences). A collapsing generator maps distant noise to nearby latents
    (ratio -> 0); the generator's loss adds ``weight / (ratio + 1e-5)`` to keep it from doing so."""
    noise_a, noise_b = noise.chunk(2)
    fake_a, fake_b = fake.chunk(2)
    return (fake_a - fake_b).abs().mean() / (noise_a - noise_b).abs().mean()
