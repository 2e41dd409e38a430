# -*- coding: utf-8 -*-
"""The grafana role's provisioning, rendered for real: its configure tasks run on the controller (connection
local) with grafana_install false and the paths moved into a temporary directory. Grafana's APT repository is not
reachable here, so the install and the running server are not tested (see docs/monitoring.md)."""

from __future__ import absolute_import, division, print_function

import json
import os
import subprocess
import sys

import yaml

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), '..', '..'))

PLAY = """
- name: Render the grafana role's provisioning
  hosts: localhost
  connection: local
  gather_facts: false
  tasks:
    - name: Grafana role, provisioning only
      ansible.builtin.include_role:
        name: ierahkwa.platform.grafana
"""


def test_provisioning_renders_the_datasource_and_the_dashboards(tmp_path):
    play = tmp_path / 'play.yml'
    play.write_text(PLAY)
    extra = {
        'grafana_install': False,
        'grafana_admin_password': 'unit-Grafana-Admin-4711',
        'grafana_prometheus_url': 'http://10.0.0.5:9090',
        'grafana_dashboards_dir': str(tmp_path / 'dashboards'),
        '_grafana_provisioning_dir': str(tmp_path / 'provisioning'),
        'prometheus_scrape_interval': '15s',
        'ansible_python_interpreter': sys.executable,
    }
    env = dict(os.environ, ANSIBLE_CONFIG=os.path.join(ROOT, 'ansible.cfg'))
    r = subprocess.run(
        ['ansible-playbook', '-i', 'localhost,', str(play), '-e', json.dumps(extra)],
        capture_output=True,
        text=True,
        env=env,
        check=False,
    )
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    assert 'unit-Grafana-Admin-4711' not in r.stdout

    ds = yaml.safe_load((tmp_path / 'provisioning' / 'datasources' / 'ierahkwa.yml').read_text())
    assert ds['apiVersion'] == 1
    [source] = ds['datasources']
    assert (source['type'], source['uid'], source['url'], source['isDefault']) == (
        'prometheus',
        'prometheus',
        'http://10.0.0.5:9090',
        True,
    )
    assert source['jsonData']['timeInterval'] == '15s'

    prov = yaml.safe_load((tmp_path / 'provisioning' / 'dashboards' / 'ierahkwa.yml').read_text())
    [provider] = prov['providers']
    assert provider['type'] == 'file'
    assert provider['options']['path'] == str(tmp_path / 'dashboards')
    shipped = sorted(n for n in os.listdir(os.path.join(ROOT, 'dashboards')) if n.endswith('.json'))
    assert sorted(os.listdir(tmp_path / 'dashboards')) == shipped
    for name in shipped:
        with open(os.path.join(ROOT, 'dashboards', name)) as f:
            assert json.loads((tmp_path / 'dashboards' / name).read_text()) == json.load(f)
