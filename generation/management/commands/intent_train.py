from django.core.management.base import BaseCommand, CommandError


class Command(BaseCommand):
    help = (
        "Train the intent classifier of replies in this process (what an intent_train job does on a "
        "train worker) and register it as a model version; prints its validation figures, and those of "
        "a logistic regression on the frozen embeddings fitted on the same split, as JSON. Parameters "
        "left out take the defaults of the kind of training (workers/runners/intent.py)."
    )

    def add_arguments(self, parser):
        parser.add_argument("--name", default="intent")
        parser.add_argument(
            "--dataset", action="append", dest="datasets", metavar="PATH:TEXT_COL:LABEL_COL",
            help="A labelled CSV (repeatable); default GENAI_INTENT_DATASETS.",
        )
        parser.add_argument("--encoder-layers", type=int,
                            help="The encoder's top layers fine-tuned with the head (default: all; 0: a head on frozen embeddings).")
        parser.add_argument("--epochs", type=int)
        parser.add_argument("--lr", type=float, help="The head's learning rate.")
        parser.add_argument("--encoder-lr", type=float)
        parser.add_argument("--hidden", type=int, help="0: a linear head.")
        parser.add_argument("--residual", action="store_true", default=None,
                            help="An MLP beside a linear path started from the baseline (the head starts as the baseline).")
        parser.add_argument("--batch-size", type=int)
        parser.add_argument("--patience", type=int)
        parser.add_argument("--validation-fraction", type=float)
        parser.add_argument("--seed", type=int)
        parser.add_argument("--no-baseline", action="store_true", help="Skip the logistic-regression baseline.")

    def handle(self, *args, name, datasets, no_baseline, **options):
        from generation.kinds.intent_train import IntentTrainParamsSerializer
        from generation.management.local_run import training_run_locally
        from workers.runners.intent import dataset_parse, intent_train_run

        keys = ("encoder_layers", "epochs", "lr", "encoder_lr", "hidden", "batch_size", "patience",
                "validation_fraction", "seed", "residual")
        params = {"name": name, "baseline": not no_baseline, **{k: options[k] for k in keys if options.get(k) is not None}}
        if datasets:
            try:
                params["datasets"] = [dataset_parse(s).__dict__ for s in datasets]
            except ValueError as exc:
                raise CommandError(str(exc)) from exc
        training_run_locally(self, serializer_class=IntentTrainParamsSerializer, runner=intent_train_run, params=params)
