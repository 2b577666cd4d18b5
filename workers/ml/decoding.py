"""Per-candidate decoding pieces shared by the generate() path and the batching engine: sampling
one row's next token, and turning a row's tokens into settled text with stop sequences.

Pure PyTorch: no Django.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch


@dataclass(frozen=True)
class SamplingParams:
    max_new_tokens: int = 128
    temperature: float = 0.7
    top_p: float = 0.95
    top_k: int = 50
    repetition_penalty: float = 1.0
    # False: the penalty counts only the tokens generated, not the prompt's. Data-to-text (copy)
    # needs this: with the prompt counted, the attribute values it must repeat are the penalised
    # tokens, and a small model alters them ("goody-goody welted sole" for "Goodyear welted sole").
    penalise_prompt: bool = True
    stop: tuple[str, ...] = ()
    seed: int | None = None
    n: int = 1
    # An llguidance grammar (``generation.structured``): each token is picked among those it allows.
    grammar: str | None = None


@dataclass(frozen=True)
class Completion:
    text: str
    finish_reason: str  # stop | length | cancelled
    completion_tokens: int
    mean_logprob: float | None


def apply_repetition_penalty(logits: torch.Tensor, seen: torch.Tensor, penalty: float) -> torch.Tensor:
    """CTRL's penalty as transformers applies it: seen tokens' logits divided (if > 0) or
    multiplied (if < 0) by ``penalty``. ``logits`` is (vocab,), ``seen`` a 1-D id tensor."""
    if penalty == 1.0 or seen.numel() == 0:
        return logits
    picked = logits.gather(0, seen)
    logits = logits.clone()
    logits.scatter_(0, seen, torch.where(picked < 0, picked * penalty, picked / penalty))
    return logits


def sample_token(
    logits: torch.Tensor, params: SamplingParams, generator: torch.Generator | None
) -> int:
    """Next token from one row's (penalised) logits: greedy at temperature 0, else temperature,
    top-k, then top-p (nucleus) sampling with the row's own generator."""
    if params.temperature <= 0:
        return int(torch.argmax(logits))
    scores = logits.float() / params.temperature
    if params.top_k and params.top_k < scores.numel():
        values, indices = torch.topk(scores, params.top_k)
    else:
        values, indices = torch.sort(scores, descending=True)
    if params.top_p < 1.0:
        probs = torch.softmax(values, dim=-1)
        cumulative = torch.cumsum(probs, dim=-1)
        keep = cumulative - probs < params.top_p  # always keeps the most likely token
        values, indices = values[keep], indices[keep]
    probs = torch.softmax(values, dim=-1)
    choice = torch.multinomial(probs.cpu(), 1, generator=generator)
    return int(indices[int(choice)])


class TextTracker:
    """One candidate's text: decodes its tokens, cuts at the first stop sequence, and releases
    only settled text, holding back what could still become a stop sequence or is an
    incomplete UTF-8 character, so a client never sees text that is later cut."""

    def __init__(self, tokenizer, stop: tuple[str, ...]):
        self.tokenizer = tokenizer
        self.stop = stop
        self.tokens: list[int] = []
        self.text = ""
        self.emitted = 0
        self.stopped = False

    def add(self, token: int) -> str:
        """Append a token; returns the newly settled text. Sets ``stopped`` at a stop sequence."""
        self.tokens.append(token)
        text = self.tokenizer.decode(self.tokens, skip_special_tokens=True)
        hits = [i for i in (text.find(s) for s in self.stop) if i >= 0]
        if hits:
            text = text[: min(hits)]
            self.stopped = True
        self.text = text
        return self._settled()

    def _settled(self) -> str:
        end = len(self.text)
        if not self.stopped:
            end = len(self.text.rstrip("\ufffd"))
            for stop in self.stop:
                for k in range(min(len(stop) - 1, end), 0, -1):
                    if self.text[:end].endswith(stop[:k]):
                        end -= k
                        break
        if end <= self.emitted:
            return ""
        delta = self.text[self.emitted:end]
        self.emitted = end
        return delta

    def finish(self) -> str:
        """The text not yet released, once the candidate is done."""
        self.text = self.text.rstrip("\ufffd")
        delta = self.text[self.emitted:]
        self.emitted = len(self.text)
        return delta
