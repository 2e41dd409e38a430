"""Shared helpers of the lab end-to-end tests (tests/integration/test_lab*.py): the lab's addresses, ansible-playbook
runs against inventories/lab, and real ssh from the controller.

The tests run on a lab of their own, IERAHKWA_LAB_TEST_PREFIX (t-) on 10.89.IERAHKWA_LAB_TEST_NET (61), so a lab
made by `make lab` is left alone.
"""

import os
import re
import subprocess

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
HOSTS = ["app1", "app2", "db1", "db2", "edge1", "fresh1", "mon1"]
PREFIX = os.environ.get("IERAHKWA_LAB_TEST_PREFIX", "t-")
NETNUM = os.environ.get("IERAHKWA_LAB_TEST_NET", "61")
NET = "10.89." + NETNUM
ADDRESSES = {"edge1": 11, "app1": 21, "app2": 22, "db1": 31, "db2": 32, "mon1": 41, "fresh1": 51}
ENV = dict(
    os.environ,
    IERAHKWA_LAB_PREFIX=PREFIX,
    IERAHKWA_LAB_NET=NETNUM,
    ANSIBLE_FORCE_COLOR="0",
    ANSIBLE_NOCOLOR="1",
    # a fact cache of this lab's own: another lab has hosts of the same names
    ANSIBLE_CACHE_PLUGIN_CONNECTION=os.path.join(ROOT, ".cache", "facts-" + NETNUM),
)
# IERAHKWA_LAB_REUSE=1 (development only): use the lab as it is, already converged; neither create nor remove it.
REUSE = os.environ.get("IERAHKWA_LAB_REUSE") == "1"
KEY = os.path.join(ROOT, ".cache", "lab", "id_ed25519")
KNOWN_HOSTS = os.path.join(ROOT, ".cache", "lab", "known_hosts" + NETNUM)
ROOT_PASSWORD_FILE = os.path.join(ROOT, ".cache", "lab", "root-password")
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


def problems(r):
    """What went wrong in a playbook run, for an assertion message: each fatal/unreachable line with the
    lines after it, then the recap (a failed CI run shows only the end of its output)."""
    lines = (r.stdout + r.stderr).splitlines()
    out = []
    for i, line in enumerate(lines):
        if line.startswith(("fatal:", "failed:", "ERROR!")) or "UNREACHABLE!" in line:
            out.extend(lines[i : i + 6])
    tail = (r.stdout.split("PLAY RECAP")[-1] if "PLAY RECAP" in r.stdout else r.stdout[-1500:]).strip()
    return "\n".join(out)[-4000:] + "\nRECAP " + tail


def recap(output):
    return {
        m[0]: {"ok": int(m[1]), "changed": int(m[2]), "unreachable": int(m[3]), "failed": int(m[4])}
        for m in RECAP.findall(output)
    }


def ssh(user, host, *cmd, key=None, known_hosts=None, extra=()):
    """Real ssh from the controller; with known_hosts, the host key must match that file."""
    check = (
        ["StrictHostKeyChecking=yes", "UserKnownHostsFile=" + known_hosts]
        if known_hosts
        else ["StrictHostKeyChecking=no", "UserKnownHostsFile=/dev/null"]
    )
    opts = []
    for option in [*check, "BatchMode=yes", "ConnectTimeout=30", "LogLevel=ERROR"]:
        opts += ["-o", option]
    if key:
        opts += ["-i", key]
    return subprocess.run(
        ["ssh", *opts, *extra, "%s@%s.%d" % (user, NET, ADDRESSES[host]), *cmd],
        capture_output=True,
        text=True,
        # generous: in CI the lab shares two cores with a Molecule lane (a login once took over 5 s)
        timeout=120,
        check=False,
    )


def ssh_password(user, host, password, *cmd):
    return subprocess.run(
        [
            "sshpass",
            "-p",
            password,
            "ssh",
            "-o",
            "StrictHostKeyChecking=no",
            "-o",
            "UserKnownHostsFile=/dev/null",
            "-o",
            "ConnectTimeout=5",
            "-o",
            "LogLevel=ERROR",
            "-o",
            "PreferredAuthentications=password,keyboard-interactive",
            "-o",
            "PubkeyAuthentication=no",
            "-o",
            "NumberOfPasswordPrompts=1",
            "%s@%s.%d" % (user, NET, ADDRESSES[host]),
            *cmd,
        ],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )


def root_password():
    with open(ROOT_PASSWORD_FILE) as f:
        return f.read().strip()


def on(host, *cmd, user="labadmin"):
    """A command on a lab host as the admin user, over ssh with the lab key."""
    return ssh(user, host, *cmd, key=KEY)
