"""Package a trained LoRA adapter for the repository (``models/<name>/``), so that a fresh
``make run`` serves it without training: the adapter weights in half precision (what a merge
needs; half the bytes), its config, and its ``training.json`` (the run's params and figures)
with the base model and the commands that reproduce it. A sentence VAE version (family ``vae``)
ships the same way: its checkpoint (``vae.pt``: config, LoRA and head weights, no base model),
its newest ready GAN's (``gan.pt``) and a ``training.json`` with both versions' figures."""

import json
import shutil
from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError


class Command(BaseCommand):
    help = __doc__

    def add_arguments(self, parser):
        parser.add_argument("model", help='The adapter (or sentence VAE) version, "name@3".')
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
            vae = ModelVersion.objects.filter(family="vae", name=name, version=int(number or 0)).first()
            if vae is None:
                raise CommandError(f"No lm_adapter or vae version {model!r}.")
            return self._ship_vae(vae, to=to, reproduce=reproduce, evaluation=evaluation)
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
            if "systems" in training["evaluation"]:  # replies_evaluate's: its figures go with the version
                training["metrics"]["evaluation"] = {k: v for k, v in training["evaluation"].items() if k != "replies"}
                training["evaluation"] = training["metrics"]["evaluation"]
        (target / "training.json").write_text(json.dumps(training, indent=1, default=str))
        size = sum(p.stat().st_size for p in target.iterdir()) / 1e6
        self.stdout.write(f"{version.label} -> {target} ({size:.1f} MB)")

    def _ship_vae(self, vae, *, to, reproduce, evaluation) -> None:
        from generation.models import ModelVersion, ModelVersionStatus

        gan = (ModelVersion.objects.filter(family="gan", status=ModelVersionStatus.READY, config__vae=vae.label)
               .order_by("-is_default", "-created_at", "-id").first())
        store = Path(settings.GENAI_MODEL_STORE_DIR)
        target = to or Path(settings.GENAI_SHIPPED_MODELS_DIR) / vae.name
        target.mkdir(parents=True, exist_ok=True)
        shutil.copy2(store / vae.artifact_path / "vae.pt", target / "vae.pt")
        if gan is not None:
            shutil.copy2(store / gan.artifact_path / "gan.pt", target / "gan.pt")
        training = {
            "family": "vae", "trained_as": vae.label, "params": {"purpose": vae.purpose}, "config": vae.config,
            "metrics": vae.metrics, "reproduce": reproduce,
            "gan": {"trained_as": gan.label, "config": gan.config, "metrics": gan.metrics} if gan is not None else None,
        }
        if evaluation:
            training["evaluation"] = json.loads(evaluation.read_text())
        (target / "training.json").write_text(json.dumps(training, indent=1, default=str))
        size = sum(p.stat().st_size for p in target.iterdir()) / 1e6
        self.stdout.write(f"{vae.label}{' + ' + gan.label if gan else ''} -> {target} ({size:.1f} MB)")
