"""A service's environment from Vault: the file, the running process, a rotation seen in --diff as key names only,
the restart by the handler, and the search of the whole Molecule log for every secret and the token.

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
    assert recap_changed(r.stdout)[HOST] == 2  # the file and the handler
    pid, env = service_env(host)
    assert pid != STATE["pid"], "the service was not restarted"
    assert env["DB_PASSWORD"] == digest(DB_V2)


def test_check_diff_after_rotation_changes_nothing(host):
    r = playbook(CONVERGE, "--check", "--diff")
    assert recap_changed(r.stdout)[HOST] == 0
    assert "RUNNING HANDLER" not in r.stdout


def test_one_read_per_path_per_run():
    requests = standin("GET", "/_standin/requests")["requests"]
    reads = [p for m, p, _ns in requests if m == "GET" and p.startswith("/v1/secret/data/demo/")]
    # check, converge, idempotence and the two runs above: 5 runs x 2 paths, whatever the number of lookups.
    assert sorted(set(reads)) == ["/v1/secret/data/demo/api", "/v1/secret/data/demo/db"]
    assert len(reads) == 10, reads


def test_no_secret_or_token_in_any_log():
    with open(os.path.join(EPH, "standin.token")) as f:
        token = f.read().strip()
    # Five runs over one host through the podman connection write less than the SSH scenarios at -vvv.
    size = assert_no_secret([DB_V1, API_V1, DB_V2, token], min_outputs=2, min_log=20000)
    print("log searched: %d characters; rotation run: %.1fs" % (size, STATE.get("rotation_seconds", 0)))
