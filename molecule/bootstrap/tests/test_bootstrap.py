"""Behaviour of the bootstrap role on a lab host, checked from inside it and from the controller."""

import os
import socket
import subprocess
import time

import pytest

NAME = "ierahkwa-mol-bootstrap"
ADDRESS = subprocess.run(
    ["podman", "inspect", "-f", "{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}", NAME],
    capture_output=True,
    text=True,
    check=True,
).stdout.strip()
KEY = os.path.join(os.environ.get("MOLECULE_EPHEMERAL_DIRECTORY", "/nonexistent"), "id_ed25519")
SSH_OPTS = [
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


def ssh(user, *args, extra=()):
    return subprocess.run(
        ["ssh", *SSH_OPTS, *extra, "%s@%s" % (user, ADDRESS), *args],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )


def sshd_settings(host):
    out = host.check_output("/usr/sbin/sshd -T")
    return dict(line.split(" ", 1) for line in out.splitlines() if " " in line)


def test_sshd_effective_config_refuses_root_and_passwords(host):
    s = sshd_settings(host)
    assert s["permitrootlogin"] == "no"
    assert s["passwordauthentication"] == "no"
    assert s["kbdinteractiveauthentication"] == "no"
    assert s["authenticationmethods"] == "publickey"
    assert s["x11forwarding"] == "no"


def test_root_login_over_ssh_is_refused():
    r = ssh("root", "true")
    assert r.returncode == 255
    assert "Permission denied" in r.stderr


def test_password_login_is_not_offered():
    r = ssh(
        "opsadmin",
        "true",
        extra=["-o", "PreferredAuthentications=password,keyboard-interactive", "-o", "PubkeyAuthentication=no"],
    )
    assert r.returncode == 255
    assert "Permission denied (publickey)" in r.stderr


def test_admin_logs_in_with_key_and_escalates():
    r = ssh("opsadmin", "sudo", "-n", "id", "-u", extra=["-i", KEY])
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "0"


def _listen(host, port):
    host.run("systemd-run --unit=probe-%d --collect /usr/bin/python3 -m http.server %d" % (port, port))


def _reachable(port, timeout=3.0):
    try:
        with socket.create_connection((ADDRESS, port), timeout=timeout):
            return True
    except OSError:
        return False


@pytest.fixture
def listeners(host):
    for port in (8080, 8081):
        _listen(host, port)
    deadline = time.time() + 10
    while time.time() < deadline and not all(host.socket("tcp://0.0.0.0:%d" % p).is_listening for p in (8080, 8081)):
        time.sleep(0.3)
    yield
    host.run("systemctl stop probe-8080 probe-8081")


def test_firewall_accepts_listed_port_and_drops_others(host, listeners):
    # both listen inside the host: only the firewall makes the difference
    assert host.socket("tcp://0.0.0.0:8080").is_listening
    assert host.socket("tcp://0.0.0.0:8081").is_listening
    assert _reachable(8080)
    assert not _reachable(8081)
    ruleset = host.check_output("nft list chain inet ierahkwa input")
    assert "policy drop" in ruleset


def test_firewall_survives_a_reload_and_keeps_other_tables(host, listeners):
    host.check_output("nft add table inet other_software")
    try:
        host.check_output("systemctl reload nftables")
        assert "table inet other_software" in host.check_output("nft list tables")
        assert _reachable(8080)
        assert not _reachable(8081)
    finally:
        host.run("nft delete table inet other_software")


def test_chrony_running_and_answering(host):
    assert host.service("chrony").is_running
    assert host.service("chrony").is_enabled
    host.check_output("chronyc -n tracking")


def test_journald_is_persistent(host):
    header = host.check_output("journalctl --header")
    paths = [line.split(":", 1)[1].strip() for line in header.splitlines() if line.startswith("File path:")]
    assert paths and all(p.startswith("/var/log/journal/") for p in paths)
    tag = "ierahkwa-persist-%d" % time.time_ns()
    host.check_output("logger -t %s hello", tag)
    host.check_output("journalctl --flush")
    host.check_output("systemctl restart systemd-journald")
    assert "hello" in host.check_output("journalctl -t %s --no-pager -o cat", tag)


def test_journald_size_caps(host):
    conf = host.file("/etc/systemd/journald.conf.d/50-ierahkwa.conf").content_string
    assert "Storage=persistent" in conf
    assert "SystemMaxUse=1G" in conf


def test_sysctl_applied_live(host):
    assert host.sysctl("net.core.somaxconn") == 4096
    assert host.sysctl("net.ipv4.tcp_syncookies") == 1


def test_unattended_security_upgrades_enabled(host):
    dump = host.check_output("apt-config dump")
    assert 'APT::Periodic::Unattended-Upgrade "1";' in dump
    assert "Debian-Security" in dump
    for timer in ("apt-daily.timer", "apt-daily-upgrade.timer"):
        assert host.service(timer).is_enabled


def test_etc_hosts_lists_inventory_and_extra_entries(host):
    hosts = host.file("/etc/hosts").content_string
    assert "%s ierahkwa-mol-bootstrap" % ADDRESS in hosts
    assert "192.0.2.1 lab-controller" in hosts


def test_logrotate_defaults_valid(host):
    host.check_output("logrotate -d /etc/logrotate.conf")
    assert host.service("logrotate.timer").is_enabled
