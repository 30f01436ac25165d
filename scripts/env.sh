# Sourced by the scripts: one cargo target folder outside the clone, so a
# second clone or a re-run on this machine reuses the builds (wasmtime takes
# ~10 minutes cold), and the Rust host embeds the component install.sh built
# rather than building it a second time.
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/pytest-pagerduty/cargo-target}"
export PAGERDUTY_COMPONENT_WASM="${PAGERDUTY_COMPONENT_WASM:-$CARGO_TARGET_DIR/wasm32-wasip2/release/pagerduty_guest.wasm}"
