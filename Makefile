# Two commands do everything: `make run` and `make test`.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
# What serving needs (`make run`), then the development tools on top (`make test`).
SERVE_STAMP := $(VENV)/.installed-serve
DEV_STAMP := $(VENV)/.installed-dev
# Where `make run` listens: `make run PORT=8080`, `make run HOST=0.0.0.0` for the network.
HOST ?= 127.0.0.1
PORT ?= 8000
# The PostgreSQL server the suite creates its throwaway databases on.
export BULLETIN_TEST_POSTGRES_URL ?= postgresql+asyncpg://postgres@127.0.0.1:5432/postgres
export BULLETIN_TEST_REDIS_URL ?= redis://127.0.0.1:6379/0

.PHONY: messages run test test-system test-production lint format services browser proxies install clean bench bench-publish contract

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(SERVE_STAMP): $(BIN)/python pyproject.toml requirements.lock
	$(BIN)/python -m pip install --quiet -c requirements.lock -e .
	touch $(SERVE_STAMP)

$(DEV_STAMP): $(SERVE_STAMP)
	$(BIN)/python -m pip install --quiet -c requirements.lock -e '.[dev]'
	touch $(DEV_STAMP)

install: $(DEV_STAMP)

# tests/system/browser/test_first_hour.py runs these lines as they are written here.
run: $(SERVE_STAMP)
	$(BIN)/bulletin migrate
	$(BIN)/bulletin demo --if-empty --host $(HOST) --port $(PORT)
	$(BIN)/bulletin serve --host $(HOST) --port $(PORT)

services:
	@bash .ci/services
	@bash .ci/promtool

browser:
	@bash .ci/browser

# Debian's nginx and Varnish for tests/system/production/ (installed when missing).
proxies:
	@bash .ci/proxies

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	$(BIN)/hadolint Dockerfile
	$(BIN)/shellcheck docker/entrypoint.sh

# The page's words: extract them (babel.cfg) and bring every catalogue in web/messages up to
# date; translate what is new, then restart (the .po files are read at start).
messages: install
	$(BIN)/pybabel extract -F babel.cfg -k plural_words:1,2 --no-location --omit-header -o $(VENV)/messages.pot .
	for language in ar en fr; do $(BIN)/pybabel update -i $(VENV)/messages.pot -l $$language -o web/messages/$$language.po -w 100 --no-fuzzy-matching --ignore-pot-creation-date; done

format: install
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

# Everything but tests/system/: the API on both databases, brokers, caches, limits, media.
# Two processes, a file each at a time (every process makes its own databases).
test: install services lint
	BULLETIN_TEST_REQUIRE_SERVICES=1 $(BIN)/python -m pytest --ignore=tests/system -n 2 --dist loadfile $(PYTEST_ARGS)

# The heavy ones, apart so `make test` stays quick: real `bulletin serve` processes killed
# and restarted, Chromium, nginx and Varnish in front (tests/system/production/), the OpenAPI
# contract. CI (.ci/run) runs both targets.
test-system: install services browser proxies
	BULLETIN_TEST_REQUIRE_SERVICES=1 $(BIN)/python -m pytest tests/system $(PYTEST_ARGS)

# The production shape alone: nginx, Varnish and three nodes (tests/system/production/, ~5 min).
test-production: install services proxies
	BULLETIN_TEST_REQUIRE_SERVICES=1 $(BIN)/python -m pytest -m production tests/system/production $(PYTEST_ARGS)

# Schemathesis over the whole API on both databases, deeper than `make test` runs it
# (tests/system/test_openapi_contract.py): EXAMPLES fuzzed requests per operation and mode.
EXAMPLES ?= 300
contract: install services
	BULLETIN_TEST_REQUIRE_SERVICES=1 BULLETIN_CONTRACT_EXAMPLES=$(EXAMPLES) \
		$(BIN)/python -m pytest tests/system/test_openapi_contract.py $(PYTEST_ARGS)

# Fan-out benchmark: Bulletin, the FastAPI tutorial pattern and nginx + nchan side by side;
# then a reconnect storm (bench/storm.py) and the other benchmarks.
bench: install services
	$(BIN)/python bench/fanout.py $(BENCH_ARGS)
	$(BIN)/python bench/storm.py $(if $(filter --quick,$(BENCH_ARGS)),--readers 500)
	$(BIN)/python bench/feeds.py $(filter --quick,$(BENCH_ARGS))
	@bash .ci/browser && $(BIN)/python bench/uploads.py $(filter --quick,$(BENCH_ARGS))
	$(BIN)/python bench/publish.py $(filter --quick,$(BENCH_ARGS))
	@bash .ci/browser && $(BIN)/python bench/browser.py $(filter --quick,$(BENCH_ARGS)) $(BROWSER_BENCH_ARGS)

# Publishing through the API against a bare insert, on SQLite and PostgreSQL (a few minutes).
bench-publish: install services
	$(BIN)/python bench/publish.py $(BENCH_ARGS)

clean:
	rm -rf $(VENV) *.egg-info .pytest_cache .ruff_cache
