# -*- coding: utf-8 -*-
# Copyright: ierahkwa platform engineering
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
name: firewall_rules
short_description: Merge and validate a host's firewall rules from its groups and its own list
version_added: 0.1.0
author: ierahkwa platform engineering
description:
  - Takes the groups a host belongs to, a mapping of group name to rules and the host's own rules,
    and returns one sorted list of rules with C(port), C(proto), C(sources) and C(comment).
  - A rule is a port number, a string such as C(53/udp), or a mapping with C(port), C(proto) (tcp or udp),
    C(sources) (addresses or networks; empty means anyone) and C(comment).
  - Rules for the same port and protocol are merged; a rule open to anyone wins over a source list.
  - Fails naming the variable and the index of the first invalid rule (a port outside 1-65535,
    an unknown protocol, a source that is not an address or network).
options:
  _input:
    description: The groups of the host, usually C(group_names).
    type: list
    elements: str
    required: true
  group_ports:
    description: Mapping of group name to a list of rules.
    type: dict
    required: true
  host_ports:
    description: The host's own list of rules.
    type: list
    elements: raw
    default: []
  group_var:
    description: Name of the group mapping variable, used in error messages.
    type: str
    default: group_ports
  host_var:
    description: Name of the host list variable, used in error messages.
    type: str
    default: ports
"""

EXAMPLES = r"""
- name: Rules for this host
  ansible.builtin.set_fact:
    rules: >-
      {{ group_names | ierahkwa.platform.firewall_rules(
           {'edge': [80, 443], 'db': [{'port': 5432, 'sources': ['10.0.0.0/8']}]},
           ['9100/tcp'],
           group_var='bootstrap_firewall_group_ports', host_var='bootstrap_firewall_ports') }}
"""

RETURN = r"""
_value:
  description: Sorted list of rules, one per port and protocol.
  type: list
  elements: dict
  contains:
    port:
      description: Port number.
      type: int
    proto:
      description: C(tcp) or C(udp).
      type: str
    sources:
      description: Networks allowed; empty means anyone.
      type: list
      elements: str
    comment:
      description: Where the rule came from.
      type: str
"""

from ansible.errors import AnsibleFilterError

from ansible_collections.ierahkwa.platform.plugins.module_utils.firewall import (
    FirewallRuleError,
    normalize_rules,
)


def firewall_rules(group_names, group_ports, host_ports=None, group_var='group_ports', host_var='ports'):
    try:
        return normalize_rules(group_names, group_ports, host_ports, group_var=group_var, host_var=host_var)
    except FirewallRuleError as exc:
        raise AnsibleFilterError(str(exc)) from exc


class FilterModule(object):
    def filters(self):
        return {'firewall_rules': firewall_rules}
