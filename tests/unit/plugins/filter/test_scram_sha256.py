# -*- coding: utf-8 -*-
from __future__ import absolute_import, division, print_function

__metaclass__ = type

import pytest
from ansible.errors import AnsibleFilterError

from ansible_collections.ierahkwa.platform.plugins.filter.scram_sha256 import FilterModule


def test_filter_is_registered_and_stable():
    f = FilterModule().filters()['scram_sha256']
    v = f('s3cret-password', salt_seed='stats')
    assert v.startswith('SCRAM-SHA-256$4096:') and v == f('s3cret-password', salt_seed='stats')


def test_filter_errors_name_the_filter():
    f = FilterModule().filters()['scram_sha256']
    with pytest.raises(AnsibleFilterError) as exc:
        f('s3cret-password')
    assert 'scram_sha256: give salt_seed' in str(exc.value)


class VaultedText(object):
    """What ansible-core before 2.19 hands a filter for an inline-vaulted variable."""

    __ENCRYPTED__ = True

    def __init__(self, plain):
        self.plain = plain

    def __str__(self):
        return self.plain


def test_matches_filter():
    filters = FilterModule().filters()
    v = filters['scram_sha256']('s3cret-password', salt_seed='stats')
    assert filters['scram_sha256_matches'](v, 's3cret-password') is True
    assert filters['scram_sha256_matches'](v, 'another-password') is False
    assert filters['scram_sha256_matches']('md5' + 'a' * 32, 's3cret-password') is False
    with pytest.raises(AnsibleFilterError) as exc:
        filters['scram_sha256_matches'](v, '')
    assert str(exc.value) == 'scram_sha256_matches: password must be a non-empty string'


def test_vaulted_values_are_decrypted_text():
    filters = FilterModule().filters()
    v = filters['scram_sha256'](VaultedText('s3cret-password'), salt_seed='stats')
    assert v == filters['scram_sha256']('s3cret-password', salt_seed='stats')
    assert filters['scram_sha256_matches'](VaultedText(v), VaultedText('s3cret-password')) is True
