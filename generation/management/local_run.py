"""Training run by an operator command in its own process (no job row, no worker): the same
runner a train job calls, with a context that prints instead of writing to the database."""

import json
from collections.abc import Callable
from typing import Any

from django.core.management.base import BaseCommand, CommandError
from rest_framework.exceptions import ValidationError

from generation.runner import NullContext


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
        result = runner(params=dict(serializer.validated_data), ctx=NullContext(command.stderr.write))
    except PermanentJobError as exc:
        raise CommandError(str(exc)) from exc
    command.stderr.write(result.candidates[0].text)
    metrics = result.candidates[0].metadata["metrics"]
    command.stdout.write(json.dumps({"model_version": result.model_version, **metrics}, indent=1))
