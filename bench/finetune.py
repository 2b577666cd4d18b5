"""Benchmark of LoRA fine-tuning throughput and of serving adapters, SmolLM2-135M-Instruct.

Training (``--train-steps`` steps each, batch ``--batch-size``, Bitext dialogues in the reply
service's chat format, at most ``--max-tokens`` tokens each, float32):
- LoRA (rank 8 on every attention and MLP projection; workers.train.finetune.lora_train);
- baseline, in the same run: full fine-tuning (AdamW on every weight) of the same model on the
  same batches. Printed: examples/s, tokens/s, and the ratio LoRA / full.

Serving (``--requests`` concurrent requests of ``--new-tokens`` greedy tokens each, the same
~60-token chat prompt, on the engines of workers.runtime):
- baseline: the base engine alone, before any adapter exists;
- base requests with an adapter merged and loaded but idle (the design's claim: base requests
  are not slowed by adapters existing);
- the adapter's requests alone on its engine (merged weights: no extra work per token);
- an unmerged peft model on an engine (the design not taken: LoRA products added per token);
- mixed: half the requests on the base, half on the adapter, at once (two engines share the cores).
Printed: aggregate tokens/s and ratios to the baseline.

    python bench/finetune.py [--train-steps 6] [--requests 8] [--new-tokens 32]

Runs with the project's settings (GENAI_CPU_DTYPE etc.); nothing is written to the database.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "genai_site.settings.local")

import django  # noqa: E402

django.setup()

import torch  # noqa: E402
from django.conf import settings  # noqa: E402

QUESTION = (
    "Hello, I ordered a pair of running shoes two weeks ago and the tracking page still says the "
    "parcel is being prepared. Can you tell me when it will ship and whether I can change the delivery address?"
)


def train_bench(args) -> dict:
    from transformers import AutoModelForCausalLM

    from generation.lm import lm_prepare, tokenizer_get
    from workers.runners.finetune import reply_chat
    from workers.train.finetune import (
        LoraTrainConfig,
        _batch,
        _token_loss_sum,
        bitext_rows,
        example_encode,
        lora_train,
    )

    tokenizer = tokenizer_get(settings.GENAI_LM_MODEL)
    rows = bitext_rows(settings.GENAI_FINETUNE_BITEXT_CSV)[: args.train_steps * args.batch_size]
    examples = [example_encode(tokenizer, reply_chat(r["instruction"], r["response"]), max_tokens=args.max_tokens) for r in rows]
    examples = [e for e in examples if e]
    tokens = sum(len(e.input_ids) for e in examples)
    out = {}
    model = AutoModelForCausalLM.from_pretrained(lm_prepare(), dtype=torch.float32)
    config = LoraTrainConfig(max_steps=args.train_steps, batch_size=args.batch_size, epochs=1, warmup_steps=0,
                             eval_every=10**6)
    result = lora_train(model, tokenizer, examples, [], config)
    out["lora"] = {"examples_per_second": result.metrics["examples_per_second"],
                   "tokens_per_second": result.metrics["tokens_per_second"],
                   "trainable_parameters": result.metrics["trainable_parameters"]}
    del model, result
    model = AutoModelForCausalLM.from_pretrained(lm_prepare(), dtype=torch.float32).train()
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-5)
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    started = time.perf_counter()
    for start in range(0, len(examples), args.batch_size):
        batch = _batch(examples[start : start + args.batch_size], pad, "cpu")
        loss, n = _token_loss_sum(model, batch)
        optimizer.zero_grad(set_to_none=True)
        (loss / max(n, 1)).backward()
        optimizer.step()
    seconds = time.perf_counter() - started
    out["full"] = {"examples_per_second": round(len(examples) / seconds, 3), "tokens_per_second": round(tokens / seconds, 1),
                   "trainable_parameters": sum(p.numel() for p in model.parameters())}
    return out


def _run(engine_lms: list, ids: list[int], n_tokens: int) -> float:
    """Aggregate tokens/s of one request per entry of ``engine_lms``, all submitted at once."""
    from generation.runner import NullContext
    from workers.ml.decoding import SamplingParams
    from workers.runtime.completions import completions_run

    sampling = SamplingParams(max_new_tokens=n_tokens, temperature=0.0, repetition_penalty=1.0)
    counts = []

    def one(lm):
        (c,) = completions_run(lm, ids, sampling, NullContext())
        counts.append(c.completion_tokens)

    threads = [threading.Thread(target=one, args=(lm,)) for lm in engine_lms]
    started = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return sum(counts) / (time.perf_counter() - started)


def serve_bench(args) -> dict:
    from peft import LoraConfig, PeftModel, get_peft_model
    from transformers import AutoModelForCausalLM

    from generation.lm import chat_input_ids, lm_prepare
    from workers.runtime.adapters import adapter_lm_build
    from workers.runtime.models import LoadedLM, engine_build, lm_get

    base = lm_get()
    ids = chat_input_ids(base.tokenizer, prompt=None, messages=[{"role": "user", "content": QUESTION}])
    _run([base] * 2, ids, 4)  # warm-up
    figures = {"prompt_tokens": len(ids), "dtype": base.dtype}
    figures["base alone (baseline)"] = _run([base] * args.requests, ids, args.new_tokens)
    with tempfile.TemporaryDirectory() as tmp:
        torch.manual_seed(0)
        fresh = AutoModelForCausalLM.from_pretrained(lm_prepare(), dtype=torch.float32)
        targets = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]
        get_peft_model(fresh, LoraConfig(r=8, lora_alpha=16, target_modules=targets, init_lora_weights=False)).save_pretrained(tmp)
        started = time.perf_counter()
        adapter = adapter_lm_build(directory=Path(tmp), base=base, label="bench@1")
        figures["adapter load seconds"] = round(time.perf_counter() - started, 2)
        figures["base, adapter loaded and idle"] = _run([base] * args.requests, ids, args.new_tokens)
        figures["adapter alone (merged)"] = _run([adapter] * args.requests, ids, args.new_tokens)
        half = args.requests // 2
        figures["mixed: half base, half adapter"] = _run([base] * half + [adapter] * (args.requests - half), ids, args.new_tokens)
        adapter.engine.close()
        unmerged_model = PeftModel.from_pretrained(
            AutoModelForCausalLM.from_pretrained(lm_prepare(), dtype=torch.float32), tmp
        ).to(dtype=getattr(torch, base.dtype)).eval()
        unmerged = LoadedLM(model=unmerged_model, tokenizer=base.tokenizer, device=base.device, dtype=base.dtype,
                            version="unmerged", load_seconds=0.0, weights="dense", engine=engine_build(unmerged_model, base.tokenizer),
                            lock=threading.Lock())
        figures["adapter alone (unmerged peft)"] = _run([unmerged] * args.requests, ids, args.new_tokens)
        unmerged.engine.close()
    figures["base alone, again"] = _run([base] * args.requests, ids, args.new_tokens)
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--train-steps", type=int, default=6)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--max-tokens", type=int, default=384)
    parser.add_argument("--requests", type=int, default=8)
    parser.add_argument("--new-tokens", type=int, default=32)
    parser.add_argument("--skip-train", action="store_true")
    args = parser.parse_args()
    if not args.skip_train:
        train = train_bench(args)
        print(f"training, {args.train_steps} steps of {args.batch_size} examples (float32):")
        for name, f in train.items():
            print(f"  {name:<5} {f['examples_per_second']:>8.2f} examples/s {f['tokens_per_second']:>9.1f} tokens/s "
                  f"{f['trainable_parameters']:>12,} trainable parameters")
        print(f"  LoRA / full: x{train['lora']['tokens_per_second'] / train['full']['tokens_per_second']:.2f} tokens/s")
    serve = serve_bench(args)
    baseline = serve["base alone (baseline)"]
    print(f"serving, {args.requests} concurrent requests x {args.new_tokens} greedy tokens, "
          f"{serve['prompt_tokens']}-token prompt, {serve['dtype']}, adapter merge+load {serve['adapter load seconds']} s:")
    for name, value in serve.items():
        if isinstance(value, float) and "seconds" not in name:
            print(f"  {name:<34} {value:>8.1f} tokens/s  x{value / baseline:.2f}")


if __name__ == "__main__":
    main()
