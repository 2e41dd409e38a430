"""Structured logs on the converged lab: every source writes JSON lines with the platform's fields, and a forced
logrotate while a source writes loses no line and cuts none.

Sources: nginx's access log (edge1), PM2's app log (app1, LOG_LEVEL=debug: one line per request), PostgreSQL's
jsonlog (db1, with a slow statement above log_min_duration_statement) and journald (db1, pgBouncer's unit).
"""

import json
import time

from labkit import on

COMMON = ("timestamp", "level", "service", "host", "request_id", "duration")
# curl on edge1 to the site by name (SNI: the edge refuses a TLS handshake without a known name)
SITE = ("--resolve", "api.ierahkwa.lab:443:127.0.0.1")


def lines_of(host, *paths):
    r = on(host, "sudo", "-n", "cat", *paths)
    assert r.returncode == 0, r.stderr
    return [line for line in r.stdout.splitlines() if line.strip()]


def parsed(lines):
    out = []
    for line in lines:
        try:
            out.append(json.loads(line))
        except ValueError as e:
            raise AssertionError("not a JSON line: %r (%s)" % (line[:300], e)) from e
    return out


def app_lines(lines):
    """PM2's JSON log lines ({timestamp, type, process_id, app_name, message}) and, parsed, the app's own JSON line
    each one carries in `message` (lines that are not the app's JSON, e.g. PM2's notices, are left out)."""
    out = []
    for outer in parsed(lines):
        assert {"timestamp", "app_name", "message"} <= set(outer), outer
        try:
            inner = json.loads(outer["message"])
        except ValueError:
            continue
        if isinstance(inner, dict):
            out.append(inner)
    return out


def test_nginx_access_log_is_json_with_the_common_fields(converged):
    r = on("edge1", "curl", "-sfk", "-o", "/dev/null", *SITE, "https://api.ierahkwa.lab/?logtest=1")
    assert r.returncode == 0, r.stderr
    time.sleep(1)
    entries = parsed(lines_of("edge1", "/var/log/nginx/access.log")[-20:])
    mine = [e for e in entries if "logtest=1" in e.get("uri", "")]
    assert mine, entries[-3:]
    for field in COMMON:
        assert field in mine[-1], (field, mine[-1])
    assert mine[-1]["service"] == "nginx" and len(mine[-1]["request_id"]) == 32 and mine[-1]["host"] == "edge1"


def test_pm2_app_log_is_json_with_the_common_fields_and_the_edge_request_id(converged):
    r = on("edge1", "curl", "-sfk", "-D", "-", "-o", "/dev/null", *SITE, "https://api.ierahkwa.lab/")
    assert r.returncode == 0, r.stderr
    request_id = [h.split(":", 1)[1].strip() for h in r.stdout.splitlines() if h.lower().startswith("x-request-id:")]
    assert request_id, r.stdout
    time.sleep(2)
    entries = []
    for host in ("app1", "app2"):
        entries += [e for e in app_lines(lines_of(host, "/var/log/pm2/api.out.log")[-50:]) if "request_id" in e]
    mine = [e for e in entries if e["request_id"] == request_id[0]]
    assert len(mine) == 1, (request_id, entries[-3:])
    for field in COMMON:
        assert field in mine[0], (field, mine[0])
    assert mine[0]["level"] == "debug" and mine[0]["service"] == "api" and mine[0]["status"] == 200


def test_postgresql_jsonlog_records_a_slow_statement(converged):
    r = on("db1", "sudo", "-n", "-u", "postgres", "psql", "-XAtc", "'SELECT pg_sleep(1.2)'")
    assert r.returncode == 0, r.stderr
    r = on("db1", "sudo", "-n", "-u", "postgres", "psql", "-XAtc", "'SELECT pg_current_logfile()'")
    assert r.returncode == 0 and r.stdout.strip().endswith(".json"), r.stdout + r.stderr
    current = r.stdout.strip()
    if not current.startswith("/"):
        current = "/var/lib/postgresql/15/main/" + current
    time.sleep(1)
    entries = parsed(lines_of("db1", current)[-50:])
    slow = [e for e in entries if "pg_sleep(1.2)" in e.get("message", "") and "duration" in e.get("message", "")]
    assert slow, entries[-3:]
    assert {"timestamp", "error_severity", "pid", "message"} <= set(slow[-1]), slow[-1]


def test_journald_entries_are_json_with_unit_and_priority(converged):
    r = on("db1", "sudo", "-n", "journalctl", "-o", "json", "-n", "5", "--no-pager", "-u", "pgbouncer")
    assert r.returncode == 0, r.stderr
    entries = parsed(r.stdout.splitlines())
    assert entries
    for e in entries:
        assert {"__REALTIME_TIMESTAMP", "MESSAGE", "_HOSTNAME"} <= set(e), sorted(e)
        assert e["_HOSTNAME"] == "db1"


def rotate_while_writing(host, writer, rotate, logs, marker):
    """Start `writer` (it writes marked lines) on `host`, force `rotate` while it writes; the marked lines of `logs`
    (the live file and the one just rotated), for the caller to parse (each must be whole JSON) and count."""
    r = on(host, "bash", "-c", '"(%s) > /dev/null 2>/tmp/rotate-writer.err & echo \\$!"' % writer)
    assert r.returncode == 0, r.stderr
    pid = r.stdout.strip()
    time.sleep(2)
    r = on(host, "sudo", "-n", "logrotate", "-f", rotate)
    assert r.returncode == 0, r.stderr
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline and on(host, "kill", "-0", pid).returncode == 0:
        time.sleep(1)
    assert on(host, "kill", "-0", pid).returncode != 0, "the writer did not finish in 300 s"
    time.sleep(2)
    return [line for line in lines_of(host, *logs) if marker in line]


def assert_each_once_across_the_rotation(host, live_log, seen, mark, n):
    """Request numbers 1..n each logged exactly once, and the rotation happened mid-write: the live file holds some
    of this run's lines, not all."""
    seen = sorted(seen)
    assert seen == list(range(1, n + 1)), "missing %s" % sorted(set(range(1, n + 1)) - set(seen))[:20]
    live = [ln for ln in lines_of(host, live_log) if mark in ln]
    assert 0 < len(live) < n, len(live)


def test_logrotate_of_nginx_loses_no_line_while_it_writes(converged):
    # one curl, n requests in sequence (URL globbing) at 100 a second: still writing when logrotate runs
    n = 1000
    mark = "rot=nginx%d-" % time.time()  # this run's (an earlier run's lines may still be in the files)
    url = "'https://api.ierahkwa.lab/?%s[1-%d]'" % (mark, n)
    writer = "curl -sk --rate 100/s --resolve api.ierahkwa.lab:443:127.0.0.1 " + url
    found = rotate_while_writing(
        "edge1",
        writer,
        "/etc/logrotate.d/nginx",
        ["/var/log/nginx/access.log", "/var/log/nginx/access.log.1"],
        mark,
    )
    seen = [int(e["uri"].rsplit("-", 1)[1]) for e in parsed(found)]
    assert_each_once_across_the_rotation("edge1", "/var/log/nginx/access.log", seen, mark, n)


def test_logrotate_of_pm2_logs_loses_no_line_while_the_app_writes(converged):
    n = 1000
    mark = "rot-pm2%d-" % time.time()
    writer = "curl -s --rate 100/s 'http://127.0.0.1:3000/api/%s[1-%d]'" % (mark, n)
    found = rotate_while_writing(
        "app1",
        writer,
        "/etc/logrotate.d/ierahkwa-pm2",
        ["/var/log/pm2/api.out.log", "/var/log/pm2/api.out.log.1"],
        mark,
    )
    seen = [int(e["path"].rsplit("-", 1)[1]) for e in app_lines(found)]
    assert_each_once_across_the_rotation("app1", "/var/log/pm2/api.out.log", seen, mark, n)
