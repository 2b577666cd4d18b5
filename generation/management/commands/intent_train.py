from django.core.management.base import BaseCommand, CommandError


class Command(BaseCommand):
    help = (
        "Train the intent classifier of replies in this process (what an intent_train job does on a "
        "train worker) and register it as a model version; prints its validation figures as JSON."
    )

    def add_arguments(self, parser):
        parser.add_argument("--name", default="intent")
        parser.add_argument(
            "--dataset", action="append", dest="datasets", metavar="PATH:TEXT_COL:LABEL_COL",
            help="A labelled CSV (repeatable); default GENAI_INTENT_DATASETS.",
        )
        parser.add_argument("--epochs", type=int, default=60)
        parser.add_argument("--lr", type=float, default=2e-3)
        parser.add_argument("--hidden", type=int, default=512)
        parser.add_argument("--batch-size", type=int, default=128)
        parser.add_argument("--patience", type=int, default=4)
        parser.add_argument("--validation-fraction", type=float, default=0.1)
        parser.add_argument("--seed", type=int, default=0)

    def handle(self, *args, name, datasets, epochs, lr, hidden, batch_size, patience, validation_fraction, seed, **options):
        from generation.kinds.intent_train import IntentTrainParamsSerializer
        from generation.management.local_run import training_run_locally
        from workers.runners.intent import dataset_parse, intent_train_run

        params = {"name": name, "epochs": epochs, "lr": lr, "hidden": hidden, "batch_size": batch_size,
                  "patience": patience, "validation_fraction": validation_fraction, "seed": seed}
        if datasets:
            try:
                params["datasets"] = [dataset_parse(s).__dict__ for s in datasets]
            except ValueError as exc:
                raise CommandError(str(exc)) from exc
        training_run_locally(self, serializer_class=IntentTrainParamsSerializer, runner=intent_train_run, params=params)
