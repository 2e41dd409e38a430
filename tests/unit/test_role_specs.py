# -*- coding: utf-8 -*-
"""Every role's meta/argument_specs.yml is the single truth: defaults/main.yml must match it."""

from __future__ import absolute_import, division, print_function

import os
import re

import pytest
import yaml

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), '..', '..'))
ROLES = sorted(
    r
    for r in os.listdir(os.path.join(ROOT, 'roles'))
    if os.path.isfile(os.path.join(ROOT, 'roles', r, 'meta', 'argument_specs.yml'))
)


def load(role, *parts):
    with open(os.path.join(ROOT, 'roles', role, *parts)) as f:
        return yaml.safe_load(f) or {}


def test_there_are_roles():
    assert 'bootstrap' in ROLES


@pytest.mark.parametrize('role', ROLES)
def test_defaults_and_specs_name_the_same_variables(role):
    defaults = load(role, 'defaults', 'main.yml')
    options = load(role, 'meta', 'argument_specs.yml')['argument_specs']['main']['options']
    assert sorted(set(defaults) - set(options)) == [], 'in defaults/main.yml but not declared'
    with_default = {k for k, v in options.items() if not v.get('required')}
    assert sorted(with_default - set(defaults)) == [], 'declared optional but without a default'


@pytest.mark.parametrize('role', ROLES)
def test_spec_defaults_equal_role_defaults(role):
    defaults = load(role, 'defaults', 'main.yml')
    options = load(role, 'meta', 'argument_specs.yml')['argument_specs']['main']['options']
    for name, value in defaults.items():
        assert options[name].get('default') == value, name


@pytest.mark.parametrize('role', ROLES)
def test_variables_prefixed_and_described(role):
    options = load(role, 'meta', 'argument_specs.yml')['argument_specs']['main']['options']
    for name, spec in options.items():
        assert name.startswith(role + '_'), name
        assert spec.get('description'), name
        assert spec.get('type'), name


@pytest.mark.parametrize('role', ROLES)
def test_every_default_has_a_one_line_comment(role):
    with open(os.path.join(ROOT, 'roles', role, 'defaults', 'main.yml')) as f:
        lines = f.read().splitlines()
    for i, line in enumerate(lines):
        m = re.match(r'^([a-z_][a-z0-9_]*):', line)
        if m:
            assert i > 0 and lines[i - 1].startswith('# '), 'no comment above ' + m.group(1)


@pytest.mark.parametrize('role', ROLES)
def test_entry_points_share_the_main_options(role):
    specs = load(role, 'meta', 'argument_specs.yml')['argument_specs']
    for entry, spec in specs.items():
        assert spec['options'] == specs['main']['options'], entry
