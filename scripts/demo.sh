#!/usr/bin/env bash
# The main job: install, then run the demo suite (the seed README's examples)
# in dry run. Nothing is sent; the summary shows each incident it would open,
# readably, and names the file that holds the full requests.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/env.sh
bash scripts/install.sh

out=".pytest_cache/demo-incidents.json"
status=0
.venv/bin/pytest examples/demo --pagerduty_dry_run --pagerduty_dry_run_file="$out" || status=$?
# The demo's checks fail on purpose (exit 1); anything else is a real error.
if [ "$status" -ne 1 ]; then
    echo "demo: pytest exited $status, expected 1 (three failing checks)" >&2
    exit 1
fi
