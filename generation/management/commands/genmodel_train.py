import json
import sys

from django.core.management.base import BaseCommand, CommandError


class Command(BaseCommand):
    help = (
        "Train a sentence VAE and a latent GAN in this process on a CSV's text columns (default: the shipped "
        "Bitext instructions and responses) and register both model versions, as the genmodel_train job does. "
        "Prints the metrics as JSON; curves go to stderr."
    )

    def add_arguments(self, parser):
        parser.add_argument("--name", default="copy-vae")
        parser.add_argument("--purpose", default=None, help="Default GENAI_GENMODEL_PURPOSE.")
        parser.add_argument("--csv", default=None, help="Default GENAI_GENMODEL_DEFAULT_CSV.")
        parser.add_argument("--text-col", action="append", dest="text_cols", help="Repeat for several columns.")
        parser.add_argument("--max-words", type=int, default=30)
        parser.add_argument("--max-seconds", type=float, default=None, help="Default GENAI_GENMODEL_TRAIN_MAX_SECONDS.")
        parser.add_argument("--epochs", type=int, default=10)
        parser.add_argument("--max-steps", type=int, default=0)
        parser.add_argument("--gan-steps", type=int, default=1500)
        parser.add_argument("--latent-dim", type=int, default=32)
        parser.add_argument("--hidden-dim", type=int, default=256)
        parser.add_argument("--embed-dim", type=int, default=128)
        parser.add_argument("--vocab-size", type=int, default=4000)
        parser.add_argument("--batch-size", type=int, default=64)
        parser.add_argument("--kl-schedule", choices=("linear", "cyclical", "constant"), default="linear")
        parser.add_argument("--kl-warmup-steps", type=int, default=1500)
        parser.add_argument("--free-bits", type=float, default=0.5)
        parser.add_argument("--word-dropout", type=float, default=0.5)
        parser.add_argument("--eval-every", type=int, default=200)
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
            corpus_load,
            gan_retrain,
            genmodel_train,
        )
        from workers.train.genmodels import GANTrainConfig, VAETrainConfig

        params = {"csv": o["csv"] or "", "text_cols": o["text_cols"] or []}
        if o["csv"] and not o["text_cols"]:
            params["text_cols"] = ["text"]
        try:
            texts, corpus = corpus_load(params)
        except PermanentJobError as exc:
            raise CommandError(str(exc)) from exc

        def log(step, split, **values):
            shown = " ".join(f"{k}={v:.4g}" for k, v in values.items())
            print(f"[{split} {step}] {shown}", file=sys.stderr, flush=True)

        vae_config = VAETrainConfig(
            vocab_size=o["vocab_size"], embed_dim=o["embed_dim"], hidden_dim=o["hidden_dim"], latent_dim=o["latent_dim"],
            batch_size=o["batch_size"], max_epochs=o["epochs"], max_steps=o["max_steps"], kl_schedule=o["kl_schedule"],
            kl_warmup_steps=o["kl_warmup_steps"], free_bits=o["free_bits"], word_dropout=o["word_dropout"],
            eval_every=o["eval_every"], seed=o["seed"],
        )
        weight = o["gan_diversity_weight"]
        gan_config = GANTrainConfig(steps=o["gan_steps"], seed=o["seed"],
                                    diversity_weight=settings.GENAI_GENMODEL_GAN_DIVERSITY_WEIGHT if weight is None else weight)
        try:
            if o["gan_only_for"]:
                outcome = gan_retrain(
                    vae_name=o["gan_only_for"], texts=texts, gan_config=gan_config, log=log,
                    progress=lambda fraction, message: print(f"{fraction:.0%} {message}", file=sys.stderr),
                )
            else:
                outcome = genmodel_train(
                    texts=texts, name=o["name"], purpose=o["purpose"] if o["purpose"] is not None else settings.GENAI_GENMODEL_PURPOSE,
                    vae_config=vae_config, gan_config=gan_config, max_words=o["max_words"], max_seconds=o["max_seconds"],
                    corpus=corpus, log=log, progress=lambda fraction, message: print(f"{fraction:.0%} {message}", file=sys.stderr),
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
