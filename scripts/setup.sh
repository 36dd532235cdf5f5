#!/usr/bin/env bash
# Installs whatever this project needs to build (`setup.sh run`) or to build and test
# (`setup.sh test`), from crates.io, npm, Debian apt and rustup only. Idempotent: what is
# already installed at the right version is skipped. A fresh machine spends ~25 minutes
# here the first time (cargo-leptos and wasm-bindgen-cli compile from source on 2 cores).
set -euo pipefail

MODE="${1:-run}"
CARGO_LEPTOS_VERSION="0.3.10"
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
cd "$ROOT"
export PATH="$HOME/.cargo/bin:$PATH"
export PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1

say() { printf '\033[1m[setup]\033[0m %s\n' "$*"; }
die() { printf '\033[1;31m[setup] error:\033[0m %s\n' "$*" >&2; exit 1; }

as_root() {
  if [ "$(id -u)" = 0 ]; then "$@"; elif command -v sudo >/dev/null; then sudo "$@"; else
    die "need root to run: $* (install it by hand, then run this again)"; fi
}

APT_UPDATED=0
apt_install() {
  if [ "$APT_UPDATED" = 0 ]; then
    say "apt-get update"
    as_root apt-get update -qq
    APT_UPDATED=1
  fi
  say "apt-get install $*"
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$@"
}

# --- Rust toolchain pieces -------------------------------------------------------------
command -v cargo >/dev/null || die "cargo not found: install Rust with rustup first"
if command -v rustup >/dev/null; then
  if ! rustup target list --installed | grep -qx wasm32-unknown-unknown; then
    say "rustup target add wasm32-unknown-unknown"
    rustup target add wasm32-unknown-unknown
  fi
  if [ "$MODE" = test ]; then
    for c in rustfmt clippy; do
      rustup component list --installed | grep -q "^$c" || { say "rustup component add $c"; rustup component add "$c"; }
    done
  fi
fi

# cargo-leptos and wasm-bindgen-cli are build tools: compiled without LTO, in more codegen
# units and at opt-level 1 they build in much less time, and run as well for what they do
# (start processes, copy files). See BENCHMARKS.md, "Build and test times".
tool_install() {
  CARGO_PROFILE_RELEASE_LTO=false CARGO_PROFILE_RELEASE_CODEGEN_UNITS=16 \
    CARGO_PROFILE_RELEASE_OPT_LEVEL=1 CARGO_PROFILE_RELEASE_DEBUG=false \
    cargo install "$@"
}

# --- cargo-leptos (pinned) -------------------------------------------------------------
have_leptos="$(cargo leptos --version 2>/dev/null | awk '{print $2}' || true)"
if [ "$have_leptos" != "$CARGO_LEPTOS_VERSION" ]; then
  say "installing cargo-leptos $CARGO_LEPTOS_VERSION (found '${have_leptos:-none}'): ~19 minutes on 2 cores, once"
  tool_install cargo-leptos --version "$CARGO_LEPTOS_VERSION" --locked --features no_downloads
fi

# --- wasm-bindgen CLI at exactly the version in Cargo.lock ----------------------------
[ -f Cargo.lock ] || cargo generate-lockfile
want_wb="$(awk '/^name = "wasm-bindgen"$/{getline; gsub(/"/,"",$3); print $3; exit}' Cargo.lock)"
[ -n "$want_wb" ] || die "wasm-bindgen not found in Cargo.lock"
have_wb="$(wasm-bindgen --version 2>/dev/null | awk '{print $2}' || true)"
if [ "$have_wb" != "$want_wb" ]; then
  say "installing wasm-bindgen-cli $want_wb to match Cargo.lock (found '${have_wb:-none}'): ~4 minutes, once"
  tool_install wasm-bindgen-cli --version "$want_wb" --locked --force
fi
have_wb="$(wasm-bindgen --version 2>/dev/null | awk '{print $2}' || true)"
[ "$have_wb" = "$want_wb" ] || die "wasm-bindgen CLI is '$have_wb' but Cargo.lock has '$want_wb': run 'cargo install wasm-bindgen-cli --version $want_wb --locked --force'"

# --- Node.js, then the npm tools (tailwindcss, wasm-opt; Playwright for tests) ---------
if ! command -v npm >/dev/null; then apt_install nodejs npm; fi
npm_ci() { # npm ci in $1 when its lock file changed since the last install
  local dir="$1" stamp="$1/node_modules/.setup-stamp" sum
  sum="$(sha256sum "$dir/package-lock.json" | cut -d' ' -f1)"
  if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$sum" ]; then
    say "npm ci in $dir"
    (cd "$dir" && npm ci --no-audit --no-fund --loglevel=error)
    echo "$sum" > "$stamp"
  fi
}
npm_ci "$ROOT"

if [ "$MODE" = test ]; then
  npm_ci "$ROOT/end2end"
  # The signature tests check our signatures against openssl's.
  if ! command -v openssl >/dev/null; then apt_install openssl; fi
  # Debian's Chromium: Playwright drives it (never a downloaded browser).
  if [ ! -x /usr/bin/chromium ]; then apt_install chromium; fi
  # PostgreSQL's server programs: the database tests start their own server on a free port
  # (the package's own cluster is not used).
  if ! ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1; then apt_install postgresql; fi
  # Redis: the replica tests start their own redis-server on a free port.
  if ! command -v redis-server >/dev/null; then apt_install redis-server; fi
  # A CJK font, so screenshots taken in tests show the Chinese names.
  if ! fc-list 2>/dev/null | grep -qi "wenquanyi\|noto sans cjk"; then apt_install fonts-wqy-microhei; fi
fi
say "tools ready ($MODE)"
