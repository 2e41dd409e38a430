# -*- coding: utf-8 -*-
"""The shipped dashboards: JSON that fits tests/unit/dashboard.schema.json, unique uids and panel ids, panels
inside the 24-column grid, every expression parsed by promtool (the Molecule monitoring scenario runs them all
against a live Prometheus)."""

from __future__ import absolute_import, division, print_function

import glob
import json
import os
import shutil
import subprocess

import jsonschema
import pytest

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), '..', '..'))
DASHBOARDS = sorted(glob.glob(os.path.join(ROOT, 'dashboards', '*.json')))
with open(os.path.join(os.path.dirname(__file__), 'dashboard.schema.json')) as f:
    SCHEMA = json.load(f)


def load(path):
    with open(path) as f:
        return json.load(f)


def exprs(dashboard):
    return [t['expr'] for p in dashboard['panels'] for t in p['targets']]


def test_there_are_dashboards():
    assert {os.path.basename(p) for p in DASHBOARDS} >= {
        'hosts.json',
        'backups.json',
        'edge.json',
        'apps.json',
        'postgresql.json',
    }


@pytest.mark.parametrize('path', DASHBOARDS, ids=os.path.basename)
def test_dashboard_fits_the_schema(path):
    jsonschema.validate(load(path), SCHEMA)


def test_the_schema_rejects_a_broken_dashboard():
    broken = load(DASHBOARDS[0])
    del broken['panels'][0]['targets'][0]['expr']
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(broken, SCHEMA)


def test_uids_unique():
    uids = [load(p)['uid'] for p in DASHBOARDS]
    assert len(uids) == len(set(uids))


@pytest.mark.parametrize('path', DASHBOARDS, ids=os.path.basename)
def test_panels_have_unique_ids_and_fit_the_grid(path):
    panels = load(path)['panels']
    assert len({p['id'] for p in panels}) == len(panels)
    for p in panels:
        assert p['gridPos']['x'] + p['gridPos']['w'] <= 24, p['title']


@pytest.mark.parametrize('path', DASHBOARDS, ids=os.path.basename)
def test_every_expression_parses(path, tmp_path):
    """promtool check rules parses each expression (template variables replaced as Grafana would)."""
    promtool = shutil.which('promtool')
    assert promtool, 'promtool is missing: run lab/setup-host.sh'
    rules = [
        {'record': 'dashboard:expr_%d' % i, 'expr': e.replace('$__rate_interval', '1m').replace('$instance', '.*')}
        for i, e in enumerate(exprs(load(path)))
    ]
    f = tmp_path / 'rules.yml'
    f.write_text(json.dumps({'groups': [{'name': 'dashboard', 'rules': rules}]}))
    r = subprocess.run([promtool, 'check', 'rules', str(f)], capture_output=True, text=True, check=False)
    assert r.returncode == 0, r.stdout + r.stderr
