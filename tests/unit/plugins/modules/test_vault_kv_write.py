# -*- coding: utf-8 -*-
"""vault_kv_write: write_secret's decisions with a fake writer, and the module as Ansible runs it (argument errors,
an unreachable Vault), never returning a value or a token. Real HTTP writes: tests/integration/test_vault_write.py."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import json

import pytest

from ansible_collections.ierahkwa.platform.plugins.module_utils import vault as v

from .module_runner import run_module

SETTINGS = v.VaultSettings.from_options({'url': 'http://127.0.0.1:9', 'token': 'hvs.unit-Token'})


class FakeWriter(object):
    def __init__(self, version, data):
        self.version, self.data, self.writes = version, data, []

    def current(self, path):
        return self.version, self.data

    def write(self, path, data, cas=None):
        self.writes.append((path, data, cas))
        self.version, self.data = self.version + 1, data
        return self.version


@pytest.mark.parametrize(
    'version, data, kwargs, expected, writes',
    [
        (3, {'p': 'old'}, {}, {'changed': True, 'version': 4, 'previous_version': 3}, 1),
        (3, {'p': 'new'}, {}, {'changed': False, 'version': 3, 'previous_version': 3}, 0),
        (3, {'p': 'new'}, {'only_if_different': False}, {'changed': True, 'version': 4, 'previous_version': 3}, 1),
        (3, {'p': 'old'}, {'check_mode': True}, {'changed': True, 'version': 4, 'previous_version': 3}, 0),
        (0, None, {'cas': 0}, {'changed': True, 'version': 1, 'previous_version': 0}, 1),
        (3, {'p': 'old'}, {'cas': 3}, {'changed': True, 'version': 4, 'previous_version': 3}, 1),
    ],
)
def test_write_secret_decisions(version, data, kwargs, expected, writes):
    writer = FakeWriter(version, data)
    assert v.write_secret(SETTINGS, 'app/db', {'p': 'new'}, writer=writer, **kwargs) == expected
    assert len(writer.writes) == writes


def test_cas_mismatch_names_versions_not_values():
    writer = FakeWriter(5, {'p': 'old-Secret'})
    with pytest.raises(v.VaultKVError) as exc:
        v.write_secret(SETTINGS, 'app/db', {'p': 'new-Secret'}, cas=4, writer=writer)
    assert str(exc.value) == 'cannot write secret/app/db: the current version is 5, not 4 (cas)'
    assert writer.writes == []


def test_malformed_path_and_empty_data_refused_before_any_request():
    with pytest.raises(v.VaultKVError, match='malformed secret path'):
        v.write_secret(SETTINGS, 'app/../db', {'p': 'x'})
    with pytest.raises(v.VaultKVError, match='data must be a non-empty mapping'):
        v.VaultWriter(SETTINGS).write('app/db', {})


def test_kv1_refused():
    s = v.VaultSettings.from_options({'url': 'http://127.0.0.1:9', 'token': 't', 'kv_version': 1})
    with pytest.raises(v.VaultKVError, match='writing needs kv_version 2'):
        v.VaultWriter(s).current('app/db')


def test_module_unreachable_vault_fails_naming_path_not_secrets(tmp_path):
    args = {
        'url': 'http://127.0.0.1:9',
        'token': 'hvs.unit-Token-4711',
        'path': 'app/db',
        'data': {'password': 'unit-Secret-4711'},
        'retries': 1,
        'retry_delay': 0.01,
    }
    r = run_module(tmp_path, 'vault_kv_write', args)
    assert r['failed'] and r['rc'] == 1
    assert r['msg'] == (
        'vault_kv_write: cannot read secret/app/db: Vault at http://127.0.0.1:9 is unreachable (ConnectionError) '
        '(after 2 attempts)'
    )
    text = json.dumps(r)
    assert 'unit-Secret-4711' not in text and 'hvs.unit-Token-4711' not in text


def test_module_bad_options(tmp_path):
    token = 'hvs.unit-Long-Token'
    r = run_module(
        tmp_path,
        'vault_kv_write',
        {'url': 'vault:8200', 'token': token, 'path': 'a', 'data': {'key': 'unit-Value-4711'}},
    )
    assert r['failed'] and 'must be an http:// or https:// address' in r['msg']
    r = run_module(
        tmp_path, 'vault_kv_write', {'url': 'http://v:8200', 'path': 'a', 'data': {'key': 'unit-Value-4711'}}
    )
    assert r['failed'] and r['msg'].startswith('vault_kv_write: no Vault token')
    r = run_module(tmp_path, 'vault_kv_write', {'url': 'http://v:8200', 'token': 'hvs.unit-Long-Token', 'path': 'a'})
    assert r['failed'] and 'data' in r['msg']
