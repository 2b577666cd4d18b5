"""The sentence VAE: its loss falls, gradients flow through the reparameterisation, decoding is
reproducible, the KL schedules and free bits do what they say."""

import pytest
import torch

from workers.ml.vae import SentenceVAE, VAEConfig, active_units, kl_weight, vae_loss

pytestmark = pytest.mark.usefixtures("one_torch_thread")  # small models: one thread is faster


def tiny_vae(**overrides) -> SentenceVAE:
    torch.manual_seed(0)
    return SentenceVAE(VAEConfig(vocab_size=40, embed_dim=16, hidden_dim=32, latent_dim=4, max_len=12, **overrides))


SEQUENCES = [[5, 6, 7, 8], [9, 10, 11], [5, 6, 12, 13, 14], [15, 16], [17, 18, 19, 20, 21, 22]]


def test_forward_shapes_and_eos_framing():
    model = tiny_vae()
    tokens, lengths = model.batch_make(SEQUENCES)
    assert tokens.shape == (5, 7) and lengths.tolist() == [5, 4, 6, 3, 7]
    assert tokens[0].tolist()[:5] == [5, 6, 7, 8, model.config.eos_id]
    logits, mu, logvar, z = model(tokens, lengths)
    assert logits.shape == (5, 7, 40) and mu.shape == logvar.shape == z.shape == (5, 4)
    assert model.decoder_inputs(tokens)[:, 0].eq(model.config.bos_id).all()


def test_loss_falls_within_a_few_steps():
    model = tiny_vae(word_dropout=0.0, dropout=0.0)
    tokens, lengths = model.batch_make(SEQUENCES)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
    losses = []
    for _ in range(20):
        logits, mu, logvar, _ = model(tokens, lengths)
        parts = vae_loss(logits, tokens, mu, logvar, beta=0.1)
        optimizer.zero_grad()
        parts.total.backward()
        optimizer.step()
        losses.append(float(parts.total.detach()))
    assert losses[-1] < 0.7 * losses[0], losses


def test_reparameterisation_gradients_flow_to_mu_logvar_and_encoder():
    model = tiny_vae()
    tokens, lengths = model.batch_make(SEQUENCES)
    mu, logvar = model.encode(tokens, lengths)
    mu.retain_grad()
    logvar.retain_grad()
    z = model.reparameterize(mu, logvar)
    logits = model.decode(z, model.decoder_inputs(tokens))
    vae_loss(logits, tokens, mu, logvar, beta=1.0).total.backward()
    assert mu.grad.abs().sum() > 0 and logvar.grad.abs().sum() > 0
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for n, p in model.encoder.named_parameters())
    # the sample's noise term carries logvar's gradient even without the KL term
    mu2, logvar2 = model.encode(tokens, lengths)
    logvar2.retain_grad()
    z2 = model.reparameterize(mu2, logvar2)
    F_recon = vae_loss(model.decode(z2, model.decoder_inputs(tokens)), tokens, mu2, logvar2, beta=0.0).total
    F_recon.backward()
    assert logvar2.grad.abs().sum() > 0


def test_loss_parts_add_up_and_free_bits_floor_each_dimension():
    model = tiny_vae()
    tokens, lengths = model.batch_make(SEQUENCES)
    logits, mu, logvar, _ = model(tokens, lengths)
    plain = vae_loss(logits, tokens, mu, logvar, beta=0.5)
    assert torch.isclose(plain.total, plain.recon + 0.5 * plain.kl)
    assert torch.isclose(plain.kl, plain.kl_per_dim.sum())
    assert plain.tokens == int(lengths.sum())
    floored = vae_loss(logits, tokens, torch.zeros_like(mu), torch.zeros_like(logvar), beta=1.0, free_bits=0.25)
    assert float(floored.kl) == 0.0
    assert torch.isclose(floored.total, floored.recon + 4 * 0.25)


def test_decoding_greedy_and_beam_are_deterministic_and_seeded_sampling_reproducible():
    model = tiny_vae().eval()
    z = torch.randn(3, 4, generator=torch.Generator().manual_seed(1))
    assert model.generate(z) == model.generate(z)
    beam = model.generate(z, strategy="beam", beam_size=3)
    assert len(beam) == 3 and beam == model.generate(z, strategy="beam", beam_size=3)
    one = model.generate(z, strategy="sample", generator=torch.Generator().manual_seed(7), top_k=5)
    two = model.generate(z, strategy="sample", generator=torch.Generator().manual_seed(7), top_k=5)
    assert one == two
    for row in one + beam:
        assert model.config.eos_id not in row and model.config.pad_id not in row and len(row) <= model.config.max_len
    with pytest.raises(ValueError):
        model.generate(z, strategy="nucleus")


def test_beam_finds_a_sequence_at_least_as_likely_as_greedy():
    model = tiny_vae().eval()
    z = torch.randn(4, 4, generator=torch.Generator().manual_seed(3))

    def log_prob(rows):
        tokens, lengths = model.batch_make(rows)
        with torch.no_grad():
            logits = model.decode(z, model.decoder_inputs(tokens)).log_softmax(-1)
        picked = logits.gather(-1, tokens.unsqueeze(-1)).squeeze(-1)
        mask = torch.arange(tokens.size(1)) < lengths.unsqueeze(1)
        return (picked * mask).sum(1)

    greedy = model.generate(z, max_len=11)
    beam = model.generate(z, strategy="beam", beam_size=6, length_penalty=0.0, max_len=11)
    assert (log_prob(beam) >= log_prob(greedy) - 1e-4).all()


def test_kl_schedules():
    assert kl_weight(0, schedule="linear", total_steps=100, warmup_steps=10) == 0.0
    assert kl_weight(5, schedule="linear", total_steps=100, warmup_steps=10) == 0.5
    assert kl_weight(50, schedule="linear", total_steps=100, warmup_steps=10, beta=0.8) == 0.8
    cyc = [kl_weight(s, schedule="cyclical", total_steps=100, cycles=4, ratio=0.5) for s in range(100)]
    assert cyc[0] == 0.0 and cyc[13] == 1.0 and cyc[25] == 0.0 and cyc[6] == pytest.approx(0.5, abs=0.05)
    assert kl_weight(3, schedule="constant", total_steps=10, beta=0.3) == 0.3
    with pytest.raises(ValueError):
        kl_weight(1, schedule="sigmoid", total_steps=10)


def test_active_units_counts_dimensions_that_vary_over_the_data():
    mu = torch.zeros(50, 4)
    mu[:, 0] = torch.linspace(-1, 1, 50)
    mu[:, 2] = torch.linspace(0, 0.01, 50)  # barely moves: inactive
    assert active_units(mu) == 1
