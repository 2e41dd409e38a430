"""playbooks/rotate-secrets.yml stops before any change when its variables are wrong, naming each wrong variable
(the rotation itself, against PostgreSQL and pgBouncer, is proven in molecule/secrets)."""

import os
import subprocess
import textwrap

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def run(tmp_path, collections_tree, inventory, *extra):
    (tmp_path / 'hosts.yml').write_text(textwrap.dedent(inventory))
    env = {k: v for k, v in os.environ.items() if not k.startswith(('ANSIBLE_', 'VAULT_'))}
    env.update(ANSIBLE_COLLECTIONS_PATH=collections_tree, ANSIBLE_NOCOLOR='1', ANSIBLE_RETRY_FILES_ENABLED='false')
    r = subprocess.run(
        ['ansible-playbook', '-i', str(tmp_path / 'hosts.yml'), os.path.join(REPO, 'playbooks', 'rotate-secrets.yml')]
        + list(extra),
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
        check=False,
    )
    return r.returncode, r.stdout + r.stderr


def test_missing_variables_are_named_and_nothing_runs(tmp_path, collections_tree):
    rc, out = run(
        tmp_path,
        collections_tree,
        """
        all:
          vars: {ansible_connection: local}
          children:
            db_primary:
              hosts: {db1: {}}
        """,
    )
    assert rc != 0
    for name in (
        'rotate_secrets_role',
        'rotate_secrets_vault_path',
        'rotate_secrets_vault_url',
        'rotate_secrets_vault_token',
        'rotate_secrets_database',
    ):
        assert name in out, out[-3000:]
    assert 'rotate_secrets_vault_field' not in out  # has a default
    assert out.count('TASK [') == 1 and 'ok=0' in out


def test_bad_consumer_and_two_primaries_are_named(tmp_path, collections_tree):
    rc, out = run(
        tmp_path,
        collections_tree,
        """
        all:
          vars:
            ansible_connection: local
            rotate_secrets_role: app
            rotate_secrets_vault_path: app/db
            rotate_secrets_vault_url: http://127.0.0.1:9
            rotate_secrets_vault_token: hvs.test-Token
            rotate_secrets_database: app
            rotate_secrets_password_length: 8
            rotate_secrets_consumers: [{name: api, path: /etc/api.env, service: api}]
          children:
            db_primary:
              hosts: {db1: {}, db2: {}}
        """,
    )
    assert rc != 0
    assert 'rotate_secrets_db_host must match exactly one primary (it matched 2;' in out, out[-3000:]
    assert 'rotate_secrets_password_length must be 16 or more' in out
    assert 'rotate_secrets_consumers api needs password_key' in out
    assert 'rotate_secrets_vault_path' not in out and 'rotate_secrets_database' not in out  # those are right
    assert 'hvs.test-Token' not in out
