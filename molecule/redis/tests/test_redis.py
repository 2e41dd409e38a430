"""Redis on one host, a cache and a queue instance: behaviour, not files.

Runs in file order: check mode, listeners and authentication, settings per use, validation and live changes,
backup by the timer's unit and restore, kill -9 with AOF, out of memory on the queue, eviction on the cache,
and last the search of every log for the passwords. The tests talk RESP to the instances over the scenario
network (the controller is a client like an application host) and use the podman connection for the rest.
"""

import json
import os
import re
import socket
import sys
import time

import pytest

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "..", "shared"))
from molecule_helpers import EPH, assert_no_secret, failure, playbook  # noqa: E402

HOST = "ierahkwa-mol-redis1"
DEFAULT_PASSWORD = "mol-Redis-Default-Secret-4711"
ADMIN_PASSWORD = "mol-Redis-Admin-Secret-4711"
WORKER_PASSWORD = "mol-Redis-Worker-Secret-4711"
SECRETS = [DEFAULT_PASSWORD, ADMIN_PASSWORD, WORKER_PASSWORD]
PORTS = {"cache": 6379, "queue": 6380}
FIGURES = {}  # measured figures, printed by the last test


class RespError(Exception):
    pass


class Redis:
    """A minimal RESP client: pipelines of commands, errors returned in place of their reply."""

    def __init__(self, ip, port, user=None, password=None):
        self.sock = socket.create_connection((ip, port), timeout=30)
        self.f = self.sock.makefile("rb")
        if password is not None:
            self.call("AUTH", *([user] if user else []), password)

    @staticmethod
    def encode(args):
        out = [b"*%d\r\n" % len(args)]
        for arg in args:
            a = arg if isinstance(arg, bytes) else str(arg).encode()
            out.append(b"$%d\r\n%s\r\n" % (len(a), a))
        return b"".join(out)

    def read(self):
        line = self.f.readline()
        if not line:
            raise ConnectionError("connection closed")
        kind, rest = line[:1], line[1:-2]
        if kind == b"+":
            return rest.decode()
        if kind == b"-":
            return RespError(rest.decode())
        if kind == b":":
            return int(rest)
        if kind == b"$":
            n = int(rest)
            if n < 0:
                return None
            data = self.f.read(n + 2)[:-2]
            return data.decode()
        if kind == b"*":
            n = int(rest)
            return None if n < 0 else [self.read() for _item in range(n)]
        raise ValueError("unexpected reply %r" % line)

    def pipeline(self, cmds, chunk=500):
        replies = []
        for i in range(0, len(cmds), chunk):
            part = cmds[i : i + chunk]
            self.sock.sendall(b"".join(self.encode(c) for c in part))
            replies += [self.read() for _cmd in part]
        return replies

    def call(self, *args):
        r = self.pipeline([args])[0]
        if isinstance(r, RespError):
            raise r
        return r

    def close(self):
        self.sock.close()


def recap(out):
    return re.findall(r"^(ierahkwa-mol-redis1)\s+: ok=\d+\s+changed=(\d+)\s+unreachable=0\s+failed=(\d+)", out, re.M)


@pytest.fixture(scope="module")
def ip(host):
    return host.check_output("hostname -I").split()[0]


def admin(ip, name):
    return Redis(ip, PORTS[name], "ierahkwa-admin", ADMIN_PASSWORD)


def worker(ip, name):
    return Redis(ip, PORTS[name], "worker", WORKER_PASSWORD)


def main_pid(host, name):
    return int(host.check_output("systemctl show -p MainPID --value redis-server@%s.service", name))


def keys_and_ttls(conn, keys):
    values = conn.pipeline([("GET", k) for k in keys])
    ttls = conn.pipeline([("PTTL", k) for k in keys])
    return dict(zip(keys, values, strict=True)), dict(zip(keys, ttls, strict=True))


# -- Check mode ------------------------------------------------------------------------------------------------


def test_check_and_diff_on_the_converged_host_report_no_change(host):
    r = playbook("redis.yml", "--check", "--diff")
    assert recap(r.stdout) == [(HOST, "0", "0")], recap(r.stdout)
    FIGURES["check_diff_seconds"] = r.seconds


# -- Listeners, users, settings --------------------------------------------------------------------------------


def test_instances_listen_on_localhost_and_the_private_address_only(host, ip):
    listeners = host.check_output("ss -ltnH").splitlines()
    for port in PORTS.values():
        local = sorted(
            line.split()[3].rsplit(":", 1)[0] for line in listeners if line.split()[3].endswith(":%d" % port)
        )
        assert local == sorted(["127.0.0.1", "[::1]", ip]), local
    assert host.run("systemctl is-enabled redis-server.service").stdout.strip() == "masked"
    assert host.run("systemctl is-active redis-server.service").stdout.strip() == "inactive"


def test_unauthenticated_access_is_refused_and_apps_cannot_run_dangerous_commands(ip):
    for port in PORTS.values():
        anon = Redis(ip, port)
        for cmd in (("PING",), ("GET", "x"), ("SET", "x", "1"), ("CONFIG", "GET", "*")):
            r = anon.pipeline([cmd])[0]
            assert isinstance(r, RespError) and str(r).startswith("NOAUTH"), (cmd, r)
        wrong = anon.pipeline([("AUTH", "not-the-password")])[0]
        assert isinstance(wrong, RespError) and str(wrong).startswith("WRONGPASS"), wrong
        anon.close()
        # The default user (AUTH with the password only, like requirepass) and the worker are applications.
        for conn in (Redis(ip, port, None, DEFAULT_PASSWORD), Redis(ip, port, "worker", WORKER_PASSWORD)):
            assert conn.call("PING") == "PONG"
            assert conn.call("SET", "probe", "1") == "OK"
            assert conn.call("INFO", "server").startswith("# Server")
            for cmd in (
                ("FLUSHALL",),
                ("FLUSHDB",),
                ("KEYS", "*"),
                ("CONFIG", "SET", "maxmemory", "0"),
                ("SHUTDOWN",),
                ("DEBUG", "SLEEP", "0"),
                ("ACL", "LIST"),
                ("BGSAVE",),
                ("REPLICAOF", "a", "1"),
            ):
                r = conn.pipeline([cmd])[0]
                # DEBUG is off for everybody (enable-debug-command no); the rest is refused by the ACL.
                assert isinstance(r, RespError) and str(r).startswith(("NOPERM", "ERR DEBUG command not allowed")), (
                    cmd,
                    r,
                )
            conn.call("DEL", "probe")
            conn.close()
        # Even the admin cannot run DEBUG or MODULE (disabled in the configuration) nor rewrite the files.
        adm = Redis(ip, port, "ierahkwa-admin", ADMIN_PASSWORD)
        r = adm.pipeline([("DEBUG", "SLEEP", "0")])[0]
        assert isinstance(r, RespError) and "not allowed" in str(r), r
        r = adm.pipeline([("CONFIG", "REWRITE")])[0]
        assert isinstance(r, RespError), r
        adm.close()


def test_acl_files_hold_hashes_only_and_secret_files_are_private(host):
    for name in PORTS:
        acl = host.file("/etc/redis/users-%s.acl" % name)
        assert (acl.user, acl.group, acl.mode) == ("root", "redis", 0o640)
        for secret in SECRETS:
            assert secret not in acl.content_string
        conf = host.file("/etc/redis/redis-%s.conf" % name)
        assert (conf.user, conf.group, conf.mode) == ("root", "redis", 0o640)
    secret = host.file("/etc/redis/ierahkwa-admin.secret")
    assert (secret.user, secret.group, secret.mode) == ("root", "root", 0o600)


def test_eviction_and_persistence_follow_the_use(ip):
    cache, queue = admin(ip, "cache"), admin(ip, "queue")
    assert cache.call("CONFIG", "GET", "maxmemory-policy") == ["maxmemory-policy", "allkeys-lru"]
    assert queue.call("CONFIG", "GET", "maxmemory-policy") == ["maxmemory-policy", "noeviction"]
    assert cache.call("CONFIG", "GET", "appendonly") == ["appendonly", "no"]
    assert cache.call("CONFIG", "GET", "save") == ["save", ""]
    assert queue.call("CONFIG", "GET", "appendonly") == ["appendonly", "yes"]
    assert queue.call("CONFIG", "GET", "appendfsync") == ["appendfsync", "everysec"]
    assert queue.call("CONFIG", "GET", "save") == ["save", "3600 1 300 100 60 10000"]
    for conn in (cache, queue):
        assert conn.call("CONFIG", "GET", "maxmemory") == ["maxmemory", str(8 * 1024 * 1024)]
        assert conn.call("CONFIG", "GET", "protected-mode") == ["protected-mode", "yes"]
        conn.close()


def test_units_are_hardened_and_restart_always(host):
    for name in PORTS:
        show = dict(
            line.split("=", 1)
            for line in host.check_output(
                "systemctl show redis-server@%s.service -p Restart -p User -p ProtectSystem -p NoNewPrivileges "
                "-p PrivateDevices -p ReadWritePaths -p CapabilityBoundingSet",
                name,
            ).splitlines()
        )
        assert show["Restart"] == "always"
        assert show["User"] == "redis"
        assert show["ProtectSystem"] == "strict"
        assert show["NoNewPrivileges"] == "yes"
        assert show["PrivateDevices"] == "yes"
        assert show["CapabilityBoundingSet"] == ""
        assert "/etc/redis" not in show["ReadWritePaths"], show["ReadWritePaths"]


def test_kernel_settings_are_written_and_a_sandbox_is_reported(host):
    assert "vm.overcommit_memory = 1" in host.file("/etc/sysctl.d/60-ierahkwa-redis.conf").content_string
    assert "transparent_hugepage/enabled" in host.file("/etc/tmpfiles.d/ierahkwa-redis-thp.conf").content_string
    if host.file("/proc/sys/vm/overcommit_memory").content_string.strip() != "1":
        with open(os.path.join(EPH, "ansible.log")) as f:
            assert "cannot be written here" in f.read(), "overcommit is off and the run did not say so"


# -- Validation and live changes -------------------------------------------------------------------------------


def test_a_setting_redis_rejects_never_reaches_the_instance(host):
    before = host.check_output("md5sum /etc/redis/redis-cache.conf /etc/redis/redis-queue.conf")
    pids = {n: main_pid(host, n) for n in PORTS}
    r = playbook(
        "redis.yml", "-e", json.dumps({"redis_settings": {"maxmemory-policy": "evict-everything"}}), check=False
    )
    assert r.returncode != 0
    assert "redis-validate" in r.stdout and "maxmemory-policy" in r.stdout, failure(r.stdout)
    assert host.check_output("md5sum /etc/redis/redis-cache.conf /etc/redis/redis-queue.conf") == before
    assert {n: main_pid(host, n) for n in PORTS} == pids


def test_live_settings_change_by_config_set_and_others_restart(host, ip):
    pids = {n: main_pid(host, n) for n in PORTS}
    playbook("redis.yml", "-e", json.dumps({"redis_settings": {"slowlog-max-len": 256}}))
    assert {n: main_pid(host, n) for n in PORTS} == pids, "a CONFIG SET change restarted an instance"
    for name in PORTS:
        conn = admin(ip, name)
        assert conn.call("CONFIG", "GET", "slowlog-max-len") == ["slowlog-max-len", "256"]
        conn.close()
    playbook("redis.yml", "-e", json.dumps({"redis_settings": {"slowlog-max-len": 256, "databases": 8}}))
    restarted = {n: main_pid(host, n) for n in PORTS}
    assert all(restarted[n] != pids[n] for n in PORTS), "databases needs a restart"
    for name in PORTS:
        conn = admin(ip, name)
        assert conn.call("CONFIG", "GET", "databases") == ["databases", "8"]
        conn.close()
    r = playbook("redis.yml")  # back to the inventory
    assert recap(r.stdout) != [(HOST, "0", "0")]
    for name in PORTS:
        conn = admin(ip, name)
        assert conn.call("CONFIG", "GET", "databases") == ["databases", "16"]
        assert conn.call("CONFIG", "GET", "slowlog-max-len") == ["slowlog-max-len", "128"]
        conn.close()
    assert recap(playbook("redis.yml").stdout) == [(HOST, "0", "0")]


# -- Backup and restore ----------------------------------------------------------------------------------------


def test_backup_by_the_timer_unit_then_wipe_then_restore_brings_back_every_key_and_ttl(host, ip):  # noqa: PLR0915
    adm = admin(ip, "queue")
    adm.call("FLUSHALL")
    w = worker(ip, "queue")
    cmds = [("SET", "plain:%d" % i, "value-%d-%s" % (i, "p" * (i % 50))) for i in range(300)]
    cmds += [("SET", "ttl:%d" % i, "expiring-%d" % i, "EX", 600 + 10 * i) for i in range(200)]
    cmds += [("RPUSH", "jobs", "job-%d" % i) for i in range(100)]
    cmds += [("HSET", "job:meta", "field-%d" % i, i) for i in range(50)]
    assert not [r for r in w.pipeline(cmds) if isinstance(r, RespError)]
    strings = ["plain:%d" % i for i in range(300)] + ["ttl:%d" % i for i in range(200)]
    values, ttls = keys_and_ttls(w, strings)
    jobs = w.call("LRANGE", "jobs", 0, -1)
    meta = w.call("HGETALL", "job:meta")
    t_before = time.time()
    assert w.call("DBSIZE") == 502

    # The timer starts this unit; start it the same way.
    assert host.check_output("systemctl show -p Triggers --value ierahkwa-redis-backup@queue.timer") == (
        "ierahkwa-redis-backup@queue.service"
    )
    assert host.service("ierahkwa-redis-backup@queue.timer").is_enabled
    assert not host.service("ierahkwa-redis-backup@cache.timer").is_enabled
    t0 = time.time()
    host.check_output("systemctl start ierahkwa-redis-backup@queue.service")
    FIGURES["backup_unit_seconds"] = round(time.time() - t0, 2)
    result = json.loads(
        host.check_output("journalctl -u ierahkwa-redis-backup@queue.service -o cat --no-pager | grep '^{' | tail -n1")
    )
    assert result["result"] == "ok" and result["keys"] == 502 and result["aof"] is True, result
    FIGURES["backup"] = result
    bid = result["backup"]
    assert host.file("/var/backups/redis/queue/%s/dump.rdb" % bid).exists
    assert host.run("ls /var/backups/redis/queue/%s/appendonlydir/*.manifest", bid).rc == 0
    assert host.file("/srv/offsite/queue/%s/dump.rdb" % bid).exists, "no off-site copy"
    prom = host.file("/var/lib/prometheus/node-exporter/redis_backup_queue.prom").content_string
    assert 'ierahkwa_redis_backup_last_run_success{instance="queue"} 1' in prom
    assert 'ierahkwa_redis_backup_last_keys{instance="queue"} 502' in prom
    last_ok = float(re.search(r'last_success_timestamp_seconds\{instance="queue"\} (\d+)', prom).group(1))
    assert abs(last_ok - time.time()) < 120

    # Wipe: every key gone (FLUSHALL is in the AOF too), instance stopped.
    adm.call("FLUSHALL")
    assert adm.call("DBSIZE") == 0
    w.close()
    adm.close()
    host.check_output("systemctl stop redis-server@queue.service")

    r = playbook("redis-restore.yml", "-e", "redis_restore_instance=queue")
    FIGURES["restore_playbook_seconds"] = r.seconds
    w = worker(ip, "queue")
    after_values, after_ttls = keys_and_ttls(w, strings)
    elapsed_ms = (time.time() - t_before) * 1000
    assert after_values == values
    for k in strings:
        if ttls[k] == -1:
            assert after_ttls[k] == -1, k
        else:
            assert ttls[k] - elapsed_ms - 2000 <= after_ttls[k] <= ttls[k], (k, ttls[k], after_ttls[k])
    assert w.call("LRANGE", "jobs", 0, -1) == jobs
    assert w.call("HGETALL", "job:meta") == meta
    assert w.call("DBSIZE") == 502
    w.close()
    aside = host.check_output("ls -d /var/lib/redis/queue.pre-restore-*").split()
    assert len(aside) == 1 and host.run("ls %s/appendonlydir/*.manifest", aside[0]).rc == 0, "replaced data not kept"

    # The restore rebuilt the AOF: a plain restart (which loads only the AOF) keeps every key.
    host.check_output("systemctl restart redis-server@queue.service")
    time.sleep(1)
    w = worker(ip, "queue")
    assert w.call("DBSIZE") == 502
    assert keys_and_ttls(w, strings)[0] == values
    w.close()


def test_restore_of_an_unknown_backup_changes_nothing(host):
    pid = main_pid(host, "queue")
    r = playbook(
        "redis-restore.yml",
        "-e",
        "redis_restore_instance=queue",
        "-e",
        "redis_restore_backup=20000101T000000Z",
        check=False,
    )
    assert r.returncode != 0 and "no backup '20000101T000000Z' of queue" in r.stdout
    assert main_pid(host, "queue") == pid


# -- Crash -----------------------------------------------------------------------------------------------------


def test_kill_9_systemd_restarts_it_and_aof_keeps_every_acknowledged_write(host, ip):
    n = 5000
    restarts = int(host.check_output("systemctl show -p NRestarts --value redis-server@queue.service"))
    pid = main_pid(host, "queue")
    # The writes and the kill in one shell on the host: redis-cli --pipe returns once every reply is in.
    out = host.check_output(
        "python3 -c %s | REDISCLI_AUTH=%s redis-cli -s /run/redis-queue/redis-server.sock --user worker "
        "--no-auth-warning --pipe > /tmp/ack.out; kill -9 %s; cat /tmp/ack.out",
        "import sys\nfor i in range(%d):\n"
        "    k, v = b'ack:%%d' %% i, b'acked-%%d' %% i\n"
        "    sys.stdout.buffer.write(b'*3\\r\\n$3\\r\\nSET\\r\\n$%%d\\r\\n%%s\\r\\n$%%d\\r\\n%%s\\r\\n'"
        " %% (len(k), k, len(v), v))\n" % n,
        WORKER_PASSWORD,
        str(pid),
    )
    assert "errors: 0, replies: %d" % n in out, out
    for _attempt in range(60):
        new_pid = main_pid(host, "queue")
        if new_pid and new_pid != pid and host.run("redis-admin queue PING").stdout.strip() == "PONG":
            break
        time.sleep(0.5)
    else:
        raise AssertionError("redis-server@queue did not come back after kill -9")
    assert int(host.check_output("systemctl show -p NRestarts --value redis-server@queue.service")) == restarts + 1
    w = worker(ip, "queue")
    got = w.pipeline([("GET", "ack:%d" % i) for i in range(n)])
    missing = [i for i, v in enumerate(got) if v != "acked-%d" % i]
    assert missing == [], "%d acknowledged writes lost, first %s" % (len(missing), missing[:5])
    w.close()
    log = host.check_output("journalctl -u redis-server@queue.service -o cat --no-pager | tail -n 30")
    assert "DB loaded from append only file" in log or "DB loaded from incr file" in log, log


# -- Memory limits ---------------------------------------------------------------------------------------------


def test_queue_refuses_writes_at_maxmemory_and_loses_no_job(ip):
    adm = admin(ip, "queue")
    adm.call("FLUSHALL")
    w = worker(ip, "queue")
    payload = "j" * 1024
    replies = w.pipeline([("SET", "job:%d" % i, payload) for i in range(20000)])
    accepted = [i for i, r in enumerate(replies) if r == "OK"]
    refused = [r for r in replies if isinstance(r, RespError)]
    assert refused and all(str(r).startswith("OOM command not allowed") for r in refused), refused[:1]
    assert 1000 < len(accepted) < 20000
    assert w.call("DBSIZE") == len(accepted)
    assert sum(w.pipeline([("EXISTS", "job:%d" % i) for i in accepted])) == len(accepted)
    r = w.pipeline([("LPUSH", "jobs", "one more")])[0]
    assert isinstance(r, RespError) and str(r).startswith("OOM"), r
    stats = adm.call("INFO", "stats")
    assert "evicted_keys:0\r\n" in stats
    FIGURES["queue_accepted_before_oom"] = len(accepted)
    adm.call("FLUSHALL")
    w.close()
    adm.close()


def test_cache_evicts_and_keeps_accepting_writes(ip):
    adm = admin(ip, "cache")
    adm.call("FLUSHALL")
    w = worker(ip, "cache")
    payload = "c" * 1024
    replies = w.pipeline([("SET", "page:%d" % i, payload) for i in range(20000)])
    assert all(r == "OK" for r in replies), [r for r in replies if r != "OK"][:1]
    kept = w.call("DBSIZE")
    evicted = int(re.search(r"evicted_keys:(\d+)", adm.call("INFO", "stats")).group(1))
    assert kept < 20000 and evicted > 0 and kept + evicted >= 20000, (kept, evicted)
    used = int(re.search(r"used_memory:(\d+)", adm.call("INFO", "memory")).group(1))
    assert used <= 8 * 1024 * 1024 * 1.1, used
    assert w.call("GET", "page:19999") == payload  # the newest write is there
    FIGURES["cache_kept_of_20000"] = kept
    adm.call("FLUSHALL")
    w.close()
    adm.close()


# -- Secrets ---------------------------------------------------------------------------------------------------


def test_no_password_in_any_output_at_vvv(host):
    # Every playbook above ran at -vvv; the log also holds converge and idempotence.
    assert_no_secret(SECRETS)
    print("FIGURES " + json.dumps(FIGURES))
