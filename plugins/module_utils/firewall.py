# -*- coding: utf-8 -*-
# Copyright: ierahkwa platform engineering
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Firewall rule normalisation shared by the bootstrap role's filter and preflight.

A rule may be written as a bare port (``443``), a string (``"443"``, ``"53/udp"``)
or a mapping (``{port: 5432, proto: tcp, sources: [10.0.0.0/8], comment: ...}``).
``normalize_rules`` turns the per-group and per-host lists of a host into one
sorted, de-duplicated list of mappings, and raises ``FirewallRuleError`` naming
the variable and the index of the first bad entry it meets.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import ipaddress

PROTOCOLS = ('tcp', 'udp')
ALLOWED_KEYS = frozenset(('port', 'proto', 'sources', 'comment'))


class FirewallRuleError(ValueError):
    """A firewall rule in the inventory is invalid; the message names where."""


def _parse_port(value, where):
    if isinstance(value, bool):
        raise FirewallRuleError('%s: port must be a number from 1 to 65535, got %r' % (where, value))
    if isinstance(value, str):
        value = value.strip()
        if not value.isdigit():
            raise FirewallRuleError('%s: port must be a number from 1 to 65535, got %r' % (where, value))
        value = int(value)
    if not isinstance(value, int):
        raise FirewallRuleError('%s: port must be a number from 1 to 65535, got %r' % (where, value))
    if not 1 <= value <= 65535:
        raise FirewallRuleError('%s: port %d is outside 1-65535' % (where, value))
    return value


def _parse_sources(value, where):
    if value is None:
        return []
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, (list, tuple)):
        raise FirewallRuleError('%s: sources must be a list of addresses or networks, got %r' % (where, value))
    out = []
    for i, src in enumerate(value):
        try:
            net = ipaddress.ip_network(str(src), strict=False)
        except ValueError:
            raise FirewallRuleError(
                '%s.sources[%d]: %r is not an IPv4/IPv6 address or network' % (where, i, src)
            ) from None
        out.append(str(net))
    return sorted(set(out), key=lambda n: (ipaddress.ip_network(n).version, n))


def parse_rule(entry, where):
    """Return one rule as ``{'port', 'proto', 'sources', 'comment'}``."""
    if isinstance(entry, dict):
        unknown = sorted(set(entry) - ALLOWED_KEYS)
        if unknown:
            raise FirewallRuleError(
                '%s: unknown key(s) %s (allowed: %s)' % (where, ', '.join(unknown), ', '.join(sorted(ALLOWED_KEYS)))
            )
        if 'port' not in entry:
            raise FirewallRuleError('%s: a rule needs a port' % where)
        port = _parse_port(entry['port'], where + '.port')
        proto = str(entry.get('proto', 'tcp')).lower()
        sources = _parse_sources(entry.get('sources'), where)
        comment = str(entry.get('comment', ''))
    elif isinstance(entry, str) and '/' in entry:
        port_s, proto = entry.split('/', 1)
        port = _parse_port(port_s, where)
        proto = proto.lower()
        sources, comment = [], ''
    else:
        port = _parse_port(entry, where)
        proto, sources, comment = 'tcp', [], ''
    if proto not in PROTOCOLS:
        raise FirewallRuleError('%s: proto must be one of %s, got %r' % (where, ', '.join(PROTOCOLS), proto))
    if '"' in comment or '\n' in comment:
        raise FirewallRuleError('%s: comment must not hold quotes or newlines' % where)
    return {'port': port, 'proto': proto, 'sources': sources, 'comment': comment}


def normalize_rules(group_names, group_ports, host_ports, group_var='group_ports', host_var='ports'):
    """Merge the rules of every group the host is in with its own rules.

    Rules with the same port and protocol are merged: open to anyone wins over
    a source list, otherwise the source lists are joined.
    """
    if group_ports is None:
        group_ports = {}
    if not isinstance(group_ports, dict):
        raise FirewallRuleError('%s must be a mapping of group name to a list of rules' % group_var)
    collected = []
    for group in sorted(group_names or []):
        entries = group_ports.get(group)
        if entries is None:
            continue
        if not isinstance(entries, (list, tuple)):
            raise FirewallRuleError('%s.%s must be a list of rules' % (group_var, group))
        for i, entry in enumerate(entries):
            rule = parse_rule(entry, '%s.%s[%d]' % (group_var, group, i))
            rule['comment'] = rule['comment'] or 'group %s' % group
            collected.append(rule)
    if host_ports is None:
        host_ports = []
    if not isinstance(host_ports, (list, tuple)):
        raise FirewallRuleError('%s must be a list of rules' % host_var)
    for i, entry in enumerate(host_ports):
        rule = parse_rule(entry, '%s[%d]' % (host_var, i))
        rule['comment'] = rule['comment'] or 'host rule'
        collected.append(rule)

    merged = {}
    for rule in collected:
        key = (rule['port'], rule['proto'])
        if key not in merged:
            merged[key] = dict(rule, sources=list(rule['sources']))
            continue
        have = merged[key]
        if not have['sources'] or not rule['sources']:
            have['sources'] = []
        else:
            have['sources'] = _parse_sources(have['sources'] + rule['sources'], 'merged')
        if rule['comment'] not in have['comment'].split(', '):
            have['comment'] = have['comment'] + ', ' + rule['comment']
    return [merged[k] for k in sorted(merged)]
