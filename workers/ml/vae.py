"""Sentence VAE (Bowman et al. 2016, "Generating Sentences from a Continuous Space").

    tokens -> embedding -> bidirectional GRU -> (mu, logvar) -> z = mu + sigma * eps
           -> GRU decoder (initial state from z, z also fed at every step) -> next-token logits

Posterior collapse (the decoder ignoring z, KL -> 0) is fought three ways, all from the paper or
its successors: KL annealing (``kl_weight``: linear warm-up, or cyclical after Fu et al. 2019),
word dropout (decoder inputs replaced by ``<unk>`` so the decoder must lean on z), and free bits
(Kingma et al. 2016: no KL pressure on a latent dimension below ``free_bits`` nats).

The loss (``vae_loss``) is separate from the model and returns its parts for logging. Decoding:
greedy, sampled (temperature, top-k) and beam search (``generate``). Pure PyTorch: no Django, no
I/O; the training loop lives in ``workers.train.genmodels``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn


@dataclass
class VAEConfig:
    vocab_size: int
    embed_dim: int = 128
    hidden_dim: int = 256
    latent_dim: int = 32
    max_len: int = 40  # tokens of a sentence, <eos> included
    word_dropout: float = 0.3  # share of decoder inputs replaced by <unk> while training
    dropout: float = 0.1  # on embeddings and decoder outputs
    pad_id: int = 0
    bos_id: int = 1
    eos_id: int = 2
    unk_id: int = 3


class SentenceVAE(nn.Module):
    def __init__(self, config: VAEConfig):
        super().__init__()
        self.config = config
        c = config
        self.embed = nn.Embedding(c.vocab_size, c.embed_dim, padding_idx=c.pad_id)
        self.encoder = nn.GRU(c.embed_dim, c.hidden_dim, batch_first=True, bidirectional=True)
        self.to_moments = nn.Linear(2 * c.hidden_dim, 2 * c.latent_dim)
        self.latent_to_hidden = nn.Linear(c.latent_dim, c.hidden_dim)
        self.decoder = nn.GRU(c.embed_dim + c.latent_dim, c.hidden_dim, batch_first=True)
        self.dropout = nn.Dropout(c.dropout)
        # Output layer tied to the embedding (Press and Wolf 2017): hidden -> embed_dim, then the
        # embedding matrix. Halves the parameters and, with embed_dim < hidden_dim, the cost of
        # the vocabulary projection, which dominates a step on a CPU.
        self.to_embed = nn.Linear(c.hidden_dim, c.embed_dim)
        self.vocab_bias = nn.Parameter(torch.zeros(c.vocab_size))
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Explicit init: small normal embeddings, Xavier linears, orthogonal recurrent weights
        (keeps the GRUs' hidden-state norm stable over 40 steps), zero biases."""
        nn.init.normal_(self.embed.weight, std=0.1)
        with torch.no_grad():
            self.embed.weight[self.config.pad_id].zero_()
        for linear in (self.to_moments, self.latent_to_hidden, self.to_embed):
            nn.init.xavier_uniform_(linear.weight)
            nn.init.zeros_(linear.bias)
        for gru in (self.encoder, self.decoder):
            for name, param in gru.named_parameters():
                if "weight_hh" in name:
                    for gate in param.chunk(3, dim=0):
                        nn.init.orthogonal_(gate)
                elif "weight_ih" in name:
                    nn.init.xavier_uniform_(param)
                else:
                    nn.init.zeros_(param)

    # --- the three steps -----------------------------------------------------------------

    def encode(self, tokens: Tensor, lengths: Tensor) -> tuple[Tensor, Tensor]:
        """(B, T) padded tokens (each row ends with <eos>), (B,) lengths -> mu, logvar (B, latent)."""
        embedded = self.dropout(self.embed(tokens))
        packed = nn.utils.rnn.pack_padded_sequence(
            embedded, lengths.cpu(), batch_first=True, enforce_sorted=False
        )
        _, hidden = self.encoder(packed)  # (2, B, H): last forward and last backward state
        mu, logvar = self.to_moments(torch.cat([hidden[0], hidden[1]], dim=-1)).chunk(2, dim=-1)
        return mu, logvar

    @staticmethod
    def reparameterize(mu: Tensor, logvar: Tensor, generator: torch.Generator | None = None) -> Tensor:
        """z = mu + sigma * eps: a sample whose gradient flows to mu and logvar."""
        eps = torch.randn(mu.shape, generator=generator, device=mu.device, dtype=mu.dtype)
        return mu + torch.exp(0.5 * logvar) * eps

    def decode(self, z: Tensor, inputs: Tensor) -> Tensor:
        """Teacher-forced decoding: z (B, latent), inputs (B, T) starting with <bos> -> logits (B, T, V)."""
        c = self.config
        if self.training and c.word_dropout > 0:
            drop = torch.rand(inputs.shape, device=inputs.device) < c.word_dropout
            drop &= (inputs != c.bos_id) & (inputs != c.pad_id)
            inputs = inputs.masked_fill(drop, c.unk_id)
        embedded = self.dropout(self.embed(inputs))
        steps = torch.cat([embedded, z.unsqueeze(1).expand(-1, inputs.size(1), -1)], dim=-1)
        output, _ = self.decoder(steps, self._initial_hidden(z))
        return self.to_logits(self.dropout(output))

    def to_logits(self, output: Tensor) -> Tensor:
        return F.linear(self.to_embed(output), self.embed.weight, self.vocab_bias)

    def forward(self, tokens: Tensor, lengths: Tensor) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        """-> logits (B, T, V) predicting ``tokens``, mu, logvar, z."""
        mu, logvar = self.encode(tokens, lengths)
        z = self.reparameterize(mu, logvar)
        return self.decode(z, self.decoder_inputs(tokens)), mu, logvar, z

    # --- helpers ---------------------------------------------------------------------------

    def decoder_inputs(self, tokens: Tensor) -> Tensor:
        """<bos> followed by the tokens shifted right (the decoder predicts ``tokens``)."""
        bos = torch.full_like(tokens[:, :1], self.config.bos_id)
        return torch.cat([bos, tokens[:, :-1]], dim=1)

    def batch_make(self, sequences: list[list[int]], device: torch.device | str | None = None) -> tuple[Tensor, Tensor]:
        """Token id lists (no special tokens) -> padded (B, T) with <eos> appended, (B,) lengths.
        Sequences longer than ``max_len - 1`` are cut."""
        c = self.config
        rows = [list(seq[: c.max_len - 1]) + [c.eos_id] for seq in sequences]
        width = max(len(row) for row in rows)
        tokens = torch.full((len(rows), width), c.pad_id, dtype=torch.long)
        for i, row in enumerate(rows):
            tokens[i, : len(row)] = torch.tensor(row, dtype=torch.long)
        lengths = torch.tensor([len(row) for row in rows], dtype=torch.long)
        return tokens.to(device), lengths.to(device)

    def _initial_hidden(self, z: Tensor) -> Tensor:
        return torch.tanh(self.latent_to_hidden(z)).unsqueeze(0)

    def _step(self, z: Tensor, token: Tensor, hidden: Tensor) -> tuple[Tensor, Tensor]:
        """One decoding step for tokens (N,) -> log-probs (N, V), new hidden."""
        steps = torch.cat([self.embed(token), z], dim=-1).unsqueeze(1)
        output, hidden = self.decoder(steps, hidden)
        return F.log_softmax(self.to_logits(output[:, 0]).float(), dim=-1), hidden

    # --- decoding --------------------------------------------------------------------------

    @torch.no_grad()
    def generate(
        self,
        z: Tensor,
        *,
        strategy: str = "greedy",
        max_len: int | None = None,
        temperature: float = 1.0,
        top_k: int = 0,
        beam_size: int = 4,
        length_penalty: float = 1.0,
        generator: torch.Generator | None = None,
    ) -> list[list[int]]:
        """Decode latents (B, latent) into token id lists (without <bos>/<eos>).

        ``greedy``: argmax; ``sample``: from softmax(logits / temperature), restricted to the
        ``top_k`` most likely tokens when top_k > 0; ``beam``: beam search of ``beam_size``,
        hypotheses ranked by log-probability / length ** ``length_penalty``."""
        max_len = max_len or self.config.max_len
        if strategy == "beam":
            return self._beam(z, max_len=max_len, beam_size=beam_size, length_penalty=length_penalty)
        if strategy not in ("greedy", "sample"):
            raise ValueError(f"Unknown decoding strategy {strategy!r}: greedy, sample or beam")
        c = self.config
        batch = z.size(0)
        hidden = self._initial_hidden(z)
        token = torch.full((batch,), c.bos_id, dtype=torch.long, device=z.device)
        finished = torch.zeros(batch, dtype=torch.bool, device=z.device)
        out = []
        for _ in range(max_len):
            log_probs, hidden = self._step(z, token, hidden)
            log_probs[:, c.unk_id] = -math.inf
            log_probs[:, c.pad_id] = -math.inf
            if strategy == "greedy":
                token = log_probs.argmax(dim=-1)
            else:
                logits = log_probs / max(temperature, 1e-5)
                if top_k > 0:
                    kth = logits.topk(min(top_k, logits.size(-1)), dim=-1).values[:, -1:]
                    logits = logits.masked_fill(logits < kth, -math.inf)
                probs = torch.softmax(logits, dim=-1)
                token = torch.multinomial(probs.cpu() if generator is not None else probs, 1, generator=generator)
                token = token.to(z.device).squeeze(1)
            token = token.masked_fill(finished, c.eos_id)
            out.append(token)
            finished |= token == c.eos_id
            if bool(finished.all()):
                break
        rows = torch.stack(out, dim=1).tolist()
        return [row[: row.index(c.eos_id)] if c.eos_id in row else row for row in rows]

    def _beam(self, z: Tensor, *, max_len: int, beam_size: int, length_penalty: float) -> list[list[int]]:
        c = self.config
        batch, width = z.size(0), beam_size
        z = z.repeat_interleave(width, dim=0)  # (B*K, latent)
        hidden = self._initial_hidden(z)
        token = torch.full((batch * width,), c.bos_id, dtype=torch.long, device=z.device)
        scores = torch.full((batch, width), -math.inf, device=z.device)
        scores[:, 0] = 0.0  # all beams start equal: keep one so the first step does not repeat it K times
        lengths = torch.zeros(batch, width, device=z.device)
        finished = torch.zeros(batch, width, dtype=torch.bool, device=z.device)
        history = torch.zeros(batch, width, 0, dtype=torch.long, device=z.device)
        vocab = c.vocab_size
        for _ in range(max_len):
            log_probs, hidden = self._step(z, token, hidden)
            log_probs[:, c.unk_id] = -math.inf
            log_probs[:, c.pad_id] = -math.inf
            log_probs = log_probs.view(batch, width, vocab)
            # A finished beam continues only with <eos> at no cost, so it keeps its score.
            done = torch.full_like(log_probs, -math.inf)
            done[..., c.eos_id] = 0.0
            log_probs = torch.where(finished.unsqueeze(-1), done, log_probs)
            candidates = (scores.unsqueeze(-1) + log_probs).view(batch, width * vocab)
            scores, flat = candidates.topk(width, dim=-1)
            beam, token_2d = flat // vocab, flat % vocab
            history = torch.cat([history.gather(1, beam.unsqueeze(-1).expand(-1, -1, history.size(2))),
                                 token_2d.unsqueeze(-1)], dim=2)
            was_finished = finished.gather(1, beam)
            lengths = lengths.gather(1, beam) + (~was_finished).float()
            finished = was_finished | (token_2d == c.eos_id)
            rows = (beam + torch.arange(batch, device=z.device).unsqueeze(1) * width).view(-1)
            hidden = hidden[:, rows]
            token = token_2d.view(-1)
            if bool(finished.all()):
                break
        normalised = scores / lengths.clamp(min=1.0) ** length_penalty
        best = normalised.argmax(dim=-1)
        rows = history[torch.arange(batch, device=z.device), best].tolist()
        return [row[: row.index(c.eos_id)] if c.eos_id in row else row for row in rows]


# --- loss and schedules ---------------------------------------------------------------------


@dataclass
class VAELoss:
    total: Tensor  # what is minimised: recon + beta * KL (free bits applied)
    recon: Tensor  # reconstruction negative log-likelihood, nats per sentence
    kl: Tensor  # KL(q(z|x) || N(0, I)), nats per sentence (no free bits)
    kl_per_dim: Tensor  # (latent,) batch-mean KL of each dimension
    tokens: int  # target tokens in the batch (for per-token figures)


def vae_loss(
    logits: Tensor, targets: Tensor, mu: Tensor, logvar: Tensor, *, beta: float, free_bits: float = 0.0, pad_id: int = 0
) -> VAELoss:
    """Negative ELBO of a batch, per sentence, with its parts.

    ``free_bits``: each latent dimension's batch-mean KL counts as at least this many nats, so
    the optimiser gains nothing by pushing a dimension's KL below it (the dimension stays in use).
    """
    batch = targets.size(0)
    recon = F.cross_entropy(logits.transpose(1, 2).float(), targets, ignore_index=pad_id, reduction="sum") / batch
    kl_per_dim = 0.5 * (mu.pow(2) + logvar.exp() - 1.0 - logvar).float().mean(dim=0)
    kl = kl_per_dim.sum()
    kl_term = kl_per_dim.clamp(min=free_bits).sum() if free_bits > 0 else kl
    return VAELoss(
        total=recon + beta * kl_term,
        recon=recon,
        kl=kl,
        kl_per_dim=kl_per_dim.detach(),
        tokens=int((targets != pad_id).sum()),
    )


def kl_weight(
    step: int, *, schedule: str, total_steps: int, warmup_steps: int = 1000, cycles: int = 4, ratio: float = 0.5,
    beta: float = 1.0,
) -> float:
    """The KL term's weight at ``step``.

    ``linear``: 0 -> beta over ``warmup_steps``, then beta. ``cyclical`` (Fu et al. 2019): the
    training is cut into ``cycles`` equal cycles; in each, 0 -> beta over the first ``ratio`` of
    the cycle, then beta. ``constant``: beta throughout."""
    if schedule == "constant":
        return beta
    if schedule == "linear":
        return beta * min(1.0, step / max(1, warmup_steps))
    if schedule == "cyclical":
        period = max(1, math.ceil(total_steps / max(1, cycles)))
        return beta * min(1.0, (step % period) / max(1.0, period * ratio))
    raise ValueError(f"Unknown KL schedule {schedule!r}: linear, cyclical or constant")


def active_units(mu: Tensor, *, threshold: float = 0.01) -> int:
    """Latent dimensions in use (Burda et al. 2016): the variance over the data of E_q[z_u | x]
    above ``threshold``. A collapsed dimension has the same posterior mean for every sentence."""
    if mu.size(0) < 2:
        return 0
    return int((mu.float().var(dim=0) > threshold).sum())


def elbo_figures(*, recon: float, kl: float, tokens: int, mus: list[Tensor], sentences: int, latent_dim: int,
                 with_mu: bool = False) -> dict:
    """The held-out figures of a sentence VAE (GRU or pretrained) from its summed reconstruction
    NLL, KL and token count and the batches' posterior means."""
    count = max(1, sentences)
    mu_all = torch.cat(mus) if mus else torch.zeros(0, latent_dim)
    figures = {
        "elbo": -(recon + kl) / count,
        "recon_nll": recon / count,
        "kl": kl / count,
        "nll_per_token": (recon + kl) / max(1, tokens),
        "ppl_bound": math.exp(min(50.0, (recon + kl) / max(1, tokens))),
        "active_units": active_units(mu_all),
        "latent_dim": latent_dim,
        "sentences": sentences,
    }
    if with_mu:
        figures["mu"] = mu_all
    return figures
