#!/usr/bin/env bash
# The whole test suite: install, lint, Rust unit tests, then the pytest suite
# against a loopback PagerDuty.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install.sh

cargo fmt --all --check
cargo clippy --locked -p pagerduty-guest --all-targets -- -D warnings
cargo clippy --locked -p pagerduty-guest --target wasm32-wasip2 -- -D warnings
cargo clippy --locked -p pagerduty-host --all-targets -- -D warnings
cargo test --locked -p pagerduty-guest
# The Rust host runs the component the install step built (target/wasm32-wasip2).
cargo test --locked -p pagerduty-host

.venv/bin/ruff check host-py tests examples bench
.venv/bin/ruff format --check host-py tests examples bench
.venv/bin/mypy --config-file host-py/pyproject.toml host-py/src tests

# The benchmark once, small and quick, only to prove it runs (figures: BENCHMARKS.md).
.venv/bin/python bench/run.py --quick

.venv/bin/pytest tests -n 2 -W error
