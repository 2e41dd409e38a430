"""Preflight's rules across hosts in real ansible-playbook runs: a deliberately broken inventory stops before any
task runs on any host, with every problem in one message; the repository's own inventories pass."""

import os
import subprocess
import textwrap

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

BROKEN = """
all:
  vars:
    ansible_connection: local
    platform_environment: production
  children:
    edge:
      hosts:
        edge1:
          certbot_email: ''
          nginx_upstreams: [{name: api, group: app, port: 3000}]
          nginx_sites: [{name: api, server_names: [], upstream: api}]
    app:
      hosts:
        app1:
          platform_memory_mb: 512
          pm2_apps: [{name: api, instances: 2, max_memory_restart: 300M}]
          service_services: [{name: worker, memory_max: 128M}]
    db:
      children:
        db_primary:
          hosts:
            db1:
              postgresql_max_connections: 50
              pgbouncer_databases: [{name: app, max_db_connections: 60}]
    redis:
      hosts:
        redis1:
          redis_instances: [{name: cache, port: 6379}, {name: queue, port: 6379}]
"""


def env(collections_tree):
    e = {k: v for k, v in os.environ.items() if not k.startswith('ANSIBLE_')}
    e.update(
        ANSIBLE_COLLECTIONS_PATH=collections_tree,
        ANSIBLE_ROLES_PATH=os.path.join(REPO, 'roles'),
        ANSIBLE_NOCOLOR='1',
        ANSIBLE_HOST_KEY_CHECKING='false',
        ANSIBLE_RETRY_FILES_ENABLED='false',
    )
    return e


def test_broken_inventory_stops_before_any_host_task(tmp_path, collections_tree):
    (tmp_path / 'hosts.yml').write_text(textwrap.dedent(BROKEN))
    r = subprocess.run(
        ['ansible-playbook', '-i', str(tmp_path / 'hosts.yml'), os.path.join(REPO, 'playbooks', 'preflight.yml')],
        capture_output=True,
        text=True,
        env=env(collections_tree),
        timeout=300,
        check=False,
    )
    out = r.stdout + r.stderr
    assert r.returncode != 0
    assert '5 inventory problem(s): ' in out, out[-3000:]
    for problem in (
        'app1: memory limits add up to 728 MB but the host has 512 MB (platform_memory_mb): '
        'pm2_apps api (2 x max_memory_restart 300M), service_services worker (memory_max 128M)',
        'db1: pgBouncer pools may open 61 server connections but postgresql_max_connections is 50 with 10 reserved',
        'edge1: production needs certbot_email',
        'edge1: production site api has no server_names',
        'redis1: port 6379 is used twice (redis_instances cache and redis_instances queue)',
    ):
        assert problem in out
    # The only task that ran is the controller-side assert; no later play started.
    assert out.count('TASK [') == 1 and 'PLAY [Preflight | connect]' not in out
    assert 'changed=0' in out and 'ok=1' not in out


@pytest.mark.parametrize('inventory', ['production', 'staging', 'development', 'lab'])
def test_repository_inventories_pass(tmp_path, collections_tree, inventory):
    (tmp_path / 'check.yml').write_text(
        textwrap.dedent("""
        - name: Rules across hosts of a repository inventory
          hosts: localhost
          connection: local
          gather_facts: false
          tasks:
            - name: No problem
              ansible.builtin.assert:
                that: __p | length == 0
                fail_msg: "{{ __p }}"
              vars:
                __p: "{{ hostvars | ierahkwa.platform.inventory_problems(groups) }}"
        """)
    )
    r = subprocess.run(
        ['ansible-playbook', '-i', os.path.join(REPO, 'inventories', inventory), str(tmp_path / 'check.yml')],
        capture_output=True,
        text=True,
        env=env(collections_tree),
        timeout=300,
        check=False,
        cwd=REPO,
    )
    assert r.returncode == 0, (r.stdout + r.stderr)[-3000:]
