"""The bare lab hosts' first state, before site.yml changes them: fresh1 takes root by password, and a wrong admin key
stops bootstrap before sshd is hardened. molecule/platform runs these in its prepare step (after create, before
converge); alone they make and remove a lab of their own (tests/integration/lab_fixtures.py).
"""

import subprocess

from labkit import playbook, root_password, ssh_password


def test_fresh_host_starts_with_root_password_login(lab):
    r = ssh_password("root", "fresh1", root_password(), "true")
    assert r.returncode == 0, r.stderr


def test_wrong_admin_key_stops_before_root_login_is_disabled(lab, tmp_path):
    # a valid key the controller does not hold: the admin cannot log in with it
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(tmp_path / "other")], check=True)
    other = (tmp_path / "other.pub").read_text().strip()
    bad = tmp_path / "wrong-key.yml"
    bad.write_text(
        "all:\n  hosts:\n    fresh1:\n      bootstrap_admin_users: [{name: labadmin, ssh_keys: ['%s']}]\n" % other
    )
    r = playbook("playbooks/site.yml", "-i", str(bad), "--limit", "fresh1", log="wrong-admin-key")
    out = " ".join((r.stdout + r.stderr).split())
    assert r.returncode != 0
    assert "admin user 'labadmin' could not log in" in out, out[-3000:]
    assert "TASK [ierahkwa.platform.bootstrap : sshd | Hardened settings" not in r.stdout
    # the host is reachable as before: root by password
    r = ssh_password("root", "fresh1", root_password(), "true")
    assert r.returncode == 0, r.stderr
