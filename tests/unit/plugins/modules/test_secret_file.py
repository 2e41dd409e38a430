# -*- coding: utf-8 -*-
from __future__ import absolute_import, division, print_function

__metaclass__ = type

import json
import os
import stat

import pytest

from ansible_collections.ierahkwa.platform.plugins.module_utils import secret_render as sr

from .module_runner import run_module

SECRETS = {'DB_PASSWORD': 'first-Secret-Value', 'API_KEY': 'api-Secret-Value', 'PORT': 8080, 'DEBUG': False}


def values_absent(result, *values):
    text = json.dumps(result)
    return all(v not in text for v in values)


def test_env_file_written_atomically_with_mode_then_idempotent(tmp_path):
    path = tmp_path / 'api.env'
    r = run_module(tmp_path, 'secret_file', {'path': str(path), 'secrets': SECRETS}, diff=True)
    assert r['changed'] and r['added_keys'] == ['API_KEY', 'DB_PASSWORD', 'DEBUG', 'PORT']
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert 'DB_PASSWORD="first-Secret-Value"\n' in path.read_text() and 'DEBUG="false"' in path.read_text()
    assert r['diff']['after'] == 'API_KEY=********\nDB_PASSWORD=********\nDEBUG=********\nPORT=********\n'
    assert values_absent(r, 'first-Secret-Value', 'api-Secret-Value')
    assert [f for f in os.listdir(tmp_path) if f.startswith('.api.env')] == []
    r = run_module(tmp_path, 'secret_file', {'path': str(path), 'secrets': SECRETS}, diff=True)
    assert not r['changed'] and 'diff' not in r


def test_changed_key_names_only_and_honest_check_mode(tmp_path):
    path = tmp_path / 'api.env'
    run_module(tmp_path, 'secret_file', {'path': str(path), 'secrets': SECRETS})
    before = path.read_text()
    new = dict(SECRETS, DB_PASSWORD='second-Secret-Value', NEW_KEY='new-Secret-Value')
    del new['API_KEY']
    r = run_module(tmp_path, 'secret_file', {'path': str(path), 'secrets': new}, check_mode=True, diff=True)
    assert r['changed'] and path.read_text() == before
    assert (r['added_keys'], r['changed_keys'], r['removed_keys']) == (['NEW_KEY'], ['DB_PASSWORD'], ['API_KEY'])
    assert 'DB_PASSWORD=******** (old value)' in r['diff']['before']
    assert 'DB_PASSWORD=******** (new value)' in r['diff']['after'] and 'API_KEY' not in r['diff']['after']
    assert values_absent(r, 'first-Secret-Value', 'second-Secret-Value', 'new-Secret-Value', 'api-Secret-Value')
    r = run_module(tmp_path, 'secret_file', {'path': str(path), 'secrets': new})
    assert r['changed'] and 'DB_PASSWORD="second-Secret-Value"' in path.read_text()


def test_mode_is_fixed_and_json_format(tmp_path):
    path = tmp_path / 'appsettings.Production.json'
    path.write_text('{"ConnectionStrings": {"Default": "old"}}')
    os.chmod(path, 0o644)
    secrets = {'ConnectionStrings': {'Default': 'Host=db1;Password=json-Secret'}, 'Jwt': {'Key': 'jwt-Secret'}}
    r = run_module(tmp_path, 'secret_file', {'path': str(path), 'secrets': secrets, 'mode': '0640'}, diff=True)
    assert r['changed'] and stat.S_IMODE(os.stat(path).st_mode) == 0o640
    assert json.loads(path.read_text()) == secrets
    assert (r['added_keys'], r['changed_keys']) == (['Jwt.Key'], ['ConnectionStrings.Default'])
    assert values_absent(r, 'json-Secret', 'jwt-Secret')
    os.chmod(path, 0o644)
    r = run_module(tmp_path, 'secret_file', {'path': str(path), 'secrets': secrets, 'mode': '0640'})
    assert r['changed'] and r['changed_keys'] == [] and stat.S_IMODE(os.stat(path).st_mode) == 0o640


@pytest.mark.parametrize(
    'secrets, message',
    [
        ({'BAD-NAME': 'x'}, "'BAD-NAME' is not an environment variable name"),
        ({'A': 'line1\nline2-Secret'}, 'A: the value has a line break or NUL'),
        ({'A': 'with"quote-Secret'}, 'A: the value has a double quote or a backslash'),
        ({'A': ['list-Secret']}, 'A: an env file holds text, not a list'),
    ],
)
def test_bad_values_name_the_key_not_the_value(tmp_path, secrets, message):
    r = run_module(tmp_path, 'secret_file', {'path': str(tmp_path / 'x.env'), 'secrets': secrets})
    assert r['failed'] and message in r['msg'] and values_absent(r, 'Secret')
    assert not (tmp_path / 'x.env').exists()


def test_bad_input(tmp_path):
    r = run_module(tmp_path, 'secret_file', {'path': str(tmp_path / 'none' / 'x.env'), 'secrets': {'A': '1'}})
    assert r['failed'] and 'does not exist' in r['msg']
    r = run_module(tmp_path, 'secret_file', {'path': str(tmp_path), 'secrets': {'A': '1'}})
    assert r['failed'] and 'is a directory' in r['msg']
    r = run_module(tmp_path, 'secret_file', {'path': str(tmp_path / 'x.env'), 'secrets': ['1-Secret']})
    assert r['failed'] and 'secrets' in r['msg'] and values_absent(r, '1-Secret')


def test_render_round_trip_and_diff():
    text = sr.render({'B': 'two words', 'A': 1}, 'env')
    assert sr.parse(text, 'env') == {'A': '1', 'B': 'two words'}
    assert sr.key_changes({'A': '1', 'C': 'x'}, {'A': '2', 'B': 'y'}) == (['B'], ['A'], ['C'])
    assert sr.diff_text({'A': '1'}, {'A': '1'}) == ('A=********\n', 'A=********\n')
    assert sr.parse('not json', 'json') is None


def test_check_mode_with_a_directory_not_made_yet(tmp_path):
    r = run_module(
        tmp_path, 'secret_file', {'path': str(tmp_path / 'later' / 'x.env'), 'secrets': {'A': '1'}}, check_mode=True
    )
    assert r['changed'] and r['added_keys'] == ['A'] and not (tmp_path / 'later').exists()
