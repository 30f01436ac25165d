"""Options, ini keys and environment variables, resolved once per run.

Precedence: command-line option, then ini file, then environment variable,
then the default. Each setting remembers where it came from, so an error can
name the place to fix.

PYTEST_DONT_REWRITE
"""

from __future__ import annotations

import argparse
import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import pytest

if TYPE_CHECKING:  # costly to import (many dataclasses): only once a test pages
    from . import wit

DEFAULT_TIMEOUT_SECONDS = 10.0
DEFAULT_FLUSH_TIMEOUT_SECONDS = 30.0
DEFAULT_MEMORY_LIMIT_MIB = 64
# The least memory the component is given. Measured (wasmtime 50, the
# component of 2026-11): it starts in 2 MiB; building and sending the
# incident of a failure with a 512 KiB traceback needs 4 MiB (1 MiB needs 6).
# Below this a run would check markers and then trap on every failure, so
# such a value is refused when the settings are read.
# tests/test_memory_floor.py holds the component to it.
MIN_MEMORY_LIMIT_MIB = 4

Kind = Literal["string", "bool", "seconds", "count", "path", "choice"]


@dataclass(frozen=True)
class Setting:
    """One setting: its ini key, and the CLI option and variable derived from it."""

    key: str
    kind: Kind
    help: str
    default: str | None = None
    secret: bool = False
    choices: tuple[str, ...] = ()

    @property
    def option(self) -> str:
        return f"--{self.key}"

    @property
    def dashed_option(self) -> str:
        return "--" + self.key.replace("_", "-")

    @property
    def env(self) -> str:
        return self.key.upper()


SETTINGS: tuple[Setting, ...] = (
    Setting("pagerduty_api_key", "string", "PagerDuty REST API key.", secret=True),
    Setting(
        "pagerduty_oauth_token",
        "string",
        "PagerDuty OAuth token (used when no API key is set).",
        secret=True,
    ),
    Setting(
        "pagerduty_default_from",
        "string",
        "Email of the PagerDuty user incidents are created as (the From header).",
    ),
    Setting(
        "pagerduty_api_url",
        "string",
        "PagerDuty REST API base URL (https://api.eu.pagerduty.com for EU accounts).",
    ),
    Setting(
        "pagerduty_routing_key",
        "string",
        "Events API v2 integration key: with one, failures go to Events API v2.",
        secret=True,
    ),
    Setting(
        "pagerduty_fallback_routing_key",
        "string",
        "Events API v2 integration key that receives one alert when a marker's page is "
        "refused permanently.",
        secret=True,
    ),
    Setting(
        "pagerduty_events_url",
        "string",
        "Events API base URL (https://events.eu.pagerduty.com for EU accounts).",
    ),
    Setting(
        "pagerduty_auto_resolve",
        "bool",
        "Resolve a test's alert when it passes again.",
        default="true",
    ),
    Setting(
        "pagerduty_resolve",
        "choice",
        "Which passing tests resolve: 'opened' (alerts this machine remembers opening) or "
        "'always' (every pass; for CI machines that keep no cache).",
        default="opened",
        choices=("opened", "always"),
    ),
    Setting(
        "pagerduty_flaky",
        "choice",
        "A test that failed and passed on rerun: 'ignore', or 'info' to send an info alert.",
        default="ignore",
        choices=("ignore", "info"),
    ),
    Setting(
        "pagerduty_max_incidents",
        "count",
        "Incidents per run; past it, the remaining failures share one aggregate incident.",
        default="10",
    ),
    Setting(
        "pagerduty_page_after_failures",
        "count",
        "Runs in a row a marked test must fail in on this machine before it pages, unless its "
        "marker says (page_after_failures=N); 1 pages at the first failure.",
        default="1",
    ),
    Setting(
        "pagerduty_dry_run",
        "bool",
        "Build incidents and write them to a file instead of sending them.",
        default="false",
    ),
    Setting(
        "pagerduty_dry_run_file",
        "path",
        "Where a dry run writes the requests.",
    ),
    Setting(
        "pagerduty_page_on_error",
        "bool",
        "Also page when a marked test errors in setup or teardown (a broken fixture).",
        default="false",
    ),
    Setting(
        "pagerduty_timeout",
        "seconds",
        "Seconds to wait for PagerDuty to connect and to answer.",
        default=str(DEFAULT_TIMEOUT_SECONDS),
    ),
    Setting(
        "pagerduty_flush_timeout",
        "seconds",
        "Seconds to wait at the end of the run for incidents still being sent.",
        default=str(DEFAULT_FLUSH_TIMEOUT_SECONDS),
    ),
    Setting(
        "pagerduty_max_attempts",
        "count",
        "Attempts per incident when PagerDuty is rate limiting, failing or unreachable.",
    ),
    Setting(
        "pagerduty_memory_limit",
        "count",
        "Most memory, in MiB, the sandboxed component may use; past it the component stops "
        f"and the incident is kept in the outbox. At least {MIN_MEMORY_LIMIT_MIB}: the component "
        "needs that much to build a large failure's incident.",
        default=str(DEFAULT_MEMORY_LIMIT_MIB),
    ),
    Setting(
        "pagerduty_outbox",
        "path",
        "File keeping incidents PagerDuty did not confirm, for `python -m pytest_pagerduty "
        "replay`.",
    ),
    Setting(
        "pagerduty_auto_replay",
        "bool",
        "Send, at the start of a run, what an earlier run here kept in the outbox (killed, or "
        "PagerDuty unreachable); false leaves it for `python -m pytest_pagerduty replay`.",
        default="true",
    ),
)

# What --help says of defaults the plugin does not fill in itself.
DEFAULTS_SHOWN = {
    "pagerduty_api_url": "PagerDuty's, https://api.pagerduty.com",
    "pagerduty_events_url": "PagerDuty's, https://events.pagerduty.com",
    "pagerduty_dry_run": "false; a dry run happens by itself when no API key, OAuth token or "
    "routing key is set",
    "pagerduty_dry_run_file": "dry-run.json in pytest's cache directory",
    "pagerduty_outbox": "outbox.jsonl in pytest's cache directory",
    "pagerduty_max_attempts": "the component's, 4",
}

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off", ""}


# The ini types pytest knows for our kinds (`int` and `float` since pytest 8.4).
INI_TYPES: dict[str, Any] = {"bool": "bool", "count": "int", "seconds": "float"}


def _add_ini(parser: pytest.Parser, key: str, help_text: str, kind: Any) -> None:
    """An ini key of its real type where this pytest has it, else a string
    (pytest 7.4 and 8.0 to 8.3 know no `int` or `float`); unset means None."""
    try:
        parser.addini(key, help=help_text, type=kind, default=None)
    except (ValueError, TypeError, AssertionError):
        parser.addini(key, help=help_text, type="string", default=None)


def add_options(parser: pytest.Parser) -> None:
    """Declares every setting as a CLI option (two spellings) and an ini key."""
    group = parser.getgroup("pagerduty", "PagerDuty incidents for failing marked tests")
    for setting in SETTINGS:
        shown = DEFAULTS_SHOWN.get(setting.key, setting.default or "none")
        help_text = f"{setting.help} Default: {shown}. Environment: {setting.env}."
        if setting.kind == "bool":
            # A bare flag turns it on; `=false` overrides an ini file.
            kind: dict[str, Any] = {"nargs": "?", "const": "true", "metavar": "BOOL"}
        else:
            metavar = "|".join(setting.choices) if setting.choices else setting.kind.upper()
            kind = {"metavar": metavar}
        group.addoption(setting.option, dest=setting.key, default=None, help=help_text, **kind)
        # The dashed spelling keeps working; --help shows one per option.
        group.addoption(
            setting.dashed_option, dest=setting.key, default=None, help=argparse.SUPPRESS, **kind
        )
        # Defaults are applied in `resolve`, so an unset ini key falls through
        # to the environment.
        _add_ini(parser, setting.key, help_text, INI_TYPES.get(setting.kind, "string"))
    group.addoption(
        "--no-pagerduty",
        dest="pagerduty_disabled",
        action="store_true",
        help="Switch the plugin off for this run: the fixture and marker stay registered, and "
        "nothing is checked, built, loaded or sent (ini pagerduty_enabled = false, environment "
        "PAGERDUTY_ENABLED=false).",
    )
    parser.addini(
        "pagerduty_enabled",
        help="false switches the plugin off, as --no-pagerduty does. Environment: "
        "PAGERDUTY_ENABLED.",
        type="string",
        default="",
    )
    group.addoption(
        "--pagerduty_allow_host",
        "--pagerduty-allow-host",
        dest="pagerduty_allow_host",
        action="append",
        default=[],
        metavar="HOST[:PORT]|URL",
        help="Also allow requests to this host (repeatable; PagerDuty's own are always allowed, "
        "and so is an API URL given on the command line or in the environment). Never from an "
        "ini file: a changed pytest.ini must not send the credentials elsewhere. Environment: "
        "PAGERDUTY_ALLOW_HOSTS (comma-separated).",
    )
    group.addoption(
        "--pagerduty_replay",
        "--pagerduty-replay",
        dest="pagerduty_replay",
        action="store_true",
        help="Send the incidents kept in the outbox, then exit (what "
        "`python -m pytest_pagerduty replay` runs).",
    )
    group.addoption(
        "--pagerduty_drop_dead",
        "--pagerduty-drop-dead",
        dest="pagerduty_drop_dead",
        action="store_true",
        help="With --pagerduty_replay: forget the dead letters (alerts PagerDuty refused for "
        "good) once their cause is handled.",
    )


@dataclass(frozen=True)
class Settings:
    """Every setting of one run. Secrets are kept out of repr()."""

    # None: PagerDuty's own, which the component knows.
    api_url: str | None
    api_key: str | None = field(repr=False)
    oauth_token: str | None = field(repr=False)
    default_from: str | None
    routing_key: str | None = field(repr=False)
    fallback_routing_key: str | None = field(repr=False)
    events_url: str | None
    auto_resolve: bool
    resolve_always: bool
    flaky_info: bool
    max_incidents: int
    # Runs in a row a test fails in before it pages, unless its marker says.
    page_after_failures: int
    dry_run_file: Path | None
    page_on_error: bool
    timeout: float
    flush_timeout: float
    # None: the component's default.
    max_attempts: int | None
    memory_limit_mib: int
    outbox: Path | None
    auto_replay: bool
    # Where requests may go (`destinations`): host:port, PagerDuty's included.
    allowed_hosts: frozenset[str]
    # Whether the user asked for a dry run, rather than it following from the above.
    dry_run_requested: bool
    # Where each setting came from, such as "--pagerduty_api_url".
    sources: dict[str, str] = field(repr=False, compare=False)

    @property
    def secrets(self) -> tuple[str, ...]:
        keys = (self.api_key, self.oauth_token, self.routing_key, self.fallback_routing_key)
        return tuple(s for s in keys if s)

    def source(self, setting: str) -> str:
        """Where a setting (a component's neutral key, or our own) came from."""
        key = SPELLING.get(setting, setting)
        return self.sources.get(key, f"ini {key}")


_KIND_WORDS = {
    "bool": "true or false",
    "count": "a whole number",
    "seconds": "a number of seconds",
}


def _raw(config: pytest.Config, setting: Setting) -> tuple[str | None, str]:
    option = config.getoption(setting.key, default=None)
    if option is not None:
        return str(option), setting.option
    source = f"ini {setting.key}"
    try:
        ini = config.getini(setting.key)
    except (ValueError, pytest.UsageError) as err:  # pytest's own check of an int, float, bool
        raise pytest.UsageError(
            f"pagerduty: {source} must be {_KIND_WORDS.get(setting.kind, setting.kind)}: {err}"
        ) from err
    # Unset reads as None, or on older pytest as "" or [].
    if ini is not None and ini != "" and ini != []:
        if isinstance(ini, bool):
            return ("true" if ini else "false"), source
        return str(ini).strip(), source
    env = os.environ.get(setting.env)
    if env is not None and env != "":
        return env, f"environment {setting.env}"
    return setting.default, "default"


def enabled(config: pytest.Config) -> bool:
    """Whether the plugin works this run: `--no-pagerduty`, then the ini
    key `pagerduty_enabled`, then `PAGERDUTY_ENABLED`; on by default."""
    if config.getoption("pagerduty_disabled", default=False):
        return False
    ini = str(config.getini("pagerduty_enabled")).strip()
    if ini:
        return _parse_bool(ini, "ini pagerduty_enabled")
    env = os.environ.get("PAGERDUTY_ENABLED", "").strip()
    if env:
        return _parse_bool(env, "environment PAGERDUTY_ENABLED")
    return True


def _parse_bool(value: str, source: str) -> bool:
    lowered = value.strip().lower()
    if lowered in _TRUE:
        return True
    if lowered in _FALSE:
        return False
    raise pytest.UsageError(f"pagerduty: {source} must be true or false, got {value!r}")


def _parse_seconds(value: str, source: str) -> float:
    try:
        seconds = float(value)
    except ValueError as err:
        raise pytest.UsageError(
            f"pagerduty: {source} must be a number of seconds, got {value!r}"
        ) from err
    if not (seconds > 0 and math.isfinite(seconds)):
        raise pytest.UsageError(
            f"pagerduty: {source} must be a number of seconds above 0, got {value!r}"
        )
    return seconds


def _parse_count(value: str, source: str) -> int:
    try:
        count = int(value)
    except ValueError as err:
        raise pytest.UsageError(
            f"pagerduty: {source} must be a whole number, got {value!r}"
        ) from err
    if count < 1:
        raise pytest.UsageError(f"pagerduty: {source} must be at least 1, got {value!r}")
    return count


def _memory_limit(mib: int, sources: dict[str, str]) -> int:
    if mib < MIN_MEMORY_LIMIT_MIB:
        source = sources["pagerduty_memory_limit"]
        raise pytest.UsageError(
            f"pagerduty: {source} is {mib} MiB, less than the component needs "
            f"({MIN_MEMORY_LIMIT_MIB} MiB to build a large failure's incident): every incident "
            f"would fail. Fix: set it to at least {MIN_MEMORY_LIMIT_MIB}, or leave it unset "
            f"(default {DEFAULT_MEMORY_LIMIT_MIB})."
        )
    return mib


def resolve(config: pytest.Config) -> Settings:
    """Reads every setting once; bad booleans and numbers stop the run here."""
    values: dict[str, str | None] = {}
    sources: dict[str, str] = {}
    for setting in SETTINGS:
        value, source = _raw(config, setting)
        values[setting.key] = value.strip() if value is not None else None
        sources[setting.key] = source

    def text(key: str) -> str | None:
        return values[key] or None

    def flag(key: str) -> bool:
        return _parse_bool(values[key] or "", sources[key])

    def seconds(key: str) -> float:
        return _parse_seconds(values[key] or "", sources[key])

    def count(key: str) -> int:
        return _parse_count(values[key] or "", sources[key])

    def choice(key: str) -> str:
        setting = next(s for s in SETTINGS if s.key == key)
        value = (values[key] or "").lower()
        if value not in setting.choices:
            raise pytest.UsageError(
                f"pagerduty: {sources[key]} must be one of {', '.join(setting.choices)}, "
                f"got {values[key]!r}"
            )
        return value

    api_key, oauth_token = text("pagerduty_api_key"), text("pagerduty_oauth_token")
    routing_key = text("pagerduty_routing_key")
    dry_run_file = text("pagerduty_dry_run_file")
    outbox = text("pagerduty_outbox")
    return Settings(
        api_url=text("pagerduty_api_url"),
        api_key=api_key,
        oauth_token=oauth_token,
        default_from=text("pagerduty_default_from"),
        routing_key=routing_key,
        fallback_routing_key=text("pagerduty_fallback_routing_key"),
        events_url=text("pagerduty_events_url"),
        auto_resolve=flag("pagerduty_auto_resolve"),
        resolve_always=choice("pagerduty_resolve") == "always",
        flaky_info=choice("pagerduty_flaky") == "info",
        max_incidents=count("pagerduty_max_incidents"),
        page_after_failures=count("pagerduty_page_after_failures"),
        dry_run_requested=flag("pagerduty_dry_run"),
        dry_run_file=Path(dry_run_file) if dry_run_file else None,
        page_on_error=flag("pagerduty_page_on_error"),
        timeout=seconds("pagerduty_timeout"),
        flush_timeout=seconds("pagerduty_flush_timeout"),
        max_attempts=count("pagerduty_max_attempts") if values["pagerduty_max_attempts"] else None,
        memory_limit_mib=_memory_limit(count("pagerduty_memory_limit"), sources),
        outbox=Path(outbox) if outbox else None,
        auto_replay=flag("pagerduty_auto_replay"),
        allowed_hosts=_allowed_hosts(config, values, sources),
        sources=sources,
    )


def _allowed_hosts(
    config: pytest.Config, values: dict[str, str | None], sources: dict[str, str]
) -> frozenset[str]:
    """The allow-list: PagerDuty's hosts, those the command line and the
    environment name, and the API URLs they give (an ini file's never)."""
    from .destinations import allowed

    entries = list(config.getoption("pagerduty_allow_host", default=None) or [])
    entries += os.environ.get("PAGERDUTY_ALLOW_HOSTS", "").replace(",", " ").split()
    for key in ("pagerduty_api_url", "pagerduty_events_url"):
        if values[key] and not sources[key].startswith(("ini ", "default")):
            entries.append(values[key] or "")
    return allowed(entries)


# The component names settings neutrally (`wit.SettingKey`); this is how
# this host spells each one.
SPELLING: dict[str, str] = {
    "api-url": "pagerduty_api_url",
    "api-key": "pagerduty_api_key",
    "oauth-token": "pagerduty_oauth_token",
    "default-from": "pagerduty_default_from",
    "routing-key": "pagerduty_routing_key",
    "events-url": "pagerduty_events_url",
    "timeout": "pagerduty_timeout",
    "max-attempts": "pagerduty_max_attempts",
    "max-incidents": "pagerduty_max_incidents",
    "page-after-failures": "pagerduty_page_after_failures",
    "fallback-routing-key": "pagerduty_fallback_routing_key",
}


def spelled(setting: str) -> str:
    """A component's setting key as this plugin spells it: the option, the
    ini key and the environment variable."""
    key = SPELLING.get(setting, setting)
    return f"--{key}, ini {key} or environment {key.upper()}"


def component_fields(settings: Settings) -> dict[str, Any]:
    """The fields of the component's `settings` record, in snake_case."""
    return {
        "api_url": settings.api_url,
        "api_key": settings.api_key,
        "oauth_token": settings.oauth_token,
        "default_from": settings.default_from,
        "routing_key": settings.routing_key,
        "events_url": settings.events_url,
        # Clamped into u32: wasmtime-py would wrap a larger number silently;
        # the component rejects what is out of its range.
        "timeout_ms": min(max(1, round(settings.timeout * 1000)), 2**32 - 1),
        "dry_run": settings.dry_run_requested,
        "max_attempts": min(settings.max_attempts, 2**32 - 1) if settings.max_attempts else None,
        "max_incidents": min(settings.max_incidents, 2**32 - 1),
        "fallback_routing_key": settings.fallback_routing_key,
        "page_after_failures": min(settings.page_after_failures, 2**32 - 1),
    }


def component_settings(settings: Settings) -> wit.Settings:
    """The settings as the component's `settings` record."""
    from . import wit

    return wit.Settings(**component_fields(settings))
