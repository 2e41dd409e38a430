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
