"""The plugin's compatibility matrix: every Python this machine kind has
against pytest 7.4, 8 and the newest 9, each cell installing the one wheel
built first (no Rust needed to install it) and running the seed README's
examples in dry run, with and without xdist.

    nox                      # the wheel, then every cell
    nox -s "smoke-3.12(pytest='8')"

The suite's full tests run on one interpreter (scripts/test.sh)."""

from __future__ import annotations

import json
import os
from pathlib import Path

import nox

nox.options.sessions = ["wheel", "smoke"]
nox.options.error_on_missing_interpreters = True

ROOT = Path(__file__).parent
DIST = ROOT / ".nox" / "dist"
PYTHONS = ["3.9", "3.10", "3.11", "3.12", "3.13"]
PYTESTS = {"7.4": "pytest>=7.4,<7.5", "8": "pytest>=8,<9", "9": "pytest>=9,<10"}
# pytest 9 needs Python 3.10 or later: pip would never install it on 3.9.
EXCLUDED = {("3.9", "9")}


@nox.session(python=False)
def wheel(session: nox.Session) -> None:
    """Builds the wheel once (this needs cargo); every cell installs it."""
    for old in DIST.glob("*.whl"):
        old.unlink()
    session.run(
        "python3", "-m", "pip", "wheel", "--no-deps", "--quiet", "-w", str(DIST), "./host-py",
        external=True,
    )


def _wheel(session: nox.Session) -> str:
    wheels = sorted(DIST.glob("pytest_pagerduty-*.whl"))
    if not wheels:
        session.error("no wheel in .nox/dist: run the `wheel` session first")
    return str(wheels[-1])


@nox.session(python=PYTHONS)
@nox.parametrize("pytest", list(PYTESTS))
def smoke(session: nox.Session, pytest: str) -> None:
    """The seed README's examples, in dry run, without and with `-n 2`."""
    if (session.python, pytest) in EXCLUDED:
        session.skip(f"pytest {pytest} does not support Python {session.python}")
    session.install(_wheel(session), PYTESTS[pytest], "pytest-xdist")
    env = {
        # Nothing of the machine's PagerDuty settings; a private cache.
        **{k: "" for k in os.environ if k.startswith("PAGERDUTY_")},
        "XDG_CACHE_HOME": str(Path(session.create_tmp()) / "cache"),
    }
    out = Path(session.create_tmp()) / "dry-run.json"
    for extra in ([], ["-n", "2"]):
        # The three failing checks fail on purpose: exit 1 is success here.
        session.run(
            "python", "-m", "pytest", "examples/demo", "-p", "no:cacheprovider",
            "--pagerduty_dry_run", f"--pagerduty_dry_run_file={out}", "-W", "error", *extra,
            env=env,
            success_codes=[1],
        )
        requests = json.loads(out.read_text())
        if len(requests) != 3:
            session.error(f"expected the dry run to build 3 incidents, got {len(requests)}")
        out.unlink()
