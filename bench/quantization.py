"""Serving precision benchmark: each dtype, int8 dynamic quantisation and magnitude pruning of the
served LM against the default (float32 on CPU), on speed and on perplexity over held-back text.

Variants (CPU; all built from the same cached safetensors directory, ``lm_prepare(model)``):
  float32       the default on CPU (``workers.runtime.device``); the baseline of every ratio.
  bfloat16      ``from_pretrained(dtype=torch.bfloat16)``.
  float16       ``from_pretrained(dtype=torch.float16)`` (CPU kernels for it vary widely).
  int8-dynamic  the float32 model through ``torch.ao.quantization.quantize_dynamic({nn.Linear},
                qint8)``: int8 weights (per tensor), activations quantised per call, float32 out.
                Every Linear, lm_head included; lm_head is tied to the input embedding, which is
                an nn.Embedding and stays float32, so the tie is broken: the lookup uses the
                float32 table and the output projection its own int8 copy. Quantised engine:
                PyTorch's default (``torch.backends.quantized.engine``, printed).
  int4          the decoder's projections packed 4-bit (``workers.ml.quantized``, what the worker
                serves with GENAI_CPU_WEIGHTS=int4): found exactly on the GGUF's Q4_1 grids (loaded
                in float32 first), everything else (Q8_0 embedding, the lm_head tied to it, norms)
                dense bfloat16; the kernel computes in bfloat16.
  pruned30      float32 with 30 % of the weights of every decoder-layer Linear zeroed by L1
                magnitude (``torch.nn.utils.prune.l1_unstructured``, then ``prune.remove``);
                lm_head/embedding left alone (tied). Dense kernels do not skip zeros, so this
                shows what unstructured pruning costs in quality for no speed.
  bf16-compile  (``--compile``) bfloat16 with ``torch.compile(model.forward, dynamic=True)``;
                dropped with a note when compiling and warming up takes over --compile-budget s.

Speed goes through ``workers.ml.batching.BatchDecoder``, the decoder the engine serves with,
with no EOS token so every row decodes exactly --new-tokens tokens. The prompt is a ~60-token
chat (system + user message, the model's chat template).
  prefill ms      ``prefill_step`` of the prompt (one chunk, ``logits_to_keep=1``; includes
                  picking the first token).
  single tok/s    one request, greedy: (new_tokens - 1) decode steps / their wall time (the first
                  token comes from the prefill).
  batch16 tok/s   one request with n=16 sampled candidates (temperature 0.7, top-p 0.95,
                  top-k 50, fixed seed): 16 rows x (new_tokens - 1) / decode wall time.
  greedy =fp32    how many of the single request's greedy tokens match float32's before the
                  first difference (a correctness hint, not a quality measure).
Each measurement is repeated --repeats times, variants interleaved (A B C A B C ...) so load
from other processes on the machine hits all alike; the table shows medians, and ratios of
medians to float32 in the same run. Before the speed phase the script waits (up to --wait-max s)
for the 1-minute load average to fall below --max-load and reports the load before and after.
The 1-minute load average counts this script too (about --threads while it measures). Then
threads: torch.set_num_threads(1) against 2 (or --threads) for float32 and the verdict's
variant, interleaved the same way, after waiting for quiet again.

Quality: perplexity = exp(mean token NLL) over a text set, each text a separate sequence (batch
of one, so no padding reaches the int8 activation scales), tokenized as plain text (no chat
template, the tokenizer's own special tokens) and truncated to --max-tokens tokens; the mean is
over all predicted tokens of the set. Logits are cast to float32 before the log-softmax. Text
sets: --text-csv PATH --column NAME (repeatable, paired in order), the last --rows rows of each
file. Defaults: the ``response`` column of customer_support/bitext_support_train.csv and the
``text`` column of financial_sentiment/tfns_sent_train.csv, last 200 rows each: held back,
because training in this project takes the first part of these files.

Verdict: the fastest variant (geometric mean of its three speed ratios to float32: prefill,
single, batch16) whose perplexity is within --ppl-tolerance % (default 1) of float32 on every set.

Run (2 cores are shared; let the load settle first):
    .venv/bin/python bench/quantization.py [--repeats 5] [--compile] [--json]
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import os
import platform
import statistics
import sys
import time
import warnings
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from workers.ml.batching import BatchDecoder, BatchRequest  # noqa: E402
from workers.ml.decoding import SamplingParams  # noqa: E402

DEFAULT_SETS = [
    (ROOT / "../shared/data/customer_support/bitext_support_train.csv", "response"),
    (ROOT / "../shared/data/financial_sentiment/tfns_sent_train.csv", "text"),
]
VARIANTS = ["float32", "bfloat16", "float16", "int4", "int8-dynamic", "pruned30"]
BASELINE = "float32"
PROMPT = [
    {"role": "system", "content": "You are a helpful customer support assistant for an online store."},
    {"role": "user", "content": "Hi, I ordered a pair of running shoes last week and they arrived in the "
                                "wrong size. How do I return them and get the right size sent to me?"},
]
BATCH_PARAMS = dict(temperature=0.7, top_p=0.95, top_k=50, seed=1234, n=16)


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')} load {os.getloadavg()[0]:.2f}] {message}", file=sys.stderr, flush=True)


# --- models ------------------------------------------------------------------------------------


def model_dir(name: str) -> Path:
    if Path(name).is_dir():
        return Path(name)
    import django

    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "genai_site.settings.local")
    django.setup()
    from generation.lm import lm_prepare

    return lm_prepare(name)


def load_variant(directory: Path, variant: str):
    from transformers import AutoModelForCausalLM

    dtype = {"bfloat16": torch.bfloat16, "float16": torch.float16, "bf16-compile": torch.bfloat16}.get(
        variant, torch.float32
    )
    model = AutoModelForCausalLM.from_pretrained(directory, dtype=dtype).eval()
    if variant == "int8-dynamic":
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # torch.ao's deprecation notice (moving to torchao)
            model = torch.ao.quantization.quantize_dynamic(model, {torch.nn.Linear}, dtype=torch.qint8)
    elif variant == "int4":
        from workers.ml.quantized import linears_pack_int4

        linears_pack_int4(model, dtype=torch.bfloat16)
        model.to(torch.bfloat16)
    elif variant == "pruned30":
        from torch.nn.utils import prune

        for module in model.model.layers.modules():
            if isinstance(module, torch.nn.Linear):
                prune.l1_unstructured(module, "weight", amount=0.3)
                prune.remove(module, "weight")
    elif variant == "bf16-compile":
        model.forward = torch.compile(model.forward, dynamic=True)
    return model


# --- speed -------------------------------------------------------------------------------------


def run_request(model, tokenizer, prompt_ids: list[int], params: SamplingParams) -> dict:
    decoder = BatchDecoder(model, tokenizer, eos_ids=set())
    request = BatchRequest(prompt_ids=prompt_ids, params=params)
    started = time.perf_counter()
    while not decoder.prefill_step(request):
        pass
    prefilled = time.perf_counter()
    steps = 0
    while decoder.rows:
        decoder.decode_step()
        steps += 1
    done = time.perf_counter()
    return {
        "prefill_ms": (prefilled - started) * 1000,
        "tok_s": params.n * steps / (done - prefilled),
        "tokens": request.rows[0].tracker.tokens,
    }


def measure(model, tokenizer, prompt_ids: list[int], new_tokens: int) -> dict:
    single = run_request(model, tokenizer, prompt_ids, SamplingParams(max_new_tokens=new_tokens, temperature=0))
    batch = run_request(model, tokenizer, prompt_ids, SamplingParams(max_new_tokens=new_tokens, **BATCH_PARAMS))
    return {"prefill_ms": single["prefill_ms"], "single_tok_s": single["tok_s"], "batch16_tok_s": batch["tok_s"],
            "greedy_tokens": single["tokens"]}


def wait_for_quiet(max_load: float, wait_max: float) -> float:
    deadline = time.monotonic() + wait_max
    while os.getloadavg()[0] >= max_load and time.monotonic() < deadline:
        log(f"waiting for load < {max_load}")
        time.sleep(15)
    return os.getloadavg()[0]


# --- quality -----------------------------------------------------------------------------------


def read_texts(path: Path, column: str, rows: int) -> list[str]:
    csv.field_size_limit(sys.maxsize)
    with open(path, newline="", encoding="utf-8") as f:
        reader = csv.DictReader(f)
        if column not in (reader.fieldnames or []):
            raise SystemExit(f"{path}: no column {column!r} (has {reader.fieldnames})")
        texts = [row[column] for row in reader]
    return [t for t in texts[-rows:] if t.strip()]


@torch.inference_mode()
def perplexity(model, encoded: list[list[int]]) -> float:
    nll, count = 0.0, 0
    for ids in encoded:
        x = torch.tensor([ids])
        logits = model(input_ids=x).logits[0, :-1].float()
        nll += float(torch.nn.functional.cross_entropy(logits, x[0, 1:], reduction="sum"))
        count += len(ids) - 1
    return math.exp(nll / count)


# --- report ------------------------------------------------------------------------------------


def greedy_match(tokens: list[int], reference: list[int]) -> int:
    return next((i for i, (a, b) in enumerate(zip(tokens, reference)) if a != b), min(len(tokens), len(reference)))


def report(r: dict) -> str:
    sets = r["text_sets"]
    head = ["variant", "prefill ms", "tok/s single", "tok/s batch16", "x prefill", "x single", "x batch16",
            "x speed", "greedy =fp32"]
    for s in sets:
        head += [f"ppl {s['name']}", "Δppl %"]
    lines = [
        f"model {r['model']}; torch {r['torch']}, {r['threads']} threads, quantized engine {r['quantized_engine']}; "
        f"{r['machine']}",
        f"prompt {r['prompt_tokens']} tokens, {r['new_tokens']} new tokens, medians of {r['repeats']} interleaved "
        f"repeats; load (1-min avg) {r['load_before']:.2f} before / {r['load_after']:.2f} after the speed phase",
        "text sets: " + "; ".join(f"{s['name']} = last {s['texts']} rows of {s['path']}:{s['column']} "
                                  f"({s['tokens']} tokens)" for s in sets),
        "",
        "| " + " | ".join(head) + " |",
        "|" + "---|" * len(head),
    ]
    for v in r["variants"]:
        row = [v["name"], f"{v['prefill_ms']:.1f}", f"{v['single_tok_s']:.1f}", f"{v['batch16_tok_s']:.1f}",
               f"{v['x_prefill']:.2f}", f"{v['x_single']:.2f}", f"{v['x_batch16']:.2f}", f"{v['x_speed']:.2f}",
               f"{v['greedy_match']}/{r['new_tokens']}"]
        for s in sets:
            row += [f"{v['ppl'][s['name']]:.3f}", f"{v['dppl_pct'][s['name']]:+.2f}"]
        lines.append("| " + " | ".join(row) + " |")
    if r["threads_table"]:
        lines += ["", "| variant | threads | prefill ms | tok/s single | tok/s batch16 |", "|---|---|---|---|---|"]
        for t in r["threads_table"]:
            lines.append(f"| {t['name']} | {t['threads']} | {t['prefill_ms']:.1f} | {t['single_tok_s']:.1f} | "
                         f"{t['batch16_tok_s']:.1f} |")
    lines += [""] + [f"note: {n}" for n in r["notes"]] + [f"verdict: {r['verdict']}"]
    return "\n".join(lines)


# --- main --------------------------------------------------------------------------------------


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default="smollm2", help="GENAI_LM_MODEL value or a transformers directory")
    parser.add_argument("--text-csv", action="append", type=Path, help="held-back text CSV (repeatable)")
    parser.add_argument("--column", action="append", help="column of the matching --text-csv")
    parser.add_argument("--rows", type=int, default=200, help="last N rows of each CSV")
    parser.add_argument("--max-tokens", type=int, default=256)
    parser.add_argument("--variants", default=",".join(VARIANTS))
    parser.add_argument("--compile", action="store_true", help="add bf16-compile")
    parser.add_argument("--compile-budget", type=float, default=120.0)
    parser.add_argument("--new-tokens", type=int, default=64)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=torch.get_num_threads())
    parser.add_argument("--ppl-tolerance", type=float, default=1.0, help="percent")
    parser.add_argument("--max-load", type=float, default=1.5)
    parser.add_argument("--wait-max", type=float, default=300.0)
    parser.add_argument("--ppl-from", type=Path, help="reuse the perplexities of an earlier --json run "
                        "(same text sets): quality does not depend on load, so a speed rerun can skip it")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()

    if args.text_csv or args.column:
        if not args.text_csv or not args.column or len(args.text_csv) != len(args.column):
            parser.error("--text-csv and --column must be given the same number of times")
        sets = list(zip(args.text_csv, args.column))
    else:
        sets = DEFAULT_SETS
    variants = [v for v in args.variants.split(",") if v]
    if BASELINE not in variants:
        variants.insert(0, BASELINE)
    if args.compile:
        variants.append("bf16-compile")
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)

    from transformers import AutoTokenizer
    from transformers.utils import logging as hf_logging

    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()
    directory = model_dir(args.model)
    tokenizer = AutoTokenizer.from_pretrained(directory)
    prompt_ids = tokenizer(tokenizer.apply_chat_template(PROMPT, add_generation_prompt=True, tokenize=False),
                           add_special_tokens=False)["input_ids"]
    text_sets = []
    for path, column in sets:
        texts = read_texts(path, column, args.rows)
        encoded = [ids[: args.max_tokens] for ids in tokenizer(texts)["input_ids"]]
        encoded = [ids for ids in encoded if len(ids) >= 2]
        text_sets.append({"name": Path(path).stem, "path": os.path.relpath(path, ROOT), "column": column,
                          "texts": len(encoded), "tokens": sum(len(ids) for ids in encoded), "encoded": encoded})

    notes = []
    models = {}
    for variant in variants:
        started = time.monotonic()
        try:
            model = load_variant(directory, variant)
            measure(model, tokenizer, prompt_ids, 4)  # warm-up (oneDNN/fbgemm init; compiles here)
        except Exception as exc:  # noqa: BLE001 - a variant that does not run is a finding
            notes.append(f"{variant} skipped: {type(exc).__name__}: {str(exc)[:200]}")
            log(notes[-1])
            continue
        seconds = time.monotonic() - started
        if variant == "bf16-compile":
            notes.append(f"bf16-compile: compile + warm-up took {seconds:.0f} s")
            if seconds > args.compile_budget:
                notes[-1] += f" (> {args.compile_budget:.0f} s budget): skipped"
                log(notes[-1])
                continue
        models[variant] = model
        log(f"{variant} ready in {seconds:.1f} s")

    results = {v: {"name": v, "ppl": {}, "runs": []} for v in models}
    if args.ppl_from:
        earlier = json.loads(args.ppl_from.read_text())
        same = [{k: s[k] for k in ("name", "texts", "tokens")} for s in text_sets]
        if [{k: s[k] for k in ("name", "texts", "tokens")} for s in earlier["text_sets"]] != same:
            raise SystemExit(f"{args.ppl_from}: text sets differ from this run's")
        for v in earlier["variants"]:
            if v["name"] in results:
                results[v["name"]]["ppl"] = v["ppl"]
        notes.append(f"perplexities from {args.ppl_from.name} (same text sets)")
    for variant, model in models.items():
        if variant == "bf16-compile" or results[variant]["ppl"]:  # same weights and dtype as bfloat16; shapes differ per text
            continue
        for s in text_sets:
            started = time.monotonic()
            results[variant]["ppl"][s["name"]] = perplexity(model, s["encoded"])
            log(f"{variant} ppl {s['name']} = {results[variant]['ppl'][s['name']]:.3f} "
                f"({time.monotonic() - started:.0f} s)")
    if "bf16-compile" in results and not results["bf16-compile"]["ppl"]:
        if "bfloat16" in results:
            results["bf16-compile"]["ppl"] = dict(results["bfloat16"]["ppl"])
            notes.append("bf16-compile perplexity taken from bfloat16 (same weights and dtype)")
        else:
            for s in text_sets:
                results["bf16-compile"]["ppl"][s["name"]] = perplexity(models["bf16-compile"], s["encoded"])

    load_before = wait_for_quiet(args.max_load, args.wait_max)
    log(f"speed phase: {args.repeats} interleaved repeats of {list(models)}")
    for repeat in range(args.repeats):
        for variant, model in models.items():
            results[variant]["runs"].append(measure(model, tokenizer, prompt_ids, args.new_tokens))
        log(f"repeat {repeat + 1}/{args.repeats} done")
    load_after = os.getloadavg()[0]

    base = results[BASELINE]
    for v in results.values():
        for key in ("prefill_ms", "single_tok_s", "batch16_tok_s"):
            v[key] = statistics.median(run[key] for run in v["runs"])
            v[f"{key}_runs"] = [round(run[key], 2) for run in v["runs"]]
    for v in results.values():
        v["x_prefill"] = base["prefill_ms"] / v["prefill_ms"]
        v["x_single"] = v["single_tok_s"] / base["single_tok_s"]
        v["x_batch16"] = v["batch16_tok_s"] / base["batch16_tok_s"]
        v["x_speed"] = (v["x_prefill"] * v["x_single"] * v["x_batch16"]) ** (1 / 3)
        v["greedy_match"] = greedy_match(v["runs"][0]["greedy_tokens"], base["runs"][0]["greedy_tokens"])
        v["dppl_pct"] = {k: 100 * (p / base["ppl"][k] - 1) for k, p in v["ppl"].items()}
    good = [v for v in results.values() if all(abs(d) <= args.ppl_tolerance for d in v["dppl_pct"].values())]
    best = max(good, key=lambda v: v["x_speed"])
    verdict = (f"{best['name']}: fastest (x{best['x_speed']:.2f} geo-mean speed vs float32) of the variants whose "
               f"perplexity is within {args.ppl_tolerance:g} % of float32 on every set "
               f"({', '.join(v['name'] for v in good)})")

    threads_table = []
    if args.threads > 1:
        pair = [BASELINE] + ([best["name"]] if best["name"] != BASELINE else [])
        runs = {(name, n): [] for name in pair for n in (1, args.threads)}
        load_threads = wait_for_quiet(args.max_load, args.wait_max)
        log(f"threads phase: {pair} x (1, {args.threads})")
        for _ in range(args.repeats):
            for name, n in runs:
                torch.set_num_threads(n)
                runs[(name, n)].append(measure(models[name], tokenizer, prompt_ids, args.new_tokens))
        torch.set_num_threads(args.threads)
        for (name, n), rs in runs.items():
            threads_table.append({"name": name, "threads": n, **{
                key: statistics.median(r[key] for r in rs) for key in ("prefill_ms", "single_tok_s", "batch16_tok_s")
            }})
        notes.append(f"threads phase: load {load_threads:.2f} before / {os.getloadavg()[0]:.2f} after")

    r = {
        "model": directory.name,
        "torch": torch.__version__,
        "threads": args.threads,
        "quantized_engine": torch.backends.quantized.engine,
        "machine": f"{platform.machine()}, {os.cpu_count()} CPUs",
        "prompt_tokens": len(prompt_ids),
        "new_tokens": args.new_tokens,
        "repeats": args.repeats,
        "load_before": load_before,
        "load_after": load_after,
        "text_sets": [{k: s[k] for k in ("name", "path", "column", "texts", "tokens")} for s in text_sets],
        "variants": [{k: val for k, val in v.items() if k != "runs"} for v in results.values()],
        "threads_table": threads_table,
        "notes": notes,
        "verdict": verdict,
    }
    print(json.dumps(r, indent=2) if args.json else report(r))
    return 0


if __name__ == "__main__":
    sys.exit(main())
