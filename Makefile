# One command per job, the same for people and CI.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
LOCK   := requirements.lock
NODE_STAMP := node_modules/.installed

.PHONY: run test fuzz check lock bench-eta bench clean

# Installs exactly the versions in requirements.lock (a newer release cannot break a fresh clone).
$(STAMP): pyproject.toml $(LOCK)
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -c $(LOCK) -e '.[test,fuzz,bench]'
	@touch $(STAMP)

# ESLint for the browser scripts: exactly the versions in package-lock.json (npm ci).
$(NODE_STAMP): package.json package-lock.json
	npm ci --no-audit --no-fund --silent
	@touch $(NODE_STAMP)

## run: start livemap on an embedded Redis with simulated drivers (Ctrl-C stops everything); PORT=8001 make run
## (or make run PORT=8001) for another port than 8000
run: $(STAMP)
	$(BIN)/livemap demo $(if $(PORT),--port $(PORT))

## test: run the test suite (embedded Redis; LIVEMAP_TEST_REDIS_URL=redis://... for another, =cluster for a local Redis Cluster)
test: $(STAMP)
	$(BIN)/python -m pytest

## fuzz: 100,000 generated driver-socket frames (hypothesis), then 20,000+ schema-driven requests (schemathesis, from
## /openapi.json) to every endpoint; any untyped reply or 5xx fails (~22 min)
fuzz: $(STAMP)
	LIVEMAP_FUZZ_FRAMES=$${LIVEMAP_FUZZ_FRAMES:-100000} $(BIN)/python -m pytest -s tests/test_fuzz_socket.py
	$(BIN)/python -m pytest -m fuzz -s tests/test_fuzz.py

## bench-eta: score livemap's ETAs against the simulator's true arrival times on Helsinki's streets (two servers of its own; ~3 min)
bench-eta: $(STAMP)
	$(BIN)/python -m simulator eta-accuracy

## bench: ingest, fan-out latency, memory per socket and scale-out, next to a bare floor and the peers
## (~15 min; BENCH_SCALE=0.1 make bench for a quick run)
BENCH_SCALE ?= 1
bench: $(STAMP)
	$(BIN)/python -m simulator bench --scale $(BENCH_SCALE)

## check: lint, type-check, the import rules between layers, README's anchor links, and ESLint on the browser scripts
## (static/vendor excluded)
check: $(STAMP) $(NODE_STAMP)
	$(BIN)/ruff check livemap simulator tests
	$(BIN)/ruff format --check livemap simulator tests
	$(BIN)/mypy
	$(BIN)/lint-imports --no-cache
	$(BIN)/python tests/check_links.py
	npx --no-install eslint static/*.js

## lock: re-resolve the newest versions pyproject.toml allows into requirements.lock (then: make check test)
lock:
	rm -rf .venv-lock && $(PYTHON) -m venv .venv-lock
	.venv-lock/bin/python -m pip install --quiet --upgrade pip
	.venv-lock/bin/python -m pip install --quiet -e '.[test,fuzz,bench]'
	{ head -n 1 $(LOCK); .venv-lock/bin/python -m pip freeze --exclude-editable; } > $(LOCK).new && mv $(LOCK).new $(LOCK)
	rm -rf .venv-lock

clean:
	rm -rf $(VENV) var .pytest_cache .mypy_cache .ruff_cache node_modules
