"""The README's main job, end to end on a lab of its own: lab up, site.yml, idempotence, --check --diff,
bad input stopped in preflight, and real SSH logins from the controller. The lab is removed afterwards.

Runs with IERAHKWA_LAB_PREFIX=t- and IERAHKWA_LAB_NET=61, so a lab made by `make lab` is left alone.
"""

import os
import re
import subprocess

import pytest

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
HOSTS = ["app1", "app2", "db1", "db2", "edge1", "mon1"]
NET = "10.89.61"
ADDRESSES = {"edge1": 11, "app1": 21, "app2": 22, "db1": 31, "db2": 32, "mon1": 41}
ENV = dict(os.environ, IERAHKWA_LAB_PREFIX="t-", IERAHKWA_LAB_NET="61", ANSIBLE_FORCE_COLOR="0", ANSIBLE_NOCOLOR="1")
KEY = os.path.join(ROOT, ".cache", "lab", "id_ed25519")
RECAP = re.compile(r"^(\S+)\s+: ok=(\d+)\s+changed=(\d+)\s+unreachable=(\d+)\s+failed=(\d+)", re.M)
LOGDIR = os.path.join(ROOT, "tests", "output", "lab")


def playbook(name, *args, log):
    os.makedirs(LOGDIR, exist_ok=True)
    r = subprocess.run(
        ["ansible-playbook", "-i", "inventories/lab", *args, name],
        cwd=ROOT,
        env=ENV,
        capture_output=True,
        text=True,
        timeout=1800,
        check=False,
    )
    with open(os.path.join(LOGDIR, log + ".log"), "w") as f:
        f.write(r.stdout + r.stderr)
    return r


def recap(output):
    return {
        m[0]: {"ok": int(m[1]), "changed": int(m[2]), "unreachable": int(m[3]), "failed": int(m[4])}
        for m in RECAP.findall(output)
    }


@pytest.fixture(scope="module")
def lab():
    # start from bare hosts even if an interrupted run left this lab behind
    playbook("lab/lab.yml", "-e", "lab_state=absent", log="lab-clean")
    r = playbook("lab/lab.yml", log="lab-up")
    assert r.returncode == 0, r.stdout[-3000:]
    yield
    playbook("lab/lab.yml", "-e", "lab_state=absent", log="lab-down")


@pytest.fixture(scope="module")
def converged(lab):
    r = playbook("playbooks/site.yml", log="site-1")
    assert r.returncode == 0, r.stdout[-5000:]
    stats = recap(r.stdout)
    assert sorted(stats) == HOSTS
    assert all(s["failed"] == 0 and s["unreachable"] == 0 for s in stats.values())
    assert all(s["changed"] > 0 for s in stats.values()), "a fresh lab host must be changed by the first run"
    return r


def test_second_run_reports_no_change(converged):
    r = playbook("playbooks/site.yml", log="site-2")
    assert r.returncode == 0, r.stdout[-5000:]
    stats = recap(r.stdout)
    assert sorted(stats) == HOSTS
    assert {h: s["changed"] for h, s in stats.items()} == {h: 0 for h in HOSTS}


def test_check_diff_on_converged_lab_reports_no_change(converged):
    r = playbook("playbooks/site.yml", "--check", "--diff", log="site-check")
    assert r.returncode == 0, r.stdout[-5000:]
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


def ssh(user, host, *cmd, key=None):
    opts = [
        "-o",
        "StrictHostKeyChecking=no",
        "-o",
        "UserKnownHostsFile=/dev/null",
        "-o",
        "BatchMode=yes",
        "-o",
        "ConnectTimeout=5",
        "-o",
        "LogLevel=ERROR",
    ]
    if key:
        opts += ["-i", key]
    return subprocess.run(
        ["ssh", *opts, "%s@%s.%d" % (user, NET, ADDRESSES[host]), *cmd],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )


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
