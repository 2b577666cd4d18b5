import subprocess
import sys

# A fresh interpreter: in the test process the lazy names are long resolved by other tests.
PROBE = """
import django, os
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "genai_site.settings.test")
django.setup()
import transformers
assert "AutoModel" not in vars(transformers), "resolved before the worker started"
from workers.signals import LAZY_NAMES, lazy_imports_resolve
lazy_imports_resolve()
import importlib
missing = [f"{m}.{n}" for m, names in LAZY_NAMES.items() for n in names if n not in vars(importlib.import_module(m))]
assert not missing, missing
print("resolved")
"""


def test_worker_start_resolves_the_lazy_imports_that_threads_raced():
    result = subprocess.run([sys.executable, "-c", PROBE], capture_output=True, text=True, timeout=240)
    assert result.returncode == 0, result.stderr[-2000:]
    assert "resolved" in result.stdout
