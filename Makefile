# Spikard: the targets a newcomer looks for.
CARGO ?= cargo
PYTHON ?= python3.11
VENV ?= .venv
PY := $(VENV)/bin/python
PORT_RUST ?= 8100
PORT_PYTHON ?= 8200
PY_DEPS := "maturin>=1.5,<2" "msgspec>=0.18" "pytest>=8" "websockets>=12" "ruff>=0.6" "mypy>=1.10"

.PHONY: help setup build test bench peers serve-rust serve-bare serve-python python-dev python-release oha ceiling compare fmt lint

help:
	@echo "make setup       create $(VENV) with maturin, msgspec, pytest, websockets, ruff"
	@echo "make test        every test: cargo test, then pytest against real servers"
	@echo "make bench       every workload on rust, python and the peers: checked, then measured"
	@echo "                 (BENCH_ARGS='--workload query-medium --runs 1' narrows it)"
	@echo "make build       release builds: workload servers and the Python extension"
	@echo "make serve-rust  serve every workload with Rust handlers on port $(PORT_RUST)"
	@echo "make serve-python serve every workload with Python handlers on port $(PORT_PYTHON)"
	@echo "make serve-bare  serve the bare axum ceiling on port $(PORT_RUST)"
	@echo "make ceiling     oha: engine against the bare axum ceiling (installs oha if missing)"
	@echo "make compare     oha: Rust handlers against Python handlers"
	@echo "make fmt | lint  cargo fmt; fmt check and clippy -D warnings"

$(VENV)/.deps: pyproject.toml
	$(PYTHON) -m venv $(VENV)
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
$(PEERS_VENV)/.deps: peers/requirements.txt
	$(PYTHON) -m venv $(PEERS_VENV)
	$(PEERS_VENV)/bin/python -m pip install -q --upgrade pip
	$(PEERS_VENV)/bin/python -m pip install -q -r peers/requirements.txt
	touch $@

peers: $(PEERS_VENV)/.deps

BENCH_ARGS ?=
bench: build oha peers
	target/release/harness run --servers rust,python,fastapi,granian,robyn $(BENCH_ARGS)

# cargo test, pytest against real servers, and the extension's stub against the module.
test: python-dev oha
	$(CARGO) test --workspace
	$(PY) -m pytest -q python/tests
	cd python && ../$(PY) -m mypy.stubtest spikard._spikard --allowlist stubtest-allowlist.txt

serve-rust: build
	$(CARGO) run --release -p spikard-rust-workloads -- --port $(PORT_RUST)

serve-python: build
	target/release/spikard-python-workloads --port $(PORT_PYTHON)

serve-bare: build
	$(CARGO) run --release -p spikard-rust-workloads -- --port $(PORT_RUST) --bare

oha:
	@command -v oha >/dev/null || $(CARGO) install oha --locked

ceiling: build oha
	SERVERS="rust bare" tools/compare.sh

compare: build oha
	SERVERS="rust python" tools/compare.sh json-small json-large path-deep query-medium urlencoded-complex multipart-medium

fmt: setup
	$(CARGO) fmt --all
	$(VENV)/bin/ruff format python peers

lint: setup
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --workspace --all-targets -- -D warnings
	$(VENV)/bin/ruff check python peers
	$(VENV)/bin/ruff format --check python peers

