"""The pretrained-parts sentence VAE on tiny random parts (a 1-layer BERT encoder, a 2-layer
SmolLM2-shaped decoder): shapes and framing, the loss's parts, a few steps lower the loss, the
latent reaches the decoder, and the three decodings."""

import pytest
import torch
from transformers import BertConfig, BertModel, LlamaForCausalLM

from workers.ml.lm import tiny_llama_config
from workers.ml.optimus import OptimusConfig, OptimusVAE, WordIndex
from workers.ml.vae import vae_loss

pytestmark = pytest.mark.usefixtures("one_torch_thread")

VOCAB = 60
END = 0


def tiny_optimus(**overrides) -> OptimusVAE:
    torch.manual_seed(0)
    encoder = BertModel(BertConfig(vocab_size=50, hidden_size=16, num_hidden_layers=1, num_attention_heads=2,
                                   intermediate_size=32), add_pooling_layer=False)
    decoder = LlamaForCausalLM(tiny_llama_config(vocab_size=VOCAB, eos_token_id=END, bos_token_id=END))
    config = OptimusConfig(encoder_dim=16, decoder_dim=64, latent_dim=4, prefix_len=2, max_len=10, bos_id=END,
                           eos_id=END, banned_ids=[1, 2], **overrides)
    return OptimusVAE(config, encoder=encoder, decoder=decoder)


SENTENCES = [[5, 6, 7, 8], [9, 10, 11], [5, 6, 12, 13, 14], [15, 16], [17, 18, 19, 20, 21, 22]]


def _batch(model: OptimusVAE) -> dict:
    batch = model.decoder_batch(SENTENCES)
    enc = torch.tensor([[3, 4, 5, 6, 0], [7, 8, 9, 0, 0], [3, 4, 10, 11, 12], [13, 14, 0, 0, 0], [15, 16, 17, 18, 19]])
    batch.update(encoder_ids=enc, encoder_mask=(enc != 0).long())
    return batch


def test_shapes_framing_and_loss_parts():
    model = tiny_optimus()
    batch = _batch(model)
    assert batch["decoder_ids"].shape == (5, 7)
    assert batch["decoder_ids"][0].tolist()[:5] == [END, 5, 6, 7, 8]  # <bos> first
    assert batch["targets"][0].tolist() == [5, 6, 7, 8, END, -100, -100]  # <eos> last, padding ignored
    assert batch["decoder_mask"].sum(dim=1).tolist() == [5, 4, 6, 3, 7]
    logits, mu, logvar, z = model(batch)
    assert logits.shape == (5, 7, VOCAB) and mu.shape == logvar.shape == z.shape == (5, 4)
    parts = vae_loss(logits, batch["targets"], mu, logvar, beta=0.5, free_bits=0.0, pad_id=-100)
    assert parts.tokens == 5 + 4 + 6 + 3 + 7
    assert float(parts.total) == pytest.approx(float(parts.recon + 0.5 * parts.kl), rel=1e-5)
    assert parts.kl_per_dim.shape == (4,) and float(parts.kl) >= 0
    # free bits: each dimension's KL counts as at least the threshold
    floored = vae_loss(logits, batch["targets"], mu, logvar, beta=1.0, free_bits=5.0, pad_id=-100)
    assert float(floored.total) == pytest.approx(float(floored.recon) + 4 * 5.0, rel=1e-4)


def test_a_few_steps_lower_the_loss():
    model = tiny_optimus()
    batch = _batch(model)
    optimizer = torch.optim.Adam([p for p in model.parameters() if p.requires_grad], lr=3e-3)
    losses = []
    for _ in range(12):
        logits, mu, logvar, _ = model(batch)
        parts = vae_loss(logits, batch["targets"], mu, logvar, beta=0.1, pad_id=-100)
        optimizer.zero_grad()
        parts.total.backward()
        optimizer.step()
        losses.append(float(parts.total))
    assert losses[-1] < 0.8 * losses[0]


def test_the_latent_reaches_the_decoder():
    model = tiny_optimus().eval()
    batch = model.decoder_batch(SENTENCES[:1])
    z = torch.zeros(2, 4)
    z[1] = 3.0
    ids = batch["decoder_ids"].expand(2, -1)
    logits = model.decode(z, ids, batch["decoder_mask"].expand(2, -1))
    assert not torch.allclose(logits[0], logits[1], atol=1e-4)
    # through the prefix alone too (the added embedding switched off)
    model.to_embedding = None
    logits = model.decode(z, ids, batch["decoder_mask"].expand(2, -1))
    assert not torch.allclose(logits[0], logits[1], atol=1e-4)
    # and greedy decoding follows: different latents, different sentences
    texts = model.generate(torch.randn(6, 4, generator=torch.Generator().manual_seed(0)) * 3, strategy="greedy")
    assert len({tuple(t) for t in texts}) > 1


def test_word_dropout_hides_the_input_words_but_never_bos_nor_the_latent():
    model = tiny_optimus().eval()
    batch = model.decoder_batch(SENTENCES[:2])
    z = torch.randn(2, 4, generator=torch.Generator().manual_seed(1))
    plain = model.decode(z, batch["decoder_ids"], batch["decoder_mask"])
    hidden = model.decode(z, batch["decoder_ids"], batch["decoder_mask"], word_dropout=1.0)
    other_words = torch.randint(3, VOCAB, batch["decoder_ids"].shape, generator=torch.Generator().manual_seed(2))
    other_words[:, 0] = END
    hidden_other = model.decode(z, other_words, batch["decoder_mask"], word_dropout=1.0)
    assert torch.allclose(plain[:, 0], hidden[:, 0], atol=1e-5)  # <bos> is always seen
    assert not torch.allclose(plain[:, 1:], hidden[:, 1:], atol=1e-4)
    assert torch.allclose(hidden, hidden_other, atol=1e-5)  # every word hidden: only z and <bos> remain
    assert not torch.allclose(hidden, model.decode(z * 0, batch["decoder_ids"], batch["decoder_mask"], word_dropout=1.0),
                              atol=1e-4)


def test_gradients_reach_the_heads_through_the_reparameterisation():
    model = tiny_optimus()
    logits, mu, logvar, _ = model(_batch(model))
    vae_loss(logits, _batch(model)["targets"], mu, logvar, beta=1.0, pad_id=-100).total.backward()
    for head in model.heads():
        assert head.weight.grad is not None and head.weight.grad.abs().sum() > 0


@pytest.mark.parametrize("strategy", ["greedy", "sample", "beam"])
def test_decoding_is_bounded_reproducible_and_skips_banned_tokens(strategy):
    model = tiny_optimus().eval()
    z = torch.randn(3, 4, generator=torch.Generator().manual_seed(1))
    first = model.generate(z, strategy=strategy, generator=torch.Generator().manual_seed(7), beam_size=3)
    again = model.generate(z, strategy=strategy, generator=torch.Generator().manual_seed(7), beam_size=3)
    assert first == again and len(first) == 3
    for ids in first:
        assert 1 <= len(ids) <= model.config.max_len
        assert END not in ids and not {1, 2} & set(ids)
        trigrams = [tuple(ids[i : i + 3]) for i in range(len(ids) - 2)]
        assert len(trigrams) == len(set(trigrams))  # no_repeat_ngram=3


def test_beam_search_scores_at_least_as_well_as_greedy():
    model = tiny_optimus().eval()
    z = torch.randn(2, 4, generator=torch.Generator().manual_seed(2))

    def log_prob(ids: list[int], row: int) -> float:
        batch = model.decoder_batch([ids])
        logits = model.decode(z[row : row + 1], batch["decoder_ids"], batch["decoder_mask"])
        logp = torch.log_softmax(logits.float(), dim=-1)
        return float(logp[0, torch.arange(len(ids) + 1), batch["targets"][0, : len(ids) + 1]].sum())

    with torch.no_grad():
        greedy = model.generate(z, strategy="greedy", no_repeat_ngram=0, max_len=6)
        beam = model.generate(z, strategy="beam", beam_size=4, no_repeat_ngram=0, max_len=6, length_penalty=0.0)
        for row in range(2):
            if len(greedy[row]) < 6 and len(beam[row]) < 6:  # both ended: complete hypotheses compare
                assert log_prob(beam[row], row) >= log_prob(greedy[row], row) - 1e-3


def test_the_untrained_prefix_is_the_prompt_and_the_latent_starts_small():
    model = tiny_optimus(prefix_init_ids=[7, 9])
    embeddings = model.decoder.get_input_embeddings().weight.detach()
    z = torch.randn(3, 4, generator=torch.Generator().manual_seed(0))
    prefix = model._prefix(z).detach()
    prompt = embeddings[[7, 9]].unsqueeze(0)
    # each prefix vector is the prompt's token plus a small share of z
    assert torch.allclose(model._prefix(torch.zeros(1, 4)).detach(), prompt, atol=1e-6)
    assert float((prefix - prompt).norm(dim=-1).max()) < 0.5 * float(embeddings.norm(dim=-1).mean())


def test_moments_init_spreads_mu_over_the_corpus_at_unit_variance():
    model = tiny_optimus()
    generator = torch.Generator().manual_seed(3)
    # sentence vectors that share most of their value and differ a little, as MiniLM's do
    pooled = torch.randn(1, 16, generator=generator) + 0.05 * torch.randn(200, 16, generator=generator)
    before = model.encode_pooled(pooled)[0].std(dim=0)
    model.moments_init(pooled)
    mu, logvar = model.encode_pooled(pooled)
    assert float(before.mean()) < 0.2
    assert torch.allclose(mu.std(dim=0), torch.ones(4), atol=1e-3) and torch.allclose(mu.mean(dim=0), torch.zeros(4), atol=1e-4)
    assert float(torch.exp(0.5 * logvar).mean()) < 0.3  # signal well above the noise
    model.moments_init(pooled[:3])  # fewer sentences than dimensions: left as it was
    assert torch.allclose(model.encode_pooled(pooled)[0], mu)


def test_memory_puts_the_latent_in_every_layer_and_decodes_as_teacher_forcing():
    model = tiny_optimus(memory=True, prefix_init_ids=[7, 9]).eval()
    batch = model.decoder_batch(SENTENCES[:1])
    z = torch.zeros(2, 4)
    z[1] = 3.0
    ids, mask = batch["decoder_ids"].expand(2, -1), batch["decoder_mask"].expand(2, -1)
    logits = model.decode(z, ids, mask)
    assert logits.shape == (2, ids.size(1), VOCAB)
    assert not torch.allclose(logits[0], logits[1], atol=1e-4)
    model.to_embedding = None  # through the memory alone
    logits = model.decode(z, ids, mask)
    assert not torch.allclose(logits[0], logits[1], atol=1e-4)
    # untrained, z = 0: the memory is the prompt's own keys and values, so the decoder reads
    # [prompt, <bos>, words] exactly as it would with the prompt's tokens in front
    plain = model.decoder(input_ids=torch.cat([torch.tensor([[7, 9]]), batch["decoder_ids"]], dim=1)).logits[:, 2:]
    assert torch.allclose(logits[0:1], plain, atol=1e-4)
    # greedy decoding with the cache gives what teacher forcing on its own output predicts
    [greedy] = model.generate(z[1:], strategy="greedy", no_repeat_ngram=0, max_len=5)
    forced = model.decoder_batch([greedy])
    steps = model.decode(z[1:], forced["decoder_ids"], forced["decoder_mask"])[0, : len(greedy)]
    steps[:, model.config.banned_ids] = -float("inf")
    steps[0, END] = -float("inf")
    assert steps.argmax(dim=-1).tolist() == greedy


@pytest.mark.parametrize("strategy", ["greedy", "sample"])
def test_decoding_guided_to_keep_a_word_writes_it_whole_once(strategy):
    model = tiny_optimus().eval()
    z = torch.randn(4, 4, generator=torch.Generator().manual_seed(5))
    keep = [[[13, 14, 15]], [[21]]]  # two words: one of three tokens, one of one
    rows = model.generate(z, strategy=strategy, keep=keep, keep_bonus=50.0, generator=torch.Generator().manual_seed(1))
    for ids in rows:
        assert any(ids[i : i + 3] == [13, 14, 15] for i in range(len(ids))) and 21 in ids
    logits = torch.zeros(3, VOCAB)
    guided = OptimusVAE._guide(logits.clone(), [[5, 13, 14, 15, 21], [5, 13], [5]], keep, 2.0)
    assert guided[0, 13] == -2.0 and guided[0, 21] == -2.0 and guided[0].sum() == -4.0  # written: not again
    assert guided[1, 14] > 50 and guided[1, 21] == 2.0  # begun: completed; the other: its bonus
    assert guided[2, 13] == 2.0 and guided[2, 21] == 2.0
    plain = model.generate(z, strategy=strategy, generator=torch.Generator().manual_seed(1))
    assert plain != rows


def test_a_ramped_bonus_lets_the_sentence_begin_and_the_hold_keeps_it_open():
    """With ``ramp`` the word's bonus grows from nothing at the first token to the full bonus at
    the ramp-th, and ``hold`` takes the end away while the word is missing."""
    keep = [[[13, 14, 15]], [[21]]]
    logits = torch.zeros(4, VOCAB)
    guided = OptimusVAE._guide(logits.clone(), [[], [5], [5, 6, 7, 8, 9], [5, 13, 14, 15, 21]], keep, 4.0,
                               ramp=4, hold=END)
    assert guided[0, 13] == 0.0 and guided[0, 21] == 0.0  # the first token: no push
    assert guided[1, 13] == 1.0 and guided[2, 13] == 4.0  # a quarter, then the whole
    assert guided[0, END] == guided[2, END] == -100.0  # cannot end without the words
    assert guided[3, END] == 0.0  # both written: may end
    model = tiny_optimus().eval()
    z = torch.randn(4, 4, generator=torch.Generator().manual_seed(5))
    rows = model.generate(z, strategy="greedy", keep=[[[21]]], keep_bonus=50.0, keep_ramp=3, keep_hold=True)
    plain = model.generate(z, strategy="greedy")
    assert [ids[0] for ids in rows] == [ids[0] for ids in plain]  # each begins as unguided
    assert all(21 in ids for ids in rows)


def _pieces() -> WordIndex:
    pieces = [f" w{i}" for i in range(VOCAB)]
    pieces[13], pieces[14], pieces[15], pieces[16], pieces[17] = " Pan", "oramic", "Pan", "Tight", "."
    return WordIndex(groups=torch.full((VOCAB,), -1), pieces=pieces, words={})


def test_a_kept_word_counts_only_whole_and_does_not_go_on():
    """"Pan" that went on as "Panoramic", or "Pan" glued to the word before ("TightPan"), is not
    the word: the sentence stays open and the word is pushed again; a word just written loses
    every token that would continue it, and its glued form is pushed only where a word may start."""
    index = _pieces()
    keep = [[[13], [15]]]  # " Pan" and "Pan"
    logits = torch.zeros(4, VOCAB)
    history = [[5, 13, 14], [5, 16, 15], [5, 13], [17]]
    guided = OptimusVAE._guide(logits.clone(), history, keep, 4.0, hold=END, words=index)
    assert guided[0, END] == guided[1, END] == -100.0  # not written: cannot end
    assert guided[0, 13] == 4.0 and guided[0, 15] == 0.0  # after "oramic" only the spaced form
    assert guided[2, END] == 0.0 and guided[2, 14] == -100.0 and guided[2, 16] == -100.0  # written: it ends here
    assert guided[2, 20] == 0.0  # a next word is free
    assert guided[3, 15] == 4.0  # after "." the glued form may start
    plain = OptimusVAE._guide(logits.clone(), history, keep, 4.0, hold=END)
    assert plain[0, END] == 0.0  # read as tokens alone, "Panoramic" had "Pan"


def test_anchor_words_are_nudged_not_forced():
    """An anchor (a variant's source's product type) gets a small bonus and a begun anchor only
    that bonus on its next token, so the decoder may still write something else."""
    keep = [[[13, 14, 15]]]
    logits = torch.zeros(2, VOCAB)
    nudged = OptimusVAE._guide(logits.clone(), [[5, 13], [5]], keep, 3.0, complete=3.0)
    assert nudged[0, 14] == 3.0 and nudged[1, 13] == 3.0 and nudged.sum() == 6.0
    model = tiny_optimus().eval()
    z = torch.randn(8, 4, generator=torch.Generator().manual_seed(5))
    plain = model.generate(z, strategy="greedy")
    anchored = model.generate(z, strategy="greedy", anchor=[[[21]]], anchor_bonus=50.0)
    assert sum(21 in ids for ids in anchored) > sum(21 in ids for ids in plain)
