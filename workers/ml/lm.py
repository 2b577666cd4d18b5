"""Autoregressive LM generation on top of transformers' ``generate``: n sampled candidates with
streaming text deltas, stop sequences, per-candidate finish reasons and mean token log-probs.

Pure PyTorch/transformers: no Django. ``workers.runtime.text`` wires it to jobs.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
from transformers import (
    LlamaConfig,
    LogitsProcessor,
    LogitsProcessorList,
    PreTrainedModel,
    PreTrainedTokenizerBase,
    StoppingCriteria,
    StoppingCriteriaList,
)
from transformers.generation.streamers import BaseStreamer

TextCallback = Callable[[dict[int, str], int], None]  # (deltas by candidate index, new tokens)


@dataclass(frozen=True)
class SamplingParams:
    max_new_tokens: int = 128
    temperature: float = 0.7
    top_p: float = 0.95
    top_k: int = 50
    repetition_penalty: float = 1.0
    stop: tuple[str, ...] = ()
    seed: int | None = None
    n: int = 1


@dataclass(frozen=True)
class Completion:
    text: str
    finish_reason: str  # stop | length | cancelled
    completion_tokens: int
    mean_logprob: float | None


def tiny_llama_config(*, vocab_size: int, eos_token_id: int, bos_token_id: int | None = None) -> LlamaConfig:
    """A randomly initialised model of SmolLM2's architecture, small enough for fast tests."""
    return LlamaConfig(
        vocab_size=vocab_size,
        hidden_size=64,
        intermediate_size=128,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=4096,
        tie_word_embeddings=True,
        eos_token_id=eos_token_id,
        bos_token_id=bos_token_id,
        pad_token_id=eos_token_id,
    )


class _LogprobCapture(LogitsProcessor):
    """Keeps this step's log-probabilities (after repetition penalty, before sampling warpers)
    so the streamer can score the token that gets picked."""

    def __init__(self) -> None:
        self.last: torch.Tensor | None = None

    def __call__(self, input_ids: torch.LongTensor, scores: torch.FloatTensor) -> torch.FloatTensor:
        self.last = torch.log_softmax(scores.float(), dim=-1)
        return scores


class _StopWhen(StoppingCriteria):
    def __init__(self, should_stop: Callable[[], bool]):
        self.should_stop = should_stop
        self.fired = False

    def __call__(self, input_ids: torch.LongTensor, scores: torch.FloatTensor, **kwargs) -> torch.BoolTensor:
        self.fired = self.fired or self.should_stop()
        return torch.full((input_ids.shape[0],), self.fired, dtype=torch.bool, device=input_ids.device)


class _CandidateStreamer(BaseStreamer):
    """Turns the per-step token ids of all candidates into text deltas.

    Text that could still turn into a stop sequence, or that ends in an incomplete UTF-8
    character, is held back until it is settled, so clients never see text that is later cut.
    """

    def __init__(self, tokenizer, *, n: int, stop: tuple[str, ...], eos_ids: set[int], capture: _LogprobCapture,
                 on_text: TextCallback | None):
        self.tokenizer = tokenizer
        self.stop = stop
        self.eos_ids = eos_ids
        self.capture = capture
        self.on_text = on_text
        self.prompt_seen = False
        self.tokens: list[list[int]] = [[] for _ in range(n)]
        self.logprobs: list[list[float]] = [[] for _ in range(n)]
        self.finished: list[str | None] = [None] * n
        self.texts: list[str] = [""] * n
        self.emitted: list[int] = [0] * n

    def put(self, value: torch.Tensor) -> None:
        if not self.prompt_seen:  # generate() first pushes the prompt
            self.prompt_seen = True
            return
        ids = value.view(-1).tolist()
        logprobs = self.capture.last
        deltas: dict[int, str] = {}
        new_tokens = 0
        for row, token in enumerate(ids):
            if self.finished[row] is not None:
                continue
            if token in self.eos_ids:
                self.finished[row] = "stop"
                continue
            self.tokens[row].append(token)
            new_tokens += 1
            if logprobs is not None and logprobs.shape[0] == len(ids):
                self.logprobs[row].append(float(logprobs[row, token]))
            text = self.tokenizer.decode(self.tokens[row], skip_special_tokens=True)
            cut = _first_stop(text, self.stop)
            if cut is not None:
                text = text[:cut]
                self.finished[row] = "stop"
            self.texts[row] = text
            delta = self._settled(row)
            if delta:
                deltas[row] = delta
        if self.on_text and (deltas or new_tokens):
            self.on_text(deltas, new_tokens)

    def _settled(self, row: int) -> str:
        text = self.texts[row]
        end = len(text)
        if self.finished[row] is None:
            end = len(text.rstrip("\ufffd"))
            for stop in self.stop:
                for k in range(min(len(stop) - 1, end), 0, -1):
                    if text[:end].endswith(stop[:k]):
                        end -= k
                        break
        delta = text[self.emitted[row]:end] if end > self.emitted[row] else ""
        self.emitted[row] = max(self.emitted[row], end)
        return delta

    def end(self) -> None:
        deltas = {}
        for row in range(len(self.texts)):
            self.texts[row] = self.texts[row].rstrip("\ufffd")
            delta = self.texts[row][self.emitted[row]:]
            self.emitted[row] = len(self.texts[row])
            if delta:
                deltas[row] = delta
        if self.on_text and deltas:
            self.on_text(deltas, 0)


def _first_stop(text: str, stop: tuple[str, ...]) -> int | None:
    hits = [i for i in (text.find(s) for s in stop) if i >= 0]
    return min(hits) if hits else None


@torch.inference_mode()
def generate(
    model: PreTrainedModel,
    tokenizer: PreTrainedTokenizerBase,
    input_ids: torch.Tensor,
    params: SamplingParams,
    *,
    on_text: TextCallback | None = None,
    should_stop: Callable[[], bool] | None = None,
) -> list[Completion]:
    """Generate ``params.n`` candidates for one prompt (``input_ids`` of shape (1, L))."""
    if params.seed is not None:
        torch.manual_seed(params.seed)
        if torch.cuda.is_available():
            torch.cuda.manual_seed_all(params.seed)
    eos = model.generation_config.eos_token_id
    if eos is None:
        eos = tokenizer.eos_token_id
    eos_ids = set(eos if isinstance(eos, list) else [eos])
    pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else next(iter(eos_ids))
    capture = _LogprobCapture()
    streamer = _CandidateStreamer(
        tokenizer, n=params.n, stop=params.stop, eos_ids=eos_ids, capture=capture, on_text=on_text
    )
    stop_when = _StopWhen(should_stop or (lambda: False))
    sampling = params.temperature > 0
    kwargs = dict(
        do_sample=sampling,
        max_new_tokens=params.max_new_tokens,
        num_return_sequences=params.n,
        repetition_penalty=params.repetition_penalty,
        pad_token_id=pad_id,
        eos_token_id=list(eos_ids),
        streamer=streamer,
        logits_processor=LogitsProcessorList([capture]),
        stopping_criteria=StoppingCriteriaList([stop_when]),
    )
    if sampling:
        kwargs.update(temperature=params.temperature, top_p=params.top_p, top_k=params.top_k or None)
    else:
        kwargs.update(temperature=None, top_p=None, top_k=None)
    if params.stop:
        kwargs.update(stop_strings=list(params.stop), tokenizer=tokenizer)
    attention_mask = torch.ones_like(input_ids)
    model.generate(input_ids=input_ids, attention_mask=attention_mask, **kwargs)

    completions = []
    for row in range(params.n):
        reason = streamer.finished[row]
        if reason is None:
            reason = "cancelled" if stop_when.fired else "length"
        lps = streamer.logprobs[row]
        completions.append(
            Completion(
                text=streamer.texts[row],
                finish_reason=reason,
                completion_tokens=len(streamer.tokens[row]),
                mean_logprob=(sum(lps) / len(lps)) if lps else None,
            )
        )
    return completions
