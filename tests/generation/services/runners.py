"""Runners for test kinds: each fails in one way a real runner can."""

from django.db import OperationalError

from generation.exceptions import PermanentJobError


def boom_run(*, params, ctx):
    raise ValueError("the model exploded")


def bad_input_run(*, params, ctx):
    raise PermanentJobError("the CSV has no 'name' column", code="invalid_input")


def db_blip_run(*, params, ctx):
    raise OperationalError("server closed the connection unexpectedly")
