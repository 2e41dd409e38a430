# -*- coding: utf-8 -*-
"""The platform's alert rules: promtool check rules and promtool test rules pass, every alert has a unit test
where it fires and one where it stays silent, and a section in docs/runbook.md that its runbook_url names.
promtool comes from lab/setup-host.sh (extracted from Debian's prometheus package)."""

from __future__ import absolute_import, division, print_function

import glob
import os
import re
import shutil
import subprocess

import pytest
import yaml

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), '..', '..'))
RULE_FILES = sorted(glob.glob(os.path.join(ROOT, 'roles', 'prometheus', 'files', 'rules', '*.yml')))
TEST_FILES = sorted(glob.glob(os.path.join(ROOT, 'tests', 'promtool', '*.test.yml')))
RUNBOOK = os.path.join(ROOT, 'docs', 'runbook.md')


def promtool():
    path = shutil.which('promtool')
    assert path, 'promtool is missing: run lab/setup-host.sh (it extracts it from Debian\'s prometheus package)'
    return path


def alerts():
    found = {}
    for path in RULE_FILES:
        with open(path) as f:
            for group in yaml.safe_load(f)['groups']:
                for rule in group['rules']:
                    if 'alert' in rule:
                        found[rule['alert']] = rule
    return found


def test_there_are_rules_and_tests():
    assert RULE_FILES and TEST_FILES
    assert len(alerts()) >= 18


def test_promtool_check_rules():
    r = subprocess.run([promtool(), 'check', 'rules'] + RULE_FILES, capture_output=True, text=True, check=False)
    assert r.returncode == 0, r.stdout + r.stderr
    assert 'SUCCESS: %d rules found' % len(alerts()) in r.stdout


@pytest.mark.parametrize('path', TEST_FILES, ids=os.path.basename)
def test_promtool_test_rules(path):
    r = subprocess.run([promtool(), 'test', 'rules', path], capture_output=True, text=True, cwd=ROOT, check=False)
    assert r.returncode == 0, r.stdout + r.stderr
    assert 'SUCCESS' in r.stdout + r.stderr


def test_promtool_test_rules_can_fail(tmp_path):
    """A unit test expecting the wrong alert fails: promtool's verdict is not taken for granted."""
    with open(TEST_FILES[0]) as f:
        spec = yaml.safe_load(f)
    spec['rule_files'] = RULE_FILES
    case = next(t for t in spec['tests'] if any(a['exp_alerts'] for a in t['alert_rule_test']))
    for a in case['alert_rule_test']:
        a['exp_alerts'] = [] if a['exp_alerts'] else [{'exp_labels': {'severity': 'none'}}]
    spec['tests'] = [case]
    bad = tmp_path / 'bad.test.yml'
    bad.write_text(yaml.safe_dump(spec))
    r = subprocess.run([promtool(), 'test', 'rules', str(bad)], capture_output=True, text=True, check=False)
    assert r.returncode != 0 and 'FAILED' in r.stdout + r.stderr


def test_every_alert_fires_in_a_test_and_stays_silent_in_one():
    fires, silent = set(), set()
    for path in TEST_FILES:
        with open(path) as f:
            for test in yaml.safe_load(f)['tests']:
                for case in test.get('alert_rule_test', []):
                    (fires if case['exp_alerts'] else silent).add(case['alertname'])
    assert sorted(set(alerts()) - fires) == [], 'alerts never tested firing'
    assert sorted(set(alerts()) - silent) == [], 'alerts never tested silent'


def test_every_alert_has_labels_and_a_runbook_section():
    with open(RUNBOOK) as f:
        headings = re.findall(r'^## (.+)$', f.read(), re.M)
    anchors = {re.sub(r'[^a-z0-9-]', '', h.strip().lower().replace(' ', '-')) for h in headings}
    for name, rule in alerts().items():
        assert rule['labels']['severity'] in ('critical', 'warning'), name
        assert rule['annotations']['summary'] and rule['annotations']['description'], name
        url = rule['annotations']['runbook_url']
        assert url.startswith('https://example.invalid/ierahkwa/platform/blob/main/docs/runbook.md#'), name
        assert url.split('#', 1)[1] == name.lower(), name
        assert name.lower() in anchors, 'no "## %s" section in docs/runbook.md' % name
