"""The whole lab after site.yml (molecule/platform's verify, first of the tests/integration/test_lab*.py files):
--check --diff reports no change, bad input stops in preflight, real SSH logins from the controller, the data tier,
and HTTPS -> nginx -> app -> pgBouncer -> PostgreSQL and back. Molecule's idempotence step has already run site.yml
a second time (changed=0 on every host). Alone (pytest tests/integration/test_lab.py) it makes, converges and
removes a lab of its own (lab_fixtures.py).

Runs with IERAHKWA_LAB_PREFIX=t- and IERAHKWA_LAB_NET=61, so a lab made by `make lab` is left alone.
"""

import json
import os
import subprocess
import time

import pytest
from labkit import (
    ADDRESSES,
    HOSTS,
    KEY,
    KNOWN_HOSTS,
    NET,
    playbook,
    problems,
    recap,
    root_password,
    ssh,
    ssh_password,
)


def test_check_diff_on_converged_lab_reports_no_change(converged):
    r = playbook("playbooks/site.yml", "--check", "--diff", log="site-check")
    assert r.returncode == 0, problems(r)
    stats = recap(r.stdout)
    assert sorted(stats) == HOSTS
    assert {h: (s["changed"], s["failed"]) for h, s in stats.items()} == {h: (0, 0) for h in HOSTS}


@pytest.mark.parametrize(
    "case,host,hostvars,expected",
    [
        (
            "port-70000",
            "app2",
            "bootstrap_firewall_ports: [8080, 70000]",
            "bootstrap_firewall_ports[1]: port 70000 is outside 1-65535",
        ),
        (
            "group-port-70000",
            "edge1",
            "bootstrap_firewall_group_ports: {edge: [443, 70000]}",
            "bootstrap_firewall_group_ports.edge[1]: port 70000 is outside 1-65535",
        ),
        (
            "admin-empty-keys",
            "db1",
            "bootstrap_admin_users: [{name: labadmin, ssh_keys: []}]",
            "bootstrap_admin_users[0] (labadmin) on db1",
        ),
        (
            "admin-no-keys-field",
            "db2",
            "bootstrap_admin_users: [{name: nokey}]",
            "missing required arguments: ssh_keys found in bootstrap_admin_users",
        ),
        (
            "bad-key",
            "mon1",
            "bootstrap_admin_users: [{name: labadmin, ssh_keys: ['not a key']}]",
            "bootstrap_admin_users[0] (labadmin) on mon1",
        ),
        ("bad-choice", "app1", "bootstrap_sshd_permit_root_login: maybe", "bootstrap_sshd_permit_root_login"),
    ],
)
def test_bad_input_fails_in_preflight_before_any_host_changes(converged, tmp_path, case, host, hostvars, expected):
    bad = tmp_path / "bad.yml"
    bad.write_text("all:\n  hosts:\n    %s:\n      %s\n" % (host, hostvars))
    r = playbook("playbooks/site.yml", "-i", str(bad), log="bad-" + case)
    out = r.stdout + r.stderr
    assert r.returncode != 0
    assert expected in " ".join(out.split()), out[-3000:]
    assert host in out
    # any_errors_fatal: the baseline play never starts, on any host
    assert "PLAY [Bootstrap | production baseline]" not in out
    stats = recap(out)
    assert stats and all(s["changed"] == 0 for s in stats.values())
    assert stats[host]["failed"] == 1


@pytest.mark.parametrize("host", HOSTS)
def test_admin_key_login_works_and_root_is_refused(converged, host):
    r = ssh("labadmin", host, "sudo", "-n", "hostname", key=KEY)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == host
    r = ssh("root", host, "true")
    assert r.returncode == 255 and "Permission denied (publickey)" in r.stderr


@pytest.mark.parametrize("host", HOSTS)
def test_etc_hosts_resolves_every_lab_host(converged, host):
    r = ssh("labadmin", host, "getent", "hosts", "edge1", "db2", key=KEY)
    assert r.returncode == 0, r.stderr
    assert "%s.11" % NET in r.stdout and "%s.32" % NET in r.stdout


def test_data_tier_in_the_lab_streams_and_pools(converged):
    # site.yml brought up the data tier: db2 streams from db1, and the application logs in through pgBouncer.
    r = ssh(
        "labadmin",
        "db1",
        "sudo",
        "-n",
        "-u",
        "postgres",
        "psql",
        "-XAtc",
        "'SELECT client_addr, state FROM pg_stat_replication'",
        key=KEY,
    )
    assert r.returncode == 0 and r.stdout.strip() == "%s.32|streaming" % NET, r.stdout + r.stderr
    r = ssh(
        "labadmin",
        "db1",
        "PGPASSWORD=lab-app-password-0123456789",
        "psql",
        "-XAt",
        "'host=127.0.0.1 port=6432 dbname=ierahkwa user=ierahkwa'",
        "-c",
        "'SELECT current_user'",
        key=KEY,
    )
    assert r.returncode == 0 and r.stdout.strip() == "ierahkwa", r.stderr


def test_edge_serves_https_with_headers_and_redirects_http(converged):
    # site.yml brought up nginx on edge1 with its self-signed bootstrap certificate (the lab has no public name for
    # an ACME server to reach; the Molecule edge scenario issues real certificates), in front of the app "api" that
    # PM2 runs from its first release on app1 and app2 (inventories/lab/group_vars/app.yml).
    ip = "%s.%d" % (NET, ADDRESSES["edge1"])
    base = ["curl", "-sS", "-k", "--max-time", "30", "--resolve", "api.ierahkwa.lab:443:" + ip]
    base += ["--resolve", "api.ierahkwa.lab:80:" + ip, "-D", "-", "-o", "/dev/null"]
    r = subprocess.run(base + ["http://api.ierahkwa.lab/x"], capture_output=True, text=True, check=False)
    assert r.stdout.startswith("HTTP/1.1 301") and "Location: https://api.ierahkwa.lab/x" in r.stdout, r.stdout
    r = subprocess.run(base + ["https://api.ierahkwa.lab/"], capture_output=True, text=True, check=False)
    assert r.stdout.startswith("HTTP/2 200"), r.stdout + r.stderr
    for header in ("strict-transport-security", "content-security-policy", "x-frame-options", "x-request-id"):
        assert "\n%s:" % header in r.stdout.lower(), header
    # both app hosts answer behind the edge
    served = set()
    for _attempt in range(8):
        r = subprocess.run(base[:7] + ["https://api.ierahkwa.lab/"], capture_output=True, text=True, check=False)
        served.add(json.loads(r.stdout)["host"])
    assert served == {"app1", "app2"}


def test_edge_to_app_to_pgbouncer_to_postgresql_and_back(converged):
    # A row written on db1 with psql, read back over HTTPS through the edge: nginx -> the app (PM2) -> pgBouncer on
    # db1 (DATABASE_URL, port 6432; a secret in the app's env file) -> PostgreSQL.
    token = "e2e-%d" % time.time_ns()
    table = "CREATE TABLE IF NOT EXISTS public.e2e_probe (token text PRIMARY KEY); "
    table += "GRANT SELECT ON public.e2e_probe TO ierahkwa; "
    # the token is the test's own
    sql = table + "INSERT INTO public.e2e_probe VALUES ('" + token + "')"  # noqa: S608
    r = ssh(
        "labadmin", "db1", "sudo", "-n", "-u", "postgres", "psql", "-XAq", "-d", "ierahkwa", "-c", '"%s"' % sql, key=KEY
    )
    assert r.returncode == 0, r.stdout + r.stderr
    ip = "%s.%d" % (NET, ADDRESSES["edge1"])
    r = subprocess.run(
        ["curl", "-sS", "-k", "--max-time", "30", "--resolve", "api.ierahkwa.lab:443:" + ip]
        + ["-w", "\n%{http_code}", "https://api.ierahkwa.lab/db?probe=" + token],
        capture_output=True,
        text=True,
        check=False,
    )
    body, _newline, status = r.stdout.rpartition("\n")
    assert status == "200", r.stdout + r.stderr
    data = json.loads(body)
    assert data["via"] == "%s.%d:6432" % (NET, ADDRESSES["db1"])
    assert data["rows"] == [{"user": "ierahkwa", "server_port": 5432, "token": token}]


def test_fresh_host_refuses_root_and_passwords_after_handover(converged):
    assert ssh_password("root", "fresh1", root_password(), "true").returncode == 255
    r = ssh_password("labadmin", "fresh1", "any-password", "true")
    assert r.returncode == 255


def test_fresh_host_keys_recorded_and_verified(converged):
    ip = "%s.%d" % (NET, ADDRESSES["fresh1"])
    found = subprocess.run(["ssh-keygen", "-F", ip, "-f", KNOWN_HOSTS], capture_output=True, text=True, check=False)
    assert found.returncode == 0 and "ssh-ed25519" in found.stdout
    r = ssh("labadmin", "fresh1", "true", key=KEY, known_hosts=KNOWN_HOSTS)
    assert r.returncode == 0, r.stderr
    # a different key under that address is refused
    fake = os.path.join(os.path.dirname(KNOWN_HOSTS), "fake_known_hosts")
    with open(fake, "w") as f:
        f.write("%s ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl\n" % ip)
    r = ssh("labadmin", "fresh1", "true", key=KEY, known_hosts=fake, extra=["-o", "HostKeyAlgorithms=ssh-ed25519"])
    assert r.returncode == 255 and "HOST IDENTIFICATION HAS CHANGED" in r.stderr


def test_invalid_sshd_setting_fails_at_validation_and_admin_keeps_access(converged, tmp_path):
    before = ssh("labadmin", "fresh1", "sha256sum", "/etc/ssh/sshd_config.d/00-ierahkwa.conf", key=KEY).stdout
    bad = tmp_path / "bad-sshd.yml"
    bad.write_text("all:\n  hosts:\n    fresh1:\n      bootstrap_sshd_extra_settings: {NotAnOption: 'yes'}\n")
    r = playbook("playbooks/site.yml", "-i", str(bad), "--limit", "fresh1", log="bad-sshd-setting")
    assert r.returncode != 0
    assert "Bad configuration option: NotAnOption" in r.stdout + r.stderr
    after = ssh("labadmin", "fresh1", "sha256sum", "/etc/ssh/sshd_config.d/00-ierahkwa.conf", key=KEY)
    assert after.returncode == 0, after.stderr
    assert after.stdout == before
    assert ssh("labadmin", "fresh1", "sudo", "-n", "true", key=KEY).returncode == 0
