"""Where the component's requests may go: this host's allow-list, the rule
the Rust host's sandbox keeps. wasmtime-py has no hook on wasi-http's
sends, but this host holds every request before it calls `send`, so it
checks the request's `authority` (as the component parses its URL and will
hand it to wasi-http) first, and a refused one goes to the component's
`deny`: the same `denied` rejection the Rust host's sandbox gives.

PagerDuty's own hosts are allowed. Another host is allowed only from the
environment (`PAGERDUTY_ALLOW_HOSTS`) or the command line
(`--pagerduty_allow_host`), where an API URL also counts as allowed; never
by an ini file alone, so a `pytest.ini` changed in a branch cannot send
this machine's credentials elsewhere.

PYTEST_DONT_REWRITE
"""

from __future__ import annotations

from collections.abc import Iterable
from urllib.parse import urlsplit

# PagerDuty's REST and Events hosts, US and EU (as `host-rs/src/sandbox.rs`).
PAGERDUTY_HOSTS = (
    "api.pagerduty.com:443",
    "api.eu.pagerduty.com:443",
    "events.pagerduty.com:443",
    "events.eu.pagerduty.com:443",
)

_DEFAULT_PORTS = {"http": 80, "https": 443}


def normalized(authority: str, scheme: str = "https") -> str:
    """`host:port`, lowercased, the scheme's default port filled in (an IPv6
    host keeps its brackets)."""
    authority = authority.strip().lower()
    if authority.startswith("["):  # [::1] or [::1]:8080
        host, _, rest = authority.partition("]")
        host, port = host + "]", rest.removeprefix(":")
    else:
        host, _, port = authority.rpartition(":") if ":" in authority else (authority, "", "")
    if not port.isdigit():
        port = str(_DEFAULT_PORTS.get(scheme, 443))
    return f"{host}:{int(port)}"


def allowed(entries: Iterable[str]) -> frozenset[str]:
    """PagerDuty's hosts and the given ones (`host`, `host:port` or a URL)."""
    out = set(PAGERDUTY_HOSTS)
    for entry in entries:
        entry = entry.strip()
        if not entry:
            continue
        if "://" in entry:
            url = urlsplit(entry)
            if url.hostname:
                port = url.port or _DEFAULT_PORTS.get(url.scheme.lower(), 443)
                out.add(f"{url.hostname.lower()}:{port}")
        else:
            out.add(normalized(entry))
    return frozenset(out)


def refusal(url: str, authority: str, allow: frozenset[str]) -> str | None:
    """Why a request to `authority` may not go out, or None when it may."""
    scheme = url.partition(":")[0].lower()
    destination = normalized(authority, scheme)
    if destination in allow:
        return None
    return (
        f"{destination} is not an allowed destination; allow it with the environment "
        f"(PAGERDUTY_ALLOW_HOSTS={destination}) or the command line "
        f"(--pagerduty_allow_host={destination}), never an ini file alone"
    )
