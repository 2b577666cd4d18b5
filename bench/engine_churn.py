"""Engine throughput when rows join and leave the batch almost every step: the product-copy
pattern (short prompts, one-sentence answers), replayed in this process on the served LM, with
the KV cache of this checkout and the one of an earlier commit measured in the same run.

Why: a py-spy profile of copy jobs at 16 concurrent showed ~30 % of the engine thread in KV-cache
copies (every join and every leave copied the whole cache) against ~45 % in the model's forward.
This replays that pattern without the web, Celery or the database, so the figures are the
engine's alone.

Load: ``lm_get(--model)`` (the model and tokenizer the worker serves, GENAI_CPU_* as set), then
one ``workers.runtime.engine.Engine`` per cache under test, with the worker's settings
(GENAI_ENGINE_MAX_ROWS, _MAX_CACHED_TOKENS, _PREFILL_CHUNK, _PREFIX_CACHE_TOKENS):
  new  ``workers.ml.batching`` / ``workers.ml.llama_step`` as checked out;
  old  the same two files from ``git show --old-ref`` (default: the commit before the cache kept
       spare rows and columns), loaded as separate modules; the engine itself is this checkout's.
Requests: ``--clients`` threads each send ``--requests`` requests one after another; request i's
prompt is a system message and one product's attributes (~130 tokens with the chat template,
products differ by number, colour and material), sampled at temperature 0.7, top-p 0.95, top-k 50,
repetition penalty 1.1, seed i, at most ``--max-new-tokens``: the model usually ends its sentence
first, so rows leave at different steps and new ones join. Same requests and seeds for each
cache; the caches run in ``--order`` (default old,new,new,old, so drift on a shared machine
hits both alike), each after one warm-up request.

Printed per cache: completion tokens, wall seconds, aggregate tokens/s (all completion tokens /
wall), this process's CPU milliseconds per completion token (all threads: less swayed than wall
time when other work shares the cores), engine iterations and mean rows per iteration, and for the new cache how many iterations
re-allocated it (a whole-cache copy); then new/old tokens/s and CPU per token.

Run:
    DJANGO_SETTINGS_MODULE=genai_site.settings.local PYTHONPATH=. .venv/bin/python bench/engine_churn.py \
        [--clients 16] [--requests 6] [--max-new-tokens 40] [--order old,new,new,old] [--json]
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "genai_site.settings.local")

OLD_REF = "f5be887"  # the last commit whose KVCache copied the whole cache on every join and leave
SYSTEM = (
    "You write product copy for an online shop. Given a product's attributes, write one sentence that a "
    "customer would enjoy reading: concrete, friendly, no exaggeration, and never mention an attribute that "
    "is not given. Answer with the sentence only."
)
COLOURS = ["red", "navy blue", "olive green", "charcoal grey", "mustard yellow", "ivory", "burgundy", "sky blue"]
MATERIALS = ["full-grain leather", "organic cotton canvas", "recycled polyester", "merino wool", "linen"]
KINDS = ["tote bag", "backpack", "crossbody bag", "weekend holdall", "laptop sleeve", "belt bag"]


def prompt_messages(i: int) -> list[dict]:
    attributes = (
        f"Product {1000 + i}: {COLOURS[i % len(COLOURS)]} {KINDS[i % len(KINDS)]}.\n"
        f"Material: {MATERIALS[i % len(MATERIALS)]}. Closure: zip with a leather pull. "
        f"Pockets: one inner zip pocket and two slip pockets. Strap: adjustable, {30 + i % 5 * 5} to 120 cm. "
        f"Size: {28 + i % 7} x 35 x 12 cm. Care: wipe clean with a damp cloth."
    )
    return [{"role": "system", "content": SYSTEM}, {"role": "user", "content": attributes}]


def old_modules(ref: str):
    """``workers.ml.llama_step`` and ``workers.ml.batching`` as they were at ``ref``, as modules
    of their own (the old batching imports the old llama_step)."""
    directory = Path(tempfile.mkdtemp(prefix="engine_churn_"))
    modules = {}
    for name in ("llama_step", "batching"):
        source = subprocess.run(["git", "show", f"{ref}:workers/ml/{name}.py"], cwd=ROOT, check=True,
                                capture_output=True, text=True).stdout
        source = source.replace("from workers.ml.llama_step import", "from _old_llama_step import")
        path = directory / f"_old_{name}.py"
        path.write_text(source)
        spec = importlib.util.spec_from_file_location(f"_old_{name}", path)
        module = importlib.util.module_from_spec(spec)
        sys.modules[spec.name] = module
        spec.loader.exec_module(module)
        modules[name] = module
    return modules["batching"]


def engine_build(lm, decoder_class, on_step):
    from django.conf import settings

    from workers.ml.lm import eos_token_ids
    from workers.runtime.engine import Engine

    decoder = decoder_class(
        lm.model, lm.tokenizer, eos_ids=eos_token_ids(lm.model, lm.tokenizer),
        prefill_chunk=settings.GENAI_ENGINE_PREFILL_CHUNK, prefix_cache_tokens=settings.GENAI_ENGINE_PREFIX_CACHE_TOKENS,
    )
    return Engine(decoder, max_rows=settings.GENAI_ENGINE_MAX_ROWS,
                  max_cached_tokens=settings.GENAI_ENGINE_MAX_CACHED_TOKENS, on_step=on_step)


def run(lm, decoder_class, args, prompts: list[list[int]]) -> dict:
    from workers.ml.decoding import SamplingParams

    iterations = {"count": 0, "rows": 0, "reallocated": 0}
    holder: dict = {}

    def on_step(seconds: float, rows: int, waiting: int) -> None:
        iterations["count"] += 1
        iterations["rows"] += rows
        cache = holder["engine"].decoder.cache if "engine" in holder else None
        keys = getattr(cache, "keys", None)
        if hasattr(cache, "reallocations") and keys is not None and keys is not holder.get("keys"):
            iterations["reallocated"] += 1
        holder["keys"] = keys

    engine = engine_build(lm, decoder_class, on_step)
    holder["engine"] = engine

    def params(seed: int) -> SamplingParams:
        return SamplingParams(max_new_tokens=args.max_new_tokens, temperature=0.7, top_p=0.95, top_k=50,
                              repetition_penalty=1.1, seed=seed)

    engine.submit(prompts[-1], params(10**6)).result()  # warm-up, not counted
    iterations.update(count=0, rows=0, reallocated=0)
    tokens = [0] * args.clients

    def client(c: int) -> None:
        for r in range(args.requests):
            i = c * args.requests + r
            (completion,) = engine.submit(prompts[i], params(i)).result()
            tokens[c] += completion.completion_tokens

    threads = [threading.Thread(target=client, args=(c,)) for c in range(args.clients)]
    started, cpu = time.perf_counter(), time.process_time()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    wall, cpu = time.perf_counter() - started, time.process_time() - cpu
    engine.close()
    total = sum(tokens)
    return {
        "tokens": total, "wall_s": round(wall, 2), "tokens_per_s": round(total / wall, 1),
        "cpu_s": round(cpu, 2), "cpu_ms_per_token": round(1000 * cpu / total, 1),
        "iterations": iterations["count"], "mean_rows": round(iterations["rows"] / max(iterations["count"], 1), 2),
        "reallocating_iterations": iterations["reallocated"] if decoder_class.__module__ != "_old_batching" else None,
    }


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--model", default=None, help="GENAI_LM_MODEL value (default: the settings')")
    p.add_argument("--clients", type=int, default=16)
    p.add_argument("--requests", type=int, default=6, help="sequential requests per client")
    p.add_argument("--max-new-tokens", type=int, default=40)
    p.add_argument("--old-ref", default=OLD_REF, help="git commit of the old KV cache")
    p.add_argument("--order", default="old,new,new,old")
    p.add_argument("--json", action="store_true")
    args = p.parse_args()

    import django

    django.setup()
    import torch

    from generation.lm import chat_input_ids
    from workers.ml.batching import BatchDecoder
    from workers.runtime.models import lm_get

    lm = lm_get(args.model)
    decoders = {"new": BatchDecoder, "old": old_modules(args.old_ref).BatchDecoder}
    count = args.clients * args.requests
    prompts = [chat_input_ids(lm.tokenizer, prompt=None, messages=prompt_messages(i)) for i in range(count + 1)]
    results: dict[str, list[dict]] = {"old": [], "new": []}
    for name in args.order.split(","):
        results[name].append(run(lm, decoders[name], args, prompts))
        print(f"{name}: {results[name][-1]}", file=sys.stderr, flush=True)

    def rate(name: str) -> float:
        runs = results[name]
        return sum(r["tokens"] for r in runs) / sum(r["wall_s"] for r in runs)

    def cpu_ms(name: str) -> float:
        runs = results[name]
        return 1000 * sum(r["cpu_s"] for r in runs) / sum(r["tokens"] for r in runs)

    summary = {
        "model": lm.version, "dtype": lm.dtype, "weights": lm.weights, "threads": torch.get_num_threads(),
        "prompt_tokens": [min(map(len, prompts)), max(map(len, prompts))], "clients": args.clients,
        "requests_per_client": args.requests, "max_new_tokens": args.max_new_tokens, "old_ref": args.old_ref,
        "runs": results, "tokens_per_s": {name: round(rate(name), 1) for name in results if results[name]},
        "cpu_ms_per_token": {name: round(cpu_ms(name), 1) for name in results if results[name]},
    }
    if results["old"] and results["new"]:
        summary["new_vs_old"] = round(rate("new") / rate("old"), 2)
        summary["cpu_new_vs_old"] = round(cpu_ms("new") / cpu_ms("old"), 2)
    if args.json:
        print(json.dumps(summary, indent=2))
        return 0
    print(f"{summary['model']} ({summary['dtype']}, {summary['weights']} weights, {summary['threads']} threads), "
          f"prompts {summary['prompt_tokens'][0]}-{summary['prompt_tokens'][1]} tokens, "
          f"{args.clients} clients x {args.requests} requests, max_new_tokens {args.max_new_tokens}")
    print(f"{'cache':5} {'tokens':>7} {'wall s':>7} {'tok/s':>7} {'cpu ms/tok':>10} {'iters':>6} {'rows':>5} "
          f"{'realloc':>7}")
    for name, runs in results.items():
        for r in runs:
            realloc = "-" if r["reallocating_iterations"] is None else r["reallocating_iterations"]
            print(f"{name:5} {r['tokens']:>7} {r['wall_s']:>7} {r['tokens_per_s']:>7} {r['cpu_ms_per_token']:>10} "
                  f"{r['iterations']:>6} "
                  f"{r['mean_rows']:>5} {realloc:>7}")
    for name, value in summary["tokens_per_s"].items():
        print(f"{name}: {value} tokens/s, {summary['cpu_ms_per_token'][name]} CPU ms per token over its runs")
    if "new_vs_old" in summary:
        print(f"new/old: {summary['new_vs_old']}x tokens/s, {summary['cpu_new_vs_old']}x CPU per token")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
