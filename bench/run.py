"""Measures what the plugin costs a test suite, side by side in one run.

    .venv/bin/python bench/run.py            # the full run (several minutes)
    .venv/bin/python bench/run.py --quick    # small suites, one repetition (CI)

Each figure is the median of several repetitions, with the spread
(min-max) beside it; ratios are of medians measured in the same run. The
seed plugin (pytest-pagerduty 1.0.0 from PyPI) is installed in its own
virtual environment under .bench/ and pointed at the same loopback
PagerDuty. Nothing leaves 127.0.0.1.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BENCH_STATE = ROOT / ".bench"
SEED_VENV = BENCH_STATE / "seed-venv"
OURS = ROOT / ".venv" / "bin" / "python"
PLUGIN = "pytest_pagerduty.plugin"


class PagerDuty(BaseHTTPRequestHandler):
    """A loopback PagerDuty that answers every create after `delay` seconds."""

    delay = 0.02
    count = 0
    lock = threading.Lock()

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("content-length", 0)))
        time.sleep(self.delay)
        with PagerDuty.lock:
            PagerDuty.count += 1
            number = PagerDuty.count
        body = json.dumps(
            {"incident": {"id": f"P{number}", "incident_number": number, "html_url": "https://x"}}
        ).encode()
        self.send_response(201)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


SUITE = """
import pytest

pytestmark = [
    pytest.mark.usefixtures("pagerduty_fixture"),
    pytest.mark.pagerduty_trigger_incident(service_id="PWIXJZS", urgency="high"),
]

@pytest.mark.parametrize("n", range({count}))
def test_check(n):
    \"\"\"A production check.\"\"\"
    assert {assertion}
"""

CONFTEST = """
import os
import pytest

if os.environ.get("BENCH_PLUGIN_OFF"):
    # The plugin is off (-p no:...): the suite still needs its fixture.
    @pytest.fixture
    def pagerduty_fixture():
        yield
elif os.environ.get("BENCH_SEED"):
    import pagerduty

    pagerduty.RestApiV2Client.url = os.environ["BENCH_PD_URL"]
    pytest_plugins = ["pytest_pagerduty.plugin"]
"""

INI = "[pytest]\nmarkers =\n    pagerduty_trigger_incident: benchmark\n"


def write_suite(directory: Path, passing: int, failing: int) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "conftest.py").write_text(CONFTEST)
    (directory / "pytest.ini").write_text(INI)
    if passing:
        (directory / "test_green.py").write_text(SUITE.format(count=passing, assertion="n >= 0"))
    if failing:
        (directory / "test_red.py").write_text(SUITE.format(count=failing, assertion="n < 0"))
    return directory


@dataclass
class Sample:
    seconds: float
    peak_mib: float


def run_pytest(python: Path, suite: Path, args: list[str], env: dict[str, str]) -> Sample:
    """One pytest process: wall time and its own peak resident memory."""
    start = time.perf_counter()
    process = subprocess.Popen(
        [str(python), "-m", "pytest", "-q", "-p", "no:cacheprovider", *args],
        cwd=suite,
        env={**os.environ, **env},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    _, status, usage = os.wait4(process.pid, 0)
    elapsed = time.perf_counter() - start
    code = os.waitstatus_to_exitcode(status)
    if code not in (0, 1):
        raise RuntimeError(f"pytest exited {code} in {suite} with {args}")
    return Sample(elapsed, usage.ru_maxrss / 1024)


@dataclass
class Figure:
    samples: list[float]

    @property
    def median(self) -> float:
        return statistics.median(self.samples)

    def spread(self, scale: float = 1.0, unit: str = "s") -> str:
        return f"{min(self.samples) * scale:.3g}-{max(self.samples) * scale:.3g} {unit}"


def alternate(
    reps: int, first: Callable[[], Sample], second: Callable[[], Sample]
) -> tuple[tuple[Figure, Figure], tuple[Figure, Figure]]:
    """Both measures in alternating pairs, so a slow spell of this shared VM
    weighs on both sides alike: ((seconds, memory) of first, of second)."""
    pairs = [(first(), second()) for _ in range(reps)]
    return tuple(  # type: ignore[return-value]
        (Figure([p[i].seconds for p in pairs]), Figure([p[i].peak_mib for p in pairs]))
        for i in (0, 1)
    )


def repeat(reps: int, measure: Callable[[], Sample]) -> tuple[Figure, Figure]:
    samples = [measure() for _ in range(reps)]
    return Figure([s.seconds for s in samples]), Figure([s.peak_mib for s in samples])


def ensure_seed() -> Path | None:
    python = SEED_VENV / "bin" / "python"
    if not python.exists():
        subprocess.run([sys.executable, "-m", "venv", str(SEED_VENV)], check=True)
        installed = subprocess.run(
            [str(python), "-m", "pip", "install", "-q", "pytest-pagerduty==1.0.0"],
            check=False,
        )
        if installed.returncode != 0:
            shutil.rmtree(SEED_VENV)
            return None
    return python


_SETTINGS = """
from pytest_pagerduty import wit
settings = wit.Settings(api_url=None, api_key="k", oauth_token=None, default_from="a@b.co",
    routing_key=None, events_url=None, timeout_ms=10000, dry_run=DRY_RUN, max_attempts=None,
    max_incidents=2**32 - 1)
"""


def first_incident_cost(cold: bool, cache: Path) -> float:
    """Seconds from 'a marked test failed' to its request built, in a fresh
    process: import wasmtime, load (or compile) the component, build."""
    if cold:
        shutil.rmtree(cache, ignore_errors=True)
    code = (
        """
import time, sys
import pytest  # loaded already in any run; not the incident's cost
"""
        + _SETTINGS.replace("DRY_RUN", "True")
        + """
start = time.perf_counter()
from pytest_pagerduty.component import Pager
pager = Pager.open(settings, 64)
marker = pager.marker({"service_id": "PWIXJZS"})
failure = wit.TestFailure("t.py::test_x", "test_x", "doc", "assert False", "E assert False", "call")
pager.trigger(failure, marker)
print(time.perf_counter() - start)
"""
    )
    out = subprocess.run(
        [str(OURS), "-c", code],
        env={**os.environ, "XDG_CACHE_HOME": str(cache)},
        capture_output=True,
        text=True,
        check=True,
    )
    return float(out.stdout.strip())


def boundary(builds: int) -> dict[str, float]:
    """Per-call costs of building an incident through the component from
    Python: lowering the failure and lifting the request (the host's share),
    a call's fixed cost, and the whole call."""
    code = (
        "import time, json\n"
        "from pytest_pagerduty.component import Pager\n"
        "from pytest_pagerduty.lowering import lift, lower, result\n"
        + _SETTINGS.replace("DRY_RUN", "False")
        + f"""
pager = Pager.open(settings, 64)
marker = pager.marker({{"service_id": "PWIXJZS", "urgency": "high"}})
failure = wit.TestFailure("tests/test_prod.py::test_x", "test_x", "A production check.",
    "AssertionError: assert 201 == 502", "E   assert 201 == 502\\n" * 20, "call", 0.5)
n = {builds}
request = pager.trigger(failure, marker).payload
start = time.perf_counter()
for _ in range(n):
    pager.trigger(failure, marker)
total = (time.perf_counter() - start) / n
raw = pager._call("trigger", lower(failure), marker.resource, None, 1)
hint = result(wit.Planned, wit.BuildError)
start = time.perf_counter()
for _ in range(n):
    lower(failure)
    lift(raw, hint)
host = (time.perf_counter() - start) / n
start = time.perf_counter()
for _ in range(n):
    pager.instance.ci_variables()
noop = (time.perf_counter() - start) / n
names = len(pager.instance.ci_variables())
print(json.dumps({{"total": total, "host": host, "noop": noop, "names": names}}))
"""
    )
    out = subprocess.run([str(OURS), "-c", code], capture_output=True, text=True, check=True)
    measured: dict[str, float] = json.loads(out.stdout)
    return measured


def write_ahead_cost(alerts: int) -> float:
    """Seconds per alert the outbox costs a run, as a run pays them: the
    entry written ahead to the run's own journal (main thread), the fsync
    before its send, the line marking it done, and the merge at the end
    (run in the plugin's own interpreter, on this machine's disk)."""
    script = f"""
import tempfile, time
from pathlib import Path
from pytest_pagerduty import wit
from pytest_pagerduty.delivery import Outcome, Trigger
from pytest_pagerduty.keeping import Keeper
from pytest_pagerduty.settings import Settings
settings = Settings(api_url=None, api_key=None, oauth_token=None, default_from=None,
    routing_key=None, fallback_routing_key=None, events_url=None, auto_resolve=True,
    resolve_always=False, flaky_info=False, max_incidents=10, page_after_failures=1,
    dry_run_file=None, page_on_error=False, timeout=10.0, flush_timeout=30.0, max_attempts=None,
    memory_limit_mib=64, outbox=None, auto_replay=True, allowed_hosts=frozenset(),
    dry_run_requested=False, sources={{}})
keeper = Keeper(settings, Path(tempfile.mkdtemp()) / "outbox.jsonl", ["routing_key"])
failure = wit.TestFailure("test_x.py::test_check[1]", None, None, "AssertionError",
                          "E   assert False\\n" * 40, "call")
start = time.perf_counter()
for n in range({alerts}):
    trigger = keeper.write_ahead(Trigger(failure, {{"service_id": "PWIXJZS"}}, 0))
    keeper.durable()
    keeper.settle([trigger], Outcome(failure.nodeid, "created", ""))
keeper.close()
print((time.perf_counter() - start) / {alerts})
"""
    out = subprocess.run([str(OURS), "-c", script], check=True, capture_output=True, text=True)
    return float(out.stdout.strip())


def component_size() -> int:
    """Bytes of the component the installed plugin embeds."""
    code = "from pytest_pagerduty.embedded import wasm_bytes; print(len(wasm_bytes()))"
    out = subprocess.run([str(OURS), "-c", code], capture_output=True, text=True, check=True)
    return int(out.stdout)


def cargo(*args: str) -> str | None:
    """cargo's stdout, or None (with its error shown) when it fails here."""
    out = subprocess.run(["cargo", *args], cwd=ROOT, capture_output=True, text=True, check=False)
    if out.returncode != 0:
        print(out.stderr[-2000:], file=sys.stderr)
        return None
    return out.stdout


def profile(release: bool) -> list[str]:
    return ["--profile", "host-release"] if release else []


def rust_host_build(builds: int, release: bool) -> float | None:
    """Seconds per build-trigger from the Rust host (host-rs), or None when
    it cannot be built here."""
    args = ["run", "-q", *profile(release), "-p", "pagerduty-host", "--example", "build_speed"]
    out = cargo(*args, "--", str(builds))
    if out is None:
        return None
    seconds: float = json.loads(out.strip().splitlines()[-1])["seconds_per_build"]
    return seconds


def write_junit(path: Path, cases: int, failing: int) -> None:
    """A JUnit report as nextest writes one: `failing` of `cases` fail with a panic."""
    lines = ['<testsuites name="bench"><testsuite name="shop::checkout">']
    trace = "thread panicked at tests/checkout.rs:41:9:\nassertion `left == right` failed\n" * 20
    for i in range(cases):
        if i < failing:
            lines.append(
                f'<testcase classname="shop::checkout" name="check_{i}" time="0.010">'
                f'<failure message="check {i} failed">{trace}</failure></testcase>'
            )
        else:
            lines.append(f'<testcase classname="shop::checkout" name="check_{i}" time="0.001"/>')
    lines.append("</testsuite></testsuites>")
    path.write_text("\n".join(lines))


def junit_command(
    cases: int, failing: int, release: bool, url: str, work: Path
) -> tuple[float, float] | None:
    """Seconds and peak MiB of one `pagerduty-junit` run over a report of
    `cases` cases (the default cap: 10 incidents and one aggregate sent to
    the loopback PagerDuty), or None when it cannot be built here."""
    # cargo names the executable it built, wherever the target folder is.
    args = ["build", "-q", *profile(release), "-p", "pagerduty-host", "--bin", "pagerduty-junit"]
    out = cargo(*args, "--message-format=json")
    if out is None:
        return None
    messages = [json.loads(line) for line in out.splitlines() if line.startswith("{")]
    binary = next(m["executable"] for m in messages if m.get("executable"))
    report = work / "junit.xml"
    write_junit(report, cases, failing)
    authority = url.removeprefix("http://")
    command = [str(binary), str(report), "--service-id", "PBENCH1", "--api-url", url]
    command += ["--allow-host", authority, "--state", str(work / "junit-state.json")]
    env = {**os.environ, "PAGERDUTY_API_KEY": "bench-key", "PAGERDUTY_DEFAULT_FROM": "b@e.co"}
    env["XDG_CACHE_HOME"] = str(work / "xdg-cache")
    # In a child of its own, so its peak resident size is the only one measured.
    measure = (
        "import resource, subprocess, sys, time; start = time.perf_counter();"
        "subprocess.run(sys.argv[1:], check=True, stdout=subprocess.DEVNULL);"
        "print(time.perf_counter() - start,"
        " resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)"
    )
    for _attempt in range(2):  # the first compiles the component into the cache
        (work / "junit-state.json").unlink(missing_ok=True)
        ran = subprocess.run(
            [sys.executable, "-c", measure, *command], env=env, capture_output=True, text=True
        )
        if ran.returncode != 0:
            print(ran.stderr[-2000:], file=sys.stderr)
            return None
    seconds, rss_kib = ran.stdout.split()
    return float(seconds), int(rss_kib) / 1024


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true", help="small suites, one repetition")
    parser.add_argument("--reps", type=int, default=5)
    args = parser.parse_args()
    reps = 1 if args.quick else args.reps
    green, red = (100, 20) if args.quick else (2000, 500)

    server = ThreadingHTTPServer(("127.0.0.1", 0), PagerDuty)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{server.server_address[1]}"
    work = Path(tempfile.mkdtemp(prefix="pagerduty-bench-"))
    cache = work / "xdg-cache"
    ours_env = {
        "PAGERDUTY_API_KEY": "bench-key",
        "PAGERDUTY_DEFAULT_FROM": "bench@example.com",
        "PAGERDUTY_API_URL": url,
        "XDG_CACHE_HOME": str(cache),
    }
    seed_env = {**ours_env, "BENCH_SEED": "1", "BENCH_PD_URL": url}
    off_env = {"BENCH_PLUGIN_OFF": "1"}
    off_args = ["-p", f"no:{PLUGIN}"]
    seed = ensure_seed()
    rows: list[tuple[str, str, str, str]] = []

    def ratio(name: str, on: Figure, off: Figure, target: str) -> None:
        rows.append(
            (
                name,
                f"{on.median / off.median:.3f}",
                f"on {on.median:.3f} s ({on.spread()}), off {off.median:.3f} s ({off.spread()})",
                target,
            )
        )

    # P1: a green suite.
    p1 = write_suite(work / "p1", green, 0)
    run_pytest(OURS, p1, [], ours_env)  # the component checks the marker once
    (on, on_mem), (off, off_mem) = alternate(
        max(reps, 12 if reps > 1 else 1),
        lambda: run_pytest(OURS, p1, [], ours_env),
        lambda: run_pytest(OURS, p1, off_args, {**ours_env, **off_env}),
    )
    ratio(f"P1 {green} passing marked tests: plugin on / off", on, off, "<= 1.03")
    rows.append(
        (
            "P1 peak memory on / off",
            f"{on_mem.median / off_mem.median:.3f}",
            f"on {on_mem.median:.0f} MiB, off {off_mem.median:.0f} MiB",
            "",
        )
    )
    if seed:
        s_on, _ = repeat(reps, lambda: run_pytest(seed, p1, [], seed_env))
        s_off, _ = repeat(reps, lambda: run_pytest(seed, p1, [], {**seed_env, **off_env}))
        ratio("P1 seed plugin 1.0.0: on / off", s_on, s_off, "")

    # P2: start-up and the first incident.
    p2 = write_suite(work / "p2", 20, 0)
    on, _ = repeat(reps, lambda: run_pytest(OURS, p2, ["--collect-only"], ours_env))
    off, _ = repeat(
        reps, lambda: run_pytest(OURS, p2, ["--collect-only", *off_args], {**ours_env, **off_env})
    )
    ratio("P2 --collect-only, 20 marked tests: on / off", on, off, "<= 1.05")
    cold = Figure([first_incident_cost(True, cache) for _ in range(reps)])
    warm = Figure([first_incident_cost(False, cache) for _ in range(reps)])
    rows.append(
        (
            "P2 first incident, cold compile cache",
            f"{cold.median * 1000:.0f} ms",
            cold.spread(1000, "ms"),
            "",
        )
    )
    rows.append(
        (
            "P2 first incident, warm compile cache",
            f"{warm.median * 1000:.0f} ms",
            warm.spread(1000, "ms"),
            "<= 25 ms",
        )
    )

    # P3: a storm of failures against a PagerDuty answering in 20 ms.
    p3 = write_suite(work / "p3", 0, red)
    before = PagerDuty.count
    pairs = max(reps, 5 if reps > 1 else 1)
    (on, on_mem), (off, off_mem) = alternate(  # "off" sends nothing
        pairs,
        lambda: run_pytest(OURS, p3, [], ours_env),
        lambda: run_pytest(OURS, p3, off_args, {**ours_env, **off_env}),
    )
    sent_default = (PagerDuty.count - before) / pairs
    ratio(f"P3 {red} failing, default cap (10 + 1 aggregate): on / off", on, off, "<= 1.25")
    rows.append(
        (
            "P3 requests PagerDuty received per run (default cap)",
            f"{sent_default:.0f}",
            f"{red} failures: 10 incidents + 1 aggregate listing the rest",
            "",
        )
    )
    rows.append(
        (
            "P3 peak memory on / off",
            f"{on_mem.median / off_mem.median:.3f}",
            f"on {on_mem.median:.0f} MiB, off {off_mem.median:.0f} MiB",
            "",
        )
    )
    per_alert = Figure([write_ahead_cost(red) for _ in range(reps)])
    rows.append(
        (
            "P3 write-ahead outbox, per alert (written ahead, fsync, done, merge)",
            f"{per_alert.median * 1000:.2f} ms",
            f"{per_alert.spread(1000, 'ms')}; {red} alerts: {per_alert.median * red:.2f} s",
            "",
        )
    )
    uncapped = [f"--pagerduty_max_incidents={red}", "--pagerduty_flush_timeout=600"]
    before = PagerDuty.count
    full, _ = repeat(reps, lambda: run_pytest(OURS, p3, uncapped, ours_env))
    sent_full = (PagerDuty.count - before) / reps
    ratio(f"P3 {red} failing, one incident each: on / off", full, off, "")
    rows.append(
        ("P3 requests received per run (one each)", f"{sent_full:.0f}", f"of {red} failures", "")
    )
    if seed:
        before = PagerDuty.count
        s_on, _ = repeat(reps, lambda: run_pytest(seed, p3, [], seed_env))
        sent_seed = (PagerDuty.count - before) / reps
        rows.append(
            (
                "P3 seed plugin 1.0.0 / ours (one incident each)",
                f"{s_on.median / full.median:.2f}x",
                f"seed {s_on.median:.2f} s ({sent_seed:.0f} requests), ours {full.median:.2f} s",
                ">= 5x",
            )
        )
        rows.append(
            (
                "P3 seed plugin 1.0.0 / ours (default cap)",
                f"{s_on.median / on.median:.2f}x",
                f"ours {on.median:.2f} s",
                ">= 5x",
            )
        )

    # P4: the Python-component boundary.
    size = component_size()
    rows.append(("P4 component size", f"{size:,} B", f"{size / 1024:.0f} KiB", "<= 310 KB"))
    b = boundary(200 if args.quick else 2000)
    rows.append(
        (
            "P4 pager.trigger from Python, per incident",
            f"{b['total'] * 1000:.3f} ms",
            f"{1 / b['total']:.0f} incidents/s",
            "<= 1 ms",
        )
    )
    rows.append(
        (
            "P4   of which lowering and lifting (host)",
            f"{b['host'] * 1000:.3f} ms",
            "the failure record in, the planned request record out",
            "",
        )
    )
    rows.append(
        (
            "P4   a call with no arguments (ci-variables)",
            f"{b['noop'] * 1000:.3f} ms",
            "fixed cost of a wasmtime-py call (includes lifting a list of "
            f"{b['names']:.0f} strings)",
            "",
        )
    )
    rows.append(
        (
            "P4   guest work and wasmtime's conversion",
            f"{(b['total'] - b['host'] - b['noop']) * 1000:.3f} ms",
            "",
            "",
        )
    )

    rust = rust_host_build(200 if args.quick else 20000, release=not args.quick)
    if rust is not None:
        build = "debug build" if args.quick else "host-release build"
        rows.append(
            (
                "P4 pager.trigger from the Rust host, per incident",
                f"{rust * 1000:.3f} ms",
                f"{1 / rust:.0f} incidents/s ({build})",
                "",
            )
        )
        rows.append(("P4 Python / Rust host", f"{b['total'] / rust:.1f}x", "", ""))

    cases, failing = (2000, 200) if args.quick else (20000, 2000)
    junit = junit_command(cases, failing, release=not args.quick, url=url, work=work)
    if junit is not None:
        build = "debug build" if args.quick else "host-release build"
        rows.append(
            (
                f"pagerduty-junit, {cases} cases / {failing} failed",
                f"{junit[0] * 1000:.0f} ms",
                f"peak {junit[1]:.0f} MiB; 10 incidents + 1 aggregate at 20 ms each ({build})",
                "",
            )
        )

    server.shutdown()
    shutil.rmtree(work, ignore_errors=True)
    print(
        f"\npytest-pagerduty benchmark ({'quick' if args.quick else 'full'}: "
        f"{reps} repetition(s), median, spread min-max; {os.cpu_count()} cores)\n"
    )
    width = max(len(r[0]) for r in rows)
    print(f"{'measure':<{width}}  {'value':>9}  {'target':>9}  detail")
    for name, value, detail, target in rows:
        print(f"{name:<{width}}  {value:>9}  {target:>9}  {detail}")
    if not seed:
        print("\n(the seed plugin could not be installed from PyPI: its rows are missing)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
