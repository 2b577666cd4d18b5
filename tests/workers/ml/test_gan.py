"""The latent WGAN-GP: the gradient penalty, the critic/generator steps, and that training moves
generated latents towards the real ones."""

import pytest
import torch

from workers.ml.gan import GANConfig, LatentGAN, critic_loss, generator_loss, gradient_penalty, mode_seeking_ratio

pytestmark = pytest.mark.usefixtures("one_torch_thread")  # small models: one thread is faster


def test_gradient_penalty_is_zero_for_a_unit_lipschitz_linear_critic():
    critic = torch.nn.Linear(3, 1, bias=False)
    with torch.no_grad():
        critic.weight.copy_(torch.tensor([[0.6, 0.8, 0.0]]))
    real, fake = torch.randn(16, 3), torch.randn(16, 3)
    assert float(gradient_penalty(lambda z: critic(z).squeeze(-1), real, fake)) == pytest.approx(0.0, abs=1e-10)
    with torch.no_grad():
        critic.weight.mul_(3.0)  # gradient norm 3: penalty (3 - 1)^2
    assert float(gradient_penalty(lambda z: critic(z).squeeze(-1), real, fake)) == pytest.approx(4.0, rel=1e-5)


def test_shapes_seeded_sampling_and_critic_step_leaves_generator_alone():
    torch.manual_seed(0)
    gan = LatentGAN(GANConfig(latent_dim=4, noise_dim=6, hidden_dim=16, layers=2))
    one = gan.sample(5, generator=torch.Generator().manual_seed(3))
    two = gan.sample(5, generator=torch.Generator().manual_seed(3))
    assert one.shape == (5, 4) and torch.equal(one, two)
    assert gan.critic_score(one).shape == (5,)
    parts = critic_loss(gan.critic, torch.randn(8, 4), gan.sample(8).detach(), gp_weight=10.0)
    parts.total.backward()
    assert all(p.grad is None for p in gan.generator.parameters())
    assert all(p.grad is not None for p in gan.critic.parameters())
    assert torch.isclose(parts.total, -parts.wasserstein + 10.0 * parts.gradient_penalty)


def test_training_moves_generated_latents_towards_the_real_distribution():
    torch.manual_seed(0)
    gan = LatentGAN(GANConfig(latent_dim=2, noise_dim=4, hidden_dim=32, layers=2))
    opt_g = torch.optim.Adam(gan.generator.parameters(), lr=2e-3, betas=(0.5, 0.9))
    opt_c = torch.optim.Adam(gan.critic.parameters(), lr=2e-3, betas=(0.5, 0.9))
    target = torch.tensor([3.0, -2.0])

    def gap():
        with torch.no_grad():
            return float((gan.sample(256).mean(0) - target).norm())

    before = gap()
    for _ in range(150):
        for _ in range(3):
            real = target + 0.3 * torch.randn(64, 2)
            loss = critic_loss(gan.critic, real, gan.sample(64).detach(), gp_weight=10.0).total
            opt_c.zero_grad()
            loss.backward()
            opt_c.step()
        g = generator_loss(gan.critic, gan.sample(64))
        opt_g.zero_grad()
        g.backward()
        opt_g.step()
    assert gap() < 0.5 * before, (before, gap())


def test_mode_seeking_ratio_is_zero_for_a_collapsed_generator_and_rewards_spread():
    noise = torch.randn(8, 4)
    collapsed = torch.zeros(8, 3).requires_grad_(True)
    assert float(mode_seeking_ratio(noise, collapsed)) == 0.0
    spread = noise[:, :3] * 2.0
    ratio = mode_seeking_ratio(noise, spread)
    first, second = noise.chunk(2)
    expected = (spread[:4] - spread[4:]).abs().mean() / (first - second).abs().mean()
    assert float(ratio) == pytest.approx(float(expected)) and float(ratio) > 0
    gan = LatentGAN(GANConfig(latent_dim=3, noise_dim=4, hidden_dim=8, layers=1))
    (1.0 / (mode_seeking_ratio(noise, gan.generator(noise)) + 1e-5)).backward()
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in gan.generator.parameters() if p.dim() == 2)
