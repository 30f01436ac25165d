#!/usr/bin/env bash
# Installs what the project needs on a fresh machine: the Rust target for the
# component, and a virtual environment (.venv) with the plugin and test tools.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/env.sh

if ! rustup target list --installed | grep -qx wasm32-wasip2; then
    rustup target add wasm32-wasip2
fi
[ -x .venv/bin/python ] || python3 -m venv .venv
pip=(.venv/bin/python -m pip install --quiet --disable-pip-version-check)
"${pip[@]}" -r tests/requirements.txt "wasmtime>=50,<51"
# A regular (not editable) install, rebuilt every time: the build hook
# compiles the component and the wheel carries it, as a user's install would.
"${pip[@]}" --force-reinstall --no-deps ./host-py
