"""Benchmark of the sentence VAE and latent GAN: training speed and sampling latency, each beside a
baseline measured in the same run on the same machine.

Training speed (sentences/s): ``vae_train`` of a fresh VAE with the configuration of the model
under test (its checkpoint's ``train_config``) on the default corpus (GENAI_GENMODEL_DEFAULT_CSV:
the Bitext instructions and responses, split into sentences as genmodel_train does) for
``--train-steps`` optimizer steps, one validation pass of 64 sentences at the end; then
``gan_train`` of ``--gan-steps`` generator steps (n_critic = 5) on that VAE's latents.
Baseline: one fine-tuning step of the served LM (SmolLM2-135M, float32, AdamW) on batches of 16
of the same sentences, ``--train-steps`` // 4 steps: sentences/s of a full forward + backward +
update, what adapting the LM to a corpus would cost instead.

Sampling latency (ms per request, median of ``--repeats``, requests interleaved so load from other
processes hits all alike): ``sample`` of ``--n`` texts from the VAE prior and from the GAN
(greedy decoding, the job's default), and ``variants`` of one text (k = 5, as a job does:
oversampled latents, decoding, ranking by the critic). Baseline: the served LM writing ``--n``
sampled sentences for a one-line prompt (``generate`` with num_return_sequences = n,
max_new_tokens = the mean LM-token length of the VAE's samples, temperature 0.7), i.e. what a
caller would otherwise run for "n new sentences". Ratio = baseline / VAE (higher: VAE faster).

Run (a trained model must exist: manage.py genmodel_train; 2 shared cores, numbers are noisy):
    .venv/bin/python bench/genmodels.py [--model NAME] [--n 10] [--repeats 5] [--threads 1] [--json]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "genai_site.settings.local")
os.environ.setdefault("GENAI_ENGINE", "sequential")  # the baseline calls generate() directly

import django  # noqa: E402

django.setup()

import torch  # noqa: E402
from django.conf import settings  # noqa: E402

from workers.runners import genmodel_train
from workers.runners import genmodels as genmodel_runners
from workers.runtime import genmodels  # noqa: E402
from workers.train.genmodels import (  # noqa: E402
    VAE_FILE,
    GANTrainConfig,
    VAETrainConfig,
    corpus_sentences,
    gan_train,
    vae_checkpoint_load,
    vae_train,
)

PROMPT = "Write one short sentence that a customer support agent might say to a customer."
VARIANT_SOURCE = "I understand that you would like to cancel your order."


def _median_ms(values: list[float]) -> float:
    return round(1000 * statistics.median(values), 1)


def training_speed(*, model: genmodels.GenModel, sentences: list[str], steps: int, gan_steps: int) -> dict:
    from generation.models import ModelVersion

    vae_row = ModelVersion.objects.get(family="vae", name=model.vae_label.split("@")[0], version=int(model.vae_label.split("@")[1]))
    checkpoint = vae_checkpoint_load(Path(settings.GENAI_MODEL_STORE_DIR) / vae_row.artifact_path / VAE_FILE)
    fields = set(VAETrainConfig.__dataclass_fields__)
    config = VAETrainConfig(**{k: v for k, v in checkpoint.train_config.items() if k in fields})
    config.max_steps, config.eval_every, config.max_seconds, config.max_epochs = steps, steps, 0.0, 1000
    trained = vae_train(sentences, config=config, validation_max=64)
    gan = gan_train(
        trained.model, trained.tokenizer, trained.train_texts[:2000], trained.valid_texts,
        config=GANTrainConfig(steps=gan_steps, log_every=gan_steps),
    )
    return {
        "vae_config": {k: getattr(config, k) for k in ("vocab_size", "embed_dim", "hidden_dim", "latent_dim", "batch_size")},
        "vae_steps": trained.metrics["steps"],
        "vae_sentences_per_second": trained.metrics["sentences_per_second"],
        "gan_critic_steps_per_second": gan.metrics["critic_steps_per_second"],
    }


def lm_training_speed(*, sentences: list[str], steps: int, batch: int = 16) -> float:
    from transformers import AutoModelForCausalLM

    from generation.lm import lm_prepare, tokenizer_get

    tokenizer = tokenizer_get(None)
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    lm = AutoModelForCausalLM.from_pretrained(lm_prepare(None), dtype=torch.float32)
    lm.train()
    optimizer = torch.optim.AdamW(lm.parameters(), lr=1e-5)
    started = time.monotonic()
    for step in range(steps):
        chunk = sentences[step * batch : (step + 1) * batch]
        encoded = tokenizer(chunk, return_tensors="pt", padding=True, truncation=True, max_length=48)
        labels = encoded["input_ids"].masked_fill(encoded["attention_mask"] == 0, -100)
        loss = lm(**encoded, labels=labels).loss
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    return round(steps * batch / (time.monotonic() - started), 1)


def sampling_latency(*, model: genmodels.GenModel, n: int, repeats: int) -> dict:
    from workers.runtime.models import lm_get

    lm = lm_get(None)
    messages = [{"role": "user", "content": PROMPT}]
    prompt_ids = lm.tokenizer.apply_chat_template(messages, add_generation_prompt=True, return_tensors="pt", return_dict=True)
    prompt_ids = {k: v.to(lm.model.device) for k, v in prompt_ids.items()}
    probe = genmodel_runners.samples_make(n=50, source="prior", seed=123, model=model)
    lengths = [len(lm.tokenizer(item["text"], add_special_tokens=False)["input_ids"]) for item in probe]
    new_tokens = max(4, round(statistics.mean(lengths)))

    def prior(seed):
        return genmodel_runners.samples_make(n=n, source="prior", seed=seed, model=model)

    def gan(seed):
        return genmodel_runners.samples_make(n=n, source="gan", seed=seed, model=model)

    def variants(seed):
        return genmodel_runners.variants_make(text=VARIANT_SOURCE, k=5, seed=seed, model=model)

    def baseline(seed):
        torch.manual_seed(seed)
        with torch.inference_mode():
            return lm.model.generate(
                **prompt_ids, do_sample=True, temperature=0.7, max_new_tokens=new_tokens, min_new_tokens=new_tokens,
                num_return_sequences=n, pad_token_id=lm.tokenizer.eos_token_id,
            )

    runs = {"vae_prior": prior, "gan": gan, "variants_k5": variants, "baseline_lm": baseline}
    times: dict[str, list[float]] = {name: [] for name in runs}
    for name, fn in runs.items():  # warm-up
        fn(0)
    for repeat in range(repeats):
        for name, fn in runs.items():
            started = time.perf_counter()
            fn(repeat + 1)
            times[name].append(time.perf_counter() - started)
    base = statistics.median(times["baseline_lm"])
    return {
        "n_per_request": n,
        "baseline_new_tokens": new_tokens,
        "lm": lm.version,
        "lm_dtype": lm.dtype,
        "median_ms": {name: _median_ms(values) for name, values in times.items()},
        "speedup_vs_baseline": {
            name: round(base / statistics.median(values), 1) for name, values in times.items() if name != "baseline_lm"
        },
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="")
    parser.add_argument("--n", type=int, default=10)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--train-steps", type=int, default=60)
    parser.add_argument("--gan-steps", type=int, default=100)
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    parser.add_argument("--skip-training", action="store_true")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    model = genmodels.genmodel_get(name=args.model or None)
    report: dict = {"model": model.label, "torch_threads": torch.get_num_threads(), "load_before": os.getloadavg()[0]}
    if not args.skip_training:
        texts, _ = genmodel_train.corpus_load({})
        max_words = 16
        from generation.models import ModelVersion

        row = ModelVersion.objects.filter(family="vae", name=model.vae_label.split("@")[0]).first()
        if row is not None:
            max_words = row.config.get("max_words", max_words)
        sentences = corpus_sentences(texts, max_words=max_words)
        report["training"] = training_speed(model=model, sentences=sentences, steps=args.train_steps, gan_steps=args.gan_steps)
        lm_steps = max(2, args.train_steps // 4)
        report["training"]["baseline_lm_finetune_sentences_per_second"] = lm_training_speed(sentences=sentences, steps=lm_steps)
        report["training"]["vae_speedup_vs_baseline"] = round(
            report["training"]["vae_sentences_per_second"] / report["training"]["baseline_lm_finetune_sentences_per_second"], 1
        )
    report["sampling"] = sampling_latency(model=model, n=args.n, repeats=args.repeats)
    report["load_after"] = os.getloadavg()[0]
    if args.json:
        print(json.dumps(report, indent=2))
    else:
        if "training" in report:
            t = report["training"]
            print(f"training  VAE {t['vae_sentences_per_second']} sentences/s  vs LM fine-tune "
                  f"{t['baseline_lm_finetune_sentences_per_second']} sentences/s  ({t['vae_speedup_vs_baseline']}x); "
                  f"GAN {t['gan_critic_steps_per_second']} critic steps/s")
        s = report["sampling"]
        for name, ms in s["median_ms"].items():
            ratio = s["speedup_vs_baseline"].get(name)
            print(f"sampling  {name:12s} {ms:9.1f} ms/request" + (f"  {ratio}x faster than the LM" if ratio else ""))
        print(f"model {report['model']}, {report['torch_threads']} threads, load {report['load_before']:.1f} -> {report['load_after']:.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
