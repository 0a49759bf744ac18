# Spikard: the targets a newcomer looks for.
CARGO ?= cargo
# The virtualenvs' interpreter: the system's python3.11 where it can make virtualenvs (Debian's
# and Ubuntu's are built with PGO and LTO, as python.org's are; a build without them, pyenv's
# default, makes the Python servers measure 2-9% slower per request), else python3.11 on PATH.
SYSTEM_PYTHON := $(shell /usr/bin/python3.11 -c 'import ensurepip, venv' >/dev/null 2>&1 && echo /usr/bin/python3.11)
PYTHON ?= $(or $(SYSTEM_PYTHON),python3.11)
VENV ?= .venv
PY := $(VENV)/bin/python
PORT_RUST ?= 8100
PORT_PYTHON ?= 8200
PY_DEPS := "maturin>=1.5,<2" "msgspec>=0.18" "pytest>=8" "websockets>=12" "ruff>=0.6" "mypy>=1.10" \
	"asyncpg>=0.30" "psycopg[binary,pool]>=3.2" "httpx>=0.27" "aiohttp>=3.9" "zlib-ng>=0.5"
# Runs a command with DATABASE_URL set: yours, or a throw-away PostgreSQL (installed if missing).
WITH_DB := tools/pg.sh run

.PHONY: help setup build test fuzz bench peers serve-rust serve-bare serve-python python-dev python-release oha ceiling scale json-codecs fmt lint db

help:
	@echo "make setup       create $(VENV) with maturin, msgspec, asyncpg, psycopg, zlib-ng, pytest, ruff, ..."
	@echo "make test        every test: cargo test, then pytest against real servers and a real"
	@echo "                 PostgreSQL (DATABASE_URL, else a throw-away one, installed if missing)"
	@echo "                 (PYTHON=python3.12 VENV=.venv312: the same on another interpreter)"
	@echo "make bench       every workload on rust, python and the peers: checked, then measured"
	@echo "                 (BENCH_ARGS='--workload query-medium --runs 1' narrows it)"
	@echo "make build       release builds: workload servers and the Python extension"
	@echo "make serve-rust  serve every workload with Rust handlers on port $(PORT_RUST)"
	@echo "make serve-python serve every workload with Python handlers on port $(PORT_PYTHON)"
	@echo "make serve-bare  serve the bare axum ceiling on port $(PORT_RUST)"
	@echo "make db          a throw-away PostgreSQL with the workload tables (prints DATABASE_URL)"
	@echo "make ceiling     rust, bare and python, one worker each on CPU 0, oha on CPU 1:"
	@echo "                 server CPU µs per request (BENCH_ARGS narrows it)"
	@echo "make scale       rust, bare and python at 1, 2, 4, … workers (SCALE_WORKERS=1,2,4,8)"
	@echo "make json-codecs serde_json, sonic-rs and simd-json on the workload records"
	@echo "make fuzz        each cargo fuzz target for FUZZ_SECONDS (60) from its corpus in fuzz/corpus"
	@echo "make fmt | lint  cargo fmt; fmt check and clippy -D warnings"

$(VENV)/.deps: pyproject.toml Makefile
	$(PYTHON) -m venv --clear $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q $(PY_DEPS)
	touch $@

setup: $(VENV)/.deps
	@$(CARGO) --version >/dev/null

# The extension module, installed (editable) into the virtualenv.
python-dev: setup
	VIRTUAL_ENV=$(CURDIR)/$(VENV) $(VENV)/bin/maturin develop -q

python-release: setup
	VIRTUAL_ENV=$(CURDIR)/$(VENV) $(VENV)/bin/maturin develop -q --release

build: python-release
	$(CARGO) build --release -p spikard-rust-workloads -p spikard-python-workloads -p harness

# Peer frameworks, pinned, in their own virtualenv so they never mix with spikard's.
PEERS_VENV := .venv-peers
$(PEERS_VENV)/.deps: peers/requirements.txt Makefile
	$(PYTHON) -m venv --clear $(PEERS_VENV)
	$(PEERS_VENV)/bin/python -m pip install -q --upgrade pip
	$(PEERS_VENV)/bin/python -m pip install -q -r peers/requirements.txt
	touch $@

peers: $(PEERS_VENV)/.deps

BENCH_ARGS ?=
bench: build oha peers
	$(WITH_DB) target/release/harness run --servers rust,python,fastapi,granian,robyn $(BENCH_ARGS)

# cargo test, pytest against real servers and PostgreSQL, and the extension's stub against
# the module.
test: python-dev oha
	SPIKARD_REQUIRE_DATABASE=1 $(WITH_DB) sh -c '$(CARGO) test --workspace && $(PY) -m pytest -q python/tests'
	cd python && ../$(PY) -m mypy.stubtest spikard._spikard --allowlist stubtest-allowlist.txt

# The database routes need DATABASE_URL; without it they answer 503.
serve-rust: build
	$(CARGO) run --release -p spikard-rust-workloads -- --port $(PORT_RUST)

serve-python: build
	target/release/spikard-python-workloads --port $(PORT_PYTHON)

# A throw-away PostgreSQL with the tables, until Ctrl-C.
db:
	$(WITH_DB) sh -c 'echo "DATABASE_URL=$$DATABASE_URL (Ctrl-C stops it)"; while sleep 3600; do :; done' 

serve-bare: build
	$(CARGO) run --release -p spikard-rust-workloads -- --port $(PORT_RUST) --bare

oha:
	@command -v oha >/dev/null || $(CARGO) install oha --locked

ceiling: build oha
	$(WITH_DB) target/release/harness run --servers rust,bare,python --workers 1 \
		--server-cpus 0 --load-cpus 1 $(BENCH_ARGS)

# One worker per CPU up to all but one (the load generator's), doubling.
SCALE_WORKERS ?= $(shell n=$$(nproc); w=1; l=1; while [ $$((w * 2)) -lt $$n ]; do w=$$((w * 2)); l="$$l,$$w"; done; echo $$l)
scale: build oha
	$(WITH_DB) target/release/harness scale --servers rust,bare,python \
		--workers $(SCALE_WORKERS) $(BENCH_ARGS)

json-codecs:
	$(CARGO) run --release -p spikard-rust-workloads --features json-bench --example json_codecs

# Each cargo fuzz target for FUZZ_SECONDS (libFuzzer, no sanitizer: the engine is safe Rust),
# starting from and adding to its committed corpus in fuzz/corpus/; stops at the first failure.
FUZZ_SECONDS ?= 60
FUZZ_TARGETS := query form path multipart json_to_python
fuzz:
	command -v cargo-fuzz >/dev/null 2>&1 || $(CARGO) install cargo-fuzz --locked
	cd fuzz && RUSTC_BOOTSTRAP=1 $(CARGO) fuzz build -s none -O
	cd fuzz && for target in $(FUZZ_TARGETS); do \
		RUSTC_BOOTSTRAP=1 $(CARGO) fuzz run -s none -O $$target -- \
			-max_total_time=$(FUZZ_SECONDS) -print_final_stats=1 > target/$$target.log 2>&1 \
			|| { tail -40 target/$$target.log; echo "fuzz target $$target failed"; exit 1; }; \
		echo "$$target: $$(grep -E '^Done' target/$$target.log)"; \
	done

fmt: setup
	$(CARGO) fmt --all
	$(VENV)/bin/ruff format python peers tools

lint: setup
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --workspace --all-targets -- -D warnings
	$(VENV)/bin/ruff check python peers tools
	$(VENV)/bin/ruff format --check python peers tools

