# -*- coding: utf-8 -*-
from __future__ import absolute_import, division, print_function

__metaclass__ = type

import pytest
from ansible.errors import AnsibleFilterError

from ansible_collections.ierahkwa.platform.plugins.filter.firewall_rules import FilterModule


def test_filter_is_registered_and_works():
    f = FilterModule().filters()['firewall_rules']
    assert f(['edge'], {'edge': [443]}) == [{'port': 443, 'proto': 'tcp', 'sources': [], 'comment': 'group edge'}]


def test_filter_turns_errors_into_filter_errors_naming_the_variable():
    f = FilterModule().filters()['firewall_rules']
    with pytest.raises(AnsibleFilterError) as exc:
        f([], {}, [70000], host_var='bootstrap_firewall_ports')
    assert 'bootstrap_firewall_ports[0]: port 70000 is outside 1-65535' in str(exc.value)
