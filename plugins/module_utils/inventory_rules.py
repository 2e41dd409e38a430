# -*- coding: utf-8 -*-
# Copyright: ierahkwa platform engineering
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Rules across hosts that no single role can check: the logic of the inventory_problems filter.

``problems(hostvars, groups)`` returns every problem found, as sentences that name the host and the variable:

- a TCP port used twice on one host (PostgreSQL, pgBouncer, Redis instances, nginx 80/443, app upstream ports);
- an nginx upstream whose group has no host, or a site whose upstream is not defined;
- pgBouncer's pools (sum of max_db_connections plus one auth connection per database) above the
  ``postgresql_max_connections`` of the host's own PostgreSQL minus the reserved connections, and a
  ``pgbouncer_postgresql_max_connections`` that does not match the server's setting;
- in production (``platform_environment: production``): every nginx site has server names that are not example
  names, and the edge hosts have a ``certbot_email``.

Role defaults are not in hostvars when no role is loaded, so the defaults the rules need are repeated in
``DEFAULTS`` (a unit test checks them against the roles' defaults files).
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import re

DEFAULTS = {
    'postgresql_port': 5432,
    'postgresql_max_connections': 100,
    'pgbouncer_listen_port': 6432,
    'pgbouncer_max_db_connections': 25,
    'pgbouncer_postgresql_reserved_connections': 10,
    'redis_instances': [{'name': 'cache', 'port': 6379}, {'name': 'queue', 'port': 6380}],
}
EXAMPLE_NAME = re.compile(r'(^|\.)(example\.(com|org|net)|example|invalid|test|localhost)$', re.I)
EMAIL = re.compile(r'^[^@\s]+@[^@\s]+\.[^@\s]+$')


def _get(hv, name):
    value = hv.get(name)
    return DEFAULTS.get(name) if value is None else value


def _int(value):
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


def _ports(host, hv, groups, upstream_ports):
    """(port, what) pairs of the services the inventory puts on a host."""
    used = []
    if host in groups.get('db', []):
        used.append((_get(hv, 'postgresql_port'), 'postgresql_port'))
    if host in groups.get('db_primary', []):
        used.append((_get(hv, 'pgbouncer_listen_port'), 'pgbouncer_listen_port'))
    if host in groups.get('redis', []):
        for instance in _get(hv, 'redis_instances') or []:
            if isinstance(instance, dict):
                used.append((instance.get('port'), 'redis_instances %s' % instance.get('name', '?')))
    if host in groups.get('edge', []):
        used.extend([(80, 'nginx (http)'), (443, 'nginx (https)')])
    for port, what in upstream_ports.get(host, []):
        used.append((port, what))
    return [(_int(port), what) for port, what in used if _int(port) is not None]


def _upstreams(hostvars, groups):
    """Problems of the nginx upstreams and sites, and the app ports they imply per host."""
    found, ports = [], {}
    for host in sorted(groups.get('edge', [])):
        hv = hostvars.get(host, {})
        names = set()
        for upstream in hv.get('nginx_upstreams') or []:
            if not isinstance(upstream, dict):
                continue
            names.add(upstream.get('name'))
            group = upstream.get('group')
            if group is None:
                continue
            members = groups.get(group, [])
            if not members:
                found.append(
                    '%s: nginx_upstreams %s points at group %s, which has no host' % (host, upstream.get('name'), group)
                )
            for member in members:
                ports.setdefault(member, []).append(
                    (upstream.get('port'), 'app behind nginx upstream %s' % upstream.get('name'))
                )
        for site in hv.get('nginx_sites') or []:
            if isinstance(site, dict) and site.get('upstream') and site['upstream'] not in names:
                found.append(
                    '%s: nginx_sites %s uses upstream %s, which nginx_upstreams does not define'
                    % (host, site.get('name', '?'), site['upstream'])
                )
    return found, ports


def _pools(host, hv):
    databases = hv.get('pgbouncer_databases') or []
    budget = sum(
        _int(db.get('max_db_connections', _get(hv, 'pgbouncer_max_db_connections'))) or 0
        for db in databases
        if isinstance(db, dict)
    ) + len(databases)
    server_max = _int(_get(hv, 'postgresql_max_connections'))
    reserved = _int(_get(hv, 'pgbouncer_postgresql_reserved_connections')) or 0
    found = []
    if server_max is not None and budget > server_max - reserved:
        found.append(
            '%s: pgBouncer pools may open %d server connections but postgresql_max_connections is %d '
            'with %d reserved (pgbouncer_databases max_db_connections, '
            'pgbouncer_postgresql_reserved_connections)' % (host, budget, server_max, reserved)
        )
    told = _int(hv.get('pgbouncer_postgresql_max_connections'))
    if told is not None and server_max is not None and told != server_max:
        found.append(
            '%s: pgbouncer_postgresql_max_connections is %d but postgresql_max_connections is %d'
            % (host, told, server_max)
        )
    return found


def _production(hostvars, groups):
    found = []
    for host in sorted(groups.get('edge', [])):
        hv = hostvars.get(host, {})
        if hv.get('platform_environment') != 'production':
            continue
        for site in hv.get('nginx_sites') or []:
            if not isinstance(site, dict):
                continue
            names = site.get('server_names') or []
            if not names:
                found.append('%s: production site %s has no server_names' % (host, site.get('name', '?')))
            for name in names:
                if EXAMPLE_NAME.search(str(name)):
                    found.append(
                        '%s: production site %s uses the example name %s' % (host, site.get('name', '?'), name)
                    )
        if not EMAIL.match(str(hv.get('certbot_email') or '')):
            found.append('%s: production needs certbot_email (the ACME account address for expiry notices)' % host)
    return found


NAMES = (
    'platform_environment',
    'postgresql_port',
    'postgresql_max_connections',
    'pgbouncer_listen_port',
    'pgbouncer_databases',
    'pgbouncer_max_db_connections',
    'pgbouncer_postgresql_reserved_connections',
    'pgbouncer_postgresql_max_connections',
    'redis_instances',
    'nginx_upstreams',
    'nginx_sites',
    'certbot_email',
)


def collect(hostvars, hosts):
    """host -> the variables the rules read (only those: others may need facts not gathered yet)."""
    out = {}
    for host in hosts:
        hv = hostvars[host]
        out[host] = {name: hv[name] for name in NAMES if name in hv}
    return out


def problems(hostvars, groups):
    """Every cross-host problem of an inventory (host -> variables, group -> hosts), sorted by host."""
    groups = {g: list(h or []) for g, h in groups.items()}
    found, upstream_ports = _upstreams(hostvars, groups)
    for host in sorted(hostvars):
        hv = hostvars[host]
        seen = {}
        for port, what in _ports(host, hv, groups, upstream_ports):
            if port in seen and seen[port] != what:
                found.append('%s: port %d is used twice (%s and %s)' % (host, port, seen[port], what))
            seen.setdefault(port, what)
        if host in groups.get('db_primary', []) and hv.get('pgbouncer_databases'):
            found.extend(_pools(host, hv))
    found.extend(_production(hostvars, groups))
    return sorted(set(found))
