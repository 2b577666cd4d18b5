"""Package a trained LoRA adapter for the repository (``models/<name>/``), so that a fresh
``make run`` serves it without training: the adapter weights in half precision (what a merge
needs; half the bytes), its config, and its ``training.json`` (the run's params and figures)
with the base model and the commands that reproduce it."""

import json
import shutil
from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError


class Command(BaseCommand):
    help = __doc__

    def add_arguments(self, parser):
        parser.add_argument("model", help='The adapter version, "name@3".')
        parser.add_argument("--to", type=Path, help="Default: GENAI_SHIPPED_MODELS_DIR/<name>.")
        parser.add_argument("--reproduce", action="append", default=[], help="A command that reproduces it (repeatable).")
        parser.add_argument("--evaluation", type=Path, help="A copy_evaluate / replies_evaluate JSON report to keep beside it.")

    def handle(self, *args, model, to, reproduce, evaluation, **options):
        import torch
        from safetensors.torch import load_file, save_file

        from generation.models import ModelVersion

        name, _, number = model.partition("@")
        version = ModelVersion.objects.filter(family="lm_adapter", name=name, version=int(number or 0)).first()
        if version is None:
            raise CommandError(f"No lm_adapter version {model!r}.")
        source = Path(settings.GENAI_MODEL_STORE_DIR) / version.artifact_path
        target = to or Path(settings.GENAI_SHIPPED_MODELS_DIR) / name
        target.mkdir(parents=True, exist_ok=True)
        weights = load_file(str(source / "adapter_model.safetensors"))
        save_file({k: v.to(torch.float16) for k, v in weights.items()}, str(target / "adapter_model.safetensors"))
        shutil.copy2(source / "adapter_config.json", target / "adapter_config.json")
        training = json.loads((source / "training.json").read_text())
        training.update({"base_model": version.base_model, "trained_as": version.label, "reproduce": reproduce,
                         "metrics": {**training.get("metrics", {}), **version.metrics}})
        if evaluation:
            training["evaluation"] = json.loads(evaluation.read_text())
        (target / "training.json").write_text(json.dumps(training, indent=1, default=str))
        size = sum(p.stat().st_size for p in target.iterdir()) / 1e6
        self.stdout.write(f"{version.label} -> {target} ({size:.1f} MB)")
