# -*- coding: utf-8 -*-
from __future__ import absolute_import, division, print_function

__metaclass__ = type

import os

import pytest
import yaml

from ansible_collections.ierahkwa.platform.plugins.module_utils import inventory_rules as ir

ROLES = os.path.join(os.path.dirname(__file__), '..', '..', '..', '..', 'roles')
GROUPS = {
    'all': ['edge1', 'app1', 'app2', 'db1', 'redis1'],
    'edge': ['edge1'],
    'app': ['app1', 'app2'],
    'db': ['db1'],
    'db_primary': ['db1'],
    'redis': ['redis1'],
}


def good():
    return {
        'edge1': {
            'platform_environment': 'production',
            'certbot_email': 'ops@ierahkwa.gov',
            'nginx_upstreams': [{'name': 'api', 'group': 'app', 'port': 3000}],
            'nginx_sites': [{'name': 'api', 'server_names': ['api.ierahkwa.gov'], 'upstream': 'api'}],
        },
        'app1': {},
        'app2': {},
        'db1': {'pgbouncer_databases': [{'name': 'app', 'max_db_connections': 40}]},
        'redis1': {},
    }


def test_a_consistent_inventory_has_no_problem():
    assert ir.problems(good(), GROUPS) == []


def test_every_problem_at_once():
    hv = good()
    hv['db1'].update(
        pgbouncer_listen_port=5432,
        pgbouncer_databases=[{'name': 'a', 'max_db_connections': 60}, {'name': 'b', 'max_db_connections': 30}],
        pgbouncer_postgresql_max_connections=200,
    )
    hv['redis1']['redis_instances'] = [{'name': 'cache', 'port': 6379}, {'name': 'queue', 'port': 6379}]
    hv['edge1'].update(
        certbot_email='',
        nginx_sites=[
            {'name': 'api', 'server_names': ['api.example.com'], 'upstream': 'web'},
            {'name': 'x', 'server_names': []},
        ],
    )
    hv['edge1']['nginx_upstreams'].append({'name': 'admin', 'group': 'admin', 'port': 4000})
    assert ir.problems(hv, GROUPS) == [
        'db1: pgBouncer pools may open 92 server connections but postgresql_max_connections is 100 with 10 '
        'reserved (pgbouncer_databases max_db_connections, pgbouncer_postgresql_reserved_connections)',
        'db1: pgbouncer_postgresql_max_connections is 200 but postgresql_max_connections is 100',
        'db1: port 5432 is used twice (postgresql_port and pgbouncer_listen_port)',
        'edge1: nginx_sites api uses upstream web, which nginx_upstreams does not define',
        'edge1: nginx_upstreams admin points at group admin, which has no host',
        'edge1: production needs certbot_email (the ACME account address for expiry notices)',
        'edge1: production site api uses the example name api.example.com',
        'edge1: production site x has no server_names',
        'redis1: port 6379 is used twice (redis_instances cache and redis_instances queue)',
    ]


def test_app_port_collides_with_a_service_on_the_same_host():
    groups = dict(GROUPS, app=['app1', 'db1'])
    hv = good()
    hv['edge1']['nginx_upstreams'][0]['port'] = 6432
    assert ir.problems(hv, groups) == [
        'db1: port 6432 is used twice (pgbouncer_listen_port and app behind nginx upstream api)'
    ]


def test_production_rules_only_in_production():
    hv = good()
    hv['edge1'].update(
        platform_environment='staging',
        certbot_email='',
        nginx_sites=[{'name': 'api', 'server_names': ['api.example.org'], 'upstream': 'api'}],
    )
    assert ir.problems(hv, GROUPS) == []


def test_bad_shapes_do_not_crash():
    hv = good()
    hv['edge1']['nginx_upstreams'] = ['api', None]
    hv['edge1']['nginx_sites'] = ['x']
    hv['redis1']['redis_instances'] = ['x', {'port': 'abc'}]
    assert ir.problems(hv, GROUPS) == []


@pytest.mark.parametrize(
    'role, name',
    [
        ('postgresql', 'postgresql_port'),
        ('postgresql', 'postgresql_max_connections'),
        ('pgbouncer', 'pgbouncer_listen_port'),
        ('pgbouncer', 'pgbouncer_max_db_connections'),
        ('pgbouncer', 'pgbouncer_postgresql_reserved_connections'),
    ],
)
def test_defaults_match_the_roles(role, name):
    with open(os.path.join(ROLES, role, 'defaults', 'main.yml')) as f:
        assert yaml.safe_load(f)[name] == ir.DEFAULTS[name]


def test_redis_default_ports_match_the_role():
    with open(os.path.join(ROLES, 'redis', 'defaults', 'main.yml')) as f:
        ports = [(i['name'], i['port']) for i in yaml.safe_load(f)['redis_instances']]
    assert ports == [(i['name'], i['port']) for i in ir.DEFAULTS['redis_instances']]


# -- memory caps against the host's memory ---------------------------------------------------------------------


@pytest.mark.parametrize(
    'value, mb',
    [
        ('300M', 300),
        ('1G', 1024),
        ('256mb', 256),
        ('1gb', 1024),
        ('2GiB', 2048),
        ('512K', 0.5),
        (1048576, 1),
        ('50%', 2048),
        ('', None),
        ('infinity', None),
        ('0', None),
        (None, None),
        (True, None),
        ('lots', None),
    ],
)
def test_size_mb(value, mb):
    assert ir.size_mb(value, 4096) == mb


def crowded():
    """app1 with 4 GB: two PM2 apps, a systemd service, on a host that is also db and redis."""
    hv = good()
    hv['app1'] = {
        'ansible_memtotal_mb': 4096,
        'pm2_apps': [{'name': 'api', 'instances': 2, 'max_memory_restart': '1G'}, {'name': 'web'}],
        'service_services': [{'name': 'worker', 'memory_max': '1G'}, {'name': 'audit', 'memory_max': 'infinity'}],
        'postgresql_memory_mb': 1024,
    }
    return hv


def test_memory_caps_above_the_host_memory_name_host_and_variables():
    groups = dict(GROUPS, db=['db1', 'app1'], redis=['redis1', 'app1'])
    assert ir.problems(crowded(), groups) == [
        'app1: memory limits add up to 5120 MB but the host has 4096 MB (ansible_memtotal_mb): '
        'pm2_apps api (2 x max_memory_restart 1G), pm2_apps web (1 x max_memory_restart 512M), '
        'service_services worker (memory_max 1G), postgresql_memory_mb 1024, '
        'redis_instances cache (maxmemory 256mb), redis_instances queue (maxmemory 256mb)'
    ]


def test_memory_within_the_host_memory_is_no_problem():
    hv = crowded()
    hv['app1']['ansible_memtotal_mb'] = 8192
    assert ir.problems(hv, GROUPS) == []
    hv['app1']['ansible_memtotal_mb'] = 3584  # 1G x 2 + 512M + 1G: exactly the memory is still fine
    assert ir.problems(hv, GROUPS) == []
    hv['app1']['ansible_memtotal_mb'] = 3583
    assert ir.problems(hv, GROUPS) == [
        'app1: memory limits add up to 3584 MB but the host has 3583 MB (ansible_memtotal_mb): '
        'pm2_apps api (2 x max_memory_restart 1G), pm2_apps web (1 x max_memory_restart 512M), '
        'service_services worker (memory_max 1G)'
    ]


def test_memory_from_the_inventory_without_facts_and_host_defaults():
    hv = good()
    hv['app2'] = {
        'platform_memory_mb': 1024,
        'pm2_app_defaults': {'max_memory_restart': '300M'},
        'pm2_apps': [{'name': 'api', 'instances': 'max'}],
        'ansible_processor_vcpus': 4,
        'service_defaults': {'memory_max': '25%'},
        'service_services': [{'name': 'worker'}],
    }
    assert ir.problems(hv, GROUPS) == [
        'app2: memory limits add up to 1456 MB but the host has 1024 MB (platform_memory_mb): '
        'pm2_apps api (4 x max_memory_restart 300M), service_services worker (memory_max 25%)'
    ]
    del hv['app2']['platform_memory_mb']  # neither facts nor platform_memory_mb: not checked
    assert ir.problems(hv, GROUPS) == []


def test_redis_defaults_count_on_a_small_redis_host():
    hv = good()
    hv['redis1'] = {'platform_memory_mb': 400}
    assert ir.problems(hv, GROUPS) == [
        'redis1: memory limits add up to 512 MB but the host has 400 MB (platform_memory_mb): '
        'redis_instances cache (maxmemory 256mb), redis_instances queue (maxmemory 256mb)'
    ]


def test_redis_default_maxmemory_matches_the_role():
    with open(os.path.join(ROLES, 'redis', 'defaults', 'main.yml')) as f:
        limits = [i['maxmemory'] for i in yaml.safe_load(f)['redis_instances']]
    assert limits == [i['maxmemory'] for i in ir.DEFAULTS['redis_instances']]
    with open(os.path.join(ROLES, 'redis', 'vars', 'main.yml')) as f:
        assert "i.maxmemory | default('%s')" % ir.REDIS_MAXMEMORY in f.read()


@pytest.mark.parametrize(
    'role, name, keys',
    [('pm2', 'pm2_app_defaults', ['instances', 'max_memory_restart']), ('service', 'service_defaults', ['memory_max'])],
)
def test_supervision_defaults_match_the_roles(role, name, keys):
    path = os.path.join(ROLES, role, 'defaults', 'main.yml')
    with open(path) as f:
        defaults = yaml.safe_load(f)[name]
    assert {k: defaults[k] for k in keys} == ir.DEFAULTS[name]
