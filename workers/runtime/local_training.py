"""Training run by an operator command in its own process (no job row, no worker): the same
runner a train job calls, with a context that prints instead of writing to the database."""

import json
from collections.abc import Callable
from typing import Any

from django.core.management.base import BaseCommand, CommandError
from rest_framework.exceptions import ValidationError


class LocalTrainContext:
    """A JobContext for training run by an operator command (no job row): progress and curve
    points go to ``write`` (the command's stdout); never stopped."""

    job_id = "local"
    kind = "local"

    def __init__(self, write=print, *, every: int = 1):
        self.write, self.every, self._points = write, every, 0
        self.points: list[tuple[int, str, dict]] = []

    def progress(self, fraction: float, message: str = "") -> None:
        if message:
            self.write(f"[{fraction:5.1%}] {message}")

    def metrics_log(self, step: int, split: str = "train", **values: float) -> None:
        self.points.append((step, split, values))
        if split != "train":  # validation points are few: show them
            self.write(f"step {step} {split}: " + ", ".join(f"{k} {v:.4f}" for k, v in values.items()))

    def text_emit(self, deltas, *, tokens: int = 0) -> None:
        pass

    def text_flush(self) -> None:
        pass

    def stop_reason(self) -> str | None:
        return None


def training_run_locally(
    command: BaseCommand, *, serializer_class: type, runner: Callable[..., Any], params: dict
) -> None:
    """Validate ``params`` as the job kind would, run ``runner`` here, print the metrics as JSON
    (progress and validation points go to stderr). Bad params and refused runs are CommandErrors."""
    from generation.exceptions import PermanentJobError

    serializer = serializer_class(data=params)
    try:
        serializer.is_valid(raise_exception=True)
    except ValidationError as exc:
        raise CommandError(json.dumps(exc.detail)) from exc
    try:
        result = runner(params=dict(serializer.validated_data), ctx=LocalTrainContext(command.stderr.write))
    except PermanentJobError as exc:
        raise CommandError(str(exc)) from exc
    command.stderr.write(result.candidates[0].text)
    metrics = result.candidates[0].metadata["metrics"]
    command.stdout.write(json.dumps({"model_version": result.model_version, **metrics}, indent=1))
