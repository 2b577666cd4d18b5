"""The worker's runner registry and the web's kind registry name the same kinds."""

import inspect
import os
import subprocess
import sys

from generation.kinds import kinds_all
from workers.runners import RUNNERS


def test_every_kind_has_a_runner_and_every_runner_a_kind():
    assert sorted(k.name for k in kinds_all()) == sorted(RUNNERS)


def test_runners_take_params_and_a_context_by_keyword():
    for kind, runner in RUNNERS.items():
        parameters = inspect.signature(runner).parameters
        assert [p.kind for p in parameters.values()] == [inspect.Parameter.KEYWORD_ONLY] * 2, kind
        assert list(parameters) == ["params", "ctx"], kind


def test_the_web_side_of_every_kind_loads_without_torch():
    code = (
        "import django, sys; django.setup()\n"
        "from generation.kinds import kinds_autodiscover; kinds_autodiscover()\n"
        "import generation.services.jobs, generation.apis.jobs\n"
        "print(sorted(m for m in ('torch', 'workers.runners', 'workers.runtime.engine') if m in sys.modules))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
        env={**os.environ, "DJANGO_SETTINGS_MODULE": "genai_site.settings.test"},
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.strip().splitlines()[-1] == "[]"
