#!/usr/bin/env bash
# Every test of the project, in the order that fails fastest:
#   formatting and lints, Rust unit tests (the storage conformance suite among them, on
#   SQLite, PostgreSQL and MariaDB), then the end-to-end suite once per backend: it drives the
#   release binary with the real Python SDK, TypeScript SDK, Rust SDK example and `temporal`
#   CLI over gRPC on loopback. The README's own commands run too (tests/readme).
# Installs what it needs itself (the Python venv: scripts/e2e-setup.sh). Extra arguments go
# to pytest, e.g. scripts/test.sh -k timer
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

step() { printf '\n== %s\n' "$*" >&2; }

step "cargo fmt --check"
cargo fmt --all --check

step "cargo clippy (warnings are errors)"
cargo clippy --workspace --all-targets --quiet -- -D warnings

step "Rust unit tests"
if cargo nextest --version >/dev/null 2>&1; then
    cargo nextest run --workspace --no-fail-fast
else
    cargo test --workspace --quiet
fi

# The binary is built with the selection the README's start command makes (`cargo run --bin
# chronicle`: the whole workspace's features), so that command finds it built; the example is
# built on its own.
step "release build: chronicle and the Rust SDK example"
cargo build --release --quiet --bin chronicle
cargo build --release --quiet -p chronicle-example-hello

step "the README's commands, as written"
"$ROOT/scripts/e2e-setup.sh"
"$ROOT/.venv/bin/python" -m pytest tests/readme -q

# CHRONICLE_TEST_POSTGRES / CHRONICLE_TEST_MYSQL name other database servers (tests/e2e/backends.py).
for backend in sqlite postgres mysql; do
    step "end-to-end suite on $backend"
    CHRONICLE_TEST_BACKEND=$backend "$ROOT/scripts/e2e.sh" "$@"
done
