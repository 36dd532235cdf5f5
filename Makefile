# The two commands of the README. Each installs what is missing first (scripts/setup.sh).
.PHONY: run test check e2e setup

export PATH := $(HOME)/.cargo/bin:$(PATH)

## make run: build in release mode and serve the dashboard at http://127.0.0.1:3000
run:
	scripts/setup.sh run
	cargo leptos serve --release

## make test: formatting, clippy for both features, Rust tests, the quick benchmark (its
## assertions: no 429, one request per page, flat export memory), then Playwright in Chromium
test:
	scripts/setup.sh test
	$(MAKE) check
	cargo test --features ssr
	cargo bench --features ssr --bench figures -- quick
	$(MAKE) e2e

check:
	cargo fmt --check
	cargo clippy --features ssr --all-targets -- -D warnings
	cargo clippy --features hydrate --lib --target wasm32-unknown-unknown -- -D warnings

# Release build, then Playwright in Chromium; fails unless every listed test ran and passed
# (the server and its settings are in end2end/playwright.config.ts).
e2e:
	scripts/e2e.sh

setup:
	scripts/setup.sh test
