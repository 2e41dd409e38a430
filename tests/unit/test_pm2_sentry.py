# -*- coding: utf-8 -*-
"""pm2_sentry_dsn reaches every app's env file as SENTRY_DSN: the pm2 role's own expression (_pm2_env in
vars/main.yml) and template (app.env.j2), rendered by ansible-playbook on the controller; an app's env wins, and
an empty DSN writes nothing."""

from __future__ import absolute_import, division, print_function

import json
import os
import subprocess
import sys

import yaml

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), '..', '..'))
ROLE = os.path.join(ROOT, 'roles', 'pm2')
DSN = 'https://0123456789abcdef@sentry.example.org/42'

PLAY = """
- name: The pm2 role's env files
  hosts: localhost
  connection: local
  gather_facts: false
  vars_files: [%s/defaults/main.yml, %s/vars/main.yml]
  tasks:
    - name: Env file of each app
      ansible.builtin.template:
        src: %s/templates/app.env.j2
        dest: "{{ out }}/{{ item.name }}.env"
        mode: "0600"
      loop: "{{ pm2_apps }}"
      no_log: true
""" % (ROLE, ROLE, ROLE)

APPS = [
    {'name': 'api', 'script': '/srv/api/server.js', 'port': 3000, 'env': {'DATABASE_URL': 'postgres://x'}},
    {'name': 'worker', 'script': '/srv/worker/main.js', 'env': {'SENTRY_DSN': 'https://own@sentry.example.org/7'}},
]


def env_files(tmp, dsn):
    (tmp / 'play.yml').write_text(PLAY)
    ev = {'out': str(tmp), 'pm2_apps': APPS, 'pm2_sentry_dsn': dsn, 'ansible_python_interpreter': sys.executable}
    r = subprocess.run(
        ['ansible-playbook', '-i', 'localhost,', str(tmp / 'play.yml'), '-e', json.dumps(ev)],
        capture_output=True,
        text=True,
        env=dict(os.environ, ANSIBLE_CONFIG=os.path.join(ROOT, 'ansible.cfg')),
        check=False,
    )
    assert r.returncode == 0, r.stdout[-3000:]
    assert 'sentry.example.org' not in r.stdout
    out = {}
    for app in APPS:
        text = (tmp / (app['name'] + '.env')).read_text()
        out[app['name']] = {
            k: json.loads(v) for k, v in (ln.split('=', 1) for ln in text.splitlines() if ln[:1] != '#')
        }
    return out


def test_dsn_in_every_app_env_unless_the_app_sets_its_own(tmp_path):
    files = env_files(tmp_path, DSN)
    api = files['api']
    assert (api['SENTRY_DSN'], api['DATABASE_URL'], api['PORT'], api['NODE_ENV']) == (
        DSN,
        'postgres://x',
        '3000',
        'production',
    )
    assert files['worker']['SENTRY_DSN'] == 'https://own@sentry.example.org/7'


def test_no_dsn_no_variable(tmp_path):
    assert 'SENTRY_DSN' not in env_files(tmp_path, '')['api']


def test_the_dsn_is_declared_secret():
    with open(os.path.join(ROLE, 'meta', 'argument_specs.yml')) as f:
        spec = yaml.safe_load(f)['argument_specs']['main']['options']['pm2_sentry_dsn']
    assert spec['no_log'] is True and spec['default'] == ''
