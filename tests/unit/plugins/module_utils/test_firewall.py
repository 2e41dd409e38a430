# -*- coding: utf-8 -*-
from __future__ import absolute_import, division, print_function

__metaclass__ = type

import pytest

from ansible_collections.ierahkwa.platform.plugins.module_utils.firewall import (
    FirewallRuleError,
    normalize_rules,
    parse_rule,
)


def test_bare_int_and_strings():
    assert parse_rule(443, 'x') == {'port': 443, 'proto': 'tcp', 'sources': [], 'comment': ''}
    assert parse_rule('53/udp', 'x')['proto'] == 'udp'
    assert parse_rule(' 8080 ', 'x')['port'] == 8080


@pytest.mark.parametrize(
    'bad,fragment',
    [
        (70000, 'port 70000 is outside 1-65535'),
        (0, 'port 0 is outside 1-65535'),
        (-1, 'outside 1-65535'),
        ('http', "got 'http'"),
        (True, 'got True'),
        (3.5, 'got 3.5'),
        ('53/icmp', "proto must be one of tcp, udp, got 'icmp'"),
        ({'proto': 'tcp'}, 'a rule needs a port'),
        ({'port': 22, 'source': ['10.0.0.0/8']}, 'unknown key(s) source'),
        ({'port': 22, 'sources': ['not-a-net']}, "sources[0]: 'not-a-net' is not"),
        ({'port': 22, 'sources': 5}, 'sources must be a list'),
        ({'port': 22, 'comment': 'a"b'}, 'comment must not hold quotes'),
    ],
)
def test_bad_rules_name_the_place(bad, fragment):
    with pytest.raises(FirewallRuleError) as exc:
        parse_rule(bad, 'bootstrap_firewall_ports[3]')
    assert 'bootstrap_firewall_ports[3]' in str(exc.value)
    assert fragment in str(exc.value)


def test_bad_group_rule_names_group_and_index():
    with pytest.raises(FirewallRuleError) as exc:
        normalize_rules(
            ['edge', 'db'], {'edge': [80, 443], 'db': [5432, 70000]}, [], group_var='bootstrap_firewall_group_ports'
        )
    assert str(exc.value) == 'bootstrap_firewall_group_ports.db[1]: port 70000 is outside 1-65535'


def test_groups_not_held_are_ignored_and_result_sorted():
    rules = normalize_rules(['edge'], {'edge': [443, 80], 'db': [70000]}, ['9100'])
    assert [(r['port'], r['proto']) for r in rules] == [(80, 'tcp'), (443, 'tcp'), (9100, 'tcp')]
    assert rules[0]['comment'] == 'group edge'
    assert rules[2]['comment'] == 'host rule'


def test_merge_open_wins_and_sources_join():
    rules = normalize_rules(
        ['a', 'b'],
        {
            'a': [{'port': 5432, 'sources': ['10.0.1.0/24']}],
            'b': [{'port': 5432, 'sources': ['10.0.2.5']}, {'port': 6432, 'sources': ['10.0.0.0/8']}],
        },
        [6432],
    )
    by_port = {r['port']: r for r in rules}
    assert by_port[5432]['sources'] == ['10.0.1.0/24', '10.0.2.5/32']
    assert by_port[6432]['sources'] == []
    assert by_port[5432]['comment'] == 'group a, group b'


def test_tcp_and_udp_same_port_are_distinct():
    rules = normalize_rules([], {}, [53, '53/udp'])
    assert [(r['port'], r['proto']) for r in rules] == [(53, 'tcp'), (53, 'udp')]


@pytest.mark.parametrize(
    'group_ports,host_ports,fragment',
    [
        ([80], [], 'must be a mapping'),
        ({'edge': 80}, [], 'group_ports.edge must be a list'),
        ({}, 80, 'ports must be a list'),
    ],
)
def test_wrong_container_types(group_ports, host_ports, fragment):
    with pytest.raises(FirewallRuleError) as exc:
        normalize_rules(['edge'], group_ports, host_ports)
    assert fragment in str(exc.value)


def test_none_inputs_give_empty_list():
    assert normalize_rules(None, None, None) == []
