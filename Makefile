# Spikard: the targets a newcomer looks for.
CARGO ?= cargo
PORT_RUST ?= 8100

.PHONY: help setup build test serve-rust serve-bare oha ceiling fmt lint

help:
	@echo "make test        run every test (Rust unit and integration tests over real sockets)"
	@echo "make build       release build of the workload servers"
	@echo "make serve-rust  serve every workload with Rust handlers on port $(PORT_RUST)"
	@echo "make serve-bare  serve the bare axum ceiling on port $(PORT_RUST)"
	@echo "make ceiling     oha: engine against the bare axum ceiling (installs oha if missing)"
	@echo "make fmt | lint  cargo fmt; fmt check and clippy -D warnings"

setup:
	@$(CARGO) --version >/dev/null

build: setup
	$(CARGO) build --release -p spikard-rust-workloads

test: setup
	$(CARGO) test --workspace

serve-rust: build
	$(CARGO) run --release -p spikard-rust-workloads -- --port $(PORT_RUST)

serve-bare: build
	$(CARGO) run --release -p spikard-rust-workloads -- --port $(PORT_RUST) --bare

oha:
	@command -v oha >/dev/null || $(CARGO) install oha --locked

ceiling: build oha
	tools/ceiling.sh

fmt:
	$(CARGO) fmt --all

lint:
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --workspace --all-targets -- -D warnings
