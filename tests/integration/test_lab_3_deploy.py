"""Releases, zero-downtime deployment and rollback on the converged lab (after test_lab.py in the same session):
playbooks/deploy.yml moves the app "api" (the sample app) of app1 and app2 to a new release one host at a time
while a load loop sends requests through the edge; a release whose health check fails is rolled back by itself;
playbooks/rollback.yml goes back on demand. The edge must answer every request of the load loop with a 2xx.
First a --check --diff deploy, which must leave every host as it was; the first real deploy carries an SQL migration,
applied once on db1 before the first batch.

The versions are new on every run (a token of the run), so the tests also run again on a lab they ran on before.
"""

import http.client
import json
import os
import shutil
import socket
import ssl
import threading
import time

import pytest
from labkit import ADDRESSES, NET, ROOT, on, playbook, problems, recap

EDGE = "%s.%d" % (NET, ADDRESSES["edge1"])
SITE = "api.ierahkwa.lab"
APPS = ["app1", "app2"]
RELEASES = "/srv/ierahkwa/api"
RUN = time.strftime("%H%M%S")
V2, V3, V4 = "2-" + RUN, "3-" + RUN, "4-" + RUN
# the migration the deploy of V2 carries: a version of its own on every run (a lab the tests ran on before keeps its
# record of the earlier ones)
MIGRATION = int(time.time())
MIGRATE = ["-e", "deploy_migrate_database=ierahkwa", "-e", "deploy_migrate_role=ierahkwa"]


class EdgeConnection(http.client.HTTPSConnection):
    """HTTPS to edge1's address with the site's name in SNI and Host (the lab has no DNS for it)."""

    def connect(self):
        sock = socket.create_connection((EDGE, 443), timeout=self.timeout)
        self.sock = self._context.wrap_socket(sock, server_hostname=SITE)


# The lab site keeps its self-signed bootstrap certificate.
TLS = ssl.create_default_context()
TLS.check_hostname = False
TLS.verify_mode = ssl.CERT_NONE


def get(path, timeout=10):
    conn = EdgeConnection(SITE, 443, timeout=timeout, context=TLS)
    try:
        conn.request("GET", path, headers={"Host": SITE})
        resp = conn.getresponse()
        body = resp.read()
        try:
            data = json.loads(body)
        except ValueError:
            data = None
        return resp.status, data
    finally:
        conn.close()


class Load(threading.Thread):
    """GET / through the edge, a new connection each time, about 20 per second, until stopped (at most 600 s)."""

    def __init__(self):
        super().__init__(daemon=True)
        self.stop = threading.Event()
        self.statuses = {}
        self.errors = []
        self.versions = {}
        self.seconds = 0.0

    def run(self):
        t0 = time.monotonic()
        while not self.stop.is_set() and time.monotonic() - t0 < 600:
            try:
                status, data = get("/", timeout=15)
                self.statuses[status] = self.statuses.get(status, 0) + 1
                if status == 200 and data:
                    self.versions[data.get("version")] = self.versions.get(data.get("version"), 0) + 1
            except (OSError, http.client.HTTPException) as e:
                self.errors.append(repr(e))
            time.sleep(0.05)
        self.seconds = time.monotonic() - t0

    @property
    def total(self):
        return sum(self.statuses.values()) + len(self.errors)

    @property
    def bad(self):
        return sum(n for s, n in self.statuses.items() if not 200 <= s < 300) + len(self.errors)

    def summary(self):
        return "%d requests in %.0f s, statuses %s, errors %s, versions %s" % (
            self.total,
            self.seconds,
            self.statuses,
            self.errors[:5],
            self.versions,
        )


def under_load(name, *args, log):
    load = Load()
    load.start()
    time.sleep(1)
    try:
        r = playbook(name, *args, log=log)
    finally:
        load.stop.set()
        load.join()
    with open(os.path.join(ROOT, "tests", "output", "lab", log + ".load.txt"), "w") as f:
        f.write(load.summary() + "\n")
    return r, load


@pytest.fixture(scope="module")
def release_dirs(tmp_path_factory):
    """Sources of the releases the tests deploy: the sample app with a VERSION file; V3 is broken (READY_FAIL)."""
    base = tmp_path_factory.mktemp("releases")
    out = {}
    for version in (V2, V3, V4):
        d = base / version
        shutil.copytree(os.path.join(ROOT, "tests", "fixtures", "sample-app"), d)
        (d / "VERSION").write_text(version + "\n")
        if version == V3:
            (d / "READY_FAIL").write_text("this release fails its health check\n")
        out[version] = str(d)
    return out


@pytest.fixture(scope="module")
def migrations(tmp_path_factory):
    """A migration directory for deploy_migrate_source: one file that records V2 in a table release_notes."""
    d = tmp_path_factory.mktemp("migrations")
    (d / ("%d_release_notes.sql" % MIGRATION)).write_text(
        "CREATE TABLE IF NOT EXISTS release_notes (release text NOT NULL, at timestamptz NOT NULL DEFAULT now());\n"
        "INSERT INTO release_notes (release) VALUES ('%s');\n" % V2
    )
    return str(d)


def deploy_args(version, source, migrations=None):
    """deploy.yml's extra vars: the version, its source, and (with migrations) the migrations to apply first."""
    args = ["-e", "release_version=" + version, "-e", "lab_release_source=" + source]
    if migrations:
        args += ["-e", "deploy_migrate_source=" + migrations, *MIGRATE]
    return args


def deploy(version, source, log, migrations=None):
    return under_load("playbooks/deploy.yml", *deploy_args(version, source, migrations), log=log)


def on_db1(sql):
    r = on("db1", "sudo", "-n", "-u", "postgres", "psql", "-XAtq", "-d", "ierahkwa", "-c", '"%s"' % sql)
    assert r.returncode == 0, r.stderr
    return r.stdout.strip()


def migration_recorded():
    """Whether db1 records this run's migration (no record table at all on a lab no migration ran on)."""
    if on_db1("SELECT to_regclass('public.schema_migrations') IS NULL") == "t":
        return False
    return on_db1("SELECT count(*) FROM public.schema_migrations WHERE version = %d" % MIGRATION) == "1"  # noqa: S608


def release_notes_of(version):
    return on_db1("SELECT count(*) FROM release_notes WHERE release = '%s'" % version)  # noqa: S608 (test values)


def link(host, name):
    r = on(host, "readlink", "%s/%s" % (RELEASES, name))
    return r.stdout.strip()


def served_version(host):
    r = on(host, "curl", "-sS", "--max-time", "5", "http://127.0.0.1:3000/")
    return json.loads(r.stdout)["version"]


@pytest.fixture(scope="module")
def before(converged):
    """The release each app host runs before these tests (1 on a lab site.yml just converged)."""
    return {h: link(h, "current") for h in APPS}


def test_deploy_under_check_mode_reports_the_changes_and_makes_none(before, release_dirs, migrations):
    pids = {h: on(h, "pgrep", "-f", "-d,", "api/current/server.js").stdout.strip() for h in APPS}
    args = deploy_args(V2, release_dirs[V2], migrations)
    r = playbook("playbooks/deploy.yml", "--check", "--diff", *args, log="deploy-2-check")
    assert r.returncode == 0, problems(r)
    stats = recap(r.stdout)
    # what a real run would do, host by host: the release placed, the migration applied
    assert all(stats[h]["changed"] > 0 for h in APPS), stats
    out = " ".join(r.stdout.split())
    for h in APPS:
        assert "%s: would place release %s of api" % (h, V2) in out, problems(r)
    assert "Would apply: %d_release_notes" % MIGRATION in out, problems(r)
    # and nothing done: links, release directories, the running processes, the database, the edge's upstream
    for h in APPS:
        assert link(h, "current") == before[h]
        assert on(h, "test", "-e", "%s/releases/%s" % (RELEASES, V2)).returncode == 1
        assert on(h, "pgrep", "-f", "-d,", "api/current/server.js").stdout.strip() == pids[h]
        server = "%s.%d:3000" % (NET, ADDRESSES[h])
        r2 = on("edge1", "sudo", "-n", "/usr/local/lib/ierahkwa/nginx-drain", "status", "api", server)
        assert r2.stdout.strip() == "in service: api " + server, r2.stdout + r2.stderr
    assert not migration_recorded()


def test_deploy_new_release_without_an_error_at_the_edge(before, release_dirs, migrations):
    r, load = deploy(V2, release_dirs[V2], "deploy-2", migrations)
    assert r.returncode == 0, problems(r)
    # the migration, once, on db1, before the first batch
    assert migration_recorded() and release_notes_of(V2) == "1"
    applied = r.stdout.index("Applied: %d_release_notes" % MIGRATION)
    assert applied < r.stdout.index("Deploy | out of the edge upstreams")
    for h in APPS:
        assert link(h, "current") == "releases/" + V2
        assert link(h, "previous") == before[h], "the release it replaced is recorded"
        assert on(h, "test", "-d", "%s/%s" % (RELEASES, before[h])).returncode == 0, "the old release is kept"
        assert served_version(h) == V2
    # node_modules of the release (npm ci --omit=dev from its package-lock.json): /db works through pgBouncer
    status, data = get("/db")
    assert status == 200 and data["version"] == V2, data
    seen = {get("/")[1]["version"] for _request in range(6)}
    assert seen == {V2}
    assert load.total > 50 and load.bad == 0, load.summary()
    assert V2 in load.versions, load.summary()


def test_second_deploy_of_the_same_release_changes_nothing(before, release_dirs, migrations):
    r = playbook("playbooks/deploy.yml", *deploy_args(V2, release_dirs[V2], migrations), log="deploy-2-again")
    assert r.returncode == 0, problems(r)
    stats = recap(r.stdout)
    assert stats and {h: s["changed"] for h, s in stats.items()} == {h: 0 for h in stats}
    # the migration is not applied again
    assert "Applied: nothing" in " ".join(r.stdout.split()), problems(r)
    assert release_notes_of(V2) == "1"


def test_release_failing_its_health_check_is_rolled_back_without_an_error_at_the_edge(before, release_dirs):
    r, load = deploy(V3, release_dirs[V3], "deploy-3-broken")
    out = " ".join((r.stdout + r.stderr).split())
    assert r.returncode != 0
    assert "the deployment failed and was rolled back" in out, problems(r)
    assert "api: release %s failed, back on release %s" % (V3, V2) in out, problems(r)
    stats = recap(r.stdout)
    assert stats["app1"]["failed"] == 1
    # the first batch failed: app2 was never touched
    assert stats["app2"]["changed"] == 0
    for h in APPS:
        assert link(h, "current") == "releases/" + V2
        assert link(h, "previous") == before[h]
        assert served_version(h) == V2
        # the edge has every app host back in its upstream
        server = "%s.%d:3000" % (NET, ADDRESSES[h])
        r2 = on("edge1", "sudo", "-n", "/usr/local/lib/ierahkwa/nginx-drain", "status", "api", server)
        assert r2.stdout.strip() == "in service: api " + server, r2.stdout + r2.stderr
    assert load.total > 50 and load.bad == 0, load.summary()
    assert set(load.versions) == {V2}, "the broken release never served a request: " + load.summary()


def test_old_releases_are_pruned_to_release_keep(before, release_dirs):
    r, load = deploy(V4, release_dirs[V4], "deploy-4")
    assert r.returncode == 0, problems(r)
    assert load.bad == 0, load.summary()
    for h in APPS:
        r = on(h, "ls", "-1", RELEASES + "/releases")
        # release_keep 3 (inventories/lab/group_vars/app.yml): the three newest, the current and previous among them
        # (app2 never got the broken V3: the first batch failed)
        kept = r.stdout.split()
        assert len(kept) == 3 and {V2, V4} <= set(kept), kept
        assert (V3 in kept) == (h == "app1"), kept
        assert link(h, "current") == "releases/" + V4
        assert link(h, "previous") == "releases/" + V2
    assert before["app1"].split("/")[-1] not in on("app1", "ls", "-1", RELEASES + "/releases").stdout.split()


def test_rollback_on_demand_without_an_error_at_the_edge(before, release_dirs):
    r, load = under_load("playbooks/rollback.yml", log="rollback")
    assert r.returncode == 0, problems(r)
    for h in APPS:
        assert link(h, "current") == "releases/" + V2
        assert served_version(h) == V2
    # previous becomes the release placed before V2: on app1 none is left (pruned), so the link is gone
    assert on("app1", "test", "-e", RELEASES + "/previous").returncode == 1
    assert get("/")[1]["version"] == V2
    assert load.total > 50 and load.bad == 0, load.summary()
    # a further rollback has nowhere to go on app1: stopped in its checks, before any change on any host
    r = playbook("playbooks/rollback.yml", log="rollback-none")
    out = " ".join(r.stdout.split())
    assert r.returncode != 0 and "app1: release_apps (api) has no previous release recorded" in out, problems(r)
    stats = recap(r.stdout)
    assert all(s["changed"] == 0 for s in stats.values())
