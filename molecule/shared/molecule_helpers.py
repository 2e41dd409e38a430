"""Helpers shared by the Molecule verifiers: run a project playbook against the scenario's inventory."""

import os
import re
import subprocess
import time

EPH = os.environ.get("MOLECULE_EPHEMERAL_DIRECTORY", "/nonexistent")
PROJECT = os.environ.get(
    "MOLECULE_PROJECT_DIRECTORY", os.path.abspath(os.path.join(os.path.dirname(__file__), "../.."))
)
OUTPUTS = []  # every playbook output of a test run, for searches such as "no password anywhere"


def playbook(name, *args, check=True, timeout=900):
    """Runs a project playbook against the scenario's inventory, at -vvv, as a user would."""
    env = dict(os.environ)
    env.update(
        ANSIBLE_CONFIG=os.path.join(PROJECT, "ansible.cfg"),
        ANSIBLE_COLLECTIONS_PATH=os.path.join(PROJECT, ".cache/collections"),
        ANSIBLE_LOG_PATH=os.path.join(EPH, "ansible.log"),
        ANSIBLE_PIPELINING="true",
        ANSIBLE_HOST_KEY_CHECKING="false",
        ANSIBLE_FORCE_COLOR="false",
        ANSIBLE_NOCOLOR="true",
    )
    path = name if os.path.isabs(name) else os.path.join(PROJECT, "playbooks", name)
    started = time.time()
    r = subprocess.run(
        [os.path.join(PROJECT, ".venv/bin/ansible-playbook"), "-vvv", "-i", os.path.join(EPH, "inventory"), path]
        + list(args),
        capture_output=True,
        text=True,
        env=env,
        timeout=timeout,
        check=False,
    )
    r.seconds = round(time.time() - started, 1)
    OUTPUTS.append(r.stdout + r.stderr)
    if check:
        assert r.returncode == 0, failure(r.stdout) + r.stderr[-2000:]
    return r


def failure(out):
    """The lines of a playbook's output around its failures (its -vvv output is too long to show whole)."""
    lines = out.splitlines()
    keep = [i for i, line in enumerate(lines) if line.startswith(("fatal:", "failed:", "[ERROR]"))]
    return "\n".join("\n".join(lines[i : i + 40]) for i in keep[:3]) or out[-3000:]


def recap_changed(out):
    """changed= counts of every host in a PLAY RECAP."""
    return {m.group(1): int(m.group(2)) for m in re.finditer(r"^(\S+)\s+: ok=\d+\s+changed=(\d+)", out, re.M)}


def assert_no_secret(secrets, min_outputs=8, min_log=100000):
    """None of the secrets in the scenario's Ansible log (converge, idempotence, every playbook of the tests at
    -vvv) or in any output the tests captured. Returns the log's length."""
    assert len(OUTPUTS) >= min_outputs
    with open(os.path.join(EPH, "ansible.log")) as f:
        log = f.read()
    assert len(log) > min_log, "the Molecule log is missing or short"
    for secret in secrets:
        assert secret not in log, "a password is in the Molecule log"
        for out in OUTPUTS:
            assert secret not in out, "a password is in a playbook's output"
    return len(log)
