# -*- coding: utf-8 -*-
"""The inventories open node_exporter's port to the monitoring hosts only, on every host (redis hosts included,
whose group_vars replace bootstrap_firewall_ports), through the bootstrap role's firewall_rules filter."""

from __future__ import absolute_import, division, print_function

import json
import os
import subprocess

import pytest

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), '..', '..'))
EXPR = (
    "{{ {'redis': 'redis' in group_names, 'rules': group_names | ierahkwa.platform.firewall_rules("
    "bootstrap_firewall_group_ports | default({}), bootstrap_firewall_ports) | selectattr('port', 'equalto', 9100)"
    " | list} }}"
)


@pytest.mark.parametrize('env', ['production', 'staging', 'development'])
def test_node_exporter_port_open_to_the_monitoring_hosts_only(env):
    inventory = os.path.join(ROOT, 'inventories', env)
    venv_bin = os.path.join(ROOT, '.venv', 'bin')
    env_vars = dict(
        os.environ,
        ANSIBLE_CONFIG=os.path.join(ROOT, 'ansible.cfg'),
        ANSIBLE_COLLECTIONS_PATH=os.path.join(ROOT, '.cache', 'collections'),
        ANSIBLE_LOAD_CALLBACK_PLUGINS='1',
        ANSIBLE_STDOUT_CALLBACK='ansible.builtin.json',
        PATH=venv_bin + os.pathsep + os.environ.get('PATH', ''),
    )
    r = subprocess.run(
        ['ansible', '-i', inventory, 'all', '-m', 'ansible.builtin.debug', '-a', 'msg=' + EXPR],
        capture_output=True,
        text=True,
        env=env_vars,
        cwd=ROOT,
        check=False,
    )
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-2000:]
    hosts = json.loads(r.stdout)['plays'][0]['tasks'][0]['hosts']
    mon = [h for h in hosts if h.startswith('mon1.')]
    assert mon and len(hosts) >= 4
    expected = ['10.10.0.41/32']
    for host, result in hosts.items():
        rules = result['msg']['rules']
        assert len(rules) == 1, (host, rules)
        assert rules[0]['sources'] == expected, (host, rules)
        assert rules[0]['proto'] == 'tcp'
    # The redis hosts' own list keeps the rule.
    assert any(result['msg']['redis'] for result in hosts.values())
