"""A service's environment from Vault: the file, the running process, a rotation seen in --diff as key names only,
the restart by the handler; then playbooks/rotate-secrets.yml: --check rotates nothing, a rotation (new KV version,
pgBouncer takes the new password and refuses the old one, env file, service restarted), a failed rotation rolled
back; and the search of the whole Molecule log for every secret and the token.

Runs in file order. The stand-in (started by prepare.yml on the controller) is reached over HTTP; secrets are
compared by hash so that no assertion message can print one.
"""

import hashlib
import json
import os
import re
import sys
import urllib.request

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "..", "shared"))
from molecule_helpers import EPH, PROJECT, assert_no_secret, playbook, recap_changed  # noqa: E402

HOST = "ierahkwa-mol-sec1"
CONVERGE = os.path.join(PROJECT, "molecule", "secrets", "converge.yml")
DB_V1, API_V1, DB_V2 = "mol-Db-Secret-v1-4711", "mol-Api-Secret-v1-4711", "mol-Db-Secret-v2-4711"
STATE = {}


def standin(method, path, body=None):
    with open(os.path.join(EPH, "standin.url")) as f:
        url = f.read().strip()
    with open(os.path.join(EPH, "standin.token")) as f:
        token = f.read().strip()
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(url + path, data=data, method=method, headers={"X-Vault-Token": token})  # noqa: S310
    with urllib.request.urlopen(req, timeout=10) as r:  # noqa: S310 - the scenario's own stand-in
        return json.loads(r.read() or b"{}")


def digest(text):
    return hashlib.sha256(text.encode()).hexdigest()


def service_env(host):
    """The service's main PID and the SHA-256 of the DB_PASSWORD it started with (its unit writes it at start)."""
    pid = host.check_output("systemctl show -p MainPID --value secrets-demo")
    assert pid != "0", "secrets-demo is not running"
    return pid, {"DB_PASSWORD": host.check_output("cat /run/secrets-demo/db_password.sha256")}


def test_env_file_owner_mode_and_keys(host):
    f = host.file("/etc/secrets-demo/demo.env")
    assert (f.user, f.group, f.mode) == ("root", "secrets-demo", 0o640)
    keys = re.findall(r"^([A-Z_]+)=", f.content_string, re.M)
    assert keys == ["API_KEY", "DB_PASSWORD", "DB_USER", "PORT"]
    assert host.file("/etc/secrets-demo").mode == 0o750


def test_service_runs_with_the_secrets(host):
    assert host.service("secrets-demo").is_running
    pid, env = service_env(host)
    assert env["DB_PASSWORD"] == digest(DB_V1)
    STATE["pid"] = pid


def test_rotation_shows_key_names_only_and_restarts(host):
    standin("POST", "/v1/secret/data/demo/db", {"data": {"password": DB_V2, "user": "demo"}})
    r = playbook(CONVERGE, "--diff")
    STATE["rotation_seconds"] = r.seconds
    assert "DB_PASSWORD=******** (old value)" in r.stdout and "DB_PASSWORD=******** (new value)" in r.stdout
    assert "API_KEY=******** (new value)" not in r.stdout and "DB_USER=******** (new value)" not in r.stdout
    assert "RUNNING HANDLER [Restart demo]" in r.stdout
    assert recap_changed(r.stdout)[HOST] == 3  # the role's password (postgresql_users), the file and the handler
    pid, env = service_env(host)
    assert pid != STATE["pid"], "the service was not restarted"
    assert env["DB_PASSWORD"] == digest(DB_V2)


def test_check_diff_after_rotation_changes_nothing(host):
    r = playbook(CONVERGE, "--check", "--diff")
    assert recap_changed(r.stdout)[HOST] == 0
    assert "RUNNING HANDLER" not in r.stdout


def test_one_read_per_path_per_run(host):
    """(Takes ``host`` so that it runs in file order, before the rotation tests: testinfra's parametrized tests
    run before the tests without ``host``.)"""
    requests = standin("GET", "/_standin/requests")["requests"]
    reads = [p for m, p, _ns in requests if m == "GET" and p.startswith("/v1/secret/data/demo/")]
    # check, converge, idempotence and the two runs above: 5 runs x 2 paths, whatever the number of lookups.
    assert sorted(set(reads)) == ["/v1/secret/data/demo/api", "/v1/secret/data/demo/db"]
    assert len(reads) == 10, reads


# -- playbooks/rotate-secrets.yml -------------------------------------------------------------------------------


def current():
    """(newest version, its password) of demo/db in the stand-in."""
    meta = standin("GET", "/v1/secret/metadata/demo/db")["data"]
    data = standin("GET", "/v1/secret/data/demo/db")["data"]["data"]
    return meta["current_version"], data["password"]


def password_at(version):
    return standin("GET", "/v1/secret/data/demo/db?version=%d" % version)["data"]["data"]["password"]


def logs_in(host, which):
    """Whether the role logs in through pgBouncer with the password STATE[which] (never shown by an assertion)."""
    cmd = "PGPASSWORD=%s psql -XAtq -h 127.0.0.1 -p 6432 -U demo -d demo -c 'SELECT 1'" % STATE[which]
    return host.run(cmd).rc == 0


def env_password_digest(host):
    """SHA-256 of DB_PASSWORD in the env file, read as root on the host (the value never leaves it)."""
    return host.check_output(
        "sed -n 's/^DB_PASSWORD=\"\\(.*\\)\"$/\\1/p' /etc/secrets-demo/demo.env"
        " | tr -d '\\n' | sha256sum | cut -d' ' -f1"
    )


def test_rotation_check_mode_rotates_nothing(host):
    version, password = current()
    pid = service_env(host)[0]
    r = playbook("rotate-secrets.yml", "--check")
    assert "Would write version %d of secret/demo/db" % (version + 1) in r.stdout
    assert recap_changed(r.stdout)[HOST] == 0
    assert current() == (version, password)
    assert service_env(host)[0] == pid


def test_rotation_new_version_pgbouncer_env_and_restart(host):
    version, old = current()
    pid = service_env(host)[0]
    r = playbook("rotate-secrets.yml")
    STATE["rotate_seconds"] = r.seconds
    new_version, new = current()
    STATE["rotated_old"], STATE["rotated_new"] = old, new
    assert new_version == version + 1
    assert new != old and len(new) == 32
    assert password_at(version) == old  # the rollback target is kept
    assert logs_in(host, "rotated_new"), "the new password does not log in through pgBouncer"
    assert not logs_in(host, "rotated_old"), "the old password still logs in through pgBouncer"
    assert env_password_digest(host) == digest(new), "the env file does not hold the new password"
    new_pid, env = service_env(host)
    assert new_pid != pid, "the service was not restarted"
    assert env["DB_PASSWORD"] == digest(new), "the service does not run with the new password"
    assert "rolled back" not in r.stdout


def test_converge_after_rotation_changes_nothing(host):
    """Vault, PostgreSQL and the env file agree after a rotation: the normal converge has nothing to do."""
    r = playbook(CONVERGE)
    assert recap_changed(r.stdout)[HOST] == 0


def test_failed_rotation_rolls_back(host):
    version, old = current()
    r = playbook("rotate-secrets.yml", "-e", "rotate_secrets_drill_fail=true", check=False)
    STATE["rollback_seconds"] = r.seconds
    assert r.returncode != 0
    assert "failed at \"Rotate consumer | healthy" in r.stdout and "was rolled back" in r.stdout, r.stdout[-3000:]
    assert "logs in through pgBouncer again" in r.stdout
    newest, value = current()
    STATE["attempted"] = password_at(version + 1)
    assert newest == version + 2, "expected the attempted version and the restored one"
    assert value == old, "Vault's newest version does not hold the old password"
    assert STATE["attempted"] != old
    STATE["restored"] = old
    assert logs_in(host, "restored"), "the old password does not log in again"
    assert not logs_in(host, "attempted"), "the attempted password still logs in"
    assert env_password_digest(host) == digest(old)
    assert service_env(host)[1]["DB_PASSWORD"] == digest(old)


def test_no_secret_or_token_in_any_log():
    with open(os.path.join(EPH, "standin.token")) as f:
        token = f.read().strip()
    # Five runs over one host through the podman connection write less than the SSH scenarios at -vvv.
    rotated = [STATE[k] for k in ("rotated_new", "attempted") if k in STATE]
    assert len(rotated) == 2, "the rotation tests did not run"
    size = assert_no_secret([DB_V1, API_V1, DB_V2, token, *rotated], min_outputs=2, min_log=20000)
    print(
        "log searched: %d characters; rotation run: %.1fs; rotate-secrets.yml: %.1fs, with rollback: %.1fs"
        % (size, STATE.get("rotation_seconds", 0), STATE.get("rotate_seconds", 0), STATE.get("rollback_seconds", 0))
    )
