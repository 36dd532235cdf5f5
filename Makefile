# The two commands of the README. Each installs what is missing first (scripts/setup.sh).
.PHONY: run test check e2e setup

export PATH := $(HOME)/.cargo/bin:$(PATH)

## make run: build in release mode and serve the dashboard at http://127.0.0.1:3000
run:
	scripts/setup.sh run
	cargo leptos serve --release

## make test: formatting, clippy for both features, Rust tests, then Playwright in Chromium
test:
	scripts/setup.sh test
	$(MAKE) check
	cargo test --features ssr
	$(MAKE) e2e

check:
	cargo fmt --check
	cargo clippy --features ssr --all-targets -- -D warnings
	cargo clippy --features hydrate --lib --target wasm32-unknown-unknown -- -D warnings

# The end-to-end server runs in demo mode with an empty data directory, so each run syncs anew,
# and a slow simulated network (600 ms a page), so a sync's progress can be watched.
e2e:
	rm -rf target/e2e-data && mkdir -p end2end/screenshots
	DATA_DIR=target/e2e-data DEMO_LATENCY_MS=600 cargo leptos end-to-end --release

setup:
	scripts/setup.sh test
