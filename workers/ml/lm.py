"""Autoregressive LM generation on top of transformers' ``generate``: n sampled candidates with
streaming text deltas, stop sequences, per-candidate finish reasons and mean token log-probs.

Pure PyTorch/transformers: no Django. ``workers.runtime.completions`` wires it to jobs.
"""

from __future__ import annotations

from collections.abc import Callable

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

from workers.ml.decoding import Completion, SamplingParams, TextTracker
from workers.ml.grammar import GrammarMatcher, grammar_tokenizer

__all__ = ["Completion", "SamplingParams", "eos_token_ids", "generate", "tiny_llama_config"]

TextCallback = Callable[[dict[int, str], int], None]  # (deltas by candidate index, new tokens)


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
        # Wider than the usual 0.02 so that greedy decoding varies from token to token instead of
        # repeating one: the batching tests compare long, varied outputs.
        initializer_range=0.3,
    )


def eos_token_ids(model: PreTrainedModel, tokenizer: PreTrainedTokenizerBase) -> set[int]:
    eos = model.generation_config.eos_token_id
    if eos is None:
        eos = tokenizer.eos_token_id
    return set(eos if isinstance(eos, list) else [eos])


class _LogprobCapture(LogitsProcessor):
    """Keeps this step's log-probabilities (after repetition penalty, before sampling warpers)
    so the streamer can score the token that gets picked."""

    def __init__(self) -> None:
        self.last: torch.Tensor | None = None

    def __call__(self, input_ids: torch.LongTensor, scores: torch.FloatTensor) -> torch.FloatTensor:
        self.last = torch.log_softmax(scores.float(), dim=-1)
        return scores


class _GeneratedRepetitionPenalty(LogitsProcessor):
    """transformers' repetition penalty over the generated tokens only (past ``prompt_length``)."""

    def __init__(self, penalty: float, prompt_length: int) -> None:
        self.penalty, self.prompt_length = penalty, prompt_length

    def __call__(self, input_ids: torch.LongTensor, scores: torch.FloatTensor) -> torch.FloatTensor:
        generated = input_ids[:, self.prompt_length :]
        if generated.shape[1] == 0:
            return scores
        picked = torch.gather(scores, 1, generated)
        picked = torch.where(picked < 0, picked * self.penalty, picked / self.penalty)
        return scores.scatter(1, generated, picked)


class _GrammarLogits(LogitsProcessor):
    """Constrained decoding in ``generate``: each row's matcher consumes the row's last token,
    then masks the tokens its grammar refuses next."""

    def __init__(self, matchers: list[GrammarMatcher], prompt_length: int) -> None:
        self.matchers, self.prompt_length = matchers, prompt_length

    def __call__(self, input_ids: torch.LongTensor, scores: torch.FloatTensor) -> torch.FloatTensor:
        scores = scores.clone()
        for row, matcher in enumerate(self.matchers):
            if input_ids.shape[1] > self.prompt_length and not matcher.is_stopped:
                matcher.consume(int(input_ids[row, -1]))
            # Once complete, the matcher allows only end-of-sequence tokens: generate() ends the row.
            scores[row] = matcher.mask_logits(scores[row])
        return scores


class _StopWhen(StoppingCriteria):
    def __init__(self, should_stop: Callable[[], bool]):
        self.should_stop = should_stop
        self.fired = False

    def __call__(self, input_ids: torch.LongTensor, scores: torch.FloatTensor, **kwargs) -> torch.BoolTensor:
        self.fired = self.fired or self.should_stop()
        return torch.full((input_ids.shape[0],), self.fired, dtype=torch.bool, device=input_ids.device)


class _CandidateStreamer(BaseStreamer):
    """Turns the per-step token ids of all candidates into settled text deltas."""

    def __init__(self, tokenizer, *, n: int, stop: tuple[str, ...], eos_ids: set[int], capture: _LogprobCapture,
                 on_text: TextCallback | None):
        self.eos_ids = eos_ids
        self.capture = capture
        self.on_text = on_text
        self.prompt_seen = False
        self.trackers = [TextTracker(tokenizer, stop) for _ in range(n)]
        self.logprobs: list[list[float]] = [[] for _ in range(n)]
        self.finished: list[str | None] = [None] * n

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
            new_tokens += 1
            if logprobs is not None and logprobs.shape[0] == len(ids):
                self.logprobs[row].append(float(logprobs[row, token]))
            tracker = self.trackers[row]
            if delta := tracker.add(token):
                deltas[row] = delta
            if tracker.stopped:
                self.finished[row] = "stop"
        if self.on_text and (deltas or new_tokens):
            self.on_text(deltas, new_tokens)

    def end(self) -> None:
        deltas = {row: d for row, tracker in enumerate(self.trackers) if (d := tracker.finish())}
        if self.on_text and deltas:
            self.on_text(deltas, 0)


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
    eos_ids = eos_token_ids(model, tokenizer)
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
        repetition_penalty=params.repetition_penalty if params.penalise_prompt else None,
        pad_token_id=pad_id,
        eos_token_id=list(eos_ids),
        streamer=streamer,
        logits_processor=LogitsProcessorList(
            ([] if params.penalise_prompt or params.repetition_penalty == 1.0
             else [_GeneratedRepetitionPenalty(params.repetition_penalty, input_ids.shape[1])])
            + ([_GrammarLogits([GrammarMatcher(grammar_tokenizer(tokenizer, eos_ids), params.grammar)
                                for _ in range(params.n)], input_ids.shape[1])] if params.grammar else [])
            + [capture]
        ),
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
        tracker = streamer.trackers[row]
        completions.append(
            Completion(
                text=tracker.text,
                finish_reason=reason,
                completion_tokens=len(tracker.tokens),
                mean_logprob=(sum(lps) / len(lps)) if lps else None,
            )
        )
    return completions
