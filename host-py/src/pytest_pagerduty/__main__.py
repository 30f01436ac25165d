"""`python -m pytest_pagerduty replay [--outbox PATH] [--dry-run]`.

Runs pytest's option and ini handling (so the settings are read exactly as
in a test run), then sends the outbox instead of running tests.

PYTEST_DONT_REWRITE
"""

from __future__ import annotations

import argparse
import sys

import pytest


def main(argv: list[str] | None = None) -> int:
    from . import __version__

    parser = argparse.ArgumentParser(prog="python -m pytest_pagerduty")
    parser.add_argument("--version", action="version", version=f"pytest-pagerduty {__version__}")
    commands = parser.add_subparsers(dest="command", required=True)
    replay = commands.add_parser(
        "replay",
        help="send the incidents kept in the outbox; exit 1 if any remain",
        description="Sends the incidents kept in the outbox with the settings a test run here "
        "would use (options, ini files, environment); exits 1 while any remain.",
        epilog="Any pytest option may follow, such as --pagerduty_api_url=URL or "
        "-c other.ini: the settings are read exactly as in a test run.",
    )
    replay.add_argument("--outbox", help="the outbox file (default: the one pytest uses here)")
    replay.add_argument("--dry-run", action="store_true", help="build the incidents, send nothing")
    replay.add_argument(
        "--drop-dead",
        action="store_true",
        help="forget the dead letters (alerts PagerDuty refused for good) once handled",
    )
    args, pytest_args = parser.parse_known_args(argv)
    command = ["-p", "pytest_pagerduty.plugin", "--pagerduty_replay", *pytest_args]
    if args.outbox:
        command.append(f"--pagerduty_outbox={args.outbox}")
    if args.dry_run:
        command.append("--pagerduty_dry_run")
    if args.drop_dead:
        command.append("--pagerduty_drop_dead")
    return int(pytest.main(command))


if __name__ == "__main__":
    sys.exit(main())
