"""The data tier on a primary and a replica: behaviour, not files.

Runs in file order: settings, replication, pooling under load, migrations, backups and the restore drill,
point-in-time recovery, recovery after a crash, promotion, and last the search of every log for the passwords.
"""

import json
import os
import re
import sys
import tempfile
import time

import pytest

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "..", "shared"))
from molecule_helpers import assert_no_secret, playbook  # noqa: E402

PRIMARY = "ierahkwa-mol-db1"
REPLICA = "ierahkwa-mol-db2"
APP_PASSWORD = "mol-App-Secret-4711"
SECRETS = [
    APP_PASSWORD,
    "mol-Repl-Secret-4711",
    "mol-Pgb-Auth-Secret-4711",
    "mol-Pgb-Stats-Secret-4711",
    "mol-Cipher-Secret-4711-abcdef",
]
ARCHIVE_TIMEOUT = 10


def psql(host, sql, db="ierahkwa", port=5432):
    return host.check_output("runuser -u postgres -- psql -XAt -p %s -d %s -c %s", str(port), db, sql)


@pytest.fixture(scope="module")
def primary(host):
    return host.get_host("podman://" + PRIMARY)


@pytest.fixture(scope="module")
def replica(host):
    return host.get_host("podman://" + REPLICA)


def wait_archived(primary):
    """Switches WAL and waits until the segment is in the archive."""
    seg = psql(primary, "SELECT pg_walfile_name(pg_switch_wal())")
    for _attempt in range(60):
        if psql(primary, "SELECT coalesce(last_archived_wal, '') FROM pg_stat_archiver") >= seg:
            return
        time.sleep(1)
    raise AssertionError("segment %s was not archived" % seg)


# -- Check mode ------------------------------------------------------------------------------------------------


def test_check_and_diff_on_the_converged_hosts_report_no_change(host):
    r = playbook("data.yml", "--check", "--diff")
    recap = re.findall(
        r"^(ierahkwa-mol-db\d)\s+: ok=\d+\s+changed=(\d+)\s+unreachable=0\s+failed=(\d+)", r.stdout, re.M
    )
    assert sorted(recap) == [("ierahkwa-mol-db1", "0", "0"), ("ierahkwa-mol-db2", "0", "0")], recap


# -- PostgreSQL settings ---------------------------------------------------------------------------------------


def test_cluster_has_checksums_scram_and_derived_memory(primary):
    assert psql(primary, "SHOW data_checksums") == "on"
    assert psql(primary, "SHOW password_encryption") == "scram-sha-256"
    assert psql(primary, "SHOW shared_buffers") == "256MB"  # 25% of postgresql_memory_mb 1024
    assert psql(primary, "SHOW max_connections") == "100"
    assert psql(primary, "SHOW log_destination") == "jsonlog"
    assert psql(primary, "SHOW archive_timeout") == "%ds" % ARCHIVE_TIMEOUT
    methods = psql(primary, "SELECT DISTINCT auth_method FROM pg_hba_file_rules").split()
    assert "trust" not in methods and "md5" not in methods and "password" not in methods
    assert (
        psql(
            primary,
            "SELECT rolpassword LIKE 'SCRAM-SHA-256$%' FROM pg_authid WHERE rolname = 'ierahkwa'",
            db="postgres",
        )
        == "t"
    )


def test_slow_queries_are_logged_as_json(primary):
    psql(primary, "SELECT pg_sleep(1.2)")
    time.sleep(1)
    out = primary.check_output("cat /var/log/postgresql/postgresql-*.json")
    entries = [json.loads(line) for line in out.splitlines()]
    assert any("pg_sleep(1.2)" in e.get("message", "") and e["message"].startswith("duration:") for e in entries)


def test_pg_stat_statements_records_queries(primary):
    psql(primary, "SELECT 4711 AS marker")
    assert int(psql(primary, "SELECT count(*) FROM pg_stat_statements WHERE query LIKE '%AS marker%'")) >= 1


def test_password_login_without_scram_is_refused(primary):
    # The app role logs in over TCP with its password; a wrong password is refused.
    ok = primary.run("PGPASSWORD=%s psql -XAt -h 127.0.0.1 -U ierahkwa -d ierahkwa -c 'SELECT 1'", APP_PASSWORD)
    assert ok.rc == 0 and ok.stdout.strip() == "1"
    bad = primary.run("PGPASSWORD=wrong psql -XAt -h 127.0.0.1 -U ierahkwa -d ierahkwa -c 'SELECT 1'")
    assert bad.rc != 0 and "password authentication failed" in bad.stderr


def test_pgbouncer_logs_in_with_scram_over_tls_and_keeps_superusers_out(primary):
    conn = "host=127.0.0.1 port=6432 dbname=ierahkwa user=ierahkwa sslmode=require"
    ok = primary.run("PGPASSWORD=%s psql -XAt %s -c 'SELECT current_user'", APP_PASSWORD, conn)
    assert ok.rc == 0 and ok.stdout.strip() == "ierahkwa", ok.stderr
    bad = primary.run("PGPASSWORD=wrong psql -XAt %s -c 'SELECT 1'", conn)
    assert bad.rc != 0 and "SASL authentication failed" in bad.stderr
    su = primary.run("PGPASSWORD=x psql -XAt 'host=127.0.0.1 port=6432 dbname=ierahkwa user=postgres' -c 'SELECT 1'")
    assert su.rc != 0
    console = "host=127.0.0.1 port=6432 dbname=pgbouncer user=pgbouncer_stats"
    stats = primary.run("PGPASSWORD=mol-Pgb-Stats-Secret-4711 psql -XAt %s -c 'SHOW POOLS'", console)
    assert stats.rc == 0 and "ierahkwa" in stats.stdout


# -- Replication -----------------------------------------------------------------------------------------------


def test_replica_streams_and_serves_reads(primary, replica):
    assert psql(replica, "SELECT pg_is_in_recovery()") == "t"
    marker = str(time.time())
    psql(primary, "CREATE TABLE IF NOT EXISTS repl_check (v text); INSERT INTO repl_check VALUES ('%s')" % marker)
    for _attempt in range(30):
        if psql(replica, "SELECT count(*) FROM repl_check WHERE v = '%s'" % marker) == "1":
            break
        time.sleep(0.5)
    else:
        raise AssertionError("the row never reached the replica")
    # Lag is visible on the primary, through the replica's slot.
    state = psql(
        primary,
        "SELECT state, slot_name IS NOT NULL FROM pg_stat_replication JOIN pg_replication_slots ON active_pid = pid",
    )
    assert state == "streaming|t"
    write = replica.run("runuser -u postgres -- psql -XAt -d ierahkwa -c 'INSERT INTO repl_check VALUES (1)'")
    assert write.rc != 0 and "read-only transaction" in write.stderr


# -- pgBouncer -------------------------------------------------------------------------------------------------


def test_1000_clients_through_pgbouncer_without_a_connection_error(primary):
    env = "PGPASSWORD=%s" % APP_PASSWORD
    primary.check_output("%s pgbench -q -i -s 1 -h 127.0.0.1 -U ierahkwa ierahkwa", env)
    r = primary.run("%s timeout 120 pgbench -n -S -c 1000 -j 4 -T 10 -h 127.0.0.1 -p 6432 -U ierahkwa ierahkwa", env)
    assert r.rc == 0, r.stderr[-2000:]
    assert "number of clients: 1000" in r.stdout
    assert "number of failed transactions: 0" in r.stdout
    assert "error" not in r.stderr.lower()
    # The pools stayed within their budget: server connections of the app role never passed 25 (+1 for auth).
    assert int(psql(primary, "SELECT count(*) FROM pg_stat_activity WHERE usename = 'ierahkwa'")) <= 26


def test_direct_connections_beyond_max_connections_fail(primary):
    env = "PGPASSWORD=%s" % APP_PASSWORD
    r = primary.run("%s timeout 60 pgbench -n -S -c 150 -j 2 -T 2 -h 127.0.0.1 -p 5432 -U ierahkwa ierahkwa", env)
    assert r.rc != 0
    assert "too many clients already" in r.stderr or "remaining connection slots are reserved" in r.stderr


# -- Migrations ------------------------------------------------------------------------------------------------


def write(path, text):
    with open(path, "w") as f:
        f.write(text)


def test_migrations_apply_once_and_a_failing_one_rolls_back(host):
    d = tempfile.mkdtemp(prefix="migrations-")
    write(
        os.path.join(d, "0001_accounts.sql"), "CREATE TABLE accounts (id bigserial PRIMARY KEY, name text NOT NULL);\n"
    )
    write(os.path.join(d, "0002_seed.sql"), "INSERT INTO accounts (name) VALUES ('alice'), ('bob');\n")
    args = ["-e", "migrate_database=ierahkwa", "-e", "migrate_source=" + d, "-e", "migrate_role=ierahkwa"]
    check = playbook("migrate.yml", "--check", *args)
    assert "0001_accounts.sql" in check.stdout and "0002_seed.sql" in check.stdout
    first = playbook("migrate.yml", *args)
    assert "changed=1" in first.stdout
    again = playbook("migrate.yml", *args)
    assert "changed=0" in again.stdout
    write(os.path.join(d, "0003_broken.sql"), "CREATE TABLE audit (id int);\nINSERT INTO nowhere VALUES (1);\n")
    bad = playbook("migrate.yml", *args, check=False)
    assert bad.returncode != 0
    assert "0003_broken.sql" in bad.stdout and "nowhere" in bad.stdout


def test_migration_state_after_the_failure(primary):
    assert psql(primary, "SELECT string_agg(version::text, ',' ORDER BY version) FROM schema_migrations") == "1,2"
    assert psql(primary, "SELECT count(*) FROM accounts") == "2"
    assert psql(primary, "SELECT to_regclass('public.audit') IS NULL") == "t"
    assert psql(primary, "SELECT tableowner FROM pg_tables WHERE tablename = 'accounts'") == "ierahkwa"


# -- Backups and the restore drill -----------------------------------------------------------------------------


def backup_info(primary):
    return json.loads(primary.check_output("runuser -u postgres -- pgbackrest --stanza=main --output=json info"))[0]


def test_timers_are_scheduled(primary):
    for timer in (
        "ierahkwa-pgbackrest-full.timer",
        "ierahkwa-pgbackrest-diff.timer",
        "ierahkwa-pg-restore-test.timer",
        "ierahkwa-pgbackrest-metrics.timer",
    ):
        assert primary.service(timer).is_running, timer
        assert primary.service(timer).is_enabled, timer
    assert (
        primary.run(
            "systemd-analyze verify /etc/systemd/system/ierahkwa-pg*.service /etc/systemd/system/ierahkwa-pg*.timer"
        ).rc
        == 0
    )


def test_restore_drill_passes_on_the_backup_the_timer_takes(primary):
    before = len(backup_info(primary)["backup"])
    primary.check_output("systemctl start ierahkwa-pgbackrest@diff.service")  # the unit the diff timer starts
    backups = backup_info(primary)["backup"]
    assert len(backups) == before + 1 and backups[-1]["type"] == "diff"
    r = playbook("restore-test.yml", "-l", PRIMARY)
    assert '"backup": "%s"' % backups[-1]["label"] in r.stdout
    assert '"result": "ok"' in r.stdout
    metrics = primary.check_output("cat /var/lib/prometheus/node-exporter/pg_restore_test.prom")
    assert 'ierahkwa_pg_restore_test_last_run_success{stanza="main"} 1' in metrics
    backup_metrics = primary.check_output("cat /var/lib/prometheus/node-exporter/pgbackrest_backup_diff.prom")
    assert 'ierahkwa_pgbackrest_backup_last_run_success{stanza="main",type="diff"} 1' in backup_metrics


def test_restore_drill_fails_loudly_on_a_corrupted_backup(primary):
    label = backup_info(primary)["backup"][-1]["label"]
    base = "/var/lib/pgbackrest/backup/main/%s/pg_data/base" % label
    victim = primary.check_output("find %s -type f -size +8k | head -1", base)
    if not victim:  # a diff backup may hold only small files: damage the full backup it depends on
        label = [b for b in backup_info(primary)["backup"] if b["type"] == "full"][-1]["label"]
        base = "/var/lib/pgbackrest/backup/main/%s/pg_data/base" % label
        victim = primary.check_output("find %s -type f -size +8k | head -1", base)
    assert victim
    primary.check_output("cp -p %s /root/victim.orig", victim)
    try:
        primary.check_output(
            "printf 'damage-damage-damage-damage' | dd of=%s bs=1 seek=64 conv=notrunc status=none", victim
        )
        r = playbook("restore-test.yml", "-l", PRIMARY, check=False)
        assert r.returncode != 0
        assert "RESTORE TEST FAILED" in r.stdout
        metrics = primary.check_output("cat /var/lib/prometheus/node-exporter/pg_restore_test.prom")
        assert 'ierahkwa_pg_restore_test_last_run_success{stanza="main"} 0' in metrics
    finally:
        primary.check_output("cp -p /root/victim.orig %s", victim)


# -- Point-in-time recovery ------------------------------------------------------------------------------------


def test_restore_refuses_a_running_primary(primary):
    r = playbook("restore.yml", "-l", PRIMARY, check=False)
    assert r.returncode != 0 and "restore refused" in r.stdout
    assert psql(primary, "SELECT pg_is_in_recovery()") == "f"


def test_point_in_time_recovery_brings_back_exactly_the_rows_before_the_target(primary):
    psql(primary, "CREATE TABLE pitr (i int PRIMARY KEY); INSERT INTO pitr SELECT generate_series(1, 500)")
    time.sleep(1.1)
    target = psql(primary, "SELECT clock_timestamp()")
    time.sleep(1.1)
    psql(primary, "INSERT INTO pitr SELECT generate_series(501, 800)")
    psql(primary, "DROP TABLE accounts CASCADE")
    wait_archived(primary)
    playbook(
        "restore.yml",
        "-l",
        PRIMARY,
        "-e",
        "restore_force=true",
        "-e",
        "restore_target_type=time",
        "-e",
        "restore_target='%s'" % target,
    )
    assert psql(primary, "SELECT count(*), min(i), max(i) FROM pitr") == "500|1|500"
    assert psql(primary, "SELECT count(*) FROM accounts") == "2"  # the dropped table is back
    assert primary.check_output("ls -d /var/lib/postgresql/15/main.pre-restore-* | wc -l") != "0"


def test_after_a_crash_every_row_older_than_archive_timeout_comes_back(primary):
    psql(primary, "CREATE TABLE crash (i int, at timestamptz DEFAULT clock_timestamp())")
    psql(primary, "INSERT INTO crash (i) SELECT generate_series(1, 1000)")
    time.sleep(ARCHIVE_TIMEOUT + 8)  # older than one archive_timeout window: must survive
    psql(primary, "INSERT INTO crash (i) SELECT generate_series(1001, 1100)")  # may be lost (inside the window)
    # The machine dies: every process of the server killed at once, then the unit kept from restarting it.
    primary.check_output(
        "systemctl kill --signal=KILL postgresql@15-main.service && systemctl stop postgresql@15-main.service"
    )
    playbook("restore.yml", "-l", PRIMARY)
    assert psql(primary, "SELECT count(*) FROM crash WHERE i <= 1000") == "1000"
    assert int(psql(primary, "SELECT count(*) FROM crash")) in (1000, 1100)


# -- Promotion -------------------------------------------------------------------------------------------------


def test_replica_rebuilt_after_the_primary_was_restored(primary, replica):
    # The restores started new timelines on the primary: the replica is rebuilt from it.
    playbook("data.yml", "-e", "postgresql_replica_rebuild=true", "-l", "%s,%s" % (PRIMARY, REPLICA))
    assert psql(replica, "SELECT count(*) FROM crash WHERE i <= 1000") == "1000"


def test_promotion_makes_the_replica_writable_and_fences_the_old_primary(primary, replica):
    playbook("promote-replica.yml", "-e", "promote_host=" + REPLICA)
    assert psql(replica, "SELECT pg_is_in_recovery()") == "f"
    psql(replica, "INSERT INTO repl_check VALUES ('written on the promoted replica')")
    assert psql(replica, "SELECT count(*) FROM repl_check WHERE v = 'written on the promoted replica'") == "1"
    assert not primary.service("postgresql@15-main").is_running
    assert primary.file("/etc/postgresql/15/main/start.conf").content_string.strip() == "manual"


# -- Secrets ---------------------------------------------------------------------------------------------------


def test_no_password_in_any_output_at_vvv(host):
    # Every playbook above ran at -vvv (data.yml among them); the log also holds converge and idempotence.
    assert_no_secret(SECRETS)
