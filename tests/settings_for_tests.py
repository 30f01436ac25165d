"""Settings records for tests that call the component or the outbox
directly, without a pytest run: one place that spells out every field."""

from __future__ import annotations

import dataclasses
from typing import Any

from fake_pagerduty import API_KEY, FROM
from pytest_pagerduty import wit
from pytest_pagerduty.settings import Settings


def component_settings(**changes: Any) -> wit.Settings:
    """The component's `settings` record: REST with an API key and a From,
    PagerDuty's own URLs, the component's defaults."""
    given = wit.Settings(
        api_url=None,
        api_key=API_KEY,
        oauth_token=None,
        default_from=FROM,
        routing_key=None,
        events_url=None,
        timeout_ms=5000,
        dry_run=False,
        max_attempts=None,
        max_incidents=10,
    )
    return dataclasses.replace(given, **changes)


def plugin_settings(**changes: Any) -> Settings:
    """What `settings.resolve` gives a run with no setting at all."""
    given = Settings(
        api_url=None,
        api_key=None,
        oauth_token=None,
        default_from=None,
        routing_key=None,
        fallback_routing_key=None,
        events_url=None,
        auto_resolve=True,
        resolve_always=False,
        flaky_info=False,
        max_incidents=10,
        page_after_failures=1,
        dry_run_file=None,
        page_on_error=False,
        timeout=10.0,
        flush_timeout=30.0,
        max_attempts=None,
        memory_limit_mib=64,
        outbox=None,
        auto_replay=True,
        allowed_hosts=frozenset(),
        dry_run_requested=False,
        sources={},
    )
    return dataclasses.replace(given, **changes)
