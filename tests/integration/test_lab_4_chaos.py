"""Chaos on the converged lab, each event under a bounded load against the edge (HTTPS to edge1 with the site's name):

- an app instance killed (SIGKILL): PM2 starts it again, nginx retries the request on the other app host:
  zero failed requests;
- an app host stopped (its container stopped, as a power-off would) and started again: zero failed requests,
  InstanceDown raised for it in Alertmanager while it is down and resolved once it is back;
- pgBouncer stopped for longer than its alert's `for:` and started again: requests that need the database fail
  only while it is down, /db answers again within CHAOS_DB_RECOVERY_SECONDS of the start, and InstanceDown for
  the pgbouncer job (its exporter's scrapes fail while pgBouncer does not answer) is raised and then resolved.

Runs last in the lab e2e session (tests/run.sh): it stops a host.
"""

import http.client
import json
import ssl
import subprocess
import threading
import time
from collections import Counter

import pytest
from labkit import ADDRESSES, NET, PREFIX, on

SITE = "api.ierahkwa.lab"
EDGE = "%s.%d" % (NET, ADDRESSES["edge1"])
# The lab's alert timings (inventories/lab/group_vars/monitoring.yml): scrape 5 s, rules 5 s, for: 10 s.
ALERT_WAIT = 120
# How soon after pgBouncer is back /db must answer (the apps reconnect on their next query).
CHAOS_DB_RECOVERY_SECONDS = 10


class Load:
    """Bounded load against the edge: `workers` threads send GET `path` over HTTPS keep-alive connections (a new one
    after any error) until stopped, or until `max_seconds` or `max_requests` is reached. Records every answer."""

    def __init__(self, path="/", workers=4, max_seconds=180, max_requests=60000):
        self.path, self.workers, self.max_seconds, self.max_requests = path, workers, max_seconds, max_requests
        self.statuses = Counter()
        self.failures = []  # (time, what)
        self.successes = []  # times of 2xx answers (for recovery windows)
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._threads = []
        self._ctx = ssl.create_default_context()
        self._ctx.check_hostname = False
        self._ctx.verify_mode = ssl.CERT_NONE

    def _worker(self):
        deadline = time.monotonic() + self.max_seconds
        conn = None
        while not self._stop.is_set() and time.monotonic() < deadline:
            with self._lock:
                if sum(self.statuses.values()) + len(self.failures) >= self.max_requests:
                    return
            now = time.time()
            try:
                if conn is None:
                    conn = _https(self._ctx)
                conn.request("GET", self.path, headers={"Host": SITE, "User-Agent": "ierahkwa-chaos-test"})
                resp = conn.getresponse()
                resp.read()
                with self._lock:
                    self.statuses[resp.status] += 1
                    if 200 <= resp.status < 300:
                        self.successes.append(now)
                    else:
                        self.failures.append((now, "HTTP %d" % resp.status))
            except Exception as e:  # noqa: BLE001  (any transport error is a failed request)
                with self._lock:
                    self.failures.append((now, "%s: %s" % (type(e).__name__, e)))
                if conn is not None:
                    conn.close()
                conn = None
                time.sleep(0.05)
            time.sleep(0.01)
        if conn is not None:
            conn.close()

    def __enter__(self):
        for _worker in range(self.workers):
            t = threading.Thread(target=self._worker, daemon=True)
            t.start()
            self._threads.append(t)
        return self

    def __exit__(self, *exc):
        self._stop.set()
        for t in self._threads:
            t.join(timeout=60)

    @property
    def total(self):
        return sum(self.statuses.values()) + sum(1 for f in self.failures if not f[1].startswith("HTTP "))

    def summary(self):
        return "%d requests, statuses %s, %d failed: %s" % (
            self.total,
            dict(self.statuses),
            len(self.failures),
            self.failures[:5],
        )


def _https(ctx):
    """An HTTPS connection to edge1 whose TLS handshake names the site (SNI), as a browser's would."""

    class SNIConnection(http.client.HTTPSConnection):
        def connect(self):
            http.client.HTTPConnection.connect(self)
            self.sock = ctx.wrap_socket(self.sock, server_hostname=SITE)

    conn = SNIConnection(EDGE, 443, timeout=30, context=ctx)
    conn.connect()
    return conn


def alerts(name):
    """Alertmanager's active alerts named `name`, from mon1 (its API listens on loopback there)."""
    r = on("mon1", "curl", "-sf", "'http://127.0.0.1:9093/api/v2/alerts?active=true&silenced=false&inhibited=false'")
    assert r.returncode == 0, r.stderr
    return [a for a in json.loads(r.stdout) if a["labels"].get("alertname") == name]


def wait_for(what, check, timeout):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(2)
    pytest.fail("%s: not within %d s" % (what, timeout))


def podman(*args):
    return subprocess.run(["podman", *args], capture_output=True, text=True, timeout=120, check=False)


def app_pids(host):
    r = on(host, "pgrep", "-f", "'node .*current/server.js'")
    return sorted(r.stdout.split())


@pytest.fixture(scope="module")
def serving(converged):
    # the app answers through the edge before any chaos
    with Load(max_seconds=5, workers=1) as load:
        time.sleep(3)
    assert load.total > 0 and not load.failures, load.summary()


def test_killed_app_instance_is_restarted_and_no_request_fails(serving):
    before = app_pids("app1")
    assert before, "no app process on app1"
    with Load(max_seconds=60) as load:
        time.sleep(3)
        r = on("app1", "sudo", "-n", "kill", "-9", before[0])
        assert r.returncode == 0, r.stderr
        back = wait_for("a new app process on app1", lambda: [p for p in app_pids("app1") if p not in before], 30)
        time.sleep(3)
    assert back
    assert load.total > 100 and not load.failures, load.summary()


def test_stopped_app_host_fails_over_alerts_and_recovers(serving):
    container = PREFIX + "app1"
    try:
        with Load(max_seconds=170) as load:
            time.sleep(3)
            stopped = time.monotonic()
            r = podman("stop", "-t", "20", container)
            assert r.returncode == 0, r.stderr
            firing = wait_for(
                "InstanceDown for app1 in Alertmanager",
                lambda: [a for a in alerts("InstanceDown") if a["labels"]["instance"].split(":")[0] == "app1"],
                ALERT_WAIT,
            )
            raised_after = time.monotonic() - stopped
            # requests keep succeeding while app1 is down
            time.sleep(2)
        assert load.total > 100 and not load.failures, load.summary()
    finally:
        r = podman("start", container)
        assert r.returncode == 0, r.stderr
    # the host boots, PM2 brings the app back from its saved list, the alert resolves
    ready = ("curl", "-sf", "http://127.0.0.1:3000/ready")
    wait_for("app1 serving again", lambda: app_pids("app1") and on("app1", *ready).returncode == 0, 120)
    wait_for(
        "InstanceDown for app1 resolved",
        lambda: not [a for a in alerts("InstanceDown") if a["labels"]["instance"].split(":")[0] == "app1"],
        ALERT_WAIT,
    )
    jobs = sorted({a["labels"]["job"] for a in firing})
    print("InstanceDown raised %.0f s after app1 stopped; jobs: %s; %s" % (raised_after, jobs, load.summary()))


def pgbouncer_down():
    return [a for a in alerts("InstanceDown") if a["labels"]["job"] == "pgbouncer"]


def test_pgbouncer_restart_recovers_in_time_and_alerts(serving):
    with Load(path="/db", workers=2, max_seconds=170) as load:
        time.sleep(3)
        down = time.time()
        r = on("db1", "sudo", "-n", "systemctl", "stop", "pgbouncer")
        assert r.returncode == 0, r.stderr
        try:
            wait_for("InstanceDown for pgbouncer in Alertmanager", pgbouncer_down, ALERT_WAIT)
        finally:
            up = time.time()
            r = on("db1", "sudo", "-n", "systemctl", "start", "pgbouncer")
            assert r.returncode == 0, r.stderr
        wait_for("a /db answer after pgBouncer started", lambda: [t for t in load.successes if t > up], 30)
        time.sleep(3)
    after_start = [t for t in load.successes if t > up]
    recovery = min(after_start) - up
    assert recovery <= CHAOS_DB_RECOVERY_SECONDS, "recovered %.1f s after the start" % recovery
    # failures only while pgBouncer was down (and the moment it came back), none once /db answered again
    late = [f for f in load.failures if f[0] > min(after_start)]
    assert not late, late[:5]
    assert any(t < down for t in load.successes), "no /db answer before the stop: " + load.summary()
    wait_for("InstanceDown for pgbouncer resolved", lambda: not pgbouncer_down(), ALERT_WAIT)
    print("pgBouncer down %.0f s; /db answered %.1f s after the start; %s" % (up - down, recovery, load.summary()))
