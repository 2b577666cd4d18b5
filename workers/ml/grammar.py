"""Constrained decoding: a grammar (llguidance's, e.g. compiled from a JSON schema) decides which
tokens may come next; the decoder masks every other token's logit before sampling.

One ``GrammarMatcher`` per candidate row. Each step: ``mask_logits`` (the matcher computes the
allowed-token bitmask for its state), sample, then ``consume`` the picked token. Once the grammar
is complete the matcher allows only the end-of-sequence token (``is_stopped``), so the text is a
whole document of the grammar whenever the row ends with "stop".

Pure PyTorch + llguidance: no Django.
"""

from __future__ import annotations

import threading
import weakref

import llguidance
import llguidance.hf
import torch
from llguidance.torch import allocate_token_bitmask, fill_next_token_bitmask

_tokenizers: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()
_tokenizers_lock = threading.Lock()
_BITS = torch.arange(32, dtype=torch.int32)


def grammar_tokenizer(tokenizer, eos_ids: set[int]) -> llguidance.LLTokenizer:
    """llguidance's view of a transformers tokenizer (its token bytes; about 1 s to build for a
    49k vocabulary), built once per tokenizer."""
    with _tokenizers_lock:
        cached = _tokenizers.get(tokenizer)
        if cached is None:
            cached = llguidance.hf.from_tokenizer(tokenizer, eos_token=sorted(eos_ids))
            _tokenizers[tokenizer] = cached
        return cached


class GrammarError(RuntimeError):
    """The grammar cannot be used, or the decoder picked a token the grammar refused."""


class GrammarMatcher:
    def __init__(self, ll_tokenizer: llguidance.LLTokenizer, grammar: str):
        self.matcher = llguidance.LLMatcher(ll_tokenizer, grammar)
        if self.matcher.is_error():
            raise GrammarError(f"invalid grammar: {self.matcher.get_error()}")
        self.vocab_size = ll_tokenizer.vocab_size
        self._bitmask = allocate_token_bitmask(1, self.vocab_size)

    @property
    def is_stopped(self) -> bool:
        """The grammar is complete: only end-of-sequence may follow."""
        return self.matcher.is_stopped()

    def allowed(self, vocab: int) -> torch.Tensor:
        """A (vocab,) bool tensor of the tokens the grammar allows next (logits may be wider
        than the tokenizer's vocabulary: the extra ids are never allowed)."""
        fill_next_token_bitmask(self.matcher, self._bitmask)
        bits = ((self._bitmask[0].unsqueeze(-1) >> _BITS) & 1).flatten().bool()[: self.vocab_size]
        if vocab > bits.numel():
            bits = torch.cat([bits, torch.zeros(vocab - bits.numel(), dtype=torch.bool)])
        return bits[:vocab]

    def mask_logits(self, logits: torch.Tensor) -> torch.Tensor:
        """``logits`` (vocab,) with every token the grammar refuses at -inf."""
        allowed = self.allowed(logits.shape[-1]).to(logits.device)
        return logits.masked_fill(~allowed, float("-inf"))

    def consume(self, token: int) -> None:
        if not self.matcher.consume_token(token):
            raise GrammarError(f"token {token} refused by the grammar: {self.matcher.get_error()}")
