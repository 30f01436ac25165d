#!/usr/bin/env bash
# The conformance vectors (tests/vectors) in Node: the component transpiled by
# jco, so a JS host sees the same answers as the Rust and Python ones.
# PAGERDUTY_JS_OPTIONAL=1 turns a machine without npm into a skip, not a failure.
# Extra arguments go to the runner (a vectors directory other than tests/vectors).
set -euo pipefail
cd "$(dirname "$0")/.."

if ! command -v npm >/dev/null || ! command -v node >/dev/null; then
    if [ "${PAGERDUTY_JS_OPTIONAL:-}" = 1 ]; then
        echo "js-vectors: skipped, node/npm not installed (PAGERDUTY_JS_OPTIONAL=1)"
        exit 0
    fi
    echo "js-vectors: node and npm are needed (set PAGERDUTY_JS_OPTIONAL=1 to skip)" >&2
    exit 1
fi

# Exactly the locked tools; a lock mismatch fails here rather than drifting.
npm ci --prefix tests/js --no-audit --no-fund --loglevel=error >/dev/null

# The target dir honours CARGO_TARGET_DIR and .cargo/config.
target=$(cargo metadata --format-version 1 --no-deps |
    node -e 'let s="";process.stdin.on("data",d=>s+=d).on("end",()=>console.log(JSON.parse(s).target_directory))')
wasm="$target/wasm32-wasip2/release/pagerduty_guest.wasm"
# Always: a no-op when fresh (~0.2 s), and a stale component would pass or
# fail vectors for code that is no longer there.
cargo build --quiet --release --locked --target wasm32-wasip2 -p pagerduty-guest

# Default ESM output with top-level await (Node 20 has it); WASI imports map
# to @bytecodealliance/preview2-shim. A fresh dir: no stale files survive.
rm -rf tests/js/build
npx --prefix tests/js --no-install --loglevel=error jco transpile "$wasm" -o tests/js/build --name pagerduty --quiet

node tests/js/run-vectors.mjs "$@"
