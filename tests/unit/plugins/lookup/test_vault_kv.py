# -*- coding: utf-8 -*-
from __future__ import absolute_import, division, print_function

__metaclass__ = type

import sys

import pytest
import yaml
from ansible.errors import AnsibleLookupError
from ansible.template import is_trusted_as_template, trust_as_template

from ansible_collections.ierahkwa.platform.plugins.doc_fragments.vault import ModuleDocFragment
from ansible_collections.ierahkwa.platform.plugins.lookup import vault_kv


def lookup(monkeypatch, **options):
    """The plugin with its options taken from ``options`` (option resolution itself is Ansible's; the
    integration tests run it through ansible-playbook)."""
    plugin = vault_kv.LookupModule()
    values = dict.fromkeys(vault_kv.OPTIONS)
    values.update(url='http://vault.test:8200', token='hvs.unit', retries=0, cache=False)
    values.update(options)
    monkeypatch.setattr(plugin, 'set_options', lambda **kw: None)
    monkeypatch.setattr(plugin, 'get_option', values.__getitem__)
    return plugin


def test_documented_options_are_the_ones_read():
    documented = set(yaml.safe_load(vault_kv.DOCUMENTATION)['options'])
    documented |= set(yaml.safe_load(ModuleDocFragment.DOCUMENTATION)['options'])
    assert documented - {'_terms'} == set(vault_kv.OPTIONS)


def test_values_are_unsafe(monkeypatch):
    monkeypatch.setattr(
        vault_kv,
        'read_all',
        lambda settings, terms: [{'password': trust_as_template('{{ p }}')}, trust_as_template('{{ x }}')],
    )
    result = lookup(monkeypatch).run(['a', 'b'])
    assert result == [{'password': '{{ p }}'}, '{{ x }}']
    assert not is_trusted_as_template(result[0]['password']) and not is_trusted_as_template(result[1])


def test_bad_option_is_a_lookup_error(monkeypatch):
    with pytest.raises(AnsibleLookupError) as exc:
        lookup(monkeypatch, kv_version=5).run(['a'])
    assert str(exc.value).startswith('vault_kv: option kv_version must be 1 or 2')


def test_missing_auth_is_a_lookup_error(monkeypatch, tmp_path):
    with pytest.raises(AnsibleLookupError) as exc:
        lookup(monkeypatch, token=None, token_file=str(tmp_path / 'none')).run(['a'])
    assert 'no Vault token' in str(exc.value)


def test_malformed_path_is_a_lookup_error(monkeypatch):
    with pytest.raises(AnsibleLookupError) as exc:
        lookup(monkeypatch).run(['app/../root'])
    assert "malformed secret path 'app/../root'" in str(exc.value)


def test_missing_hvac_says_so(monkeypatch):
    monkeypatch.setitem(sys.modules, 'hvac', None)
    with pytest.raises(AnsibleLookupError) as exc:
        lookup(monkeypatch).run(['app/db'])
    assert 'Failed to import the required Python library (hvac)' in str(exc.value)


def test_unreachable_names_path_without_token(monkeypatch):
    with pytest.raises(AnsibleLookupError) as exc:
        lookup(monkeypatch, url='http://127.0.0.1:9', token='hvs.must-not-show').run(['app/db'])
    assert (
        str(exc.value) == 'vault_kv: cannot read secret/app/db: Vault at http://127.0.0.1:9 is unreachable '
        '(ConnectionError)'
    )
