"""Test settings: the same pipeline, fast knobs. DATABASE_URL / CELERY_BROKER_URL may point at
real PostgreSQL / Redis (CI does); without them SQLite and the file-system broker are used, with a
file-backed test database so a real worker process can share it."""

from genai_site.settings.base import *  # noqa: F403
from genai_site.settings.base import DATABASES, VAR_DIR, env

DEBUG = False
SECRET_KEY = "test-secret-key-not-for-production"
ALLOWED_HOSTS = ["*"]
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
GENAI_LOG_FORMAT = "text"

# A tiny random model of SmolLM2's architecture (built by tests/conftest.py); the tests that
# need real model behaviour ask for the shipped SmolLM2 explicitly.
GENAI_LM_MODEL = env("GENAI_LM_MODEL", default=str(VAR_DIR / "test-models" / "tiny-llama-v2"))

# Tests that run a job in-process hold its row in an uncommitted transaction, which the
# heartbeat thread's own connection cannot see: beat rarely enough that it never fires there
# (e2e workers set their own, short, interval through the environment).
GENAI_JOB_HEARTBEAT_SECONDS = env.float("GENAI_JOB_HEARTBEAT_SECONDS", default=60.0)
GENAI_CPU_DTYPE = "float32"  # the batching tests compare outputs token for token
GENAI_CPU_WEIGHTS = "dense"
# The same engine on every machine, llama-cpp-python installed or not (the llama.cpp decoder has its
# own tests: tests/workers/runtime/test_engine.py).
GENAI_ENGINE = "batched"
# The tiny random LM finds every text equally unlikely (perplexity ~ its vocabulary): no variant
# would pass the fluency filter; the tests of the filter set their own threshold.
GENAI_GENMODEL_VARIANT_MAX_PERPLEXITY = env.float("GENAI_GENMODEL_VARIANT_MAX_PERPLEXITY", default=1e12)
# Likewise the tiny models' variants share no meaning with their source: no drift filter here
# (tests that check it set it).
GENAI_GENMODEL_VARIANT_MIN_SIMILARITY = env.float("GENAI_GENMODEL_VARIANT_MIN_SIMILARITY", default=-1.0)
GENAI_GENMODEL_DROP_BROKEN = env.bool("GENAI_GENMODEL_DROP_BROKEN", default=False)  # and every word is one it invented

if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    DATABASES["default"]["TEST"] = {"NAME": str(VAR_DIR / "test-db.sqlite3")}

REST_FRAMEWORK = {**REST_FRAMEWORK}  # noqa: F405
REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"] = {
    "user": env("GENAI_THROTTLE_USER", default="100000/min"),
    "job_create": env("GENAI_THROTTLE_JOB_CREATE", default="100000/min"),
    "token": env("GENAI_THROTTLE_TOKEN", default="100000/min"),
}

STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
}

# Trained artefacts of the tests' own jobs (tiny adapters named like real ones) never land in the
# store a developer's `make run` serves from.
GENAI_MODEL_STORE_DIR = VAR_DIR / "test-trained"
