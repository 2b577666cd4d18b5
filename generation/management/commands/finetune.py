from django.core.management.base import BaseCommand


class Command(BaseCommand):
    help = (
        "LoRA fine-tuning in this process (what a finetune job does on a train worker): trains, saves "
        "and registers the adapter, then prints its metrics as JSON. Options are the job's params."
    )

    def add_arguments(self, parser):
        parser.add_argument("--purpose", choices=["reply", "copy"], default="reply")
        parser.add_argument("--name")
        parser.add_argument("--dataset-jsonl")
        parser.add_argument("--no-bitext", action="store_true", help="Leave out the Bitext dialogues.")
        parser.add_argument("--brand")
        parser.add_argument("--prompt-format", choices=["opening", "rag1", "sentences"])
        parser.add_argument("--init-from", help='Start from this adapter ("reply-rag@1").')
        for option, kind in (("max-steps", int), ("epochs", float), ("batch-size", int), ("lr", float), ("rank", int),
                             ("alpha", int), ("max-examples", int), ("max-tokens", int), ("validation-fraction", float),
                             ("max-validation", int), ("eval-every", int), ("patience", int), ("eval-replies", int),
                             ("seed", int), ("top-layers", int), ("dropout", float), ("max-seconds", int)):
            parser.add_argument(f"--{option}", type=kind)

    def handle(self, *args, **options):
        from generation.kinds.finetune import FinetuneParamsSerializer
        from generation.management.local_run import training_run_locally
        from workers.runners.finetune import finetune_run

        names = ("purpose", "name", "dataset_jsonl", "brand", "max_steps", "epochs", "batch_size", "lr", "rank", "alpha",
                 "max_examples", "max_tokens", "validation_fraction", "max_validation", "eval_every", "patience",
                 "eval_replies", "seed", "top_layers", "dropout", "prompt_format", "init_from", "max_seconds")
        params = {n: options[n] for n in names if options.get(n) is not None}
        if options["no_bitext"]:
            params["include_bitext"] = False
        training_run_locally(self, serializer_class=FinetuneParamsSerializer, runner=finetune_run, params=params)
