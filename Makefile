# `make run` and `make test` work on a fresh machine: both create the virtualenv first.
PYTHON ?= python3.11
VENV ?= .venv
BIN := $(VENV)/bin
INSTALLED := $(VENV)/.installed
NODEPS := $(shell sed -n 's/^# no-deps: //p' requirements.txt)
# The servers' entry points (wsgi.py, asgi.py, celery.py) default to production settings; the
# one-machine targets ask for local ones unless the environment names others (honcho's processes
# inherit it). Not exported globally: `make test` keeps pytest.ini's test settings.
LOCAL_SETTINGS := DJANGO_SETTINGS_MODULE=$${DJANGO_SETTINGS_MODULE:-genai_site.settings.local}

.PHONY: install run web worker beat test bench lint deploy-check migrate clean

$(INSTALLED): requirements.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet torch==2.13.0
	$(BIN)/python -m pip install --quiet -r requirements.txt
	$(BIN)/python -m pip install --quiet --no-deps $(NODEPS)
	touch $@

install: $(INSTALLED)

migrate: install
	$(BIN)/python manage.py migrate --noinput

# The whole service on one machine: SQLite + file-system broker under var/ unless
# DATABASE_URL / CELERY_BROKER_URL say otherwise. Web on http://127.0.0.1:8000.
run: migrate
	$(BIN)/python manage.py collectstatic --noinput --verbosity 0
	$(BIN)/python manage.py demo_setup
	$(BIN)/python manage.py model_prepare
	rm -rf var/metrics
	$(LOCAL_SETTINGS) PATH=$(abspath $(BIN)):$$PATH GENAI_METRICS_DIR=$(abspath var/metrics) $(BIN)/honcho start -f Procfile

worker: install
	$(LOCAL_SETTINGS) $(BIN)/celery -A genai_site worker -Q gpu,cpu,train -P threads -c 4 --loglevel INFO

beat: install
	$(LOCAL_SETTINGS) $(BIN)/celery -A genai_site beat --loglevel INFO

test: install
	$(BIN)/python -m pytest

bench: install
	$(BIN)/python bench/pipeline.py

# Layer rules (import-linter contracts in .importlinter) and pyflakes/isort checks (ruff.toml).
lint: install
	$(BIN)/lint-imports
	$(BIN)/ruff check .

# The Kubernetes manifests: render every deploy/overlays/* (kubectl kustomize) and validate the
# result offline against the Kubernetes and KEDA schemas and the service's own rules.
deploy-check: install
	$(BIN)/python deploy/validate.py

clean:
	rm -rf var .pytest_cache
