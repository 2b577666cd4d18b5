"""Sentence VAE with pretrained parts (Optimus, Li et al. 2020, "Optimus: Organizing Sentences via
Pre-trained Modeling of a Latent Space").

    encoder tokens -> sentence encoder (all-MiniLM-L6-v2; frozen, or its last layer trained)
                   -> mean pooling -> linear head -> (mu, logvar) -> z = mu + sigma * eps
    z -> linear -> k key/value slots in every decoder layer (Optimus's "memory"; or, without
                   ``memory``, k prefix vectors in front of the input: a soft prompt)
    z -> linear -> one vector added to every input embedding of the decoder
    [prefix_1..k, <|endoftext|>, t_1 .. t_n] -> causal LM (SmolLM2, LoRA adapters) -> t_1 .. t_n, <|endoftext|>

A pretrained decoder writes fluent text from the first step; what it has to learn is to listen to
z. Against posterior collapse (the decoder ignoring z): the latent enters twice (memory and every
embedding), a start where z already carries the sentence (``moments_init``), free bits per
dimension and a cyclical beta (``workers.ml.vae.vae_loss`` and ``kl_weight``, shared with the GRU VAE).

The encoder and decoder are transformers modules passed in (loading them is I/O:
``workers.train.optimus``), so a test can build the model from tiny random ones. Decoding:
greedy, sampled (temperature, top-k, top-p) and beam search, with a KV cache; n-grams already
written are not repeated (``no_repeat_ngram``). Pure PyTorch: no Django, no I/O.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import Tensor, nn


@dataclass
class WordIndex:
    """The decoder vocabulary's words, for a repetition penalty on words rather than tokens:
    ``groups``, each token's word (-1: none; " chill", "Chill" and " Chill" share one) for the
    tokens that hold a whole word of three letters or more; ``pieces``, each token's text;
    ``words``, a lower-cased word's group. Words are letters only, so punctuation, numbers and
    word pieces ("ing") stay free to repeat, as a sentence repeats them."""

    groups: Tensor
    pieces: Sequence[str]
    words: dict[str, int]
    _continuing: Tensor | None = field(default=None, repr=False, compare=False)

    def to(self, device) -> WordIndex:
        if self.groups.device == torch.device(device):
            return self
        return WordIndex(groups=self.groups.to(device), pieces=self.pieces, words=self.words)

    def piece(self, token: int) -> str:
        return self.pieces[token] if 0 <= token < len(self.pieces) else ""

    def continues(self, token: int) -> bool:
        """Does ``token`` go on with the word before it (no space, a letter or digit first: "oramic")?"""
        return self.piece(token)[:1].isalnum()

    def continuing(self, device) -> Tensor:
        """The vocabulary's tokens that go on with the word before them (``continues``), as ids."""
        if self._continuing is None or self._continuing.device != torch.device(device):
            ids = [t for t in range(len(self.pieces)) if self.continues(t)]
            self._continuing = torch.tensor(ids, dtype=torch.long, device=device)
        return self._continuing

    def whole_at(self, tokens: Sequence[int], start: int, size: int) -> bool:
        """Are ``tokens[start:start + size]`` a whole word there, not the start of a longer one
        ("Pan" of "Panoramic") nor glued to the word before ("TightPennyrow")?"""
        end = start + size
        if end < len(tokens) and self.continues(tokens[end]):
            return False
        return not (start > 0 and self.continues(tokens[start]) and self.piece(tokens[start - 1])[-1:].isalnum())

    def written(self, tokens: Sequence[int]) -> tuple[set[int], list[list[int]], list[int]]:
        """``(groups, spellings, current)`` of a decode so far: the groups of the words it wrote
        (in one token or several), the token spellings of the words it wrote in several tokens,
        and the tokens of the word it is writing (empty after a space or punctuation)."""
        groups = {g for g in self.groups[torch.tensor(sorted(set(tokens)), device=self.groups.device)].tolist() if g >= 0}
        spellings: list[list[int]] = []
        word: list[int] = []

        def close() -> None:
            if len(word) > 1:
                text = "".join(self.pieces[t] for t in word).strip().lower()
                if len(text) >= 3:
                    spellings.append(list(word))
                    if text in self.words:
                        groups.add(self.words[text])

        for token in tokens:
            piece = self.pieces[token] if 0 <= token < len(self.pieces) else ""
            if word and piece.isalpha() and not piece[:1].isupper():
                word.append(token)  # a piece that continues the word
                continue
            close()
            starts = piece[:1] == " " and piece[1:].isalpha() or piece.isalpha()
            word = [token] if starts else []
        current = list(word)
        close()  # the word being written counts as written for the words after it
        return groups, spellings, current


@dataclass
class OptimusConfig:
    encoder_dim: int = 384  # the sentence encoder's hidden size
    decoder_dim: int = 576  # the decoder's embedding size
    latent_dim: int = 32
    prefix_len: int = 4  # soft-prompt vectors made from z (with ``memory``: key/value slots in every layer)
    # Optimus's "memory": z becomes ``prefix_len`` key/value pairs in every decoder layer
    # (prefix-tuning's per-layer prefix), not input vectors that the first layer must pass on.
    memory: bool = False
    add_to_embeddings: bool = True  # z also added to every decoder input embedding
    max_len: int = 40  # decoder tokens of a sentence, the end token included
    bos_id: int = 0  # the decoder's start and end of text (SmolLM2's <|endoftext|>)
    eos_id: int = 0
    banned_ids: list[int] = field(default_factory=list)  # never generated (chat-template tokens)
    blank_ids: list[int] = field(default_factory=list)  # never first (spaces only: a sentence would read as blank)
    encoder_pad_id: int = 0
    # Decoder token ids whose embeddings the prefix starts from (a short natural prompt), so that
    # the untrained model is the pretrained LM after a prompt, not after noise; empty: zeros.
    prefix_init_ids: list[int] = field(default_factory=list)


class OptimusVAE(nn.Module):
    def __init__(self, config: OptimusConfig, *, encoder: nn.Module, decoder: nn.Module):
        super().__init__()
        self.config = config
        c = config
        self.encoder = encoder  # transformers encoder: (input_ids, attention_mask) -> last_hidden_state
        self.decoder = decoder  # transformers causal LM (peft-wrapped while training)
        self.to_moments = nn.Linear(c.encoder_dim, 2 * c.latent_dim)
        if c.memory:
            d = decoder.config
            self._kv_shape = (d.num_hidden_layers, 2, d.num_key_value_heads, c.prefix_len,
                              getattr(d, "head_dim", None) or d.hidden_size // d.num_attention_heads)
            self.to_prefix = nn.Linear(c.latent_dim, math.prod(self._kv_shape))
        else:
            self.to_prefix = nn.Linear(c.latent_dim, c.prefix_len * c.decoder_dim)
        self.to_embedding = nn.Linear(c.latent_dim, c.decoder_dim) if c.add_to_embeddings else None
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Heads only (the pretrained parts keep their weights). The untrained model must be the
        pretrained LM: the prefix starts as the embeddings of a short prompt (``prefix_init_ids``)
        and z's share of it and of every input embedding starts small (random vectors at the
        embeddings' own scale, the first design, made the LM write newlines and number lists, and
        150 autoencoder steps did not bring it back). mu starts as a random projection of the
        sentence vector (training replaces it with ``moments_init``'s) and sigma small (logvar
        -3): z carries the sentence from the first step,
        so the decoder learns to read it before the KL term pulls the posterior to the prior."""
        embeddings = self.decoder.get_input_embeddings().weight.detach().float()
        scale = float(embeddings.std())
        c = self.config
        d = c.latent_dim
        with torch.no_grad():
            nn.init.normal_(self.to_moments.weight[:d], std=1.0 / math.sqrt(c.encoder_dim))
            nn.init.normal_(self.to_moments.weight[d:], std=0.01 / math.sqrt(c.encoder_dim))
            nn.init.zeros_(self.to_moments.bias[:d])
            nn.init.constant_(self.to_moments.bias[d:], -3.0)
            ids = list(c.prefix_init_ids)[: c.prefix_len]
            prompt = len(ids) == c.prefix_len
            if c.memory:  # the prompt's own keys and values in every layer
                start = self._prompt_memory(ids) if prompt else torch.zeros(self._kv_shape)
                spread = float(start.std()) if prompt else scale
                self.to_prefix.bias.copy_(start.reshape(-1).to(self.to_prefix.bias.dtype))
                nn.init.normal_(self.to_prefix.weight, std=0.1 * spread / math.sqrt(d))
            else:
                nn.init.normal_(self.to_prefix.weight, std=0.1 * scale / math.sqrt(d))
                if prompt:
                    self.to_prefix.bias.copy_(embeddings[torch.tensor(ids)].reshape(-1).to(self.to_prefix.bias.dtype))
                else:
                    nn.init.zeros_(self.to_prefix.bias)
            if self.to_embedding is not None:
                nn.init.normal_(self.to_embedding.weight, std=0.1 * scale / math.sqrt(d))
                nn.init.zeros_(self.to_embedding.bias)

    @torch.no_grad()
    def _prompt_memory(self, ids: list[int]) -> Tensor:
        """The decoder's keys and values of the prompt tokens, shaped as ``to_prefix``'s output."""
        device = self.decoder.get_input_embeddings().weight.device
        cache = self.decoder(input_ids=torch.tensor([ids], device=device), use_cache=True).past_key_values
        layers = [torch.stack([layer.keys[0], layer.values[0]]) for layer in cache.layers]
        return torch.stack(layers).float().cpu()  # (layers, 2, kv heads, prompt, head dim)

    @torch.no_grad()
    def moments_init(self, pooled: Tensor) -> None:
        """mu starts as the training sentences' top ``latent_dim`` principal components, each
        scaled to unit variance over the corpus (``pooled``: their encoder vectors, N x encoder_dim).
        A random projection of MiniLM's vectors, which differ little from sentence to sentence,
        gave mu a spread of 0.2 against a sigma of 0.22: z was mostly noise, and the decoder
        learned to ignore it even as a plain autoencoder (own z 76.5 nats, another sentence's 79.4)."""
        d = self.config.latent_dim
        x = pooled.float().to(self.to_moments.weight.device)
        if x.size(0) <= d:
            return
        mean = x.mean(dim=0)
        _, _, vh = torch.linalg.svd(x - mean, full_matrices=False)
        components = vh[:d]
        spread = ((x - mean) @ components.T).std(dim=0).clamp(min=1e-6)
        weight = components / spread.unsqueeze(1)
        self.to_moments.weight[:d] = weight
        self.to_moments.bias[:d] = -(weight @ mean)

    def heads(self) -> list[nn.Module]:
        return [m for m in (self.to_moments, self.to_prefix, self.to_embedding) if m is not None]

    # --- the three steps -----------------------------------------------------------------

    def pool(self, input_ids: Tensor, attention_mask: Tensor) -> Tensor:
        """Encoder tokens -> mean-pooled sentence vector (B, encoder_dim), as sentence-transformers pools."""
        hidden = self.encoder(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state
        mask = attention_mask.unsqueeze(-1).to(hidden.dtype)
        return (hidden * mask).sum(dim=1) / mask.sum(dim=1).clamp(min=1.0)

    def encode_pooled(self, pooled: Tensor) -> tuple[Tensor, Tensor]:
        mu, logvar = self.to_moments(pooled.float()).chunk(2, dim=-1)
        return mu, logvar.clamp(-12.0, 8.0)

    def encode(self, input_ids: Tensor, attention_mask: Tensor) -> tuple[Tensor, Tensor]:
        return self.encode_pooled(self.pool(input_ids, attention_mask))

    @staticmethod
    def reparameterize(mu: Tensor, logvar: Tensor, generator: torch.Generator | None = None) -> Tensor:
        eps = torch.randn(mu.shape, generator=generator).to(mu.device, mu.dtype)
        return mu + torch.exp(0.5 * logvar) * eps

    def _embed(self, z: Tensor, token_ids: Tensor, word_dropout: float = 0.0) -> Tensor:
        embedded = self.decoder.get_input_embeddings()(token_ids)
        if word_dropout > 0:  # hide words (never the first, <bos>): the decoder must read them from z
            keep = torch.rand(token_ids.shape, device=token_ids.device) >= word_dropout
            keep[:, 0] = True
            embedded = embedded * keep.unsqueeze(-1).to(embedded.dtype)
        if self.to_embedding is not None:
            embedded = embedded + self.to_embedding(z).unsqueeze(1).to(embedded.dtype)
        return embedded

    def _prefix(self, z: Tensor) -> Tensor:
        return self.to_prefix(z).view(z.size(0), self.config.prefix_len, self.config.decoder_dim)

    def _memory(self, z: Tensor, dtype: torch.dtype):
        """z -> a key/value cache holding ``prefix_len`` slots in every layer."""
        from transformers import DynamicCache

        kv = self.to_prefix(z).view(z.size(0), *self._kv_shape).to(dtype)  # (B, layers, 2, heads, slots, dim)
        return DynamicCache(ddp_cache_data=[(kv[:, i, 0], kv[:, i, 1]) for i in range(self._kv_shape[0])])

    def _run(self, z: Tensor, embedded: Tensor, attention_mask: Tensor | None, *, use_cache: bool = False):
        """The decoder on ``embedded`` after z's prefix (input vectors) or memory (per-layer slots);
        the output's logits cover ``embedded``'s positions only."""
        slots = self.config.prefix_len
        if attention_mask is None:
            attention_mask = torch.ones(embedded.shape[:2], dtype=torch.long, device=embedded.device)
        ones = torch.ones(z.size(0), slots, dtype=attention_mask.dtype, device=attention_mask.device)
        mask = torch.cat([ones, attention_mask], dim=1)
        if self.config.memory:
            return self.decoder(inputs_embeds=embedded, attention_mask=mask, past_key_values=self._memory(z, embedded.dtype),
                                use_cache=True)
        out = self.decoder(inputs_embeds=torch.cat([self._prefix(z).to(embedded.dtype), embedded], dim=1),
                           attention_mask=mask, use_cache=use_cache)
        out.logits = out.logits[:, slots:]
        return out

    def decode(self, z: Tensor, input_ids: Tensor, attention_mask: Tensor, word_dropout: float = 0.0) -> Tensor:
        """Teacher-forced: z (B, latent), decoder inputs (B, T) starting with <bos> -> logits (B, T, V);
        ``word_dropout``: the share of input words hidden (training only)."""
        return self._run(z, self._embed(z, input_ids, word_dropout), attention_mask).logits

    def forward(self, batch: dict[str, Tensor], word_dropout: float = 0.0) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        """``batch`` from ``batch_make`` (``pooled`` instead of the encoder tokens when the encoder
        is frozen and its outputs were computed once) -> logits, mu, logvar, z."""
        if "pooled" in batch:
            mu, logvar = self.encode_pooled(batch["pooled"])
        else:
            mu, logvar = self.encode(batch["encoder_ids"], batch["encoder_mask"])
        z = self.reparameterize(mu, logvar)
        return self.decode(z, batch["decoder_ids"], batch["decoder_mask"], word_dropout), mu, logvar, z

    # --- batches -----------------------------------------------------------------------------

    def decoder_batch(self, sequences: list[list[int]], device=None) -> dict[str, Tensor]:
        """Decoder token id lists (no special tokens) -> inputs ``[bos] + seq``, their mask, and
        targets ``seq + [eos]`` padded with -100; sequences longer than ``max_len - 1`` are cut."""
        c = self.config
        rows = [list(seq[: c.max_len - 1]) for seq in sequences]
        width = max(len(r) for r in rows) + 1
        ids = torch.full((len(rows), width), c.eos_id, dtype=torch.long)
        mask = torch.zeros((len(rows), width), dtype=torch.long)
        targets = torch.full((len(rows), width), -100, dtype=torch.long)
        for i, row in enumerate(rows):
            n = len(row) + 1
            ids[i, :n] = torch.tensor([c.bos_id, *row], dtype=torch.long)
            mask[i, :n] = 1
            targets[i, :n] = torch.tensor([*row, c.eos_id], dtype=torch.long)
        return {"decoder_ids": ids.to(device), "decoder_mask": mask.to(device), "targets": targets.to(device)}

    # --- decoding --------------------------------------------------------------------------

    def _start(self, z: Tensor):
        bos = torch.full((z.size(0), 1), self.config.bos_id, dtype=torch.long, device=z.device)
        out = self._run(z, self._embed(z, bos), None, use_cache=True)
        return out.logits[:, -1].float(), out.past_key_values

    def _next(self, z: Tensor, token: Tensor, past):
        out = self.decoder(inputs_embeds=self._embed(z, token.unsqueeze(1)), past_key_values=past, use_cache=True)
        return out.logits[:, -1].float(), out.past_key_values

    def _ban(self, logits: Tensor, history: list[list[int]], no_repeat_ngram: int, step: int) -> Tensor:
        c = self.config
        if c.banned_ids:
            logits[:, c.banned_ids] = -math.inf
        if step == 0:
            logits[:, c.eos_id] = -math.inf  # no empty sentence
            if c.blank_ids:
                logits[:, c.blank_ids] = -math.inf
        n = no_repeat_ngram
        if n > 0:
            for row, tokens in enumerate(history):
                if len(tokens) < n - 1:
                    continue
                tail = tuple(tokens[len(tokens) - n + 1 :]) if n > 1 else ()
                for i in range(len(tokens) - n + 1):
                    if tuple(tokens[i : i + n - 1]) == tail:
                        logits[row, tokens[i + n - 1]] = -math.inf
        return logits

    @staticmethod
    def _penalise(logits: Tensor, history: list[list[int]], words: WordIndex, penalty: float) -> Tensor:
        """Every token of a word a row has written gets its logit divided by ``penalty``
        (multiplied when negative): each single-token form of it (" chill" and "Chill" are one
        word), and for a word written in several tokens ("Ch" "ill") its first token and the
        next token of its spelling once a word begins the same way."""
        for row, tokens in enumerate(history):
            if not tokens:
                continue
            groups, spellings, current = words.written(tokens)
            ids = set()
            if groups:
                ids.update(torch.isin(words.groups, torch.tensor(sorted(groups), device=words.groups.device))
                           .nonzero().squeeze(1).tolist())
            for spelling in spellings:
                ids.add(spelling[0])
                if current and len(spelling) > len(current) and spelling[: len(current)] == current:
                    ids.add(spelling[len(current)])
            if ids:
                index = torch.tensor(sorted(ids), device=logits.device)
                values = logits[row, index]
                logits[row, index] = torch.where(values > 0, values / penalty, values * penalty)
        return logits

    @staticmethod
    def _guide(logits: Tensor, history: list[list[int]], keep: Sequence[Sequence[Sequence[int]]], bonus: float,
               complete: float = 100.0, *, ramp: int = 0, hold: int | None = None,
               words: WordIndex | None = None) -> Tensor:
        """Lexical guidance towards the words ``keep`` lists (each word: its alternative token
        sequences, e.g. with and without a leading space): a word not yet written gets ``bonus``
        on its first token; a word begun gets ``complete`` on its next token (the default all but
        forces it); a word written loses ``bonus`` on its first token (the guidance wrote "the
        message message"). ``ramp``: the bonus grows from 0 at a sentence's first token to the
        full ``bonus`` at its ``ramp``-th, so the sentence begins as the latent has it instead of
        with the word ("Handle it over, pop it back"); ``hold``: a token (the end) that loses
        ``complete`` while a word is missing, so a sentence the ramp let start does not end
        without it. With ``words`` (the vocabulary's pieces) a word
        counts as written only whole: "Pan" that went on as "Panoramic" is not "pan"; a word just
        written may not go on (``complete`` off every token that would continue it), and a form
        without a leading space is pushed only where a word may start."""
        for row, tokens in enumerate(history):
            row_bonus = bonus * min(1.0, len(tokens) / ramp) if ramp > 0 else bonus
            missing = False
            may_start = words is None or not tokens or not words.piece(tokens[-1])[-1:].isalnum()
            for alternatives in keep:
                if any(_contains(tokens, seq, words) for seq in alternatives):
                    for seq in alternatives:
                        logits[row, seq[0]] -= bonus
                    if words is not None and any(tokens[len(tokens) - len(seq):] == list(seq) for seq in alternatives):
                        logits[row, words.continuing(logits.device)] -= complete  # just written: it ends here
                    continue
                missing = True
                begun = False
                for seq in alternatives:
                    for j in range(min(len(seq) - 1, len(tokens)), 0, -1):
                        if tokens[len(tokens) - j :] == list(seq[:j]) and (
                                words is None or words.whole_at(tokens[: len(tokens) - j] + list(seq), len(tokens) - j, len(seq))):
                            logits[row, seq[j]] += complete
                            begun = True
                            break
                if not begun and row_bonus:
                    for seq in alternatives:
                        if may_start or not words.continues(seq[0]):
                            logits[row, seq[0]] += row_bonus
            if missing and hold is not None:
                logits[row, hold] -= complete
        return logits

    @torch.no_grad()
    def generate(
        self,
        z: Tensor,
        *,
        strategy: str = "greedy",
        max_len: int | None = None,
        temperature: float = 1.0,
        top_k: int = 0,
        top_p: float = 1.0,
        beam_size: int = 4,
        length_penalty: float = 1.0,
        no_repeat_ngram: int = 3,
        generator: torch.Generator | None = None,
        keep: Sequence[Sequence[Sequence[int]]] = (),
        keep_bonus: float = 8.0,
        keep_ramp: int = 0,
        keep_hold: bool = False,
        anchor: Sequence[Sequence[Sequence[int]]] = (),
        anchor_bonus: float = 3.0,
        repeat_words: WordIndex | None = None,
        repetition_penalty: float = 1.0,
        word_index: WordIndex | None = None,
    ) -> list[list[int]]:
        """Latents (B, latent) -> decoder token id lists (no <bos>/<eos>).

        ``greedy``: argmax; ``sample``: from softmax(logits / temperature), cut to the ``top_k``
        most likely and the smallest set of probability ``top_p``; ``beam``: beam search,
        hypotheses ranked by log-probability / length ** ``length_penalty``. ``keep``: words
        every row should write (greedy and sampled decoding; see ``_guide``: ``keep_ramp``,
        ``keep_hold``); ``anchor``: words
        it may write, nudged by ``anchor_bonus`` and completed only when likely (a variant's
        source's product type and material, so the rewrite stays on the same product);
        ``repeat_words``: the vocabulary's words (``WordIndex``), whose tokens ``repetition_penalty``
        (CTRL's, Keskar et al. 2019) makes less likely once written ("Chill, chill", "pairs, pairs,
        and pairs"); ``word_index``: the same, for the guidance to read whole words (``_guide``)."""
        max_len = max_len or self.config.max_len
        if strategy == "beam":
            return self._beam(z, max_len=max_len, beam_size=beam_size, length_penalty=length_penalty,
                              no_repeat_ngram=no_repeat_ngram)
        if strategy not in ("greedy", "sample"):
            raise ValueError(f"Unknown decoding strategy {strategy!r}: greedy, sample or beam")
        eos = self.config.eos_id
        batch = z.size(0)
        history: list[list[int]] = [[] for _ in range(batch)]
        finished = [False] * batch
        logits, past = self._start(z)
        for step in range(max_len):
            logits = self._ban(logits, history, no_repeat_ngram, step)
            if repeat_words is not None and repetition_penalty != 1.0:
                logits = self._penalise(logits, history, repeat_words, repetition_penalty)
            if keep:
                logits = self._guide(logits, history, keep, keep_bonus, ramp=keep_ramp, hold=eos if keep_hold else None,
                                     words=word_index)
            if anchor:
                logits = self._guide(logits, history, anchor, anchor_bonus, complete=anchor_bonus, words=word_index)
            if strategy == "greedy":
                token = logits.argmax(dim=-1)
            else:
                token = _sample(logits, temperature=temperature, top_k=top_k, top_p=top_p, generator=generator)
            for row, value in enumerate(token.tolist()):
                if finished[row]:
                    continue
                if value == eos:
                    finished[row] = True
                else:
                    history[row].append(value)
            if all(finished) or step == max_len - 1:
                break
            token = torch.where(torch.tensor(finished, device=token.device), torch.full_like(token, eos), token)
            logits, past = self._next(z, token, past)
        return history

    def _beam(self, z: Tensor, *, max_len: int, beam_size: int, length_penalty: float, no_repeat_ngram: int) -> list[list[int]]:
        eos = self.config.eos_id
        batch, width = z.size(0), beam_size
        z = z.repeat_interleave(width, dim=0)
        logits, past = self._start(z)
        scores = torch.full((batch, width), -math.inf, device=z.device)
        scores[:, 0] = 0.0  # all beams start equal: keep one so the first step does not fill the beam with copies
        history: list[list[int]] = [[] for _ in range(batch * width)]
        finished = torch.zeros(batch, width, dtype=torch.bool, device=z.device)
        for step in range(max_len):
            log_probs = F.log_softmax(self._ban(logits, history, no_repeat_ngram, step), dim=-1)
            vocab = log_probs.size(-1)
            log_probs = log_probs.view(batch, width, vocab)
            done = torch.full_like(log_probs, -math.inf)
            done[..., eos] = 0.0  # a finished beam continues only with <eos>, at no cost
            log_probs = torch.where(finished.unsqueeze(-1), done, log_probs)
            scores, flat = (scores.unsqueeze(-1) + log_probs).view(batch, width * vocab).topk(width, dim=-1)
            beam, token = flat // vocab, flat % vocab
            rows = (beam + torch.arange(batch, device=z.device).unsqueeze(1) * width).view(-1)
            was_finished = finished.gather(1, beam)
            finished = was_finished | (token == eos)
            history = [
                list(history[r]) + ([] if done_before or t == eos else [t])
                for r, t, done_before in zip(rows.tolist(), token.view(-1).tolist(), was_finished.view(-1).tolist(), strict=True)
            ]
            if bool(finished.all()) or step == max_len - 1:
                break
            past.reorder_cache(rows)
            logits, past = self._next(z, token.view(-1), past)
        lengths = torch.tensor([[len(history[b * width + k]) + 1 for k in range(width)] for b in range(batch)],
                               dtype=torch.float, device=z.device)
        best = (scores / lengths ** length_penalty).argmax(dim=-1).tolist()
        return [history[b * width + k] for b, k in enumerate(best)]


def _contains(tokens: list[int], seq: Sequence[int], words: WordIndex | None = None) -> bool:
    """Does ``seq`` occur in ``tokens`` (with ``words``: as a whole word, ``WordIndex.whole_at``)?"""
    n = len(seq)
    return any(tokens[i : i + n] == list(seq) and (words is None or words.whole_at(tokens, i, n))
               for i in range(len(tokens) - n + 1))


def _sample(logits: Tensor, *, temperature: float, top_k: int, top_p: float, generator: torch.Generator | None) -> Tensor:
    logits = logits / max(temperature, 1e-5)
    if top_k > 0:
        kth = logits.topk(min(top_k, logits.size(-1)), dim=-1).values[:, -1:]
        logits = logits.masked_fill(logits < kth, -math.inf)
    if top_p < 1.0:
        sorted_logits, order = logits.sort(dim=-1, descending=True)
        cumulative = sorted_logits.softmax(dim=-1).cumsum(dim=-1)
        drop = cumulative - sorted_logits.softmax(dim=-1) > top_p  # keep the first token past top_p
        logits = logits.scatter(1, order, sorted_logits.masked_fill(drop, -math.inf))
    probs = torch.softmax(logits, dim=-1)
    token = torch.multinomial(probs.cpu(), 1, generator=generator) if generator is not None else torch.multinomial(probs, 1)
    return token.to(logits.device).squeeze(1)
