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
  names, and the edge hosts have a ``certbot_email``;
- the memory caps of a host's services adding up to more than its memory: PM2 apps (``max_memory_restart`` x
  ``instances`` of ``pm2_apps`` over ``pm2_app_defaults``), systemd services (``memory_max`` of
  ``service_services`` over ``service_defaults``), ``postgresql_memory_mb`` when set, and the ``maxmemory`` of
  ``redis_instances``, against ``ansible_memtotal_mb`` (facts, e.g. from the fact cache) or else the inventory's
  ``platform_memory_mb``; a host with neither is not checked.

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
    'redis_instances': [
        {'name': 'cache', 'port': 6379, 'maxmemory': '256mb'},
        {'name': 'queue', 'port': 6380, 'maxmemory': '256mb'},
    ],
    # roles pm2 and service (supervision): the per-app / per-service defaults the memory rule needs
    'pm2_app_defaults': {'instances': 1, 'max_memory_restart': '512M'},
    'service_defaults': {'memory_max': '512M'},
}
REDIS_MAXMEMORY = '256mb'  # the redis role's default for an instance without maxmemory
SIZE = re.compile(r'^\s*(\d+(?:\.\d+)?)\s*([kmgt]?)(?:i?b)?\s*$', re.I)
UNITS = {'': 1.0 / 1048576, 'k': 1.0 / 1024, 'm': 1.0, 'g': 1024.0, 't': 1048576.0}
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


def size_mb(value, total_mb=None):
    """Megabytes of a size as PM2, systemd and Redis write it (``300M``, ``1G``, ``256mb``, ``1gb``, bytes; systemd's
    ``50%`` of ``total_mb``); None for no limit (``''``, ``infinity``, ``0``) or what cannot be read."""
    if isinstance(value, bool) or value is None:
        return None
    text = str(value).strip()
    if text.endswith('%') and total_mb:
        try:
            return float(text[:-1]) * total_mb / 100.0
        except ValueError:
            return None
    match = SIZE.match(text)
    if not match:
        return None
    mb = float(match.group(1)) * UNITS[match.group(2).lower()]
    return mb or None


def _merged(hv, name, item):
    defaults = dict(DEFAULTS[name])
    given = hv.get(name)
    if isinstance(given, dict):
        defaults.update(given)
    defaults.update(item)
    return defaults


def _memory(host, hv, groups):
    """The host's memory caps against its memory (see the module docstring)."""
    total, source = _int(hv.get('ansible_memtotal_mb')), 'ansible_memtotal_mb'
    if not total:
        total, source = _int(hv.get('platform_memory_mb')), 'platform_memory_mb'
    if not total:
        return []
    caps = []
    for app in hv.get('pm2_apps') or []:
        if not isinstance(app, dict):
            continue
        a = _merged(hv, 'pm2_app_defaults', app)
        each = size_mb(a.get('max_memory_restart'))
        instances = _int(a.get('instances'))
        if instances is None or instances < 1:  # 'max', 0 or -1: one per CPU (less one for -1)
            cpus = _int(hv.get('ansible_processor_vcpus')) or 1
            instances = max(cpus + (instances if instances and instances < 0 else 0), 1)
        if each:
            caps.append(
                (
                    each * instances,
                    'pm2_apps %s (%d x max_memory_restart %s)'
                    % (a.get('name', '?'), instances, a.get('max_memory_restart')),
                )
            )
    for unit in hv.get('service_services') or []:
        if not isinstance(unit, dict):
            continue
        u = _merged(hv, 'service_defaults', unit)
        mb = size_mb(u.get('memory_max'), total)
        if mb:
            caps.append((mb, 'service_services %s (memory_max %s)' % (u.get('name', '?'), u.get('memory_max'))))
    if host in groups.get('db', []):
        mb = _int(hv.get('postgresql_memory_mb'))
        if mb:
            caps.append((float(mb), 'postgresql_memory_mb %d' % mb))
    if host in groups.get('redis', []):
        for instance in _get(hv, 'redis_instances') or []:
            if isinstance(instance, dict):
                limit = instance.get('maxmemory', REDIS_MAXMEMORY)
                mb = size_mb(limit)
                if mb:
                    caps.append((mb, 'redis_instances %s (maxmemory %s)' % (instance.get('name', '?'), limit)))
    used = sum(mb for mb, _what in caps)
    if used <= total:
        return []
    return [
        '%s: memory limits add up to %d MB but the host has %d MB (%s): %s'
        % (host, round(used), total, source, ', '.join(what for _mb, what in caps))
    ]


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
    'ansible_memtotal_mb',
    'ansible_processor_vcpus',
    'platform_memory_mb',
    'pm2_apps',
    'pm2_app_defaults',
    'service_services',
    'service_defaults',
    'postgresql_memory_mb',
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
        found.extend(_memory(host, hv, groups))
    found.extend(_production(hostvars, groups))
    return sorted(set(found))
