import argparse
import json
import sys

from django.core.management.base import BaseCommand, CommandError


class Command(BaseCommand):
    help = (
        "Train a sentence VAE and a latent GAN in this process on a domain's corpus (--domain product: the copy "
        "corpus's training split; support: the Bitext answers) or a CSV's text columns (default: the shipped Bitext "
        "instructions and responses) and register both model versions, as the genmodel_train job does. "
        "Prints the metrics as JSON; curves go to stderr."
    )

    def add_arguments(self, parser):
        parser.add_argument("--name", default="copy-vae")
        parser.add_argument("--domain", choices=("product", "support"), default=None,
                            help="product: the copy corpus's training split; support: the Bitext answers (unless --csv). "
                            "Sets the purpose (copy, reply), so that the domain's jobs use the model.")
        parser.add_argument("--architecture", choices=("optimus", "gru"), default="optimus",
                            help="optimus: MiniLM encoder + SmolLM2 decoder with LoRA (CPU-sized defaults; larger on a GPU); "
                            "gru: the small VAE trained from scratch.")
        parser.add_argument("--purpose", default=None, help="Default: the domain's, else GENAI_GENMODEL_PURPOSE.")
        parser.add_argument("--csv", default=None, help="Default: the domain's corpus, else GENAI_GENMODEL_DEFAULT_CSV.")
        parser.add_argument("--text-col", action="append", dest="text_cols", help="Repeat for several columns.")
        parser.add_argument("--max-words", type=int, default=30)
        parser.add_argument("--max-seconds", type=float, default=None, help="Default GENAI_GENMODEL_TRAIN_MAX_SECONDS.")
        parser.add_argument("--gpu-sized", action="store_true",
                            help="optimus: the GPU settings (OptimusTrainConfig.gpu_sized) whatever the device.")
        # Left out: the architecture's default (workers.train.optimus.OptimusTrainConfig; the GRU's in the runner).
        for flag, kind in (("--epochs", int), ("--max-steps", int), ("--latent-dim", int), ("--prefix-len", int),
                           ("--encoder-train-layers", int), ("--lora-rank", int), ("--hidden-dim", int),
                           ("--embed-dim", int), ("--vocab-size", int), ("--batch-size", int), ("--lr", float),
                           ("--kl-warmup-steps", int), ("--kl-cycles", int), ("--free-bits", float),
                           ("--word-dropout", float), ("--eval-every", int), ("--patience", int)):
            parser.add_argument(flag, type=kind, default=None)
        parser.add_argument("--memory", action=argparse.BooleanOptionalAction, default=None,
                            help="optimus: z as key/value slots in every decoder layer (default: the config's).")
        parser.add_argument("--kl-schedule", choices=("linear", "cyclical", "constant"), default=None)
        parser.add_argument("--gan-steps", type=int, default=1500)
        parser.add_argument("--seed", type=int, default=0)
        parser.add_argument("--gan-diversity-weight", type=float, default=None,
                            help="Weight of MSGAN's mode-seeking term in the GAN generator's loss (0: plain WGAN-GP; "
                            "default GENAI_GENMODEL_GAN_DIVERSITY_WEIGHT).")
        parser.add_argument("--gan-only-for", default="", metavar="VAE",
                            help="Train only a new GAN on this existing VAE (name or name@N), from the same corpus; "
                            "the VAE options are ignored.")
        parser.add_argument("--promote", action="store_true", help="Make the new VAE and GAN the defaults.")

    def handle(self, *args, **o):
        from django.conf import settings

        from generation.exceptions import PermanentJobError
        from workers.runners.genmodel_train import (
            GRU_KEYS,
            OPTIMUS_KEYS,
            corpus_load,
            gan_retrain,
            genmodel_train,
            job_purpose,
            train_configs,
        )
        from workers.runtime.genmodels import _device

        params = {"csv": o["csv"] or "", "text_cols": o["text_cols"] or [], "domain": o["domain"] or ""}
        if o["csv"] and not o["text_cols"]:
            params["text_cols"] = ["text"]
        try:
            texts, corpus = corpus_load(params)
        except PermanentJobError as exc:
            raise CommandError(str(exc)) from exc

        def log(step, split, **values):
            shown = " ".join(f"{k}={v:.4g}" for k, v in values.items())
            print(f"[{split} {step}] {shown}", file=sys.stderr, flush=True)

        weight = o["gan_diversity_weight"]
        params.update({k: o[k] for k in {*OPTIMUS_KEYS, *GRU_KEYS} if o.get(k) is not None})
        params.update(architecture=o["architecture"], epochs=o["epochs"], gan_steps=o["gan_steps"], seed=o["seed"],
                      gan_diversity_weight=settings.GENAI_GENMODEL_GAN_DIVERSITY_WEIGHT if weight is None else weight,
                      purpose=o["purpose"] or "")
        vae_config, gan_config = train_configs(params, gpu=o["gpu_sized"] or _device().type == "cuda")
        progress = lambda fraction, message: print(f"{fraction:.0%} {message}", file=sys.stderr)  # noqa: E731
        try:
            if o["gan_only_for"]:
                outcome = gan_retrain(vae_name=o["gan_only_for"], texts=texts, gan_config=gan_config, log=log,
                                      progress=progress)
            else:
                outcome = genmodel_train(
                    texts=texts, name=o["name"], purpose=job_purpose(params), vae_config=vae_config,
                    gan_config=gan_config, max_words=o["max_words"], max_seconds=o["max_seconds"], corpus=corpus,
                    log=log, progress=progress,
                )
        except PermanentJobError as exc:
            raise CommandError(str(exc)) from exc
        if o["promote"]:
            from django.db import transaction
            from django.utils import timezone

            from generation.models import ModelVersion

            with transaction.atomic():  # from the CLI: an operator's act, no acting user
                for row in (outcome.vae, outcome.gan):
                    ModelVersion.objects.filter(family=row.family, purpose=row.purpose, is_default=True).update(is_default=False)
                    ModelVersion.objects.filter(pk=row.pk).update(is_default=True, promoted_at=timezone.now())
        self.stdout.write(json.dumps({"vae": outcome.vae.label, "gan": outcome.gan.label, "corpus": corpus, **outcome.metrics}, indent=2))
